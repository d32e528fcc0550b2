/**
 * Load generator of the API benchmark (bench/api.ts), in its own process so it does not share
 * the engine's event loop: `POST /v1/calls` at a sustained rate with the `loadtest` package
 * (`requestsPerSecond`), operators taken in turn. Parent → child: {@link LoadOrder}; child →
 * parent: `{type:'ready'}`, then `{type:'measuring'}` once the warm-up is over, then the
 * {@link LoadResult} of the measured run.
 *
 * Why loadtest and not autocannon: loadtest's `requestsPerSecond` is an open model, one request
 * every 1000/rate ms whether or not the earlier ones were answered (a new keep-alive connection
 * when none is free), which is what "a sustained rate" means. autocannon's `overallRate` sends
 * each second's quota back to back as fast as the answers come, then waits for the next second:
 * at 100 requests/s that is 100 call creations within a few ms, then nothing for most of the
 * second, so its latencies measured the engine working off a burst.
 *
 * Each request is timed here, from handing it to Node's HTTP client to its response's end, with
 * `performance.now()` (loadtest's own figure is truncated to whole milliseconds).
 *
 * The measured run follows a warm-up at the same rate (`warmupSec`, not counted): a fresh engine's
 * first requests run cold code (JIT), and the connections the load opens while it is slow would
 * otherwise count their set-up in the figures.
 */
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { performance } from 'node:perf_hooks';
import { loadTest } from 'loadtest';

/** What to run. */
export interface LoadOrder {
  url: string;
  apiKey: string;
  /** Requests per second, spread evenly (one every 1000/rate ms). */
  rate: number;
  /** Length of the measured run, s. */
  durationSec: number;
  /** Length of the warm-up before it, s (0: none). */
  warmupSec: number;
  operators: string[];
  to: string;
}

/** What happened. */
export interface LoadResult {
  /** Response times by HTTP status code, ms (requests with no answer are in `errors`). */
  byStatus: Record<string, number[]>;
  /** Requests answered. */
  requests: number;
  /** Requests that failed without an HTTP answer (connection error, timeout). */
  errors: number;
  /** Time from the first request sent to the last answer, s. */
  durationSec: number;
  /** Connections used (an open model opens one when every other one is busy). */
  connections: number;
}

type RequestFunction = (
  options: RequestOptions,
  callback: (response: IncomingMessage) => void,
) => ClientRequest;

/**
 * Send `POST /v1/calls` at `order.rate` for `seconds` (`counter` numbers the requests across
 * runs). Resolves with the run's figures.
 */
function run(order: LoadOrder, seconds: number, counter: { n: number }): Promise<LoadResult> {
  let errors = 0;
  const byStatus: Record<string, number[]> = {};
  const sockets = new Set<unknown>();
  const started = performance.now();
  let lastAnswer = started;
  return new Promise((resolve, reject) => {
    loadTest(
      {
        url: `${order.url}/v1/calls`,
        method: 'POST',
        requestsPerSecond: order.rate,
        maxSeconds: seconds,
        agentKeepAlive: true,
        quiet: true,
        timeout: 10_000,
        headers: {
          authorization: `Bearer ${order.apiKey}`,
          'content-type': 'application/json',
        },
        requestGenerator(
          _options: unknown,
          params: RequestOptions,
          request: RequestFunction,
          connected: (response: IncomingMessage) => void,
        ) {
          const n = ++counter.n;
          const body = JSON.stringify({
            operator: order.operators[n % order.operators.length],
            to: order.to,
            variables: { dealId: `D-${n}` },
          });
          const sentAt = performance.now();
          const req = request(
            {
              ...params,
              headers: { ...params.headers, 'content-length': String(Buffer.byteLength(body)) },
            },
            (response) => {
              response.on('end', () => {
                lastAnswer = performance.now();
                (byStatus[String(response.statusCode)] ??= []).push(lastAnswer - sentAt);
              });
              connected(response);
            },
          );
          req.on('socket', (socket) => sockets.add(socket));
          req.on('error', () => errors++);
          req.end(body);
          return req;
        },
      },
      (err: unknown) => {
        if (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        const requests = Object.values(byStatus).reduce((sum, times) => sum + times.length, 0);
        resolve({
          byStatus,
          requests,
          errors,
          durationSec: (lastAnswer - started) / 1000,
          connections: sockets.size,
        });
      },
    );
  });
}

process.once('message', (order: LoadOrder) => {
  const counter = { n: 0 };
  void (async () => {
    if (order.warmupSec > 0) await run(order, order.warmupSec, counter);
    process.send!({ type: 'measuring' });
    const result = await run(order, order.durationSec, counter);
    process.send!(result, () => process.exit(0));
  })();
});
process.send!({ type: 'ready' });
