/**
 * Leased claims of due notification-call jobs, and their leases.
 *
 * A job is claimed by setting it `in_progress` with a lease (`lease_owner`, `lease_until`) in one
 * transaction. On PostgreSQL the due rows are selected `FOR UPDATE SKIP LOCKED` and the campaign
 * row `FOR UPDATE`, so two engines on one database never claim the same job and never exceed a
 * campaign's `maxConcurrent` or pacing together; on SQLite the one connection runs one
 * transaction at a time. The owner renews the leases of its attempts ({@link renewLeases}); a
 * lease that expires (the engine was killed) is reclaimed (store-transitions.ts).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { toIsoTime } from '../store/schema.ts';
import type { DialJob } from './dialer.ts';
import { takeSlots } from './model.ts';
import { num, toDialJob, type AutocallTx, type CampaignRow } from './store-rows.ts';

/** A job handed to the scheduler by a claim. */
export interface ClaimedJob {
  job: DialJob;
  /** 1-based number of the attempt to place. */
  attemptNo: number;
  /** When the claim started the attempt, epoch ms. */
  startedAt: number;
}

/** What {@link AutocallStore.claimDue} claimed, and when a claim may find more. */
export interface ClaimResult {
  claimed: ClaimedJob[];
  /**
   * When the next job of this campaign (or of no campaign) can be claimed, epoch ms: its next
   * pacing slot, or the due time of its next queued job, whichever is later; at most `now` when
   * more jobs are due and may be claimed at once. Undefined when nothing is waiting, or when the
   * campaign is at its `maxConcurrent` (an attempt ending frees a slot) or not active.
   */
  nextAt?: number;
}

/** Options of {@link AutocallStore.claim}. */
export interface ClaimOptions {
  /** The engine claiming (lease owner). */
  owner: string;
  now: number;
  /** Lease length, ms. */
  leaseMs: number;
  /** Most jobs to claim. */
  limit: number;
  /** The campaign whose jobs to claim (its limits apply); null: jobs of no campaign. */
  campaignId: number | null;
}

