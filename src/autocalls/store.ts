/**
 * The notification-call store: campaigns, jobs and attempts (tables of migration 0005), on SQLite
 * or PostgreSQL, with leased claims of due jobs. {@link AutocallStore} is what the service and the
 * scheduler use; this module holds the jobs themselves (created, read, listed, canceled) and
 * runs the rest in its modules:
 *
 * - store-rows.ts: the rows, their mapping to the API views, the transaction context;
 * - store-campaigns.ts: campaigns (created, read with counts, paused, resumed, canceled);
 * - store-claims.ts: leased claims of due jobs within a campaign's limits and pacing, leases;
 * - store-transitions.ts: attempts recorded, jobs retried, finished or canceled, and their events.
 *
 * Claims are leased (store-claims.ts): PostgreSQL row locks keep two engines on one database
 * from claiming the same job or exceeding a campaign's limits together. The owner renews the
 * leases of its attempts; a lease that expires (the engine was killed) is reclaimed by
 * {@link AutocallStore.reclaimExpired}: the attempt is recorded as `lost` and the job retried or
 * finished like any other attempt.
 *
 * Every change that produces `autocall.*` events appends them to the outbox in the same
 * transaction; the methods return them so the caller hands them to the webhook dispatcher after
 * the commit. Times in are epoch milliseconds, stored ISO 8601 UTC.
 */
import { checkLimit, decodeCursor, encodeCursor } from '../store/cursor.ts';
import { toIsoTime } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import type { DialJob } from './dialer.ts';
import type { AttemptOutcome, AutocallStatus } from './model.ts';
import {
  activeCampaigns,
  cancelCampaignIn,
  createCampaign,
  getCampaign,
  setCampaignState,
  type ActiveCampaign,
} from './store-campaigns.ts';
import {
  adoptAttempt,
  claimDueIn,
  jobsToStop,
  renewLeases,
  type ClaimedJob,
  type ClaimOptions,
  type ClaimResult,
} from './store-claims.ts';
import { newJobRow, num, toAttemptView, toJobView, type AutocallTx } from './store-rows.ts';
import {
  cancelJobsWhere,
  finishAttemptIn,
  reclaimExpiredIn,
  type AutocallChanges,
} from './store-transitions.ts';
import type { AutocallJobView, CampaignView, NewAutocallJob, NewCampaign } from './types.ts';

export type { ActiveCampaign } from './store-campaigns.ts';
export type { ClaimedJob, ClaimOptions, ClaimResult } from './store-claims.ts';
export { autocallEventKey, type AutocallChanges } from './store-transitions.ts';

/** Largest page of {@link AutocallStore.listJobs}. */
export const MAX_JOBS_PAGE = 1000;

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
    const rows = jobs.map((job) => newJobRow(job, at));
    return this.tx(async ({ trx }) => {
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
    return { ...toJobView(row), attempts: attempts.map(toAttemptView) };
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
    return createCampaign(this.store.db, campaign, now);
  }

  /** A campaign, with its job counts per status when `withCounts`; undefined when unknown. */
  async getCampaign(id: number, withCounts = false): Promise<CampaignView | undefined> {
    return getCampaign(this.store.db, id, withCounts);
  }

  /** Campaigns in state `active`, for the scheduler. */
  async activeCampaigns(): Promise<ActiveCampaign[]> {
    return activeCampaigns(this.store.db);
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
    return setCampaignState(this.store.db, id, state, now);
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
    return this.tx((tx) => cancelCampaignIn(tx, id, now));
  }

  /**
   * Cancel one job: queued → `canceled` at once; in progress → ends `canceled` unless delivered.
   * Undefined when unknown; a job already final is left as it is.
   */
  async cancelJob(
    id: number,
    now: number,
  ): Promise<{ job: AutocallJobView; changes: AutocallChanges } | undefined> {
    const result = await this.tx(async (tx) => {
      const exists = await tx.trx
        .selectFrom('autocall_jobs')
        .select('id')
        .where('id', '=', id)
        .executeTakeFirst();
      if (!exists) return undefined;
      return cancelJobsWhere(tx, now, 'id', id);
    });
    if (!result) return undefined;
    return { job: (await this.getJob(id))!, changes: result };
  }

  /**
   * Ids among `ids` whose job must stop: a cancel arrived, or the job is no longer in progress
   * under `owner` (its lease was taken over).
   */
  async jobsToStop(owner: string, ids: readonly number[]): Promise<number[]> {
    return jobsToStop(this.store.db, owner, ids);
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
    if (options.limit <= 0) return { claimed: [] };
    return this.tx((tx) => claimDueIn(tx, options));
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
    return adoptAttempt(this.store.db, jobId, attemptNo, owner, until);
  }

  /** Extend the leases `owner` holds on `ids` to `until` (epoch ms); returns how many it holds. */
  async renewLeases(owner: string, ids: readonly number[], until: number): Promise<number> {
    return renewLeases(this.store.db, owner, ids, until);
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
    return this.tx((tx) => finishAttemptIn(tx, owner, id, attemptNo, outcome, now));
  }

  /**
   * Reclaim jobs whose lease expired before `now` (the engine holding them stopped): the attempt
   * is recorded as `lost` (dial status `UNKNOWN`) and the job retried after its period, or
   * finished when it has no try left. At most `limit` per call.
   */
  async reclaimExpired(now: number, limit = 100): Promise<AutocallChanges> {
    return this.tx((tx) => reclaimExpiredIn(tx, now, limit));
  }

  /**
   * Run `fn` in one transaction, with the outbox repository bound to it (events commit with the
   * change that caused them). On SQLite transactions are serialised by the store's one connection.
   */
  private tx<T>(fn: (tx: AutocallTx) => Promise<T>): Promise<T> {
    return this.store.transaction((repos, trx) =>
      fn({
        trx,
        repos,
        postgres: this.postgres,
        skipDelivery: this.options.skipDelivery ?? false,
      }),
    );
  }
}
