/**
 * The notification-call store: campaigns, jobs and attempts (tables of migration 0005), on SQLite
 * or PostgreSQL, with leased claims of due jobs.
 *
 * Claims: a job is claimed by setting it `in_progress` with a lease (`lease_owner`,
 * `lease_until`) in one transaction. On PostgreSQL the due rows are selected `FOR UPDATE SKIP
 * LOCKED` and the campaign row `FOR UPDATE`, so two engines on one database never claim the same
 * job and never exceed a campaign's `maxConcurrent` or pacing together; on SQLite the one
 * connection runs one transaction at a time. The owner renews the leases of its attempts; a lease
 * that expires (the engine was killed) is reclaimed by {@link AutocallStore.reclaimExpired}: the
 * attempt is recorded as `lost` and the job retried or finished like any other attempt.
 *
 * Every change that produces `autocall.*` events appends them to the outbox in the same
 * transaction; the methods return them so the caller hands them to the webhook dispatcher after
 * the commit. Times in are epoch milliseconds, stored ISO 8601 UTC.
 */
import type { Kysely, Selectable } from 'kysely';
import {
  createEventEnvelope,
  type AutocallAttemptData,
  type AutocallFinishedData,
  type LifecycleEvent,
} from '../events/types.ts';
import { checkLimit, decodeCursor, encodeCursor } from '../store/cursor.ts';
import type { AutocallJobsTable, AutocallCampaignsTable, Database } from '../store/schema.ts';
import { toIsoTime } from '../store/schema.ts';
import type { EventRepository } from '../store/events.ts';
import type { Store } from '../store/store.ts';
import type { DialJob } from './dialer.ts';
import {
  AUTOCALL_STATUSES,
  nextStep,
  takeSlots,
  type AmdStatus,
  type AttemptOutcome,
  type AttemptResult,
  type AutocallDialStatus,
  type AutocallFinalStatus,
  type AutocallStatus,
  type CallingWindow,
} from './model.ts';
import type {
  AutocallAttemptView,
  AutocallJobView,
  AutocallScript,
  CampaignDefaults,
  CampaignState,
  CampaignView,
  NewAutocallJob,
  NewCampaign,
} from './types.ts';

/** Largest page of {@link AutocallStore.listJobs}. */
export const MAX_JOBS_PAGE = 1000;

/** The outbox key (`callId` of the envelope) of a job's events. */
export const autocallEventKey = (jobId: number): string => `autocall-${jobId}`;

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

/** What a write produced: events to deliver after the commit, jobs that reached a final status. */
export interface AutocallChanges {
  events: LifecycleEvent[];
  finished: Array<{ id: number; status: AutocallFinalStatus }>;
  /** Attempts recorded, by result (metrics). */
  attempts: AttemptResult[];
}

