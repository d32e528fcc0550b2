/**
 * The notification-call scheduler: claims due jobs from the store (leased, src/autocalls/store.ts)
 * and hands each attempt to the {@link NotificationDialer}, within
 * - its own cap on notification calls in progress on this engine (AUTOCALL_MAX_LIVE_CALLS);
 * - each campaign's `maxConcurrent` (counted in the store, across engines) and `callsPerSecond`
 *   (slots spaced evenly, kept in the campaign's row);
 * - each campaign's calling window (local time of its time zone, days of the week): outside it
 *   no new attempt starts, attempts in progress finish;
 * - pause (no new attempt), resume, cancel (queued jobs end `canceled`, attempts in progress are
 *   aborted through their `AbortSignal`).
 * It renews the leases of its attempts, reclaims expired ones (an engine killed mid-attempt) and
 * records each outcome, which moves the job on (retry or final status).
 *
 * It runs a pass at once after {@link AutocallScheduler.wake} (new jobs, a resumed campaign, an
 * attempt ended: a concurrency slot freed), and otherwise sleeps until the next moment a claim
 * can succeed, as the store tells it with each claim (a campaign's next pacing slot, the due time
 * of the next queued job: {@link ClaimResult.nextAt}), but never longer than `pollMs` (the
 * safety net: calling windows opening, other engines' changes, expired leases). Clock and timers
 * are injectable for tests.
 */
import type { Logger } from '../logging/logger.ts';
import type { DialJob, NotificationDialer } from './dialer.ts';
import { ATTEMPT_RESULTS, DIAL_STATUSES, windowOpen, type AttemptOutcome } from './model.ts';
import type { AutocallNotifier } from './notifier.ts';
import type { ActiveCampaign, AutocallStore, ClaimedJob, ClaimResult } from './store.ts';

/** Default lease of an attempt, ms (renewed every third of it while the attempt runs). */
export const DEFAULT_AUTOCALL_LEASE_MS = 60_000;

/** Default time between passes, ms. */
export const DEFAULT_AUTOCALL_POLL_MS = 250;

/** Options of {@link AutocallScheduler}. */
export interface AutocallSchedulerOptions {
  store: AutocallStore;
  dialer: NotificationDialer;
  notifier: AutocallNotifier;
  logger: Logger;
  /** This engine's name as a lease owner (unique per running engine). */
  owner: string;
  /** Notification calls in progress on this engine, at most (AUTOCALL_MAX_LIVE_CALLS). */
  maxLiveCalls: number;
  /** Lease of an attempt, ms. Default {@link DEFAULT_AUTOCALL_LEASE_MS}. */
  leaseMs?: number;
  /** Time between passes, ms. Default {@link DEFAULT_AUTOCALL_POLL_MS}. */
  pollMs?: number;
  /**
   * Whether new attempts may start (e.g. ARI connected and the store writing); while false,
   * nothing is claimed (leases are still renewed and reclaimed). Default: always.
   */
  ready?: () => boolean;
  /** Clock, epoch ms. */
  now?: () => number;
}

interface Running {
  controller: AbortController;
  done: Promise<void>;
}

/** Claims due jobs and dials them; see the module comment. */
export class AutocallScheduler {
  private readonly running = new Map<number, Running>();
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopped = false;
  private lastRenewal = 0;
  private rotation = 0;
  private idleWaiters: Array<() => void> = [];
  /** The earliest {@link ClaimResult.nextAt} of the last pass, epoch ms. */
  private nextWakeAt: number | undefined;
  /** The next loop pass is a full one (see {@link runPass}). */
  private fullPassDue = true;
  private lastFullPass = -Infinity;
  private campaigns: ActiveCampaign[] = [];

  constructor(private readonly options: AutocallSchedulerOptions) {
    this.leaseMs = options.leaseMs ?? DEFAULT_AUTOCALL_LEASE_MS;
    this.pollMs = options.pollMs ?? DEFAULT_AUTOCALL_POLL_MS;
    this.now = options.now ?? Date.now;
  }

  /** Notification calls this engine has in progress. */
  liveCalls(): number {
    return this.running.size;
  }

