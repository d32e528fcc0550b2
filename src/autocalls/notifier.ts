/**
 * Notification calls → the outside: `autocall.attempt` / `autocall.finished` events (already
 * committed to the outbox by the store, src/autocalls/store.ts) handed to the webhook dispatcher,
 * and the metrics by attempt outcome and final status. Never throws.
 */
import type { Registry } from 'prom-client';
import type { LifecycleEvent } from '../events/types.ts';
import type { Logger } from '../logging/logger.ts';
import { counter, gauge } from '../metrics/registry.ts';
import type { AutocallChanges } from './store.ts';

/** Publishes what the store committed. */
export class AutocallNotifier {
  private readonly attempts;
  private readonly finished;
  private readonly created;
  private liveCalls: () => number = () => 0;

  /**
   * @param deliver where committed events go (the webhook dispatcher's `enqueue`); absent: the
   *   events stay in the outbox and the pull feed only
   */
  constructor(
    registry: Registry,
    private readonly logger: Logger,
    private readonly deliver?: (event: LifecycleEvent) => void,
  ) {
    this.attempts = counter(registry, {
      name: 'aricrm_autocall_attempts_total',
      help: 'Notification call attempts ended, by outcome (delivered, busy, no_answer, not_confirmed, cut_short, congestion, rejected, machine, canceled, failed, lost).',
      labelNames: ['outcome'],
    });
    this.finished = counter(registry, {
      name: 'aricrm_autocall_jobs_finished_total',
      help: 'Notification calls that reached their final status, by status.',
      labelNames: ['status'],
    });
    this.created = counter(registry, {
      name: 'aricrm_autocall_jobs_created_total',
      help: 'Notification calls created (API and asterisk.fcgi).',
    });
    const live = (): number => this.liveCalls();
    gauge(registry, {
      name: 'aricrm_autocall_live_calls',
      help: 'Notification calls this engine has in progress (AUTOCALL_MAX_LIVE_CALLS caps it).',
      collect() {
        this.set(live());
      },
    });
  }

  /** Where the live-call gauge reads its value (the scheduler's `liveCalls`). */
  countLiveCalls(liveCalls: () => number): void {
    this.liveCalls = liveCalls;
  }

  /** Count `n` new jobs. */
  jobsCreated(n: number): void {
    this.created.inc(n);
  }

  /** Deliver the events of committed changes and count their attempts and final statuses. */
  publish(changes: AutocallChanges): void {
    for (const outcome of changes.attempts) this.attempts.inc({ outcome });
    for (const job of changes.finished) this.finished.inc({ status: job.status });
    if (!this.deliver) return;
    for (const event of changes.events) {
      try {
        this.deliver(event);
      } catch (err) {
        this.logger.error('autocall event delivery failed', { eventType: event.type, err });
      }
    }
  }
}
