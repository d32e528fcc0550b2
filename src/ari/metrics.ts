/**
 * Prometheus metrics of the ARI gateway (prom-client). Labels are bounded: event `type` is one of
 * {@link ARI_EVENT_TYPES}, `operation` one of the gateway's method names, `kind` an
 * {@link AriErrorKind}. Never an id or a phone number.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { counter, gauge } from '../metrics/registry.ts';

/** The gateway's metric objects. */
export interface AriMetrics {
  /** `aricrm_ari_connected`: 1 while the event WebSocket is open, else 0. */
  connected: Gauge;
  /** `aricrm_ari_reconnects_total`: connections re-established after a loss. */
  reconnects: Counter;
  /** `aricrm_ari_events_total{type}`: known events received. */
  events: Counter<'type'>;
  /** `aricrm_ari_events_unknown_total`: messages of an unknown type, or not parseable. */
  eventsUnknown: Counter;
  /** `aricrm_ari_command_errors_total{operation,kind}`: REST commands that finally failed. */
  commandErrors: Counter<'operation' | 'kind'>;
  /** `aricrm_ari_command_retries_total{operation}`: retries after "Channel not in Stasis application". */
  commandRetries: Counter<'operation'>;
  /** `aricrm_ari_handler_errors_total`: listener throws and rejections. */
  handlerErrors: Counter;
  /** `aricrm_ari_channel_listeners`: listeners registered through `onChannel`. */
  channelListeners: Gauge;
}

/**
 * Create (or reuse, when a previous gateway registered them on the same registry) the metrics on
 * `registry`.
 */
export function createAriMetrics(registry: Registry): AriMetrics {
  return {
    connected: gauge(registry, {
      name: 'aricrm_ari_connected',
      help: 'ARI event WebSocket open (1) or not (0).',
    }),
    reconnects: counter(registry, {
      name: 'aricrm_ari_reconnects_total',
      help: 'ARI event WebSocket connections re-established after a loss.',
    }),
    events: counter(registry, {
      name: 'aricrm_ari_events_total',
      help: 'ARI events received, by event type.',
      labelNames: ['type'] as const,
    }),
    eventsUnknown: counter(registry, {
      name: 'aricrm_ari_events_unknown_total',
      help: 'ARI WebSocket messages of an unknown event type or not parseable (dropped).',
    }),
    commandErrors: counter(registry, {
      name: 'aricrm_ari_command_errors_total',
      help: 'ARI REST commands that failed (after retries), by operation and error kind.',
      labelNames: ['operation', 'kind'] as const,
    }),
    commandRetries: counter(registry, {
      name: 'aricrm_ari_command_retries_total',
      help: 'ARI REST commands retried after "Channel not in Stasis application", by operation.',
      labelNames: ['operation'] as const,
    }),
    handlerErrors: counter(registry, {
      name: 'aricrm_ari_handler_errors_total',
      help: 'ARI event listeners that threw or rejected.',
    }),
    channelListeners: gauge(registry, {
      name: 'aricrm_ari_channel_listeners',
      help: 'Per-channel ARI event listeners currently registered.',
    }),
  };
}
