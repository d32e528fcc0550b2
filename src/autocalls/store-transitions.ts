/**
 * How notification-call jobs move on, inside a store transaction ({@link AutocallTx}): an attempt
 * recorded (by the engine that placed it, or as `lost` when its lease expired) and the job retried
 * or finished (see `nextStep` in ./model.ts), and jobs canceled. Each change builds its
 * `autocall.attempt` / `autocall.finished` events (sequence numbers per job, `event_seq`) and
 * appends them to the outbox in the same transaction; they are returned in
 * {@link AutocallChanges} for the caller to hand to the webhook dispatcher after the commit.
 */
import {
  createEventEnvelope,
  type AutocallAttemptData,
  type AutocallFinishedData,
  type LifecycleEvent,
} from '../events/types.ts';
import { toIsoTime } from '../store/schema.ts';
import {
  nextStep,
  type AmdStatus,
  type AttemptOutcome,
  type AttemptResult,
  type AutocallFinalStatus,
} from './model.ts';
import { num, optIso, type AutocallTx, type JobRow } from './store-rows.ts';

/** The outbox key (`callId` of the envelope) of a job's events. */
export const autocallEventKey = (jobId: number): string => `autocall-${jobId}`;

/** What a write produced: events to deliver after the commit, jobs that reached a final status. */
export interface AutocallChanges {
  events: LifecycleEvent[];
  finished: Array<{ id: number; status: AutocallFinalStatus }>;
  /** Attempts recorded, by result (metrics). */
  attempts: AttemptResult[];
}

/**
 * The transaction of {@link AutocallStore.finishAttempt}: the attempt is written; the job moves
 * on only when `owner` still holds it, or when it was taken back (recorded `lost`, queued again)
 * at this attempt.
 */
export async function finishAttemptIn(
  tx: AutocallTx,
  owner: string,
  id: number,
  attemptNo: number,
  outcome: AttemptOutcome,
  now: number,
): Promise<AutocallChanges> {
  let q = tx.trx.selectFrom('autocall_jobs').selectAll().where('id', '=', id);
  if (tx.postgres) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  const changes: AutocallChanges = { events: [], finished: [], attempts: [] };
  if (!row) return changes;
  const ours = row.status === 'in_progress' && row.lease_owner === owner;
  const takenBack = !ours && row.status === 'queued' && row.attempts_made === attemptNo;
  const startedAt = row.attempt_started_at ?? toIsoTime(now);
  await writeAttempt(tx, id, attemptNo, startedAt, outcome, now);
  if (!ours && !takenBack) return changes;
  return moveOn(tx, row, attemptNo, startedAt, outcome, now);
}

/** The transaction of {@link AutocallStore.reclaimExpired}. */
export async function reclaimExpiredIn(
  tx: AutocallTx,
  now: number,
  limit: number,
): Promise<AutocallChanges> {
  let q = tx.trx
    .selectFrom('autocall_jobs')
    .selectAll()
    .where('status', '=', 'in_progress')
    .where('lease_until', '<', toIsoTime(now))
    .orderBy('lease_until')
    .limit(limit);
  if (tx.postgres) q = q.forUpdate().skipLocked();
  const rows = await q.execute();
  const all: AutocallChanges = { events: [], finished: [], attempts: [] };
  for (const row of rows) {
    const outcome: AttemptOutcome = {
      dialStatus: 'UNKNOWN',
      causeText: 'the engine placing the attempt stopped (lease expired)',
      digits: '',
      playedSec: 0,
      outcome: 'lost',
    };
    const startedAt = row.attempt_started_at ?? toIsoTime(now);
    await writeAttempt(tx, num(row.id), row.attempts_made, startedAt, outcome, now);
    const changes = await moveOn(tx, row, row.attempts_made, startedAt, outcome, now);
    all.events.push(...changes.events);
    all.finished.push(...changes.finished);
    all.attempts.push(...changes.attempts);
  }
  return all;
}

/**
 * Cancel the jobs whose `column` is `value` (one job, or a campaign's): queued ones end
 * `canceled` at once (with `autocall.finished`), those in progress are marked to end `canceled`
 * unless delivered (`cancel_requested`: the scheduler stops their calls).
 */
export async function cancelJobsWhere(
  tx: AutocallTx,
  now: number,
  column: 'id' | 'campaign_id',
  value: number,
): Promise<AutocallChanges> {
  const at = toIsoTime(now);
  const changes: AutocallChanges = { events: [], finished: [], attempts: [] };
  const queued = await tx.trx
    .updateTable('autocall_jobs')
    .set((eb) => ({
      status: 'canceled',
      finished_at: at,
      updated_at: at,
      event_seq: eb('event_seq', '+', 1),
    }))
    .where(column, '=', value)
    .where('status', '=', 'queued')
    .returningAll()
    .execute();
  for (const row of queued) {
    changes.events.push(finishedEvent(row, 'canceled', row.event_seq, now));
    changes.finished.push({ id: num(row.id), status: 'canceled' });
  }
  await tx.trx
    .updateTable('autocall_jobs')
    .set({ cancel_requested: 1, updated_at: at })
    .where(column, '=', value)
    .where('status', '=', 'in_progress')
    .execute();
  await appendEvents(tx, changes.events, now);
  return changes;
}

/**
 * Write attempt `attemptNo` of job `jobId`. An attempt already recorded `lost` (its lease
 * expired) is replaced by the real outcome; any other record stays.
 */
