/**
 * A campaign across a crash, end to end: a real engine process places a campaign's notification
 * calls on the simulator (which runs in the test process, so its calls outlive the engine); the
 * process is killed (SIGKILL) mid-campaign; a new engine on the same DATA_DIR adopts and hangs up
 * the calls left in Asterisk, reclaims the expired leases (`AUTOCALL_LEASE_MS`, short here) and
 * finishes the campaign. Every job reaches exactly one final status, and no job is ever dialled
 * twice at the same time (the simulator's live channels are sampled throughout, and each job's
 * attempts are checked not to overlap).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { AutocallJobView, CampaignView } from '../../src/autocalls/index.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { apiRequest } from '../support/api.ts';
import { EngineProcess, MAIN, TSX_LOADER } from '../support/engine-process.ts';
import { TEST_API_KEY } from '../support/engine.ts';
import { FakeCrm } from '../support/fake-crm.ts';
import { until } from '../support/until.ts';

const FINAL = ['delivered', 'busy', 'no_answer', 'failed', 'canceled', 'machine'];

describe('campaign across a kill -9 of the engine (e2e, real process)', function () {
  this.timeout(90_000);
  let sim: PbxSimulator | undefined;
  let crm: FakeCrm | undefined;
  let child: EngineProcess | undefined;
  let restarted: Engine | undefined;
  let sampler: NodeJS.Timeout | undefined;
  let dataDir = '';

  afterEach(async () => {
    clearInterval(sampler);
    await child?.kill();
    await restarted?.stop();
    await sim?.close();
    await crm?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    child = restarted = sim = crm = undefined;
    dataDir = '';
  });

  it('every job reaches exactly one final status and none is dialled twice at once', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ari-crm-campaign-kill-'));
    sim = await startSimulator({ timeScale: 0.05 });
    crm = await FakeCrm.start();
    // Every customer answers and presses 1; ten sounds make a call of about 0.8 s real time.
    sim.customers.set('*', {
      mode: 'answer',
      answerAfterMs: 500,
      dtmf: { digits: '1', afterMs: 200 },
    });
    const env: Record<string, string> = {
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      API_KEYS: `test:${TEST_API_KEY}`,
      DATA_DIR: dataDir,
      ARI_URL: sim.url,
      ARI_USERNAME: sim.username,
      ARI_PASSWORD: sim.password,
      CRM_ROUTE_URL: crm.routeUrl,
      CRM_WEBHOOK_URL: crm.webhookUrl,
      WEBHOOK_SECRET: crm.secret,
      AUTOCALL_LEASE_MS: '2000',
    };

    // The most answered notification channels of one job at once, from the Stasis app arguments
    // (`crm-app,notify,<job>,<call>`), over both engines' lifetimes.
    let maxPerJob = 0;
    const liveSim = sim;
    sampler = setInterval(() => {
      const live = new Map<string, number>();
      for (const ch of liveSim.channels()) {
        const job = /^crm-app,notify,(\d+),/.exec(ch.dialplan.app_data ?? '')?.[1];
        if (job === undefined) continue;
        const n = (live.get(job) ?? 0) + 1;
        live.set(job, n);
        maxPerJob = Math.max(maxPerJob, n);
      }
    }, 5);

    const proc = spawn(process.execPath, ['--import', TSX_LOADER, MAIN], {
      cwd: dataDir,
      env: { PATH: process.env.PATH, NODE_ENV: 'development', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = new EngineProcess(proc);
    const firstUrl = String(
      (await child.waitForLine((l) => l.message === 'ari-crm started')).httpUrl,
    );
    await until(
      async () => (await apiRequest(firstUrl, '/readyz', { key: null })).status === 200,
      'the engine ready',
    );
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
    await until(async () => {
      const c = await counts(firstUrl);
      return c.delivered >= 3 && c.in_progress >= 3;
    }, 'the campaign under way');
    await child.kill();
    expect(liveSim.channels().length, 'calls left in Asterisk by the killed engine').to.be.above(0);

    const stream = new PassThrough();
    stream.resume();
    restarted = await startEngine(loadConfig({ NODE_ENV: 'test', ...env }), {
      logger: createLogger({ level: 'warn', stream }),
      simulator: sim,
    });
    const url = restarted.httpUrl;
    await until(
      async () => {
        const c = await counts(url);
        return c.queued === 0 && c.in_progress === 0;
      },
      'every job final after the restart',
      60_000,
    );
    clearInterval(sampler);
    await until(async () => liveSim.channels().length === 0, 'every channel hung up');

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
    // The calls the killed engine had in progress were lost, then retried and delivered.
    expect(lost.length, 'attempts lost in the crash').to.be.at.least(1);
    for (const job of jobs.filter((j) => lost.includes(j.id))) {
      expect(job.status, `job ${job.id}`).to.equal('delivered');
      expect(job.attempts!.map((a) => a.outcome)).to.deep.equal(['lost', 'delivered']);
    }
    const final = await counts(url);
    expect(final.delivered).to.equal(30);
    expect(maxPerJob, 'a job dialled twice at once').to.equal(1);
  });
});