/** The transaction of {@link AutocallStore.claimDue} (`options.limit` is positive). */
export async function claimDueIn(tx: AutocallTx, options: ClaimOptions): Promise<ClaimResult> {
  const { owner, now, leaseMs, campaignId } = options;
  const { trx, postgres } = tx;
  let limit = options.limit;
  let campaign: CampaignRow | undefined;
  if (campaignId !== null) {
    let q = trx.selectFrom('autocall_campaigns').selectAll().where('id', '=', campaignId);
    if (postgres) q = q.forUpdate();
    campaign = await q.executeTakeFirst();
    if (!campaign || campaign.state !== 'active') return { claimed: [] };
    const busy = await trx
      .selectFrom('autocall_jobs')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('campaign_id', '=', campaignId)
      .where('status', '=', 'in_progress')
      .executeTakeFirstOrThrow();
    limit = Math.min(limit, campaign.max_concurrent - num(busy.n));
    if (limit <= 0) return { claimed: [] };
  }
  // Pacing first: no more rows are read than the campaign's free slots allow now.
  const slotAt0 = campaign ? Date.parse(campaign.next_slot_at) : now;
  const cps = campaign ? Number(campaign.calls_per_second) : 0;
  if (campaign) {
    const slots = takeSlots(slotAt0, cps, now, limit);
    // No slot free yet: come back at the next one.
    if (slots.allowed === 0) return { claimed: [], nextAt: slots.nextSlotAt };
    limit = slots.allowed;
  }
  const dueJobs = trx
    .selectFrom('autocall_jobs')
    .where('status', '=', 'queued')
    .where('next_attempt_at', '<=', toIsoTime(now))
    .where('campaign_id', campaignId === null ? 'is' : '=', campaignId);
  // SQLite: one more than this claim takes says whether more jobs are due. PostgreSQL: only
  // the rows taken are locked (SKIP LOCKED: another engine's claim skips a locked row, so
  // an extra locked one would be left to neither); more due is asked without locking.
  let due = dueJobs
    .selectAll()
    .orderBy('next_attempt_at')
    .orderBy('id')
    .limit(postgres ? limit : limit + 1);
  if (postgres) due = due.forUpdate().skipLocked();
  let rows = await due.execute();
  let moreDue = rows.length > limit;
  rows = rows.slice(0, limit);
  if (postgres && rows.length === limit) {
    const taken = rows.map((r) => num(r.id));
    const another = await dueJobs.select('id').where('id', 'not in', taken).limit(1).execute();
    moreDue = another.length > 0;
  }
  let slotAt = slotAt0;
  if (campaign && rows.length > 0) {
    const slots = takeSlots(slotAt0, cps, now, rows.length);
    slotAt = slots.nextSlotAt;
    await trx
      .updateTable('autocall_campaigns')
      .set({ next_slot_at: toIsoTime(Math.round(slots.nextSlotAt)) })
      .where('id', '=', campaign.id)
      .execute();
  }
  // When to come back: more due jobs wait for the next pacing slot (or a free concurrency
  // slot: the claim then finds none and an ending attempt wakes the scheduler); otherwise
  // the next queued job's due time, not before the pacing slot.
  let nextAt: number | undefined;
  if (moreDue) nextAt = Math.max(slotAt, now);
  else {
    const next = await trx
      .selectFrom('autocall_jobs')
      .select((eb) => eb.fn.min('next_attempt_at').as('at'))
      .where('status', '=', 'queued')
      .where('campaign_id', campaignId === null ? 'is' : '=', campaignId)
      .where('next_attempt_at', '>', toIsoTime(now))
      .executeTakeFirst();
    if (next?.at) nextAt = Math.max(Date.parse(String(next.at)), slotAt);
  }
  const hint = nextAt === undefined ? {} : { nextAt };
  if (rows.length === 0) return { claimed: [], ...hint };
  const at = toIsoTime(now);
  const claimed = await trx
    .updateTable('autocall_jobs')
    .set((eb) => ({
      status: 'in_progress',
      attempts_made: eb('attempts_made', '+', 1),
      attempt_started_at: at,
      lease_owner: owner,
      lease_until: toIsoTime(now + leaseMs),
      updated_at: at,
    }))
    .where(
      'id',
      'in',
      rows.map((r) => num(r.id)),
    )
    .where('status', '=', 'queued')
    .returningAll()
    .execute();
  claimed.sort((a, b) => num(a.id) - num(b.id));
  return {
    claimed: claimed.map((row) => ({
      job: toDialJob(row),
      attemptNo: row.attempts_made,
      startedAt: now,
    })),
    ...hint,
  };
}

/** {@link AutocallStore.adoptAttempt}: the job, undefined when it cannot be taken over. */
export async function adoptAttempt(
  db: Kysely<Database>,
  jobId: number,
  attemptNo: number,
  owner: string,
  until: number,
): Promise<DialJob | undefined> {
  const row = await db
    .updateTable('autocall_jobs')
    .set({ lease_owner: owner, lease_until: toIsoTime(until) })
    .where('id', '=', jobId)
    .where('status', '=', 'in_progress')
    .where('attempts_made', '=', attemptNo)
    .returningAll()
    .executeTakeFirst();
  return row ? toDialJob(row) : undefined;
}

/** Extend the leases `owner` holds on `ids` to `until` (epoch ms); returns how many it holds. */
export async function renewLeases(
  db: Kysely<Database>,
  owner: string,
  ids: readonly number[],
  until: number,
): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await db
    .updateTable('autocall_jobs')
    .set({ lease_until: toIsoTime(until) })
    .where('id', 'in', ids)
    .where('lease_owner', '=', owner)
    .where('status', '=', 'in_progress')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * {@link AutocallStore.jobsToStop}: ids among `ids` whose job must stop (a cancel arrived, or the
 * job is no longer in progress under `owner`).
 */
export async function jobsToStop(
  db: Kysely<Database>,
  owner: string,
  ids: readonly number[],
): Promise<number[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom('autocall_jobs')
    .select(['id', 'status', 'lease_owner', 'cancel_requested'])
    .where('id', 'in', ids)
    .execute();
  const stop = new Set(ids);
  for (const row of rows)
    if (row.status === 'in_progress' && row.lease_owner === owner && row.cancel_requested === 0)
      stop.delete(num(row.id));
  return [...stop];
}
