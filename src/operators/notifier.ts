/**
 * Operator presence → the outside: committed `operator.state` events handed to the webhook
 * dispatcher, and the `aricrm_operators` gauge (operators by state and status). Never throws.
 */
import type { Registry } from 'prom-client';
import type { LifecycleEvent } from '../events/types.ts';
import type { Logger } from '../logging/logger.ts';
import { gauge } from '../metrics/registry.ts';
import { OPERATOR_STATES, OPERATOR_STATUSES, type Operator } from './model.ts';

/** Publishes what the presence service committed. */
export class OperatorNotifier {
  /**
   * @param operators the operators now (read when the gauge is collected)
   * @param deliver where committed events go (the webhook dispatcher's `enqueue`); absent: the
   *   events stay in the outbox and the pull feed only
   */
  constructor(
    registry: Registry,
    private readonly logger: Logger,
    operators: () => readonly Operator[],
    private readonly deliver?: (event: LifecycleEvent) => void,
  ) {
    gauge(registry, {
      name: 'aricrm_operators',
      help: 'Configured operators by presence state (offline, idle, ringing, on_call) and status (available, break, dnd).',
      labelNames: ['state', 'status'],
      collect() {
        const counts = new Map<string, number>();
        for (const op of operators()) {
          const key = `${op.state}|${op.status}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        for (const state of OPERATOR_STATES)
          for (const status of OPERATOR_STATUSES)
            this.set({ state, status }, counts.get(`${state}|${status}`) ?? 0);
      },
    });
  }

  /** A committed `operator.state` event: to the webhooks. */
  committed(event: LifecycleEvent): void {
    if (!this.deliver) return;
    try {
      this.deliver(event);
    } catch (err) {
      this.logger.error('operator event delivery failed', { eventType: event.type, err });
    }
  }
}
