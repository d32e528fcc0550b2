/**
 * Notification calls (autocalls): jobs and campaigns stored durably, a scheduler that claims due
 * jobs with leases and hands each attempt to a {@link NotificationDialer}, the `/v1/autocalls` and
 * `/v1/campaigns` API and the asterisk.fcgi `autocall` / `autocallstatus` answers.
 * Reference: docs/autocalls.md.
 */
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
