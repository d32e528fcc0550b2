/**
 * Load generator of the API benchmark (bench/api.ts), in its own process so it does not share
 * the engine's event loop: autocannon at a fixed overall rate of `POST /v1/calls`, operators
 * taken in turn. Parent → child: {@link LoadOrder}; child → parent: {@link LoadResult}.
 */
import autocannon from 'autocannon';

/** What to run. */
export interface LoadOrder {
  url: string;
  apiKey: string;
  /** Requests per second, all connections together. */
  rate: number;
  durationSec: number;
  connections: number;
  operators: string[];
  to: string;
}

/** What happened. */
export interface LoadResult {
  /** autocannon's 2xx latency percentiles (coordinated-omission corrected), ms. */
  latency2xx: { p50: number; p90: number; p99: number; max: number };
  /** Raw response times by status code, ms. */
  byStatus: Record<string, number[]>;
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  durationSec: number;
}

process.once('message', (order: LoadOrder) => {
  let n = 0;
  const byStatus: Record<string, number[]> = {};
  const instance = autocannon(
    {
      url: order.url,
      connections: order.connections,
      overallRate: order.rate,
      duration: order.durationSec,
      requests: [
        {
          method: 'POST',
          path: '/v1/calls',
          headers: {
            authorization: `Bearer ${order.apiKey}`,
            'content-type': 'application/json',
          },
          setupRequest: (request) => ({
            ...request,
            body: JSON.stringify({
              operator: order.operators[n++ % order.operators.length],
              to: order.to,
              variables: { dealId: `D-${n}` },
            }),
          }),
        },
      ],
    },
    (err, result) => {
      if (err) throw err;
      const message: LoadResult = {
        latency2xx: {
          p50: result.latency.p50,
          p90: result.latency.p90,
          p99: result.latency.p99,
          max: result.latency.max,
        },
        byStatus,
        requests: result.requests.total,
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
        durationSec: result.duration,
      };
      process.send!(message, () => process.exit(0));
    },
  );
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    (byStatus[String(statusCode)] ??= []).push(responseTime);
  });
});
process.send!({ type: 'ready' });
