import { expect } from 'chai';
import { Registry } from 'prom-client';
import { AutocallNotifier } from '../../src/autocalls/notifier.ts';
import { AutocallScheduler } from '../../src/autocalls/scheduler.ts';
import { AutocallStore } from '../../src/autocalls/store.ts';
import type { NewAutocallJob } from '../../src/autocalls/types.ts';
import type { LifecycleEvent } from '../../src/events/types.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { createStore, type Store } from '../../src/store/index.ts';
import { OUTCOMES, ScriptedDialer, type ScriptedAttempt } from './scripted-dialer.ts';
import type { DialJob } from '../../src/autocalls/dialer.ts';
import type { AttemptOutcome } from '../../src/autocalls/model.ts';
import { until } from '../support/until.ts';

const logger = createSilentLogger();
const T0 = Date.UTC(2025, 0, 31, 9, 0, 0); // Friday 09:00 UTC

const job = (to: string, extra: Partial<NewAutocallJob> = {}): NewAutocallJob => ({
  to,
  endpoint: `PJSIP/${to.slice(1)}@trunk`,
  script: { files: ['sound:hello-world'] },
  tries: 2,
  triesPeriodSec: 30,
  ...extra,
});

describe('autocalls: scheduler (scripted dialer, manual clock)', () => {
  let store: Store;
  let ac: AutocallStore;
  let now: number;
  let events: LifecycleEvent[];
  let registry: Registry;
  const schedulers: AutocallScheduler[] = [];

  beforeEach(async () => {
    store = createStore({ url: 'sqlite::memory:', logger });
    await store.migrate();
    ac = new AutocallStore(store);
    now = T0;
    events = [];
    registry = new Registry();
  });
  afterEach(async () => {
    for (const s of schedulers.splice(0)) await s.stop();
    await store.close();
  });

  function scheduler(
    script: (job: DialJob, attemptNo: number) => ScriptedAttempt,
    options: { maxLiveCalls?: number; owner?: string; leaseMs?: number } = {},
  ): { s: AutocallScheduler; dialer: ScriptedDialer } {
    const dialer = new ScriptedDialer(script, () => now);
    const s = new AutocallScheduler({
      store: ac,
      dialer,
      notifier: new AutocallNotifier(registry, logger, (e) => events.push(e)),
      logger,
      owner: options.owner ?? 'engine-a',
      maxLiveCalls: options.maxLiveCalls ?? 100,
      ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
      now: () => now,
    });
    schedulers.push(s);
    return { s, dialer };
  }

  async function pass(s: AutocallScheduler): Promise<void> {
    await s.runOnce();
    await s.whenIdle();
  }

  it('dials due jobs, retries busy after triesPeriodSec, and ends every job with one final status and its webhooks', async () => {
    const [ok, line] = await ac.createJobs([job('+74950000001'), job('+74950000002')], now);
    const { s, dialer } = scheduler((j) =>
      j.to === '+74950000001' ? OUTCOMES.delivered : OUTCOMES.busy,
    );
    await pass(s);
    expect(dialer.dials.map((d) => [d.jobId, d.attemptNo])).to.deep.equal([
      [ok!.id, 1],
      [line!.id, 1],
    ]);
    expect((await ac.getJob(ok!.id))!.status).to.equal('delivered');
    expect((await ac.getJob(line!.id))!.status).to.equal('queued');
    now += 29_999;
    await pass(s);
    expect(dialer.dials).to.have.length(2);
    now += 1;
    await pass(s);
    expect(dialer.dials.map((d) => [d.jobId, d.attemptNo])[2]).to.deep.equal([line!.id, 2]);
    const busyJob = await ac.getJob(line!.id);
    expect(busyJob).to.deep.include({ status: 'busy', attemptsMade: 2 });
    expect(busyJob!.attempts!.map((a) => a.startedAt)).to.deep.equal([
      new Date(T0).toISOString(),
      new Date(T0 + 30_000).toISOString(),
    ]);
    expect(events.map((e) => [e.callId, e.type])).to.deep.equal([
      [`autocall-${ok!.id}`, 'autocall.attempt'],
      [`autocall-${ok!.id}`, 'autocall.finished'],
      [`autocall-${line!.id}`, 'autocall.attempt'],
      [`autocall-${line!.id}`, 'autocall.attempt'],
      [`autocall-${line!.id}`, 'autocall.finished'],
    ]);
    const metrics = await registry.getSingleMetricAsString('aricrm_autocall_jobs_finished_total');
    expect(metrics).to.include('aricrm_autocall_jobs_finished_total{status="delivered"} 1');
    expect(metrics).to.include('aricrm_autocall_jobs_finished_total{status="busy"} 1');
  });

  it('never has more calls in progress than its own live-call cap', async () => {
    await ac.createJobs(
      Array.from({ length: 5 }, (_, i) => job(`+7495000001${i}`)),
      now,
    );
    const { s, dialer } = scheduler(() => 'hold', { maxLiveCalls: 2 });
    await s.runOnce();
    await s.runOnce();
    expect(dialer.holding()).to.equal(2);
    expect(s.liveCalls()).to.equal(2);
    dialer.release(OUTCOMES.delivered);
    await s.whenIdle();
    await s.runOnce();
    expect(dialer.holding()).to.equal(2);
    expect(dialer.maxConcurrent).to.equal(2);
  });

  it('keeps a campaign within maxConcurrent and callsPerSecond', async () => {
    const c = await ac.createCampaign({ name: 'c', maxConcurrent: 3, callsPerSecond: 100 }, now);
    await ac.createJobs(
      Array.from({ length: 10 }, (_, i) => job(`+7495000002${i}`, { campaignId: c.id })),
      now,
    );
    const { s, dialer } = scheduler(() => 'hold');
    await s.runOnce();
    now += 1000;
    await s.runOnce();
    expect(dialer.holding()).to.equal(3);
    dialer.release(OUTCOMES.delivered);
    await s.whenIdle();

    const paced = await ac.createCampaign(
      { name: 'p', maxConcurrent: 256, callsPerSecond: 2 },
      now,
    );
    await ac.createJobs(
      Array.from({ length: 20 }, (_, i) => job(`+7495000003${i}`, { campaignId: paced.id })),
      now,
    );
    const { s: s2, dialer: d2 } = scheduler(() => OUTCOMES.delivered, { owner: 'engine-b' });
    const start = now;
    // Passes every 100 ms for 5 s: 2 calls per second, at most 2 at the start (one second's burst).
    for (let ms = 0; ms < 5000; ms += 100) {
      now = start + ms;
      await pass(s2);
    }
    const times = d2.dials.filter((d) => d.to.startsWith('+7495000003')).map((d) => d.at - start);
    expect(times.length).to.be.within(10, 11);
    for (let i = 2; i < times.length; i++) expect(times[i]! - times[i - 2]!).to.be.at.least(1000);
  });

  it('places no new call outside the campaign window; calls in progress finish', async () => {
    const c = await ac.createCampaign(
      {
        name: 'w',
        maxConcurrent: 10,
        callsPerSecond: 100,
        window: { from: '09:00', to: '10:00', timezone: 'UTC', days: ['fri'] },
      },
      now,
    );
    now = T0 - 60_000; // 08:59
    await ac.createJobs([job('+74950000041', { campaignId: c.id })], now);
    const { s, dialer } = scheduler(() => 'hold');
    await s.runOnce();
    expect(dialer.dials).to.have.length(0);
    now = T0 + 59 * 60_000; // 09:59
    await s.runOnce();
    expect(dialer.holding()).to.equal(1);
    await ac.createJobs([job('+74950000042', { campaignId: c.id })], now);
    now = T0 + 60 * 60_000; // 10:00: closed
    await s.runOnce();
    expect(dialer.dials).to.have.length(1);
    expect(dialer.holding()).to.equal(1); // the call in progress goes on
    dialer.release(OUTCOMES.delivered);
    await s.whenIdle();
    now = T0 + 7 * 24 * 3600_000; // next Friday 09:00
    await s.runOnce();
    expect(dialer.dials.map((d) => d.to)).to.deep.equal(['+74950000041', '+74950000042']);
    dialer.release(OUTCOMES.delivered);
    await s.whenIdle();
  });

  it('pauses, resumes and cancels a campaign; cancel stops the calls in progress', async () => {
    const c = await ac.createCampaign({ name: 'x', maxConcurrent: 1, callsPerSecond: 100 }, now);
    const jobs = await ac.createJobs(
      [job('+74950000051', { campaignId: c.id }), job('+74950000052', { campaignId: c.id })],
      now,
    );
    const { s, dialer } = scheduler(() => 'hold');
    await ac.setCampaignState(c.id, 'paused', now);
    await s.runOnce();
    expect(dialer.dials).to.have.length(0);
    await ac.setCampaignState(c.id, 'active', now);
    await s.runOnce();
    expect(dialer.holding()).to.equal(1);
    await ac.cancelCampaign(c.id, now);
    await s.runOnce(); // sees the cancel: aborts the call
    await s.whenIdle();
    expect(dialer.holding()).to.equal(0);
    expect((await ac.getJob(jobs[0]!.id))!.status).to.equal('canceled');
    expect((await ac.getJob(jobs[1]!.id))!.status).to.equal('canceled');
    expect(dialer.dials).to.have.length(1);
    // One autocall.finished per job in the outbox: the queued one by the cancel, the other when
    // its call stopped.
    const feed = await store.events.feed({ limit: 100 });
    expect(
      feed.items.filter((i) => i.event.type === 'autocall.finished').map((i) => i.event.callId),
    ).to.have.members([`autocall-${jobs[0]!.id}`, `autocall-${jobs[1]!.id}`]);
  });

  it('records a dialer that throws as a failed attempt', async () => {
    const [j] = await ac.createJobs([job('+74950000061')], now);
    const { s } = scheduler(() => {
      throw new Error('no trunk');
    });
    await pass(s);
    const stored = await ac.getJob(j!.id);
    expect(stored!.status).to.equal('failed');
    expect(stored!.attempts![0]).to.deep.include({ dialStatus: 'FAILED', causeText: 'no trunk' });
  });

  it('another engine takes over the jobs of one killed mid-call once their leases expire', async () => {
    const [j] = await ac.createJobs([job('+74950000071', { tries: 3 })], now);
    const { s: a, dialer: da } = scheduler(() => 'hold', { owner: 'a', leaseMs: 10_000 });
    await a.runOnce();
    expect(da.holding()).to.equal(1);
    // A is killed: it stops renewing and never records the attempt.
    await a.stop();
    const { s: b, dialer: db } = scheduler(() => OUTCOMES.delivered, {
      owner: 'b',
      leaseMs: 10_000,
    });
    now += 9_000;
    await pass(b);
    expect(db.dials).to.have.length(0); // the lease still holds
    now += 2_000;
    await pass(b); // reclaimed: lost, retried after the period
    now += 30_000;
    await pass(b);
    expect(db.dials.map((d) => [d.jobId, d.attemptNo])).to.deep.equal([[j!.id, 2]]);
    const stored = await ac.getJob(j!.id);
    expect(stored!.status).to.equal('delivered');
    expect(stored!.attempts!.map((x) => x.outcome)).to.deep.equal(['lost', 'delivered']);
  });

  it('renews the leases of its calls in progress so no other engine takes them', async () => {
    await ac.createJobs([job('+74950000081')], now);
    const { s: a, dialer: da } = scheduler(() => 'hold', { owner: 'a', leaseMs: 9_000 });
    const { s: b, dialer: db } = scheduler(() => OUTCOMES.delivered, {
      owner: 'b',
      leaseMs: 9_000,
    });
    await a.runOnce();
    for (let i = 0; i < 10; i++) {
      now += 3_000;
      await a.runOnce();
      await b.runOnce();
    }
    expect(db.dials).to.have.length(0);
    expect(da.holding()).to.equal(1);
    da.release(OUTCOMES.delivered);
    await a.whenIdle();
  });

  it('a pass that comes after its own leases expired (a busy engine) renews them before reclaiming: its calls in progress go on', async () => {
    const [j] = await ac.createJobs([job('+74950000091')], now);
    const { s: a, dialer: da } = scheduler(() => 'hold', { owner: 'a', leaseMs: 9_000 });
    await a.runOnce();
    expect(da.holding()).to.equal(1);
    now += 9_001; // no pass for longer than the lease
    await a.runOnce();
    expect(da.holding(), 'the call is not stopped').to.equal(1);
    expect((await ac.getJob(j!.id))!.status).to.equal('in_progress');
    da.release(OUTCOMES.delivered);
    await a.whenIdle();
    const stored = await ac.getJob(j!.id);
    expect(stored!.status).to.equal('delivered');
    expect(stored!.attempts!.map((x) => x.outcome)).to.deep.equal(['delivered']);
  });
});

