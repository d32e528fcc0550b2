/**
 * The notification-call store's rows (tables of migration 0005): their mapping to the API views
 * and to the dialer's job, the rows of new jobs, and the transaction the store's modules write in
 * ({@link AutocallTx}: store.ts, store-campaigns.ts, store-claims.ts, store-transitions.ts).
 * Times in are epoch milliseconds, stored ISO 8601 UTC.
 */
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { EventRepository } from '../store/events.ts';
import type {
  AutocallAttemptsTable,
  AutocallCampaignsTable,
  AutocallJobsTable,
  Database,
} from '../store/schema.ts';
import { toIsoTime } from '../store/schema.ts';
import type { DialJob } from './dialer.ts';
import type {
  AmdStatus,
  AttemptResult,
  AutocallDialStatus,
  AutocallStatus,
  CallingWindow,
} from './model.ts';
import type {
  AutocallAttemptView,
  AutocallJobView,
  AutocallScript,
  CampaignDefaults,
  CampaignState,
  CampaignView,
  NewAutocallJob,
} from './types.ts';

export type JobRow = Selectable<AutocallJobsTable>;
export type CampaignRow = Selectable<AutocallCampaignsTable>;
type AttemptRow = Selectable<AutocallAttemptsTable>;

/**
 * One transaction of the store: its queries, the outbox repository bound to it (events commit
 * with the change that caused them), the dialect, and whether events are stored `skipped`
 * ({@link AutocallStoreOptions.skipDelivery}).
 */
export interface AutocallTx {
  trx: Kysely<Database>;
  repos: { events: EventRepository };
  /** PostgreSQL: rows are locked (`FOR UPDATE`, `SKIP LOCKED`); SQLite: one connection. */
  postgres: boolean;
  skipDelivery: boolean;
}

/** A count or id as the driver returns it (PostgreSQL `bigint` as text), as a number. */
export const num = (v: number | string): number => Number(v);
/** An optional epoch-ms time as stored (ISO 8601 UTC), null when absent. */
export const optIso = (v: number | undefined): string | null =>
  v === undefined ? null : toIsoTime(v);
const parseJson = <T>(text: string | null): T | undefined =>
  text === null ? undefined : (JSON.parse(text) as T);

/** The row of a new job: queued and due at `at` (ISO time), no attempt made. */
export function newJobRow(job: NewAutocallJob, at: string): Insertable<AutocallJobsTable> {
  return {
    campaign_id: job.campaignId ?? null,
    to_number: job.to,
    endpoint: job.endpoint,
    script: JSON.stringify(job.script),
    caller_id: job.callerId ?? null,
    variables: job.variables === undefined ? null : JSON.stringify(job.variables),
    tries: job.tries,
    tries_period_sec: job.triesPeriodSec,
    attempts_made: 0,
    status: 'queued',
    cancel_requested: 0,
    next_attempt_at: at,
    attempt_started_at: null,
    lease_owner: null,
    lease_until: null,
    event_seq: 0,
    requested_by: job.requestedBy ?? null,
    created_at: at,
    updated_at: at,
    finished_at: null,
  };
}

export function toJobView(row: JobRow): AutocallJobView {
  const status = row.status as AutocallStatus;
  return {
    id: num(row.id),
    ...(row.campaign_id === null ? {} : { campaignId: num(row.campaign_id) }),
    status,
    to: row.to_number,
    script: JSON.parse(row.script) as AutocallScript,
    ...(row.caller_id === null ? {} : { callerId: row.caller_id }),
    ...(row.variables === null
      ? {}
      : { variables: JSON.parse(row.variables) as Record<string, string> }),
    tries: row.tries,
    triesPeriodSec: row.tries_period_sec,
    attemptsMade: row.attempts_made,
    ...(status === 'queued' ? { nextAttemptAt: row.next_attempt_at } : {}),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(row.finished_at === null ? {} : { finishedAt: row.finished_at }),
  };
}

export function toDialJob(row: JobRow): DialJob {
  const view = toJobView(row);
  return {
    id: view.id,
    ...(view.campaignId === undefined ? {} : { campaignId: view.campaignId }),
    to: view.to,
    endpoint: row.endpoint,
    script: view.script,
    ...(view.callerId === undefined ? {} : { callerId: view.callerId }),
    ...(view.variables === undefined ? {} : { variables: view.variables }),
    tries: view.tries,
  };
}

/** An attempt of a job as the API shows it. */
export function toAttemptView(a: AttemptRow): AutocallAttemptView {
  return {
    attempt: a.attempt,
    startedAt: a.started_at,
    endedAt: a.ended_at,
    dialStatus: a.dial_status as AutocallDialStatus,
    ...(a.cause === null ? {} : { cause: a.cause }),
    ...(a.cause_text === null ? {} : { causeText: a.cause_text }),
    ...(a.answered_at === null ? {} : { answeredAt: a.answered_at }),
    digits: a.digits,
    playedSec: a.played_sec,
    outcome: a.outcome as AttemptResult,
    ...(a.call_id === null ? {} : { callId: a.call_id }),
    ...(a.amd_status === null ? {} : { amdStatus: a.amd_status as AmdStatus }),
    ...(a.amd_cause === null ? {} : { amdCause: a.amd_cause }),
  };
}

export function toCampaignView(row: CampaignRow): CampaignView {
  const window = parseJson<CallingWindow>(row.window);
  const defaults = parseJson<CampaignDefaults>(row.defaults);
  return {
    id: num(row.id),
    name: row.name,
    maxConcurrent: row.max_concurrent,
    callsPerSecond: Number(row.calls_per_second),
    ...(window ? { window } : {}),
    ...(defaults ? { defaults } : {}),
    state: row.state as CampaignState,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
