/**
 * Prometheus metrics of the live stream's WebSocket server (src/stream/server.ts; prom-client).
 * Labels are bounded: `code` is a close code or a refusal code of docs/stream.md (or `dead`, a
 * socket that did not answer its ping).
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { counter, gauge } from '../metrics/registry.ts';

/** The stream server's metric objects. */
export interface StreamMetrics {
  /** `aricrm_stream_connections`: sockets open, until their TCP connection is closed. */
  connections: Gauge;
  /** `aricrm_stream_operator_connections`: of those, the sockets of operator tokens. */
  operatorConnections: Gauge;
  /** `aricrm_stream_messages_total`: event messages sent (replayed and live). */
  messages: Counter;
  /** `aricrm_stream_closes_total{code}`: sockets the engine closed, by close code. */
  closes: Counter<'code'>;
  /** `aricrm_stream_refusals_total{code}`: upgrades refused, by refusal code. */
  refusals: Counter<'code'>;
}

/**
 * Create (or reuse, when a previous server registered them on the same registry) the metrics on
 * `registry`, and set the gauges of the configured cap (`maxSockets`, STREAM_MAX_SOCKETS) and
 * admin reserve (`adminReserve`, STREAM_ADMIN_RESERVE).
 */
export function createStreamMetrics(
  registry: Registry,
  maxSockets: number,
  adminReserve: number,
): StreamMetrics {
  const metrics: StreamMetrics = {
    connections: gauge(registry, {
      name: 'aricrm_stream_connections',
      help: 'Live stream sockets open (GET /v1/stream), authenticated or not, until their TCP connection is closed.',
    }),
    operatorConnections: gauge(registry, {
      name: 'aricrm_stream_operator_connections',
      help: 'Of aricrm_stream_connections, the sockets of operator tokens; at most STREAM_MAX_SOCKETS - STREAM_ADMIN_RESERVE (the rest is kept for API key streams).',
    }),
    messages: counter(registry, {
      name: 'aricrm_stream_messages_total',
      help: 'Event messages sent on live stream sockets (replayed and live).',
    }),
    closes: counter(registry, {
      name: 'aricrm_stream_closes_total',
      help: 'Live stream sockets the engine closed, by close code (4001 token expired, 4003 refused, 4008 slow client, 1013 operator past the places not kept for admin streams, …; see docs/stream.md).',
      labelNames: ['code'] as const,
    }),
    refusals: counter(registry, {
      name: 'aricrm_stream_refusals_total',
      help: 'Live stream upgrades refused before the WebSocket opened, by code: stream_full (503: STREAM_MAX_SOCKETS open, or an operator token past STREAM_MAX_SOCKETS - STREAM_ADMIN_RESERVE), shutting_down (503), origin_not_allowed, ip_not_allowed (403), invalid_cursor (400), not_found (404).',
      labelNames: ['code'] as const,
    }),
  };
  gauge(registry, {
    name: 'aricrm_stream_max_sockets',
    help: 'Live stream sockets allowed open at once (STREAM_MAX_SOCKETS); more are refused with 503 stream_full.',
  }).set(maxSockets);
  gauge(registry, {
    name: 'aricrm_stream_admin_reserve',
    help: 'Live stream places kept for API key (admin) streams (STREAM_ADMIN_RESERVE): operator sockets are refused past STREAM_MAX_SOCKETS minus it.',
  }).set(adminReserve);
  return metrics;
}
