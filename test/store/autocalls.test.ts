import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { sql } from 'kysely';
import { AutocallStore } from '../../src/autocalls/store.ts';
import type { AttemptOutcome } from '../../src/autocalls/model.ts';
import type { NewAutocallJob } from '../../src/autocalls/types.ts';
import { createStore, type Store } from '../../src/store/index.ts';
import { forEachDialect, logger, PG_URL } from './helpers.ts';

const NOW = Date.UTC(2025, 0, 31, 9, 0, 0);
const LEASE = 60_000;

const job = (to: string, extra: Partial<NewAutocallJob> = {}): NewAutocallJob => ({
  to,
  endpoint: `PJSIP/${to.slice(1)}@trunk`,
  script: { files: ['sound:hello-world'] },
  tries: 3,
  triesPeriodSec: 60,
  ...extra,
});

const busy: AttemptOutcome = {
  dialStatus: 'BUSY',
  cause: 17,
  causeText: 'User busy',
  digits: '',
  playedSec: 0,
  outcome: 'busy',
};
const delivered: AttemptOutcome = {
  dialStatus: 'ANSWER',
  answeredAt: NOW + 3000,
  digits: '1',
  playedSec: 12,
  outcome: 'delivered',
  callId: 'call-1',
};

forEachDialect('store: notification calls', ({ store }) => {
  const ac = (): AutocallStore => new AutocallStore(store());

  it('creates jobs with ids from 1 in order, queued and due now', async () => {
    const jobs = await ac().createJobs([job('+74950000001'), job('+74950000002')], NOW);
    expect(jobs.map((j) => j.status)).to.deep.equal(['queued', 'queued']);
    expect(jobs[1]!.id).to.equal(jobs[0]!.id + 1);
    expect(jobs[0]!.id).to.be.within(1, 2 ** 32 - 1);
    const stored = await ac().getJob(jobs[0]!.id);
    expect(stored).to.deep.include({
      to: '+74950000001',
      status: 'queued',
      tries: 3,
      triesPeriodSec: 60,
      attemptsMade: 0,
      nextAttemptAt: new Date(NOW).toISOString(),
      attempts: [],
    });
    expect(stored!.script).to.deep.equal({ files: ['sound:hello-world'] });
  });

  it('claims a due job once, records attempts, retries busy after the period, ends busy after every try', async () => {
    const [j] = await ac().createJobs([job('+74950000001', { tries: 2, triesPeriodSec: 30 })], NOW);
    const first = await ac().claim({
      owner: 'a',
      now: NOW,
      leaseMs: LEASE,
      limit: 10,
      campaignId: null,
    });
    expect(first.map((c) => [c.job.id, c.attemptNo])).to.deep.equal([[j!.id, 1]]);
    expect(first[0]!.job.endpoint).to.equal('PJSIP/74950000001@trunk');
    // Claimed: nobody else gets it.
    expect(
      await ac().claim({ owner: 'b', now: NOW, leaseMs: LEASE, limit: 10, campaignId: null }),
    ).to.deep.equal([]);
    const changes = await ac().finishAttempt('a', j!.id, 1, busy, NOW + 5000);
    expect(changes.finished).to.deep.equal([]);
    expect(changes.events.map((e) => e.type)).to.deep.equal(['autocall.attempt']);
    expect(changes.events[0]!.data).to.deep.include({
      attempt: 1,
      dialStatus: 'BUSY',
      cause: 17,
      outcome: 'busy',
      nextAttemptAt: new Date(NOW + 35_000).toISOString(),
    });
    // Not due before the period.
    expect(
      await ac().claim({
        owner: 'a',
        now: NOW + 34_999,
        leaseMs: LEASE,
        limit: 10,
        campaignId: null,
      }),
    ).to.have.length(0);
    const second = await ac().claim({
      owner: 'a',
      now: NOW + 35_000,
      leaseMs: LEASE,
      limit: 10,
      campaignId: null,
    });
    expect(second.map((c) => c.attemptNo)).to.deep.equal([2]);
    const end = await ac().finishAttempt('a', j!.id, 2, busy, NOW + 40_000);
    expect(end.finished).to.deep.equal([{ id: j!.id, status: 'busy' }]);
    expect(end.events.map((e) => [e.type, e.sequence])).to.deep.equal([
      ['autocall.attempt', 2],
      ['autocall.finished', 3],
    ]);
    const stored = await ac().getJob(j!.id);
    expect(stored).to.deep.include({ status: 'busy', attemptsMade: 2 });
    expect(stored!.attempts!.map((a) => [a.attempt, a.dialStatus, a.outcome])).to.deep.equal([
      [1, 'BUSY', 'busy'],
      [2, 'BUSY', 'busy'],
    ]);
    // The events are in the outbox with the change.
    expect(await store().events.pending()).to.equal(3);
  });

  it('keeps the digits, answer time and seconds played of a delivered attempt', async () => {
    const [j] = await ac().createJobs([job('+74950000001')], NOW);
    await ac().claim({ owner: 'a', now: NOW, leaseMs: LEASE, limit: 1, campaignId: null });
    const changes = await ac().finishAttempt('a', j!.id, 1, delivered, NOW + 20_000);
    expect(changes.finished).to.deep.equal([{ id: j!.id, status: 'delivered' }]);
    const stored = await ac().getJob(j!.id);
    expect(stored).to.deep.include({
      status: 'delivered',
      finishedAt: new Date(NOW + 20_000).toISOString(),
    });
    expect(stored!.attempts![0]).to.deep.equal({
      attempt: 1,
      startedAt: new Date(NOW).toISOString(),
      endedAt: new Date(NOW + 20_000).toISOString(),
      dialStatus: 'ANSWER',
      answeredAt: new Date(NOW + 3000).toISOString(),
      digits: '1',
      playedSec: 12,
      outcome: 'delivered',
      callId: 'call-1',
    });
  });

  it('reclaims an expired lease (engine killed): the attempt is lost and the job retried, never claimed twice at once', async () => {
    const [j] = await ac().createJobs([job('+74950000001', { tries: 2, triesPeriodSec: 10 })], NOW);
    await ac().claim({ owner: 'dead', now: NOW, leaseMs: LEASE, limit: 1, campaignId: null });
    // Lease still valid: nothing to reclaim, nothing to claim.
    expect((await ac().reclaimExpired(NOW + LEASE - 1)).events).to.have.length(0);
    const reclaimed = await ac().reclaimExpired(NOW + LEASE + 1);
    expect(reclaimed.attempts).to.deep.equal(['lost']);
    const stored = await ac().getJob(j!.id);
    expect(stored).to.deep.include({ status: 'queued', attemptsMade: 1 });
    expect(stored!.attempts![0]).to.deep.include({ dialStatus: 'UNKNOWN', outcome: 'lost' });
    const again = await ac().claim({
      owner: 'alive',
      now: NOW + LEASE + 10_001,
      leaseMs: LEASE,
      limit: 1,
      campaignId: null,
    });
    expect(again.map((c) => c.attemptNo)).to.deep.equal([2]);
    // The second (last) try lost as well: the job ends failed, exactly once.
    const last = await ac().reclaimExpired(NOW + 3 * LEASE);
    expect(last.finished).to.deep.equal([{ id: j!.id, status: 'failed' }]);
    expect((await ac().reclaimExpired(NOW + 4 * LEASE)).events).to.have.length(0);
  });

  it('a renewed lease is not reclaimed', async () => {
    const [j] = await ac().createJobs([job('+74950000001')], NOW);
    await ac().claim({ owner: 'a', now: NOW, leaseMs: LEASE, limit: 1, campaignId: null });
    expect(await ac().renewLeases('a', [j!.id], NOW + 2 * LEASE)).to.equal(1);
    expect(await ac().renewLeases('b', [j!.id], NOW + 2 * LEASE)).to.equal(0);
    expect((await ac().reclaimExpired(NOW + LEASE + 1)).events).to.have.length(0);
  });

  it('respects a campaign’s maxConcurrent and pacing, and claims nothing of a paused campaign', async () => {
    const c = await ac().createCampaign({ name: 'x', maxConcurrent: 2, callsPerSecond: 1 }, NOW);
    await ac().createJobs(
      ['1', '2', '3', '4'].map((d) => job(`+7495000000${d}`, { campaignId: c.id })),
      NOW,
    );
    // One call per second: a single slot now.
    const a = await ac().claim({
      owner: 'a',
      now: NOW,
      leaseMs: LEASE,
      limit: 10,
      campaignId: c.id,
    });
    expect(a).to.have.length(1);
    expect(
      await ac().claim({ owner: 'a', now: NOW + 999, leaseMs: LEASE, limit: 10, campaignId: c.id }),
    ).to.have.length(0);
    const b = await ac().claim({
      owner: 'a',
      now: NOW + 1000,
      leaseMs: LEASE,
      limit: 10,
      campaignId: c.id,
    });
    expect(b).to.have.length(1);
    // Two in progress: maxConcurrent reached.
    expect(
      await ac().claim({
        owner: 'a',
        now: NOW + 5000,
        leaseMs: LEASE,
        limit: 10,
        campaignId: c.id,
      }),
    ).to.have.length(0);
    await ac().finishAttempt('a', a[0]!.job.id, 1, delivered, NOW + 5000);
    await ac().setCampaignState(c.id, 'paused', NOW + 5000);
    expect(
      await ac().claim({
        owner: 'a',
        now: NOW + 6000,
        leaseMs: LEASE,
        limit: 10,
        campaignId: c.id,
      }),
    ).to.have.length(0);
    expect(await ac().activeCampaigns()).to.deep.equal([]);
    await ac().setCampaignState(c.id, 'active', NOW + 6000);
    expect(
      await ac().claim({
        owner: 'a',
        now: NOW + 6000,
        leaseMs: LEASE,
        limit: 10,
        campaignId: c.id,
      }),
    ).to.have.length(1);
    const view = await ac().getCampaign(c.id, true);
    expect(view!.counts).to.deep.include({ queued: 1, in_progress: 2, delivered: 1, busy: 0 });
  });

  it('cancels a campaign: queued jobs end canceled with their event, a job in progress ends canceled unless delivered', async () => {
    const c = await ac().createCampaign({ name: 'x', maxConcurrent: 5, callsPerSecond: 100 }, NOW);
    const jobs = await ac().createJobs(
      ['1', '2', '3'].map((d) => job(`+7495000000${d}`, { campaignId: c.id })),
      NOW,
    );
    const claimed = await ac().claim({
      owner: 'a',
      now: NOW,
      leaseMs: LEASE,
      limit: 1,
      campaignId: c.id,
    });
    expect(claimed).to.have.length(1);
    const result = await ac().cancelCampaign(c.id, NOW + 100);
    expect(result!.campaign.state).to.equal('canceled');
    expect(result!.changes.finished.map((f) => f.status)).to.deep.equal(['canceled', 'canceled']);
    expect(result!.changes.events.map((e) => e.type)).to.deep.equal([
      'autocall.finished',
      'autocall.finished',
    ]);
    expect(await ac().jobsToStop('a', [claimed[0]!.job.id])).to.deep.equal([claimed[0]!.job.id]);
    const end = await ac().finishAttempt('a', claimed[0]!.job.id, 1, busy, NOW + 200);
    expect(end.finished).to.deep.equal([{ id: claimed[0]!.job.id, status: 'canceled' }]);
    // A canceled campaign cannot be resumed.
    expect((await ac().setCampaignState(c.id, 'active', NOW + 300))!.state).to.equal('canceled');
    expect((await ac().getCampaign(c.id, true))!.counts).to.deep.include({
      canceled: 3,
      queued: 0,
    });
    expect(jobs).to.have.length(3);
  });

  it('lists a campaign’s jobs by status in cursor pages', async () => {
    const c = await ac().createCampaign({ name: 'x', maxConcurrent: 5, callsPerSecond: 100 }, NOW);
    const jobs = await ac().createJobs(
      Array.from({ length: 5 }, (_, i) => job(`+7495000001${i}`, { campaignId: c.id })),
      NOW,
    );
    const p1 = await ac().listJobs({ campaignId: c.id, limit: 2 });
    expect(p1.items.map((j) => j.id)).to.deep.equal([jobs[0]!.id, jobs[1]!.id]);
    const p2 = await ac().listJobs({ campaignId: c.id, limit: 2, cursor: p1.nextCursor });
    const p3 = await ac().listJobs({ campaignId: c.id, limit: 2, cursor: p2.nextCursor });
    expect(p3.items.map((j) => j.id)).to.deep.equal([jobs[4]!.id]);
    expect(p3.nextCursor).to.equal(undefined);
    expect(
      (await ac().listJobs({ campaignId: c.id, limit: 10, status: 'delivered' })).items,
    ).to.deep.equal([]);
  });

  it('creates 10,000 jobs in one transaction', async function () {
    this.timeout(60_000);
    const c = await ac().createCampaign(
      { name: 'big', maxConcurrent: 256, callsPerSecond: 20 },
      NOW,
    );
    const many = Array.from({ length: 10_000 }, (_, i) =>
      job(`+7495${String(i).padStart(7, '0')}`, { campaignId: c.id }),
    );
    const created = await ac().createJobs(many, NOW);
    expect(created).to.have.length(10_000);
    expect((await ac().getCampaign(c.id, true))!.counts!.queued).to.equal(10_000);
  });
});

