/**
 * The call journal's metrics (`aricrm_store_*`), and the accounting of the changes it did not
 * store: recorded after it closed, or still unwritten when it closed (each logged and counted in
 * `aricrm_store_dropped_changes_total`, never dropped silently).
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { counter, gauge } from '../metrics/registry.ts';
import type { Pending } from './journal-changes.ts';

/** The call journal's metrics. */
export interface JournalMetrics {
  commits: Counter;
  failures: Counter;
  backlog: Gauge;
  /** Changes this run did not store, by `event` type (`none`: a state change, `recording`). */
  dropped: Counter<'event'>;
}

/** The journal's metrics in `registry` (reused if already there). */
export function journalMetrics(registry: Registry): JournalMetrics {
  return {
    commits: counter(registry, {
      name: 'aricrm_store_commits_total',
      help: 'Store transactions committed by the call journal (each holds the call changes and events of one or more calls).',
    }),
    failures: counter(registry, {
      name: 'aricrm_store_write_failures_total',
      help: 'Call journal write failures (each retried with backoff, with the transactions in flight behind it; nothing is dropped).',
    }),
    backlog: gauge(registry, {
      name: 'aricrm_store_backlog_calls',
      help: 'Calls with changes not yet committed to the store.',
    }),
    dropped: counter(registry, {
      name: 'aricrm_store_dropped_changes_total',
      help: 'Call changes the call journal did not store because it had closed at shutdown (or closed with its store failing), by event type (none: a change of state or legs alone; recording: a recording status). Each is logged at warn or error.',
      labelNames: ['event'],
    }),
  };
}

/**
 * Log (warn) and count a change of call `callId` recorded after the journal closed: `event` is the
 * event type, `none` (a change of state or legs alone) or `recording` (a recording status).
 */
export function droppedAfterClose(
  metrics: JournalMetrics,
  logger: Logger,
  callId: string,
  event: string,
  details: Record<string, unknown>,
): void {
  metrics.dropped.inc({ event });
  logger.warn('call change recorded after the call journal closed: not stored by this run', {
    callId,
    ...(event === 'none' || event === 'recording' ? { change: event } : { eventType: event }),
    ...details,
  });
}

/** Log (error) and count the changes still unwritten when the journal closed (lost). */
export function droppedAtClose(
  metrics: JournalMetrics,
  logger: Logger,
  unwritten: ReadonlyMap<string, Pending>,
): void {
  const pendings = [...unwritten.values()];
  for (const pending of pendings) {
    if (pending.events.length === 0)
      metrics.dropped.inc({
        event: pending.recording && !pending.call ? 'recording' : 'none',
      });
    for (const event of pending.events) metrics.dropped.inc({ event: event.type });
  }
  logger.error('call journal closed with unwritten changes', {
    calls: [...unwritten.keys()],
    events: pendings.reduce((n, p) => n + p.events.length, 0),
  });
}
