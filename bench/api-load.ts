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
 * The measured run follows a warm-up at the same rate (`warmupSec`, not counted), in the same
 * loadtest run so that it keeps the warm-up's connections: a fresh engine's first requests run
 * cold code (JIT), and the connections the load opens while it is slow would otherwise count their
 * set-up in the figures. The generator's own event-loop delay is reported: a request it answers
 * late is counted late.
 */
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
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
  /** Of those, connections opened during the measured run (the rest were opened in the warm-up). */
  connectionsOpened: number;
  /** The load generator's own event-loop delay p99 during the measured run, ms (1 ms timer). */
  lagP99Ms: number;
}

type RequestFunction = (
  options: RequestOptions,
  callback: (response: IncomingMessage) => void,
) => ClientRequest;

/**
 * Send `POST /v1/calls` at `order.rate` for the warm-up and the measured run, as one loadtest run
 * (one pool of keep-alive connections: a second run would open its connections anew, and their
 * set-up would be measured). Requests sent before the warm-up ends are not counted; `measuring`
 * is called when it ends. Resolves with the measured run's figures.
 */
function run(order: LoadOrder, measuring: () => void): Promise<LoadResult> {
  let errors = 0;
  let counter = 0;
  const byStatus: Record<string, number[]> = {};
  const sockets = new Set<unknown>();
  let opened = 0;
  const lag = monitorEventLoopDelay({ resolution: 1 });
  const measureFrom = performance.now() + order.warmupSec * 1000;
  let lastAnswer = measureFrom;
  const warmup = setTimeout(() => {
    lag.enable();
    measuring();
  }, order.warmupSec * 1000);
  return new Promise((resolve, reject) => {
    loadTest(
      {
        url: `${order.url}/v1/calls`,
        method: 'POST',
        requestsPerSecond: order.rate,
        maxSeconds: order.warmupSec + order.durationSec,
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
          const n = ++counter;
          const body = JSON.stringify({
            operator: order.operators[n % order.operators.length],
            to: order.to,
            variables: { dealId: `D-${n}` },
          });
          const sentAt = performance.now();
          const measured = sentAt >= measureFrom;
          const req = request(
            {
              ...params,
              headers: { ...params.headers, 'content-length': String(Buffer.byteLength(body)) },
            },
            (response) => {
              response.on('end', () => {
                if (!measured) return;
                lastAnswer = performance.now();
                (byStatus[String(response.statusCode)] ??= []).push(lastAnswer - sentAt);
              });
              connected(response);
            },
          );
          req.on('socket', (socket: Socket) => {
            if (!measured) return;
            sockets.add(socket);
            if (socket.connecting) opened++;
          });
          req.on('error', () => {
            if (measured) errors++;
          });
          req.end(body);
          return req;
        },
      },
      (err: unknown) => {
        clearTimeout(warmup);
        lag.disable();
        if (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        const requests = Object.values(byStatus).reduce((sum, times) => sum + times.length, 0);
        resolve({
          byStatus,
          requests,
          errors,
          durationSec: (lastAnswer - measureFrom) / 1000,
          connections: sockets.size,
          connectionsOpened: opened,
          lagP99Ms: lag.percentile(99) / 1e6,
        });
      },
    );
  });
}

process.once('message', (order: LoadOrder) => {
  void run(order, () => process.send!({ type: 'measuring' })).then((result) =>
    process.send!(result, () => process.exit(0)),
  );
});
process.send!({ type: 'ready' });
