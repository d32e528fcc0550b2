/**
 * A campaign across a crash, end to end: a real engine process places a campaign's notification
 * calls on the simulator (which runs in the test process, so its calls outlive the engine); the
 * process is killed (SIGKILL) mid-campaign; a new engine on the same DATA_DIR adopts the calls
 * left in Asterisk and takes their attempts over (their scripts run again from the start on the
 * same calls), reclaims the expired leases of attempts that had no call yet (`AUTOCALL_LEASE_MS`,
 * short here) and finishes the campaign. Every job reaches exactly one final status, and no job is ever dialled
 * twice at the same time (the simulator's live channels are sampled throughout, and each job's
 * attempts are checked not to overlap).
 */
import { expect } from 'chai';
import type { AutocallJobView, CampaignView } from '../../src/autocalls/index.ts';
import { apiRequest } from '../support/api.ts';
import { CrashBed } from '../support/crash-bed.ts';
import { pressOnPlayback } from '../support/phone.ts';
import { until } from '../support/until.ts';

const FINAL = ['delivered', 'busy', 'no_answer', 'failed', 'canceled', 'machine'];

describe('campaign across a kill -9 of the engine (e2e, real process)', function () {
  // A loaded machine takes tens of seconds to start an engine process (tsx compiles it).
  this.timeout(180_000);
  let bed: CrashBed | undefined;
  let sampler: NodeJS.Timeout | undefined;

  afterEach(async () => {
    clearInterval(sampler);
    await bed?.close();
    bed = undefined;
  });

  it('every job reaches exactly one final status and none is dialled twice at once', async () => {
    bed = await CrashBed.start({ timeScale: 0.05 }, { AUTOCALL_LEASE_MS: '2000' });
    const { sim } = bed;
    // Every customer answers and presses 1 when the confirm prompt plays (not at a fixed time
    // after the answer, which a loaded engine may not have started the prompt by); ten sounds
    // make a call of about 0.8 s real time.
    sim.customers.set('*', { mode: 'answer', answerAfterMs: 500 });
    pressOnPlayback(sim, ['1']);

    // The most answered notification channels of one job at once, from the Stasis app arguments
    // (`crm-app,notify,<job>,<call>`), over both engines' lifetimes.
    let maxPerJob = 0;
    sampler = setInterval(() => {
      const live = new Map<string, number>();
      for (const ch of sim.channels()) {
        const job = /^crm-app,notify,(\d+),/.exec(ch.dialplan.app_data ?? '')?.[1];
        if (job === undefined) continue;
        const n = (live.get(job) ?? 0) + 1;
        live.set(job, n);
        maxPerJob = Math.max(maxPerJob, n);
      }
    }, 5);

    const { engine: child, httpUrl: firstUrl } = await bed.startProcess();
    const created = await apiRequest<CampaignView>(firstUrl, '/v1/campaigns', {
      body: {
        name: 'crash',
        maxConcurrent: 5,
        callsPerSecond: 20,
        defaults: {
          files: Array<string>(10).fill('hello-world'),
          confirm: { digit: '1', prompt: ['hello-world'], timeoutSec: 2, repeats: 1 },
          tries: 2,
          triesPeriodSec: 1,
        },
      },
    });
    expect(created.status).to.equal(201);
    const id = created.body.id;
    const added = await apiRequest<{ ids: number[] }>(firstUrl, `/v1/campaigns/${id}/jobs`, {
      body: {
        jobs: Array.from({ length: 30 }, (_, i) => ({
          to: `+74957${String(i).padStart(6, '0')}`,
        })),
      },
    });
    expect(added.status).to.equal(202);
    const ids = added.body.ids;
    const counts = async (url: string): Promise<NonNullable<CampaignView['counts']>> =>
      (await apiRequest<CampaignView>(url, `/v1/campaigns/${id}`)).body.counts!;

    // Mid-campaign: some jobs delivered, calls in progress in Asterisk.
    await until(
      async () => {
        const c = await counts(firstUrl);
        return c.delivered >= 3 && c.in_progress >= 3;
      },
      'the campaign under way',
      60_000,
    );
    const killTime = new Date().toISOString();
    await child.kill();
    expect(sim.channels().length, 'calls left in Asterisk by the killed engine').to.be.above(0);

    const url = (await bed.restart()).httpUrl;
    await until(
      async () => {
        const c = await counts(url);
        return c.queued === 0 && c.in_progress === 0;
      },
      'every job final after the restart',
      60_000,
    );
    clearInterval(sampler);
    await until(async () => sim.channels().length === 0, 'every channel hung up');

    const jobs = await Promise.all(
      ids.map(async (job) => (await apiRequest<AutocallJobView>(url, `/v1/autocalls/${job}`)).body),
    );
    const lost: number[] = [];
    for (const job of jobs) {
      expect(FINAL, `job ${job.id}`).to.include(job.status);
      expect(job.finishedAt, `job ${job.id} finishedAt`).to.be.a('string');
      const attempts = job.attempts ?? [];
      expect(attempts.length, `job ${job.id} attempts`).to.be.within(1, 2);
      expect(job.attemptsMade).to.equal(attempts.length);
      if (attempts.some((a) => a.outcome === 'lost')) lost.push(job.id);
      // Attempts of one job never overlap in time.
      const spans = attempts
        .map((a) => [Date.parse(a.startedAt), Date.parse(a.endedAt ?? a.startedAt)] as const)
        .sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++)
        expect(spans[i]![0], `job ${job.id} attempts overlap`).to.be.at.least(spans[i - 1]![1]);
    }
    // The calls the killed engine had in progress were taken over by the new one (their
    // attempts end with a real outcome); an attempt whose call was not yet in the store at the
    // kill is lost when its lease expires, and retried.
    const killedAt = Date.parse(killTime);
    const spanning = jobs.flatMap((j) =>
      (j.attempts ?? []).filter(
        (a) =>
          Date.parse(a.startedAt) < killedAt && Date.parse(a.endedAt ?? a.startedAt) > killedAt,
      ),
    );
    expect(spanning.length, 'attempts in progress across the restart').to.be.at.least(1);
    expect(
      spanning.filter((a) => a.outcome !== 'lost').length,
      'attempts taken over',
    ).to.be.at.least(1);
    for (const job of jobs.filter((j) => lost.includes(j.id)))
      expect(job.attempts!.at(-1)!.outcome, `job ${job.id}`).to.not.equal('lost');
    expect(maxPerJob, 'a job dialled twice at once').to.equal(1);
  });

  it('a notification call in progress when the engine is killed is taken over: its message plays to the end, one attempt, delivered', async function () {
    bed = await CrashBed.start({ timeScale: 1 }, { AUTOCALL_LEASE_MS: '60000' });
    const { sim } = bed;
    sim.customers.set('*', { mode: 'answer', answerAfterMs: 300 });
    const { engine: child, httpUrl: firstUrl } = await bed.startProcess();
    // Four sounds of 1.4 s: the engine is killed while the first plays.
    const created = await apiRequest<{ id: number }>(firstUrl, '/v1/autocalls', {
      body: { to: '+74957000001', files: Array<string>(4).fill('hello-world'), tries: 3 },
    });
    expect(created.status).to.equal(202);
    const id = created.body.id;
    await until(
      () => sim.channels().some((ch) => ch.state === 'Up'),
      'the customer answered',
      30_000,
    );
    await child.waitForLine((l) => l.message === 'notification call answered; running the script');
    await child.kill();
    const channelsAtKill = sim.channels().map((ch) => ch.id);
    expect(channelsAtKill.length, 'the call stays up in Asterisk').to.equal(1);

    const restarted = await bed.restart();
    let job: AutocallJobView | undefined;
    await until(
      async () => {
        job = (await apiRequest<AutocallJobView>(restarted.httpUrl, `/v1/autocalls/${id}`)).body;
        return job.status !== 'queued' && job.status !== 'in_progress';
      },
      'the job final after the restart',
      30_000,
    );
    expect(job!.status).to.equal('delivered');
    expect(job!.attempts!.map((a) => [a.attempt, a.dialStatus, a.outcome])).to.deep.equal([
      [1, 'ANSWER', 'delivered'],
    ]);
    // The message played again from its start on the same call: four sounds after the restart.
    expect(job!.attempts![0]!.playedSec).to.be.within(5, 7);
    expect(job!.attempts![0]!.callId).to.be.a('string');
    // Never dialled again: the one customer channel of the first engine, hung up by the new one.
    await until(() => sim.channels().length === 0, 'the call hung up');
    const originates = sim.requests.filter((r) => r.method === 'POST' && r.path === '/channels');
    expect(originates.length, 'originates').to.equal(1);
  });
});
