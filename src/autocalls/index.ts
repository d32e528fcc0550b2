/**
 * Notification calls (autocalls): jobs and campaigns stored durably, a scheduler that claims due
 * jobs with leases and hands each attempt to a {@link NotificationDialer}, the `/v1/autocalls` and
 * `/v1/campaigns` API and the asterisk.fcgi `autocall` / `autocallstatus` answers.
 * Reference: docs/autocalls.md.
 *
 * `main.ts` wires it with {@link createAutocalls}; the parts are exported for tests.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { LifecycleEvent } from '../events/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { DestinationPolicy } from '../security/destinations.ts';
import type { Store } from '../store/store.ts';
import type { NotificationDialer } from './dialer.ts';
import { AutocallNotifier } from './notifier.ts';
import { AutocallScheduler } from './scheduler.ts';
import { AutocallService } from './service.ts';
import { AutocallStore } from './store.ts';

export type { DialJob, NotificationDialer } from './dialer.ts';
export {
  unansweredResult,
  type AttemptOutcome,
  type AttemptResult,
  type AutocallDialStatus,
  type AutocallFinalStatus,
  type AutocallStatus,
} from './model.ts';
export { AutocallNotifier } from './notifier.ts';
export { createAutocallRoutes, type StoredAutocallCreation } from './routes.ts';
export { AutocallScheduler, type AutocallSchedulerOptions } from './scheduler.ts';
export { MAX_JOBS_PER_REQUEST } from './schemas.ts';
export { AutocallService, type AutocallServiceDeps } from './service.ts';
export { AutocallStore, autocallEventKey } from './store.ts';
export type { AutocallJobView, AutocallScript, CampaignView } from './types.ts';

/** What {@link createAutocalls} needs. */
export interface CreateAutocallsDeps {
  config: Config;
  /** The store, claimed and migrated: jobs, campaigns, attempts and their events. */
  store: Pick<Store, 'db' | 'dialect' | 'transaction'>;
  /** Places each attempt (the call service's notification-call flow, or a test's dialer). */
  dialer: NotificationDialer;
  /** Where autocall events go (the webhook dispatcher's `enqueue`). */
  deliver: (event: LifecycleEvent) => void;
  /**
   * Whether new attempts may start now (ARI connected and the store writing); while false the
   * scheduler claims nothing.
   */
  ready: () => boolean;
  /** The toll-fraud guard's destination policy: jobs to other numbers are refused. */
  destinations: DestinationPolicy;
  logger: Logger;
  registry: Registry;
}

/** The wired notification-calls domain. */
export interface Autocalls {
  /** Jobs and campaigns, behind `/v1/autocalls` and `/v1/campaigns`. */
  service: AutocallService;
  /** Claims due jobs and places their attempts; not started yet (see `start`). */
  scheduler: AutocallScheduler;
  /**
   * Engine start-up, after the call service adopted the calls of an earlier run and before the
   * scheduler starts: take over the attempts of the adopted notification calls (see
   * {@link AutocallScheduler.adoptAttempts}). Resolves the call ids taken over.
   *
   * @throws the store's error
   */
  takeOver(
    attempts: ReadonlyArray<{ callId: string; jobId: number; attemptNo: number }>,
  ): Promise<string[]>;
}

/**
 * Build the domain: the store (events stored `skipped` without CRM_WEBHOOK_URL), the notifier,
 * the scheduler (this engine's lease owner name: host, pid and a random suffix) and the service,
 * which wakes the scheduler when jobs come.
 */
export function createAutocalls(deps: CreateAutocallsDeps): Autocalls {
  const { config } = deps;
  const logger = deps.logger.child({ component: 'autocalls' });
  const store = new AutocallStore(deps.store, { skipDelivery: !config.CRM_WEBHOOK_URL });
  const notifier = new AutocallNotifier(deps.registry, logger, deps.deliver);
  const scheduler = new AutocallScheduler({
    store,
    dialer: deps.dialer,
    notifier,
    logger,
    owner: `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    maxLiveCalls: config.AUTOCALL_MAX_LIVE_CALLS,
    leaseMs: config.AUTOCALL_LEASE_MS,
    ready: deps.ready,
  });
  notifier.countLiveCalls(() => scheduler.liveCalls());
  const service = new AutocallService({
    store,
    notifier,
    destinations: deps.destinations,
    trunks: config.TRUNKS.map((trunk) => ({ ...trunk, region: config.DEFAULT_REGION })),
    region: config.DEFAULT_REGION,
    wake: () => scheduler.wake(),
  });
  return {
    service,
    scheduler,
    async takeOver(attempts) {
      // Their leases move to this engine before the scheduler's first pass could reclaim them.
      const takenOver = await scheduler.adoptAttempts(attempts);
      if (takenOver.length > 0)
        deps.logger.info('taking over notification calls in progress', { calls: takenOver.length });
      return takenOver;
    },
  };
}