async function writeAttempt(
  tx: AutocallTx,
  jobId: number,
  attemptNo: number,
  startedAt: string,
  outcome: AttemptOutcome,
  now: number,
): Promise<void> {
  const row = {
    job_id: jobId,
    attempt: attemptNo,
    started_at: startedAt,
    ended_at: toIsoTime(now),
    call_id: outcome.callId ?? null,
    dial_status: outcome.dialStatus,
    cause: outcome.cause ?? null,
    cause_text: outcome.causeText ?? null,
    answered_at: optIso(outcome.answeredAt),
    digits: outcome.digits,
    played_sec: Math.max(0, Math.round(outcome.playedSec)),
    outcome: outcome.outcome,
    amd_status: outcome.amdStatus ?? null,
    amd_cause: outcome.amdCause ?? null,
  };
  await tx.trx
    .insertInto('autocall_attempts')
    .values(row)
    .onConflict((oc) =>
      oc
        .columns(['job_id', 'attempt'])
        .doUpdateSet({
          ended_at: row.ended_at,
          call_id: row.call_id,
          dial_status: row.dial_status,
          cause: row.cause,
          cause_text: row.cause_text,
          answered_at: row.answered_at,
          digits: row.digits,
          played_sec: row.played_sec,
          outcome: row.outcome,
          amd_status: row.amd_status,
          amd_cause: row.amd_cause,
        })
        .where('autocall_attempts.outcome', '=', 'lost'),
    )
    .execute();
}

/**
 * After attempt `attemptNo` of `row`: the job's next step (final status, or queued for its next
 * try), its `autocall.attempt` event (and `autocall.finished` when final), appended to the outbox.
 */
async function moveOn(
  tx: AutocallTx,
  row: JobRow,
  attemptNo: number,
  startedAt: string,
  outcome: AttemptOutcome,
  now: number,
): Promise<AutocallChanges> {
  const at = toIsoTime(now);
  const step = nextStep(
    {
      tries: row.tries,
      attemptsMade: attemptNo,
      triesPeriodSec: row.tries_period_sec,
      cancelRequested: row.cancel_requested === 1,
    },
    outcome.outcome,
    now,
  );
  const changes: AutocallChanges = { events: [], finished: [], attempts: [outcome.outcome] };
  const attemptData: AutocallAttemptData = {
    jobId: num(row.id),
    ...(row.campaign_id === null ? {} : { campaignId: num(row.campaign_id) }),
    to: row.to_number,
    attempt: attemptNo,
    startedAt,
    endedAt: at,
    dialStatus: outcome.dialStatus,
    ...(outcome.cause === undefined ? {} : { cause: outcome.cause }),
    ...(outcome.causeText === undefined ? {} : { causeText: outcome.causeText }),
    ...(outcome.answeredAt === undefined ? {} : { answeredAt: toIsoTime(outcome.answeredAt) }),
    digits: outcome.digits,
    playedSec: Math.max(0, Math.round(outcome.playedSec)),
    outcome: outcome.outcome,
    ...(outcome.callId === undefined ? {} : { callId: outcome.callId }),
    ...amdFields(outcome),
    ...(step.kind === 'retry' ? { nextAttemptAt: toIsoTime(step.nextAttemptAt) } : {}),
  };
  let seq = row.event_seq;
  changes.events.push(
    createEventEnvelope('autocall.attempt', autocallEventKey(num(row.id)), ++seq, attemptData, now),
  );
  if (step.kind === 'final') {
    changes.events.push(
      finishedEvent(
        { ...row, attempts_made: attemptNo },
        step.status,
        ++seq,
        now,
        amdFields(outcome),
      ),
    );
    changes.finished.push({ id: num(row.id), status: step.status });
  }
  await tx.trx
    .updateTable('autocall_jobs')
    .set({
      status: step.kind === 'final' ? step.status : 'queued',
      next_attempt_at: step.kind === 'retry' ? toIsoTime(step.nextAttemptAt) : row.next_attempt_at,
      finished_at: step.kind === 'final' ? at : null,
      lease_owner: null,
      lease_until: null,
      attempt_started_at: null,
      event_seq: seq,
      updated_at: at,
    })
    .where('id', '=', row.id)
    .execute();
  await appendEvents(tx, changes.events, now);
  return changes;
}

/** The `autocall.finished` event of `row` ending `status`, at sequence number `sequence`. */
function finishedEvent(
  row: JobRow,
  status: AutocallFinalStatus,
  sequence: number,
  now: number,
  amd: { amdStatus?: AmdStatus; amdCause?: string } = {},
): LifecycleEvent {
  const data: AutocallFinishedData = {
    jobId: num(row.id),
    ...(row.campaign_id === null ? {} : { campaignId: num(row.campaign_id) }),
    to: row.to_number,
    status,
    attempts: row.attempts_made,
    finishedAt: toIsoTime(now),
    ...amd,
    ...(row.variables === null
      ? {}
      : { variables: JSON.parse(row.variables) as Record<string, string> }),
  };
  return createEventEnvelope(
    'autocall.finished',
    autocallEventKey(num(row.id)),
    sequence,
    data,
    now,
  );
}

/** Append `events` to the outbox of the transaction (in chunks of 500). */
async function appendEvents(
  tx: AutocallTx,
  events: readonly LifecycleEvent[],
  now: number,
): Promise<void> {
  for (let i = 0; i < events.length; i += 500)
    await tx.repos.events.appendEvents(events.slice(i, i + 500), now, {
      skipDelivery: tx.skipDelivery,
    });
}

/** The answering-machine detection verdict of an attempt, for its webhooks (absent: none). */
function amdFields(outcome: AttemptOutcome): { amdStatus?: AmdStatus; amdCause?: string } {
  return {
    ...(outcome.amdStatus === undefined ? {} : { amdStatus: outcome.amdStatus }),
    ...(outcome.amdCause === undefined ? {} : { amdCause: outcome.amdCause }),
  };
}