if (PG_URL) {
  describe('store: notification calls on one PostgreSQL database shared by two engines', function () {
    this.timeout(60_000);
    const schema = `t_${process.pid}_${randomBytes(4).toString('hex')}`;
    let one: Store;
    let two: Store;
    before(async () => {
      one = createStore({ url: PG_URL!, logger, schema, poolSize: 8 });
      two = createStore({ url: PG_URL!, logger, schema, poolSize: 8 });
      await one.migrate();
    });
    after(async () => {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(one.db);
      await one.close();
      await two.close();
    });

    it('never claims the same job twice when both claim at once', async () => {
      const a = new AutocallStore(one);
      const b = new AutocallStore(two);
      const c = await a.createCampaign({ name: 'x', maxConcurrent: 40, callsPerSecond: 1000 }, NOW);
      await a.createJobs(
        Array.from({ length: 200 }, (_, i) => job(`+7495${String(i).padStart(7, '0')}`)),
        NOW,
      );
      await a.createJobs(
        Array.from({ length: 100 }, (_, i) =>
          job(`+7496${String(i).padStart(7, '0')}`, { campaignId: c.id }),
        ),
        NOW,
      );
      const claims = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? a : b).claim({
            owner: i % 2 ? 'a' : 'b',
            now: NOW,
            leaseMs: LEASE,
            limit: 15,
            campaignId: null,
          }),
        ),
      );
      const ids = claims.flat().map((x) => x.job.id);
      expect(ids).to.have.length(200);
      expect(new Set(ids).size).to.equal(200);
      // The campaign's maxConcurrent holds across both engines.
      const campaignClaims = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? a : b).claim({
            owner: i % 2 ? 'a' : 'b',
            now: NOW + 1000,
            leaseMs: LEASE,
            limit: 10,
            campaignId: c.id,
          }),
        ),
      );
      const campaignIds = campaignClaims.flat().map((x) => x.job.id);
      expect(campaignIds).to.have.length(40);
      expect(new Set(campaignIds).size).to.equal(40);
    });
  });
}