describe('autocalls: scheduler wake-ups (real clock, the poll an hour away)', function () {
  this.timeout(30_000);
  let store: Store;
  let ac: AutocallStore;
  let scheduler: AutocallScheduler | undefined;
  const held: Array<() => void> = [];

  beforeEach(async () => {
    store = createStore({ url: 'sqlite::memory:', logger });
    await store.migrate();
    ac = new AutocallStore(store);
  });
  afterEach(async () => {
    for (const release of held.splice(0)) release();
    await scheduler?.whenIdle();
    await scheduler?.stop();
    scheduler = undefined;
    await store.close();
  });

  /**
   * A scheduler whose poll never comes during the test: every pass after the first is one it
   * woke up for. Its dialer notes each dial's time; attempts answer `outcome`, or are held (calls
   * in progress, so that no attempt end wakes the scheduler) until the test ends.
   */
  function start(outcome: AttemptOutcome | 'hold'): Array<{ id: number; at: number }> {
    const dials: Array<{ id: number; at: number }> = [];
    scheduler = new AutocallScheduler({
      store: ac,
      dialer: {
        dial: (dialJob) => {
          dials.push({ id: dialJob.id, at: Date.now() });
          if (outcome !== 'hold') return Promise.resolve(outcome);
          return new Promise((resolve) => held.push(() => resolve(OUTCOMES.delivered)));
        },
      },
      notifier: new AutocallNotifier(new Registry(), logger, () => undefined),
      logger,
      owner: 'engine-a',
      maxLiveCalls: 100,
      pollMs: 3_600_000,
    });
    scheduler.start();
    return dials;
  }

  it('wakes for each pacing slot of a campaign (calls in progress, none ending)', async () => {
    const c = await ac.createCampaign(
      { name: 'paced', maxConcurrent: 10, callsPerSecond: 4 },
      Date.now(),
    );
    await ac.createJobs(
      Array.from({ length: 4 }, (_, i) => job(`+7495000004${i}`, { campaignId: c.id })),
      Date.now(),
    );
    const dials = start('hold');
    await until(() => dials.length === 4, 'the four jobs dialled, one per pacing slot', 20_000);
    // Paced: 4 calls per second, one slot every 250 ms.
    for (let i = 1; i < dials.length; i++)
      expect(dials[i]!.at - dials[i - 1]!.at).to.be.at.least(200);
  });

  it('wakes when a retry becomes due (triesPeriodSec after the busy attempt)', async () => {
    const created = Date.now();
    await ac.createJobs([job('+74950000050', { tries: 2, triesPeriodSec: 1 })], created);
    const dials = start(OUTCOMES.busy);
    await until(() => dials.length === 2, 'the retry dialled', 20_000);
    expect(dials[1]!.at - dials[0]!.at).to.be.at.least(900);
    await until(
      async () => (await ac.getJob(dials[0]!.id))?.status === 'busy',
      'the job final (busy)',
    );
  });
});