  /** Start the passes (the first at once). Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.wake();
  }

  /**
   * Run a pass soon: new jobs, a resumed campaign, a canceled job (a full pass); with `full`
   * false, one of this engine's attempts ended (a concurrency slot freed: claims only).
   */
  wake(full = true): void {
    if (full) this.fullPassDue = true;
    if (!this.started || this.stopped) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.loop(), 0);
  }

  private loop(): void {
    this.timer = undefined;
    const full = this.fullPassDue || this.now() - this.lastFullPass >= this.pollMs;
    this.fullPassDue = false;
    this.pass = this.runPass(full)
      .catch((err: unknown) => {
        this.options.logger.error('autocall scheduler pass failed', { err });
      })
      .finally(() => {
        this.pass = undefined;
        if (this.stopped) return;
        const delay = this.again ? 0 : this.delayToNextPass();
        this.again = false;
        this.timer = setTimeout(() => this.loop(), delay);
      });
  }

  /**
   * Time until the next pass, ms: until the earliest moment the last pass's claims said more can
   * be claimed, at most `pollMs`.
   */
  private delayToNextPass(): number {
    const at = this.nextWakeAt;
    if (at === undefined) return this.pollMs;
    return Math.min(this.pollMs, Math.max(0, Math.ceil(at - this.now())));
  }

  /** Claim for one campaign (or jobs of no campaign) and note when to come back. */
  private async claim(
    campaignId: number | null,
    limit: number,
    now: number,
  ): Promise<ClaimedJob[]> {
    const { store, owner } = this.options;
    const result: ClaimResult = await store.claimDue({
      owner,
      now,
      leaseMs: this.leaseMs,
      limit,
      campaignId,
    });
    if (result.nextAt !== undefined)
      this.nextWakeAt = Math.min(this.nextWakeAt ?? Infinity, result.nextAt);
    return result.claimed;
  }

  /**
   * One pass: reclaim expired leases, renew this engine's, stop attempts whose job was canceled,
   * then claim and start due jobs (campaigns first, in turn, then jobs of no campaign) up to the
   * live-call cap. Tests call it directly with an injected clock.
   */
  runOnce(): Promise<void> {
    return this.runPass(true);
  }

  /**
   * A pass. A full one ({@link runOnce}) runs at least every `pollMs` and after an outside
   * {@link wake}; the passes in between (a pacing slot, a due time, an attempt that ended) only
   * claim, for the campaigns the last full pass found active (each claim checks its campaign's
   * state again), which keeps the store's work per pass small at high call rates.
   */
  private async runPass(full: boolean): Promise<void> {
    const now = this.now();
    this.nextWakeAt = undefined;
    if (full) await this.housekeeping(now);
    if (this.stopped || !(this.options.ready?.() ?? true)) return;
    if (full) {
      this.campaigns = await this.options.store.activeCampaigns();
      this.lastFullPass = now;
    }
    const campaigns = this.campaigns;
    const start = campaigns.length === 0 ? 0 : this.rotation++ % campaigns.length;
    const ordered = [...campaigns.slice(start), ...campaigns.slice(0, start)];
    for (const campaign of ordered) {
      const free = this.options.maxLiveCalls - this.running.size;
      if (free <= 0 || this.stopped) return;
      if (!windowOpen(campaign.window, now)) continue;
      this.launch(await this.claim(campaign.id, Math.min(free, campaign.maxConcurrent), now));
    }
    const free = this.options.maxLiveCalls - this.running.size;
    if (free <= 0 || this.stopped) return;
    this.launch(await this.claim(null, free, now));
  }

  /**
   * Renew this engine's leases, reclaim expired ones, stop attempts whose job was canceled (or
   * was reclaimed by another engine). Renewal comes first: a pass that comes late (a busy
   * engine, longer than the lease since the last renewal) must not take this engine's own calls
   * in progress for those of a dead one, record them `lost` and hang them up.
   */
  private async housekeeping(now: number): Promise<void> {
    const { store, notifier, owner } = this.options;
    const ids = [...this.running.keys()];
    if (ids.length > 0 && now - this.lastRenewal >= this.leaseMs / 3) {
      await store.renewLeases(owner, ids, now + this.leaseMs);
      this.lastRenewal = now;
    }
    const reclaimed = await store.reclaimExpired(now);
    if (reclaimed.events.length > 0) {
      this.options.logger.warn('reclaimed notification calls whose engine stopped mid-attempt', {
        jobs: reclaimed.attempts.length,
      });
      notifier.publish(reclaimed);
    }
    for (const id of await store.jobsToStop(owner, ids)) this.running.get(id)?.controller.abort();
  }

  /**
   * Engine restart, before ARI connects: take over the attempts whose calls the engine adopted
   * (`calls`: the call's id, its job and attempt number, from the call's variables), so that
   * their leases are renewed here (not reclaimed as `lost`) and their outcomes recorded as for
   * any attempt; the dialer's `resumeAttempt` goes on with each call. Returns the call ids taken over;
   * the others (job no longer in progress at that attempt, or no `resumeAttempt`) are not.
   */
  async adoptAttempts(
    calls: ReadonlyArray<{ callId: string; jobId: number; attemptNo: number }>,
  ): Promise<string[]> {
    const { dialer, store, owner, logger } = this.options;
    const resume = dialer.resumeAttempt?.bind(dialer);
    if (!resume) return [];
    const taken: string[] = [];
    for (const { callId, jobId, attemptNo } of calls) {
      if (this.running.has(jobId)) continue;
      const job = await store.adoptAttempt(jobId, attemptNo, owner, this.now() + this.leaseMs);
      if (!job) continue;
      logger.info('taking over a notification call in progress from an earlier run', {
        jobId,
        attempt: attemptNo,
        callId,
      });
      this.track(job, attemptNo, (signal) => resume(callId, job, attemptNo, signal));
      taken.push(callId);
    }
    return taken;
  }

  private launch(claimed: readonly ClaimedJob[]): void {
    for (const { job, attemptNo } of claimed)
      this.track(job, attemptNo, (signal) => this.options.dialer.dial(job, attemptNo, signal));
  }

  /** Run one attempt (placed, or taken over), recording its outcome; see {@link attempt}. */
  private track(
    job: DialJob,
    attemptNo: number,
    run: (signal: AbortSignal) => Promise<AttemptOutcome>,
  ): void {
    const controller = new AbortController();
    const entry: Running = { controller, done: Promise.resolve() };
    this.running.set(job.id, entry);
    entry.done = this.attempt(job, attemptNo, controller.signal, run).finally(() => {
      this.running.delete(job.id);
      if (this.running.size === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
      this.wake(false);
    });
  }

  private async attempt(
    job: DialJob,
    attemptNo: number,
    signal: AbortSignal,
    run: (signal: AbortSignal) => Promise<AttemptOutcome>,
  ): Promise<void> {
    const { store, notifier, owner, logger } = this.options;
    let outcome: AttemptOutcome;
    try {
      outcome = checkOutcome(await run(signal));
    } catch (err) {
      logger.error('notification call attempt failed in the dialer', {
        jobId: job.id,
        attempt: attemptNo,
        err,
      });
      outcome = {
        dialStatus: 'FAILED',
        causeText: err instanceof Error ? err.message : String(err),
        digits: '',
        playedSec: 0,
        outcome: 'failed',
      };
    }
    try {
      notifier.publish(await store.finishAttempt(owner, job.id, attemptNo, outcome, this.now()));
    } catch (err) {
      // The lease expires and the job is reclaimed (recorded `lost`, retried).
      logger.error('could not record a notification call attempt', {
        jobId: job.id,
        attempt: attemptNo,
        err,
      });
    }
  }

  /** Resolves once no attempt is in progress (tests, shutdown). */
  whenIdle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stop: no new attempt starts; attempts in progress go on and are recorded for up to
   * `timeoutMs` (their calls stay up in Asterisk either way); those still running then are left
   * to their leases (reclaimed as `lost` by the next engine). Idempotent.
   */
  async stop(timeoutMs = 0): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.pass;
    if (this.running.size === 0 || timeoutMs <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.whenIdle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}

/**
 * A dialer's answer as the store can keep it.
 *
 * @throws TypeError when it is not an {@link AttemptOutcome}
 */
function checkOutcome(outcome: AttemptOutcome): AttemptOutcome {
  if (
    !outcome ||
    !DIAL_STATUSES.includes(outcome.dialStatus) ||
    !ATTEMPT_RESULTS.includes(outcome.outcome) ||
    outcome.outcome === 'lost' ||
    typeof outcome.digits !== 'string' ||
    !Number.isFinite(outcome.playedSec)
  )
    throw new TypeError(`the dialer answered an invalid outcome: ${JSON.stringify(outcome)}`);
  return outcome;
}
