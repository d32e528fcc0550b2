/**
 * Table types of the store, shared by both dialects. Column conventions (docs/store.md):
 *
 * - Times are ISO 8601 UTC text with milliseconds, always 24 characters
 *   (`2025-01-31T09:15:02.123Z`), in SQLite and PostgreSQL alike, so text order is time order and
 *   both dialects return identical values. Written only through {@link toIsoTime}.
 * - Durations are whole seconds (`*_sec`), sizes bytes, HTTP timings milliseconds (`*_ms`).
 * - JSON (`variables`, `payload`) is stored as text.
 * - Numbers from the PBX (caller, DID, extensions) are text, exactly as Asterisk gave them.
 */
import type { ColumnType, Generated } from 'kysely';

/** `calls`: one row per call (the CDR a CRM expects). */
export interface CallsTable {
  id: string;
  direction: string;
  from_number: string;
  to_number: string;
  did: string | null;
  customer_id: string | null;
  customer_name: string | null;
  /** The customer's page in the CRM, an http(s) URL (migration 0011). */
  customer_link: string | null;
  state: string;
  disposition: string | null;
  answered_by: string | null;
  hangup_by: string | null;
  end_reason: string | null;
  started_at: string;
  answered_at: string | null;
  ended_at: string | null;
  wait_sec: number;
  talk_sec: number;
  /** JSON object of string values, or null. */
  variables: string | null;
  recording_name: string | null;
  recording_path: string | null;
  recording_status: string | null;
  /** 64-bit; PostgreSQL returns bigint as text. */
  recording_bytes: ColumnType<number | string | null, number | null, number | null>;
  recording_duration_sec: number | null;
  updated_at: string;
}

/** `call_legs`: the channels of a call; primary key (call_id, channel_id). */
export interface CallLegsTable {
  call_id: string;
  channel_id: string;
  /** Order of the leg within its call (0, 1, …), as the call model listed it. */
  position: number;
  role: string;
  extension: string | null;
  endpoint: string | null;
  outcome: string | null;
  cause: number | null;
  cause_text: string | null;
  created_at: string;
  answered_at: string | null;
  ended_at: string | null;
}

/** `events`: the outbox of lifecycle events, also the pull feed. */
export interface EventsTable {
  /**
   * Global monotonic id: the pull-feed cursor. PostgreSQL returns bigint as text. Assigned by
   * the database on PostgreSQL, by the engine on SQLite (src/store/outbox-positions.ts).
   */
  id: ColumnType<number | string, number | undefined, never>;
  event_id: string;
  call_id: string;
  type: string;
  sequence: number;
  occurred_at: string;
  /** The exact JSON body sent to the CRM (the serialised envelope). */
  payload: string;
  status: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  last_status: number | null;
  created_at: string;
  delivered_at: string | null;
  settled_at: string | null;
}

/**
 * `connector_outbox`: the delivery state of a lifecycle event for one CRM connector (the vendor
 * target beside the webhook): same states as `events.status` except `skipped`.
 */
export interface ConnectorOutboxTable {
  id: Generated<number | string>;
  /** The connector's name, e.g. `retailcrm`. */
  connector: string;
  event_id: string;
  call_id: string;
  sequence: number;
  status: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  last_status: number | null;
  created_at: string;
  settled_at: string | null;
}

/**
 * `connector_state`: what a CRM connector keeps across restarts, one JSON text value per key
 * (Bitrix24: the OAuth tokens, the CALL_ID of each call). Times ISO 8601 UTC.
 */
export interface ConnectorStateTable {
  /** The connector's name, e.g. `bitrix24`. */
  connector: string;
  key: string;
  value: string;
  updated_at: string;
}