/** A campaign as the scheduler reads it. */
export interface ActiveCampaign {
  id: number;
  maxConcurrent: number;
  callsPerSecond: number;
  window?: CallingWindow;
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

type JobRow = Selectable<AutocallJobsTable>;
type CampaignRow = Selectable<AutocallCampaignsTable>;

const num = (v: number | string): number => Number(v);
const optIso = (v: number | undefined): string | null => (v === undefined ? null : toIsoTime(v));
const parseJson = <T>(text: string | null): T | undefined =>
  text === null ? undefined : (JSON.parse(text) as T);

function toJobView(row: JobRow): AutocallJobView {
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

function toDialJob(row: JobRow): DialJob {
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

function toCampaignView(row: CampaignRow): CampaignView {
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

/** Options of {@link AutocallStore}. */
export interface AutocallStoreOptions {
  /**
   * Store events `skipped` (no webhook URL configured: for the pull feed only), as the call
   * journal does. Default false.
   */
  skipDelivery?: boolean;
}

/** Campaigns, jobs and attempts over a {@link Store}. */
export class AutocallStore {
  private readonly postgres: boolean;

  constructor(
    private readonly store: Pick<Store, 'db' | 'dialect' | 'transaction'>,
    private readonly options: AutocallStoreOptions = {},
  ) {
    this.postgres = store.dialect === 'postgres';
  }

  /**
   * Create jobs in one transaction (all or none), queued and due at `now`, ids in the given
   * order.
   *
   * @throws RangeError when an id would pass 2^32-1 (the AutoCallID range)
   */
  async createJobs(jobs: readonly NewAutocallJob[], now: number): Promise<AutocallJobView[]> {
    if (jobs.length === 0) return [];
    const at = toIsoTime(now);
    const rows = jobs.map((job) => ({
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
    }));
    return this.tx(async (trx) => {
      const created: AutocallJobView[] = [];
      // Chunks keep each statement under the drivers' parameter limits (20 columns per row).
      {
        for (let i = 0; i < rows.length; i += 500) {
          const inserted = await trx
            .insertInto('autocall_jobs')
            .values(rows.slice(i, i + 500))
            .returningAll()
            .execute();
          inserted.sort((a, b) => num(a.id) - num(b.id));
          for (const row of inserted) {
            if (num(row.id) > 2 ** 32 - 1)
              throw new RangeError('notification call ids are exhausted (AutoCallID range)');
            created.push(toJobView(row));
          }
        }
      }
      return created;
    });
  }

  /** One job with its attempts, or undefined. */
  async getJob(id: number): Promise<AutocallJobView | undefined> {
    const row = await this.store.db
      .selectFrom('autocall_jobs')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    const attempts = await this.store.db
      .selectFrom('autocall_attempts')
      .selectAll()
      .where('job_id', '=', id)
      .orderBy('attempt')
      .execute();
    return {
      ...toJobView(row),
      attempts: attempts.map((a): AutocallAttemptView => ({
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
      })),
    };
  }

  /**
   * Jobs of a campaign by id (creation order), optionally of one status, keyset-paginated.
   *
   * @throws RangeError on a bad limit; InvalidCursorError on a cursor not issued here
   */
  async listJobs(filter: {
    campaignId: number;
    status?: AutocallStatus;
    limit: number;
    cursor?: string;
  }): Promise<{ items: AutocallJobView[]; nextCursor?: string }> {
    const limit = checkLimit(filter.limit, MAX_JOBS_PAGE);
    let query = this.store.db
      .selectFrom('autocall_jobs')
      .selectAll()
      .where('campaign_id', '=', filter.campaignId);
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.cursor) {
      const [after] = decodeCursor('autocall_jobs', filter.cursor, ['number']);
      query = query.where('id', '>', after);
    }
    const rows = await query
      .orderBy('id')
      .limit(limit + 1)
      .execute();
    const items = rows.slice(0, limit).map(toJobView);
    return rows.length > limit
      ? { items, nextCursor: encodeCursor('autocall_jobs', [items[items.length - 1]!.id]) }
      : { items };
  }

  /** Create a campaign, active. */
  async createCampaign(campaign: NewCampaign, now: number): Promise<CampaignView> {
    const at = toIsoTime(now);
    const row = await this.store.db
      .insertInto('autocall_campaigns')
      .values({
        name: campaign.name,
        max_concurrent: campaign.maxConcurrent,
        calls_per_second: campaign.callsPerSecond,
        window: campaign.window ? JSON.stringify(campaign.window) : null,
        defaults: campaign.defaults ? JSON.stringify(campaign.defaults) : null,
        state: 'active',
        next_slot_at: at,
        requested_by: campaign.requestedBy ?? null,
        created_at: at,
        updated_at: at,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toCampaignView(row);
  }

  /** A campaign, with its job counts per status when `withCounts`; undefined when unknown. */
  async getCampaign(id: number, withCounts = false): Promise<CampaignView | undefined> {
    const row = await this.store.db
      .selectFrom('autocall_campaigns')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    const view = toCampaignView(row);
    if (!withCounts) return view;
    const counts = Object.fromEntries(AUTOCALL_STATUSES.map((s) => [s, 0])) as Record<
      AutocallStatus,
      number
    >;
    const rows = await this.store.db
      .selectFrom('autocall_jobs')
      .select(['status', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('campaign_id', '=', id)
      .groupBy('status')
      .execute();
    for (const r of rows) counts[r.status as AutocallStatus] = num(r.n);
    return { ...view, counts };
  }

  /** Campaigns in state `active`, for the scheduler. */
  async activeCampaigns(): Promise<ActiveCampaign[]> {
    const rows = await this.store.db
      .selectFrom('autocall_campaigns')
      .selectAll()
      .where('state', '=', 'active')
      .orderBy('id')
      .execute();
    return rows.map((row) => {
      const view = toCampaignView(row);
      return {
        id: view.id,
        maxConcurrent: view.maxConcurrent,
        callsPerSecond: view.callsPerSecond,
        ...(view.window ? { window: view.window } : {}),
      };
    });
  }

  /**
   * Pause (`paused`) or resume (`active`) a campaign. A canceled campaign stays canceled.
   *
   * @returns the campaign, undefined when unknown
   */
  async setCampaignState(
    id: number,
    state: 'active' | 'paused',
    now: number,
  ): Promise<CampaignView | undefined> {
    await this.store.db
      .updateTable('autocall_campaigns')
      .set({ state, updated_at: toIsoTime(now) })
      .where('id', '=', id)
      .where('state', '<>', 'canceled')
      .execute();
    return this.getCampaign(id);
  }

  /**
   * Cancel a campaign: its queued jobs end `canceled` at once (with `autocall.finished`), its
   * jobs in progress are marked to end `canceled` unless delivered (the scheduler stops their
   * calls). Undefined when the campaign is unknown.
   */
  async cancelCampaign(
    id: number,
    now: number,
  ): Promise<{ campaign: CampaignView; changes: AutocallChanges } | undefined> {
    return this.tx(async (trx, repos) => {
      const at = toIsoTime(now);
      const updated = await trx
        .updateTable('autocall_campaigns')
        .set({ state: 'canceled', updated_at: at })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      if (!updated) return undefined;
      const changes = await this.cancelJobsWhere(trx, repos, now, 'campaign_id', id);
      return { campaign: toCampaignView(updated), changes };
    });
  }

  /**
   * Cancel one job: queued → `canceled` at once; in progress → ends `canceled` unless delivered.
   * Undefined when unknown; a job already final is left as it is.
   */
  async cancelJob(
    id: number,
    now: number,
  ): Promise<{ job: AutocallJobView; changes: AutocallChanges } | undefined> {
    const result = await this.tx(async (trx, repos) => {
      const exists = await trx
        .selectFrom('autocall_jobs')
        .select('id')
        .where('id', '=', id)
        .executeTakeFirst();
      if (!exists) return undefined;
      return this.cancelJobsWhere(trx, repos, now, 'id', id);
    });
    if (!result) return undefined;
    return { job: (await this.getJob(id))!, changes: result };
  }

  private async cancelJobsWhere(
    trx: Kysely<Database>,
    repos: { events: EventRepository },
    now: number,
    column: 'id' | 'campaign_id',
    value: number,
  ): Promise<AutocallChanges> {
    const at = toIsoTime(now);
    const changes: AutocallChanges = { events: [], finished: [], attempts: [] };
    const queued = await trx
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
      changes.events.push(this.finishedEvent(row, 'canceled', row.event_seq, now));
      changes.finished.push({ id: num(row.id), status: 'canceled' });
    }
    await trx
      .updateTable('autocall_jobs')
      .set({ cancel_requested: 1, updated_at: at })
      .where(column, '=', value)
      .where('status', '=', 'in_progress')
      .execute();
    await this.appendEvents(repos, changes.events, now);
    return changes;
  }

  /**
   * Ids among `ids` whose job must stop: a cancel arrived, or the job is no longer in progress
   * under `owner` (its lease was taken over).
   */
  async jobsToStop(owner: string, ids: readonly number[]): Promise<number[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
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

  /**
   * Claim due jobs: queued and `next_attempt_at <= now`, oldest first, of the campaign (within
   * its `maxConcurrent` counting every engine's attempts in progress, and its pacing; nothing
   * when it is not active) or of no campaign. Each becomes `in_progress` with a lease until
   * `now + leaseMs` and its attempt count raised by one.
   */
  async claim(options: ClaimOptions): Promise<ClaimedJob[]> {
    return (await this.claimDue(options)).claimed;
  }

  /**
   * {@link claim}, also telling when the next claim of the same campaign (or of jobs of no
   * campaign) can succeed ({@link ClaimResult.nextAt}), so that the scheduler sleeps until then.
   */
  async claimDue(options: ClaimOptions): Promise<ClaimResult> {
    const { owner, now, leaseMs, campaignId } = options;
    if (options.limit <= 0) return { claimed: [] };
    return this.tx(async (trx) => {
      let limit = options.limit;
      let campaign: CampaignRow | undefined;
      if (campaignId !== null) {
        let q = trx.selectFrom('autocall_campaigns').selectAll().where('id', '=', campaignId);
        if (this.postgres) q = q.forUpdate();
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
        .limit(this.postgres ? limit : limit + 1);
      if (this.postgres) due = due.forUpdate().skipLocked();
      let rows = await due.execute();
      let moreDue = rows.length > limit;
      rows = rows.slice(0, limit);
      if (this.postgres && rows.length === limit) {
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
    });
  }

  /**
   * Engine restart: take over attempt `attemptNo` of job `jobId` whose call this engine adopted
   * (the lease moves to `owner` until `until`, epoch ms), provided the job is still in progress
   * at that attempt (not reclaimed as `lost`, not canceled).
   *
   * @returns the job to finish the attempt of, undefined when it cannot be taken over
   */
  async adoptAttempt(
    jobId: number,
    attemptNo: number,
    owner: string,
    until: number,
  ): Promise<DialJob | undefined> {
    const row = await this.store.db
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
  async renewLeases(owner: string, ids: readonly number[], until: number): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.store.db
      .updateTable('autocall_jobs')
      .set({ lease_until: toIsoTime(until) })
      .where('id', 'in', ids)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'in_progress')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /**
   * Record how attempt `attemptNo` of job `id`, claimed by `owner`, went, and move the job on
   * (final status, or queued for the next try; see `nextStep` in ./model.ts). When the lease was
   * lost meanwhile (another engine recorded the attempt as `lost`), the real outcome replaces
   * that record, and moves the job on only if no later attempt started.
   */
  async finishAttempt(
    owner: string,
    id: number,
    attemptNo: number,
    outcome: AttemptOutcome,
    now: number,
  ): Promise<AutocallChanges> {
    return this.tx(async (trx, repos) => {
      let q = trx.selectFrom('autocall_jobs').selectAll().where('id', '=', id);
      if (this.postgres) q = q.forUpdate();
      const row = await q.executeTakeFirst();
      const changes: AutocallChanges = { events: [], finished: [], attempts: [] };
      if (!row) return changes;
      const ours = row.status === 'in_progress' && row.lease_owner === owner;
      const takenBack = !ours && row.status === 'queued' && row.attempts_made === attemptNo;
      const startedAt = row.attempt_started_at ?? toIsoTime(now);
      await this.writeAttempt(trx, id, attemptNo, startedAt, outcome, now);
      if (!ours && !takenBack) return changes;
      return this.moveOn(trx, repos, row, attemptNo, startedAt, outcome, now);
    });
  }

  /**
   * Reclaim jobs whose lease expired before `now` (the engine holding them stopped): the attempt
   * is recorded as `lost` (dial status `UNKNOWN`) and the job retried after its period, or
   * finished when it has no try left. At most `limit` per call.
   */
  async reclaimExpired(now: number, limit = 100): Promise<AutocallChanges> {
    return this.tx(async (trx, repos) => {
      let q = trx
        .selectFrom('autocall_jobs')
        .selectAll()
        .where('status', '=', 'in_progress')
        .where('lease_until', '<', toIsoTime(now))
        .orderBy('lease_until')
        .limit(limit);
      if (this.postgres) q = q.forUpdate().skipLocked();
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
        await this.writeAttempt(trx, num(row.id), row.attempts_made, startedAt, outcome, now);
        const changes = await this.moveOn(
          trx,
          repos,
          row,
          row.attempts_made,
          startedAt,
          outcome,
          now,
        );
        all.events.push(...changes.events);
        all.finished.push(...changes.finished);
        all.attempts.push(...changes.attempts);
      }
      return all;
    });
  }

  private async writeAttempt(
    trx: Kysely<Database>,
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
    await trx
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

  private async moveOn(
    trx: Kysely<Database>,
    repos: { events: EventRepository },
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
      createEventEnvelope(
        'autocall.attempt',
        autocallEventKey(num(row.id)),
        ++seq,
        attemptData,
        now,
      ),
    );
    if (step.kind === 'final') {
      changes.events.push(
        this.finishedEvent(
          { ...row, attempts_made: attemptNo },
          step.status,
          ++seq,
          now,
          amdFields(outcome),
        ),
      );
      changes.finished.push({ id: num(row.id), status: step.status });
    }
    await trx
      .updateTable('autocall_jobs')
      .set({
        status: step.kind === 'final' ? step.status : 'queued',
        next_attempt_at:
          step.kind === 'retry' ? toIsoTime(step.nextAttemptAt) : row.next_attempt_at,
        finished_at: step.kind === 'final' ? at : null,
        lease_owner: null,
        lease_until: null,
        attempt_started_at: null,
        event_seq: seq,
        updated_at: at,
      })
      .where('id', '=', row.id)
      .execute();
    await this.appendEvents(repos, changes.events, now);
    return changes;
  }

  private finishedEvent(
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

  private async appendEvents(
    repos: { events: EventRepository },
    events: readonly LifecycleEvent[],
    now: number,
  ): Promise<void> {
    for (let i = 0; i < events.length; i += 500)
      await repos.events.appendEvents(events.slice(i, i + 500), now, {
        skipDelivery: this.options.skipDelivery ?? false,
      });
  }

  /**
   * Run `fn` in one transaction, with the outbox repository bound to it (events commit with the
   * change that caused them). On SQLite transactions are serialised by the store's one connection.
   */
  private tx<T>(
    fn: (trx: Kysely<Database>, repos: { events: EventRepository }) => Promise<T>,
  ): Promise<T> {
    return this.store.transaction((repos, trx) => fn(trx, repos));
  }
}

/** The answering-machine detection verdict of an attempt, for its webhooks (absent: none). */
function amdFields(outcome: AttemptOutcome): { amdStatus?: AmdStatus; amdCause?: string } {
  return {
    ...(outcome.amdStatus === undefined ? {} : { amdStatus: outcome.amdStatus }),
    ...(outcome.amdCause === undefined ? {} : { amdCause: outcome.amdCause }),
  };
}
