/**
 * Notification calls end to end: a started engine with a scripted notification dialer, the API
 * over real HTTP, webhooks received by the fake CRM, the asterisk.fcgi path.
 *
 * The scripted dialer answers by the number's last digit: 1 delivered (digit 1 pressed), 2 busy,
 * 3 no answer, 9 held up (a call in progress) until the test releases it.
 */
import { expect } from 'chai';
import type { AutocallJobView, CampaignView } from '../../src/autocalls/index.ts';
import { apiRequest } from '../support/api.ts';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logging/logger.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import { startTestBed, TEST_API_KEY, type TestBed } from '../support/engine.ts';
import { until } from '../support/until.ts';
import { OUTCOMES, ScriptedDialer } from '../autocalls/scripted-dialer.ts';

function scriptedDialer(): ScriptedDialer {
  return new ScriptedDialer((job) => {
    switch (job.to.at(-1)) {
      case '1':
        return OUTCOMES.delivered;
      case '2':
        return OUTCOMES.busy;
      case '3':
        return OUTCOMES.noAnswer;
      default:
        return 'hold';
    }
  });
}

describe('notification calls (e2e)', function () {
  this.timeout(30_000);
  let bed: TestBed;
  let dialer: ScriptedDialer;
  afterEach(async () => {
    dialer?.release(OUTCOMES.delivered);
    await bed?.stop();
  });

  const start = async (env: Record<string, string> = {}): Promise<TestBed> => {
    dialer = scriptedDialer();
    bed = await startTestBed(
      { COMPAT_PATH: '/fcgi-bin/asterisk.fcgi', ...env },
      { notificationDialer: dialer },
    );
    return bed;
  };
  const api = <T = Record<string, unknown>>(path: string, body?: unknown, headers = {}) =>
    apiRequest<T>(bed.engine.httpUrl, path, { body, headers });
  const jobOf = async (id: number): Promise<AutocallJobView> =>
    (await api<AutocallJobView>(`/v1/autocalls/${id}`)).body;
  const statusIs = (id: number, status: string) => async () => (await jobOf(id)).status === status;

  it('refuses bad input with 4xx naming the field', async () => {
    await start();
    const cases: Array<[unknown, number, string, string]> = [
      [{ to: '+74957654321' }, 400, 'invalid_request', 'files'],
      [{ to: '+74957654321', files: [] }, 400, 'invalid_request', 'files'],
      [
        { to: '+74957654321', files: Array(11).fill('hello-world') },
        400,
        'invalid_request',
        'files',
      ],
      [{ to: '+74957654321', files: ['../etc/passwd'] }, 400, 'invalid_request', 'files.0'],
      [{ to: '+74957654321', files: ['a'], tries: 0 }, 400, 'invalid_request', 'tries'],
      [{ to: '+74957654321', files: ['a'], tries: 100 }, 400, 'invalid_request', 'tries'],
      [
        { to: '+74957654321', files: ['a'], triesPeriodSec: 3601 },
        400,
        'invalid_request',
        'triesPeriodSec',
      ],
      [
        { to: '+74957654321', files: ['a'], confirm: { digit: '12', prompt: ['p'] } },
        400,
        'invalid_request',
        'confirm.digit',
      ],
      [
        { to: '+74957654321', files: ['a'], verbs: [{ verb: 'hangup' }] },
        400,
        'invalid_request',
        'files',
      ],
      [{ to: '+74957654321', verbs: [{ verb: 'dance' }] }, 400, 'invalid_request', 'verbs.0.verb'],
      [{ to: '+74957654321', files: ['a'], colour: 'red' }, 400, 'invalid_request', 'colour'],
      [{ to: 'not a number', files: ['a'] }, 400, 'invalid_number', 'to'],
      [{ to: '+12025550123', files: ['a'] }, 403, 'destination_not_allowed', 'to'],
      [{ to: '+78091234567', files: ['a'] }, 403, 'destination_type_not_allowed', 'to'],
      [
        { to: '+74957654321', files: ['a'], campaignId: 999 },
        404,
        'campaign_not_found',
        'campaignId',
      ],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await api('/v1/autocalls', body);
      expect([res.status, res.body.code, res.body.field], JSON.stringify(body)).to.deep.equal([
        status,
        code,
        field,
      ]);
    }
    const campaignCases: Array<[unknown, string]> = [
      [{ name: 'x', maxConcurrent: 0 }, 'maxConcurrent'],
      [{ name: 'x', maxConcurrent: 257 }, 'maxConcurrent'],
      [{ name: 'x', maxConcurrent: 1, callsPerSecond: 0 }, 'callsPerSecond'],
      [
        { name: 'x', maxConcurrent: 1, window: { from: '9:00', to: '18:00', timezone: 'UTC' } },
        'window.from',
      ],
      [
        {
          name: 'x',
          maxConcurrent: 1,
          window: { from: '09:00', to: '18:00', timezone: 'Mars/Base' },
        },
        'window.timezone',
      ],
      [
        {
          name: 'x',
          maxConcurrent: 1,
          window: { from: '09:00', to: '18:00', timezone: 'UTC', days: ['fun'] },
        },
        'window.days.0',
      ],
    ];
    for (const [body, field] of campaignCases) {
      const res = await api('/v1/campaigns', body);
      expect([res.status, res.body.field], JSON.stringify(body)).to.deep.equal([400, field]);
    }
    const campaign = await api<CampaignView>('/v1/campaigns', { name: 'c', maxConcurrent: 1 });
    expect(campaign.status).to.equal(201);
    const bad = await api(`/v1/campaigns/${campaign.body.id}/jobs`, {
      jobs: [
        { to: '+74950000001', files: ['a'] },
        { to: '12', files: ['a'] },
      ],
    });
    expect([bad.status, bad.body.code, bad.body.field]).to.deep.equal([
      400,
      'invalid_number',
      'jobs.1.to',
    ]);
    const tooMany = await api(`/v1/campaigns/${campaign.body.id}/jobs`, {
      jobs: Array.from({ length: 10_001 }, () => ({ to: '+74950000001' })),
    });
    expect([tooMany.status, tooMany.body.code]).to.deep.equal([413, 'too_many_jobs']);
    // Nothing of a refused request was stored.
    const counts = (await api<CampaignView>(`/v1/campaigns/${campaign.body.id}`)).body.counts!;
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).to.equal(0);
    expect((await api('/v1/autocalls/abc')).body.field).to.equal('id');
    expect((await api('/v1/autocalls/12345')).status).to.equal(404);
  });

  it('a notification call: 202 with its id, delivered with the digits pressed, webhooks and metrics; Idempotency-Key replays it', async () => {
    await start();
    const body = {
      to: '8 (495) 000-00-01',
      files: ['hello-world', 'sound:custom/notice', 'https://crm.example/car.wav'],
      confirm: { digit: '1', prompt: ['press-1'] },
      tries: 2,
      triesPeriodSec: 5,
      variables: { dealId: 42 },
    };
    const res = await api<AutocallJobView>('/v1/autocalls', body, { 'Idempotency-Key': 'k-1' });
    expect(res.status).to.equal(202);
    expect(res.headers.get('location')).to.equal(`/v1/autocalls/${res.body.id}`);
    expect(res.body).to.deep.include({ to: '+74950000001', tries: 2, variables: { dealId: '42' } });
    expect(res.body.script.confirm).to.deep.equal({
      digit: '1',
      prompt: ['press-1'],
      timeoutSec: 5,
      repeats: 2,
    });
    const again = await api<AutocallJobView>('/v1/autocalls', body, { 'Idempotency-Key': 'k-1' });
    expect([again.status, again.body.id]).to.deep.equal([202, res.body.id]);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    const other = await api('/v1/autocalls', { ...body, tries: 3 }, { 'Idempotency-Key': 'k-1' });
    expect([other.status, other.body.code]).to.deep.equal([409, 'idempotency_conflict']);

    await until(statusIs(res.body.id, 'delivered'), 'the job delivered');
    const job = await jobOf(res.body.id);
    expect(job.attempts).to.have.length(1);
    expect(job.attempts![0]).to.deep.include({
      dialStatus: 'ANSWER',
      digits: '1',
      playedSec: 7,
      outcome: 'delivered',
    });
    expect(dialer.dials.map((d) => d.to)).to.deep.equal(['+74950000001']);
    const finished = await bed.crm.waitForWebhook((w) => w.body.type === 'autocall.finished');
    expect(finished.body.callId).to.equal(`autocall-${res.body.id}`);
    expect(finished.body.data).to.deep.include({
      jobId: res.body.id,
      status: 'delivered',
      attempts: 1,
    });
    expect(bed.crm.eventsOf(`autocall-${res.body.id}`).map((w) => w.body.type)).to.deep.equal([
      'autocall.attempt',
      'autocall.finished',
    ]);
    const metrics = await apiRequest(bed.engine.httpUrl, '/metrics', { key: null });
    expect(metrics.text).to.include('aricrm_autocall_jobs_finished_total{status="delivered"} 1');
    expect(metrics.text).to.include('aricrm_autocall_attempts_total{outcome="delivered"} 1');
  });

  it('takes 10,000 jobs in one request, beyond the API’s usual body limit', async () => {
    await start();
    const campaign = await api<CampaignView>('/v1/campaigns', { name: 'big', maxConcurrent: 256 });
    await api(`/v1/campaigns/${campaign.body.id}/pause`, {});
    const jobs = Array.from({ length: 10_000 }, (_, i) => ({
      to: `+7495${String(i).padStart(7, '0')}`,
      files: ['hello-world'],
      variables: { orderId: `order-${i}` },
    }));
    expect(JSON.stringify({ jobs }).length).to.be.above(256 * 1024);
    const res = await api<{ count: number; ids: number[] }>(
      `/v1/campaigns/${campaign.body.id}/jobs`,
      {
        jobs,
      },
    );
    expect([res.status, res.body.count, new Set(res.body.ids).size]).to.deep.equal([
      202, 10_000, 10_000,
    ]);
    const counts = (await api<CampaignView>(`/v1/campaigns/${campaign.body.id}`)).body.counts!;
    expect(counts.queued).to.equal(10_000);
    // Other routes keep the usual limit.
    const big = await api('/v1/autocalls', {
      to: '+74950000001',
      files: ['a'],
      pad: 'x'.repeat(300_000),
    });
    expect([big.status, big.body.code]).to.deep.equal([413, 'payload_too_large']);
  });

  it('answers a repeated Idempotency-Key after a restart with the same job, queued once', async () => {
    await start();
    const request = {
      body: { to: '+74950000001', files: ['hello-world'] },
      headers: { 'idempotency-key': 'crm-notice-restart-1' },
    };
    const first = await apiRequest<AutocallJobView>(bed.engine.httpUrl, '/v1/autocalls', request);
    expect(first.status).to.equal(202);
    await until(statusIs(first.body.id, 'delivered'), 'delivered');
    await bed.engine.stop();
    const logs = new PassThrough();
    logs.resume();
    let second: Engine | undefined;
    try {
      second = await startEngine(bed.engine.config, {
        logger: createLogger({ level: 'error', stream: logs }),
        simulator: bed.sim,
        notificationDialer: dialer,
      });
      const again = await apiRequest<AutocallJobView>(second.httpUrl, '/v1/autocalls', request);
      expect([again.status, again.body.id]).to.deep.equal([202, first.body.id]);
      expect(again.headers.get('idempotent-replayed')).to.equal('true');
      // The same key on click-to-call is another request: the scopes are apart.
      const call = await apiRequest(second.httpUrl, '/v1/calls', {
        body: { operator: '101', to: '+74957654321' },
        headers: request.headers,
      });
      expect(call.status).to.equal(202);
      expect(dialer.dials).to.have.length(1);
    } finally {
      await second?.stop();
    }
  });

  it('a busy number is retried after triesPeriodSec, then ends busy', async () => {
    await start();
    const res = await api<AutocallJobView>('/v1/autocalls', {
      to: '+74950000002',
      files: ['hello-world'],
      tries: 2,
      triesPeriodSec: 1,
    });
    await until(statusIs(res.body.id, 'busy'), 'the job busy');
    const job = await jobOf(res.body.id);
    expect(job.attempts!.map((a) => [a.attempt, a.dialStatus, a.cause])).to.deep.equal([
      [1, 'BUSY', 17],
      [2, 'BUSY', 17],
    ]);
    const gap = Date.parse(job.attempts![1]!.startedAt) - Date.parse(job.attempts![0]!.endedAt);
    expect(gap).to.be.at.least(1000);
  });

  it('a campaign: maxConcurrent, pause, resume, cancel, counts per status and job pages', async () => {
    await start();
    const created = await api<CampaignView>('/v1/campaigns', {
      name: 'reminders',
      maxConcurrent: 2,
      callsPerSecond: 50,
      defaults: { files: ['hello-world'], tries: 1 },
    });
    expect(created.status).to.equal(201);
    const id = created.body.id;
    const jobs = Array.from({ length: 6 }, (_, i) => ({ to: `+749500001${i}9` }));
    const added = await api<{ count: number; ids: number[] }>(`/v1/campaigns/${id}/jobs`, { jobs });
    expect([added.status, added.body.count]).to.deep.equal([202, 6]);
    const counts = async (): Promise<Record<string, number>> =>
      (await api<CampaignView>(`/v1/campaigns/${id}`)).body.counts!;
    await until(async () => (await counts()).in_progress === 2, 'two calls in progress');
    expect(dialer.holding()).to.equal(2);
    expect((await api<CampaignView>(`/v1/campaigns/${id}/pause`, {})).body.state).to.equal(
      'paused',
    );
    dialer.release(OUTCOMES.delivered);
    await until(async () => (await counts()).delivered === 2, 'two delivered');
    expect(await counts()).to.deep.include({ queued: 4, in_progress: 0 });
    expect(dialer.dials).to.have.length(2);
    expect((await api<CampaignView>(`/v1/campaigns/${id}/resume`, {})).body.state).to.equal(
      'active',
    );
    await until(async () => dialer.holding() === 2, 'the campaign dialling again');
    const canceled = await api<CampaignView>(`/v1/campaigns/${id}/cancel`, {});
    expect(canceled.body.state).to.equal('canceled');
    await until(async () => (await counts()).canceled === 4, 'every job left canceled');
    expect(await counts()).to.deep.include({
      delivered: 2,
      canceled: 4,
      queued: 0,
      in_progress: 0,
    });
    expect(dialer.holding()).to.equal(0);
    const resumed = await api(`/v1/campaigns/${id}/resume`, {});
    expect([resumed.status, resumed.body.code]).to.deep.equal([409, 'campaign_canceled']);

    const page1 = await api<{ items: AutocallJobView[]; nextCursor?: string }>(
      `/v1/campaigns/${id}/jobs?status=canceled&limit=3`,
    );
    expect(page1.body.items.map((j) => j.status)).to.deep.equal([
      'canceled',
      'canceled',
      'canceled',
    ]);
    const page2 = await api<{ items: AutocallJobView[]; nextCursor?: string }>(
      `/v1/campaigns/${id}/jobs?status=canceled&limit=3&cursor=${page1.body.nextCursor}`,
    );
    expect(page2.body.items).to.have.length(1);
    expect(page2.body.nextCursor).to.equal(undefined);
    const badCursor = await api(`/v1/campaigns/${id}/jobs?cursor=zzz`);
    expect([badCursor.status, badCursor.body.code]).to.deep.equal([400, 'invalid_cursor']);
    const badStatus = await api(`/v1/campaigns/${id}/jobs?status=sent`);
    expect(badStatus.body.field).to.equal('status');
  });

  it('asterisk.fcgi autocall / autocallstatus answer in the daemon’s text', async () => {
    await start();
    const fcgi = (query: string) =>
      apiRequest(bed.engine.httpUrl, `/fcgi-bin/asterisk.fcgi?${query}&api_key=${TEST_API_KEY}`, {
        key: null,
      });
    const idOf = (text: string): number => Number(/^AutoCallID: (\d+)$/m.exec(text)![1]);
    const sent = await fcgi('autocall=84950000001&file1=hello-world&file2=custom/notice');
    expect(sent.status).to.equal(200);
    expect(sent.text).to.match(/^Answer: OK\nAutoCallID: \d+\n$/);
    const busy = await fcgi('autocall=84950000002&file1=hello-world');
    const noAnswer = await fcgi('autocall=84950000003&file1=hello-world');
    const held = await fcgi('autocall=84950000009&file1=hello-world');
    const status = async (id: number): Promise<string> => (await fcgi(`autocallstatus=${id}`)).text;
    await until(async () => (await status(idOf(sent.text))) === 'Answer: OK (Sent)\n', 'Sent');
    // tries default to 3 with 300 s between them: still queued for its next try.
    await until(async () => (await jobOf(idOf(busy.text))).attemptsMade === 1, 'first busy try');
    expect(await status(idOf(busy.text))).to.equal('Answer: Queued\n');
    expect(await status(idOf(held.text))).to.equal('Answer: Queued\n');
    await api(`/v1/autocalls/${idOf(held.text)}/cancel`, {});
    await until(statusIs(idOf(held.text), 'canceled'), 'held job canceled');
    const canceled = await fcgi(`autocallstatus=${idOf(held.text)}`);
    expect(canceled.text).to.equal('Answer: Error\n');
    expect(canceled.headers.get('x-autocall-status')).to.equal('canceled');
    const unknown = await fcgi('autocallstatus=4294967295');
    expect([unknown.text, unknown.headers.get('x-error-code')]).to.deep.equal([
      'Answer: Error\n',
      'autocall_not_found',
    ]);
    const noFile = await fcgi('autocall=84950000001');
    expect([noFile.status, noFile.text, noFile.headers.get('x-error-code')]).to.deep.equal([
      400,
      'Answer: Error\n',
      'invalid_request',
    ]);
    expect(noAnswer.text).to.match(/^Answer: OK\nAutoCallID: \d+\n$/);
  });

  it('Busy and NO ANSWER once a job ends so', async () => {
    await start();
    const fcgi = (query: string) =>
      apiRequest(bed.engine.httpUrl, `/fcgi-bin/asterisk.fcgi?${query}&api_key=${TEST_API_KEY}`, {
        key: null,
      });
    const busy = await api<AutocallJobView>('/v1/autocalls', {
      to: '+74950000002',
      files: ['a'],
      tries: 1,
    });
    const none = await api<AutocallJobView>('/v1/autocalls', {
      to: '+74950000003',
      files: ['a'],
      tries: 1,
    });
    await until(statusIs(busy.body.id, 'busy'), 'busy');
    await until(statusIs(none.body.id, 'no_answer'), 'no answer');
    expect((await fcgi(`autocallstatus=${busy.body.id}`)).text).to.equal('Answer: Busy\n');
    expect((await fcgi(`autocallstatus=${none.body.id}`)).text).to.equal('Answer: NO ANSWER\n');
  });

  it('without a dialer of its own the engine places the calls through its notification-call flow', async () => {
    bed = await startTestBed({ COMPAT_PATH: '/fcgi-bin/asterisk.fcgi' });
    const res = await api<AutocallJobView>('/v1/autocalls', {
      to: '+74950000001',
      files: ['hello-world'],
    });
    expect(res.status).to.equal(202);
    await until(statusIs(res.body.id, 'delivered'), 'delivered by the simulator customer');
    expect((await jobOf(res.body.id)).attempts![0]).to.deep.include({
      dialStatus: 'ANSWER',
      outcome: 'delivered',
    });
  });
});