/** `webhook_deliveries`: one row per delivery attempt (the delivery log). */
export interface WebhookDeliveriesTable {
  id: Generated<number | string>;
  event_id: string;
  attempt: number;
  url: string | null;
  at: string;
  outcome: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

/** `idempotency_keys`: remembered answers of `POST /v1/calls` by (API key name, key). */
export interface IdempotencyKeysTable {
  /** The API key's name. */
  scope: string;
  /** The client's `Idempotency-Key`. */
  key: string;
  /** SHA-256 of the normalised request: another request with the same key is a conflict. */
  fingerprint: string;
  /** The remembered answer, JSON. */
  value: string;
  expires_at: string;
}

/** `journal_state`: one row (id 1), the call journal's last committed transaction (migration 0004). */
export interface JournalStateTable {
  id: number;
  /** `seq` of the last committed journal transaction (src/store/journal-log.ts); bigint as text on PostgreSQL. */
  seq: ColumnType<number | string, number, number>;
}

/**
 * `verb_recording_downloads`: call script recordings (record verb) Asterisk finished and the
 * engine has not stored yet (migration 0006, src/recordings/verb-recordings.ts).
 */
export interface VerbRecordingDownloadsTable {
  /** Asterisk's recording name (`vrec-<uuid>`). */
  name: string;
  call_id: string;
  /** Asterisk's RecordingFinished duration, seconds; null when it gave none. */
  duration_sec: number | null;
  created_at: string;
}

/** `autocall_campaigns`: notification-call campaigns (migration 0005, src/autocalls/). */
export interface AutocallCampaignsTable {
  /** bigint as text on PostgreSQL. */
  id: Generated<number | string>;
  name: string;
  max_concurrent: number;
  calls_per_second: number;
  /** JSON `{from, to, timezone, days}` or null (always open). */
  window: string | null;
  /** JSON job defaults or null. */
  defaults: string | null;
  /** `active`, `paused` or `canceled`. */
  state: string;
  /** Pacing: the earliest time the next call of the campaign may be placed. */
  next_slot_at: string;
  requested_by: string | null;
  created_at: string;
  updated_at: string;
}

/** `autocall_jobs`: one notification call to place (migration 0005). */
export interface AutocallJobsTable {
  /** 1..2^32-1, also the asterisk.fcgi AutoCallID; bigint as text on PostgreSQL. */
  id: Generated<number | string>;
  campaign_id: ColumnType<number | string | null, number | null, number | null>;
  to_number: string;
  /** The dial string of the trunk chosen by the number's prefix (TRUNKS). */
  endpoint: string;
  /** JSON `{files?, verbs?, confirm?}`. */
  script: string;
  caller_id: string | null;
  variables: string | null;
  tries: number;
  tries_period_sec: number;
  attempts_made: number;
  status: string;
  /** 1 when a cancel arrived while an attempt was in progress. */
  cancel_requested: number;
  next_attempt_at: string;
  /** When the attempt in progress started. */
  attempt_started_at: string | null;
  lease_owner: string | null;
  lease_until: string | null;
  /** Sequence of the job's last `autocall.*` event. */
  event_seq: number;
  requested_by: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

/** `autocall_attempts`: every attempt of a job; primary key (job_id, attempt) (migration 0005). */
export interface AutocallAttemptsTable {
  job_id: ColumnType<number | string, number, number>;
  attempt: number;
  started_at: string;
  ended_at: string;
  call_id: string | null;
  dial_status: string;
  cause: number | null;
  cause_text: string | null;
  answered_at: string | null;
  digits: string;
  played_sec: number;
  outcome: string;
  /** AMDSTATUS of answering-machine detection (migration 0006), null when it did not run. */
  amd_status: ColumnType<string | null, string | null | undefined, string | null>;
  /** AMDCAUSE (migration 0006). */
  amd_cause: ColumnType<string | null, string | null | undefined, string | null>;
}

/** `operators`: operator presence, one row per extension (migration 0006, src/operators/). */
export interface OperatorsTable {
  extension: string;
  /** `available`, `break` or `dnd`. */
  status: string;
  /** `offline`, `idle`, `ringing` or `on_call`: the last state the engine published. */
  state: string;
  /** When `state` or `status` last changed. */
  since: string;
  /** The call ringing the operator or the operator is on. */
  call_id: string | null;
  /** Sequence of the operator's last `operator.state` event. */
  event_seq: number;
  updated_at: string;
}

/** The whole database as Kysely sees it. */
export interface Database {
  autocall_campaigns: AutocallCampaignsTable;
  autocall_jobs: AutocallJobsTable;
  autocall_attempts: AutocallAttemptsTable;
  calls: CallsTable;
  call_legs: CallLegsTable;
  events: EventsTable;
  connector_outbox: ConnectorOutboxTable;
  connector_state: ConnectorStateTable;
  webhook_deliveries: WebhookDeliveriesTable;
  idempotency_keys: IdempotencyKeysTable;
  journal_state: JournalStateTable;
  operators: OperatorsTable;
  verb_recording_downloads: VerbRecordingDownloadsTable;
}

/**
 * Normalise a time to the store's text form: ISO 8601 UTC with milliseconds.
 *
 * @param value a Date, epoch milliseconds, or any string `Date` parses (ISO 8601 recommended)
 * @throws RangeError when the value is not a valid time or falls outside years 0000-9999 (the
 *   fixed-width text form would no longer sort correctly)
 */
export function toIsoTime(value: Date | number | string): string {
  // Epoch-ms times repeat (a call's start is written with every change of the call): memoised.
  if (typeof value === 'number') {
    const known = isoByMs.get(value);
    if (known !== undefined) return known;
  }
  const date = value instanceof Date ? value : new Date(value);
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`not a valid time: ${String(value)}`);
  const iso = date.toISOString();
  if (iso.length !== 24) throw new RangeError(`time out of the supported range: ${iso}`);
  if (typeof value === 'number') {
    if (isoByMs.size >= MAX_MEMOISED_TIMES) isoByMs.clear();
    isoByMs.set(value, iso);
  }
  return iso;
}

/** Most epoch-ms times {@link toIsoTime} remembers (then it starts again). */
const MAX_MEMOISED_TIMES = 4096;
const isoByMs = new Map<number, string>();
