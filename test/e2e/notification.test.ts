/**
 * Notification calls end to end on the simulator, placed by the engine's own notification-call
 * flow: the customer phones behind the trunk answer, press digits, are busy, ring out or hang up
 * mid-message; the jobs, attempts, call records and webhooks are read over real HTTP.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { AutocallJobView } from '../../src/autocalls/index.ts';
import { apiRequest } from '../support/api.ts';
import { autocallClient } from '../support/autocalls.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import { startTestBed, TEST_API_KEY, type TestBed } from '../support/engine.ts';
import { onPlaybackStarted, pressOnPlayback } from '../support/phone.ts';
import { until } from '../support/until.ts';

describe('notification calls on the simulator (e2e)', function () {
  this.timeout(30_000);
  let bed: TestBed;
  let restarted: Engine | undefined;
  afterEach(async () => {
    await restarted?.stop();
    restarted = undefined;
    await bed?.stop();
  });

  const start = async (env: Record<string, string> = {}): Promise<TestBed> => {
    bed = await startTestBed({
      COMPAT_PATH: '/fcgi-bin/asterisk.fcgi',
      AUTOCALL_RING_TIMEOUT_SEC: '5',
      ...env,
    });
    return bed;
  };
  const { api, create, jobOf, finalJob } = autocallClient(() => bed.engine.httpUrl);

  it('confirm pressed: the message plays to its end, delivered with digit 1, a call record and webhooks', async () => {
    await start();
    bed.sim.customers.set('74950000001', { mode: 'answer', answerAfterMs: 1000 });
    pressOnPlayback(bed.sim, ['1']); // 1 during the confirm prompt
    const id = await create({
      to: '+74950000001',
      files: ['hello-world', 'sound:hello-world'],
      confirm: { digit: '1', prompt: ['hello-world'], timeoutSec: 5, repeats: 2 },
      tries: 2,
      triesPeriodSec: 1,
      callerId: '+74951112233',
      variables: { dealId: 42 },
    });
    const job = await finalJob(id, 'delivered');
    expect(job.attempts).to.have.length(1);
    const attempt = job.attempts![0]!;
    expect(attempt).to.deep.include({ dialStatus: 'ANSWER', digits: '1', outcome: 'delivered' });
    expect(attempt.playedSec).to.be.within(2, 3); // two hello-world of 1.4 s each
    expect(attempt.answeredAt).to.be.a('string');
    const finished = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'autocall.finished' && w.body.callId === `autocall-${id}`,
    );
    expect(finished.body.data).to.deep.include({ jobId: id, status: 'delivered', attempts: 1 });
    // The attempt is a call like the others: stored with its disposition and lifecycle events.
    const callId = attempt.callId!;
    const ended = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ended' && w.body.callId === callId,
    );
    expect(ended.body.data).to.deep.include({ disposition: 'answered' });
    const call = await api<Record<string, unknown>>(`/v1/calls/${callId}`);
    expect(call.status).to.equal(200);
    expect(call.body).to.deep.include({
      direction: 'out',
      from: '+74951112233',
      to: '+74950000001',
      disposition: 'answered',
    });
    expect(call.body.talkSec).to.be.a('number');
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.ended',
    ]);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('confirm not pressed: not_confirmed on every try, then no_answer', async () => {
    await start();
    bed.sim.customers.set('74950000002', { mode: 'answer', answerAfterMs: 500 });
    const id = await create({
      to: '+74950000002',
      files: ['hello-world'],
      confirm: { digit: '1', prompt: ['hello-world'], timeoutSec: 1, repeats: 2 },
      tries: 2,
      triesPeriodSec: 1,
    });
    const job = await finalJob(id, 'no_answer');
    expect(
      job.attempts!.map((a) => [a.dialStatus, a.outcome, a.digits, a.playedSec]),
    ).to.deep.equal([
      ['ANSWER', 'not_confirmed', '', 0],
      ['ANSWER', 'not_confirmed', '', 0],
    ]);
  });

  it('a wrong digit is not the confirm digit: the prompt plays again and 1 then delivers', async () => {
    await start();
    bed.sim.customers.set('74950000003', { mode: 'answer', answerAfterMs: 500 });
    pressOnPlayback(bed.sim, ['2', '1']); // 2 during the prompt, 1 during the prompt played again
    const id = await create({
      to: '+74950000003',
      files: ['hello-world'],
      confirm: { digit: '1', prompt: ['hello-world'], timeoutSec: 2, repeats: 3 },
      tries: 1,
    });
    const job = await finalJob(id, 'delivered');
    expect(job.attempts![0]).to.deep.include({ digits: '21', outcome: 'delivered' });
    expect(job.attempts![0]!.playedSec).to.be.within(1, 2);
    // The prompt twice, then the message.
    const plays = bed.sim.requests.filter(
      (r) => r.method === 'POST' && /^\/channels\/[^/]+\/play$/.test(r.path),
    );
    expect(plays.map((r) => r.query.media)).to.deep.equal([
      'sound:hello-world',
      'sound:hello-world',
      'sound:hello-world',
    ]);
  });

  it('busy: retried tries times, triesPeriodSec apart, then busy; ringing out is no_answer', async () => {
    await start();
    bed.sim.customers.set('74950000004', { mode: 'busy' });
    bed.sim.customers.set('74950000005', { mode: 'ring' });
    const busyId = await create({
      to: '+74950000004',
      files: ['hello-world'],
      tries: 3,
      triesPeriodSec: 1,
    });
    const ringId = await create({ to: '+74950000005', files: ['hello-world'], tries: 1 });
    const busy = await finalJob(busyId, 'busy');
    expect(busy.attempts!.map((a) => [a.dialStatus, a.cause, a.outcome])).to.deep.equal([
      ['BUSY', 17, 'busy'],
      ['BUSY', 17, 'busy'],
      ['BUSY', 17, 'busy'],
    ]);
    for (let i = 1; i < 3; i++) {
      const gapMs =
        Date.parse(busy.attempts![i]!.startedAt) - Date.parse(busy.attempts![i - 1]!.endedAt);
      expect(gapMs, `gap before attempt ${i + 1}`).to.be.at.least(950);
    }
    const ring = await finalJob(ringId, 'no_answer');
    expect(ring.attempts!.map((a) => [a.dialStatus, a.cause, a.outcome])).to.deep.equal([
      ['NOANSWER', 19, 'no_answer'],
    ]);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('a channel Asterisk cannot allocate (trunk offline) is retried as congestion, then failed', async () => {
    await start();
    bed.sim.customers.set('74950000012', { mode: 'unavailable' });
    const id = await create({
      to: '+74950000012',
      files: ['hello-world'],
      tries: 2,
      triesPeriodSec: 1,
    });
    const job = await finalJob(id, 'failed');
    expect(job.attempts!.map((a) => [a.dialStatus, a.outcome])).to.deep.equal([
      ['CHANUNAVAIL', 'congestion'],
      ['CHANUNAVAIL', 'congestion'],
    ]);
  });

  it('the customer hangs up mid-message: cut_short with the seconds played, retried, then no_answer', async () => {
    await start();
    bed.sim.customers.set('74950000006', { mode: 'answer', answerAfterMs: 500 });
    // 8 × 1.4 s of message; the customer hangs up as the third sound starts: 2.8 s played, and
    // whatever of the third the simulator plays before the hang-up comes through.
    onPlaybackStarted(bed.sim, (channelId, n) => {
      if (n === 3) bed.sim.hangup(channelId);
    });
    const id = await create({
      to: '+74950000006',
      files: Array.from({ length: 8 }, () => 'hello-world'),
      tries: 2,
      triesPeriodSec: 1,
    });
    const job = await finalJob(id, 'no_answer');
    expect(job.attempts!.map((a) => a.outcome)).to.deep.equal(['cut_short', 'cut_short']);
    for (const a of job.attempts!) expect(a.playedSec).to.be.within(2, 4);
    const call = await api<Record<string, unknown>>(`/v1/calls/${job.attempts![0]!.callId!}`);
    expect(call.body).to.deep.include({ disposition: 'answered', hangupBy: 'customer' });
  });

  it('cancel while ringing: the channel is hung up and the job is canceled', async () => {
    await start({ AUTOCALL_RING_TIMEOUT_SEC: '300' });
    bed.sim.customers.set('74950000007', { mode: 'ring' });
    const id = await create({ to: '+74950000007', files: ['hello-world'], tries: 3 });
    await until(
      () => bed.sim.channels().some((c) => c.state === 'Ringing'),
      'the customer channel rings',
    );
    const res = await api(`/v1/autocalls/${id}/cancel`, {});
    expect(res.status).to.be.below(300);
    const job = await finalJob(id, 'canceled');
    expect(job.attempts!.map((a) => [a.dialStatus, a.outcome])).to.deep.equal([
      ['CANCEL', 'canceled'],
    ]);
    await until(() => bed.sim.channels().length === 0, 'the channel is gone');
    const call = await api<Record<string, unknown>>(`/v1/calls/${job.attempts![0]!.callId!}`);
    expect(call.body).to.deep.include({ disposition: 'canceled', endReason: 'autocall_canceled' });
  });

  it("the originate's answer is lost: the ringing customer channel is hung up once ARI is back", async () => {
    await start({ AUTOCALL_RING_TIMEOUT_SEC: '300' });
    bed.sim.customers.set('74950000013', { mode: 'ring' });
    const hold = bed.sim.holdResponses('POST', '/channels');
    const id = await create({ to: '+74950000013', files: ['hello-world'], tries: 1 });
    await hold.whenHeld();
    // The customer's phone rings, then the connection drops before the answer reaches the
    // engine (back 300 ms later): the attempt failed as far as the engine can tell.
    bed.sim.refuseConnections(300);
    hold.release();
    const job = await finalJob(id, 'failed');
    expect(job.attempts!.map((a) => a.outcome)).to.deep.equal(['congestion']);
    // With the 300 s ring time the phone would ring on for minutes otherwise.
    await until(() => bed.sim.channels().length === 0, 'the customer channel hung up', 5000);
    const channelId = (await bed.engine.store.calls.getCall(job.attempts![0]!.callId!))!.legs[0]!
      .channelId;
    expect(
      bed.sim.requests.filter((r) => r.method === 'DELETE' && r.path === `/channels/${channelId}`),
    ).to.have.length(1);
  });

  it('runs a verbs script instead of files; refuses a bad script with 400 naming the path', async () => {
    await start();
    const id = await create({
      to: '+74950000008',
      verbs: [
        { verb: 'play', media: ['sound:hello-world'] },
        { verb: 'pause', sec: 0.5 },
      ],
    });
    const job = await finalJob(id, 'delivered');
    expect(job.attempts![0]!.outcome).to.equal('delivered');
    expect(job.attempts![0]!.playedSec).to.be.within(1, 2);

    const cases: Array<[unknown, string]> = [
      [[{ verb: 'gather', timeoutSec: 0 }], 'verbs.0.timeoutSec'],
      [
        [
          { verb: 'play', media: ['sound:hello-world'] },
          { verb: 'play', media: ['ftp://x'] },
        ],
        'verbs.1.media.0',
      ],
      [[{ verb: 'dial', extensions: ['101'], ringTimeoutSec: 10 }], 'verbs.0.verb'],
      [[], 'verbs'],
    ];
    for (const [verbs, field] of cases) {
      const res = await api('/v1/autocalls', { to: '+74950000008', verbs });
      expect([res.status, res.body.code, res.body.field], JSON.stringify(verbs)).to.deep.equal([
        400,
        'invalid_request',
        field,
      ]);
    }
  });

  it('a gather with actionUrl asks the CRM, whose verbs continue the notification call', async () => {
    await start();
    const requests: Array<{ body: Record<string, unknown>; signed: boolean }> = [];
    const menu: Server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
      req.on('end', () => {
        requests.push({
          body: JSON.parse(raw) as Record<string, unknown>,
          signed: typeof req.headers['x-signature'] === 'string',
        });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ verbs: [{ verb: 'play', media: ['sound:hello-world'] }] }));
      });
    });
    await new Promise<void>((resolve) => menu.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(menu.address() as AddressInfo).port}/menu`;
      bed.sim.customers.set('74950000010', { mode: 'answer', answerAfterMs: 500 });
      pressOnPlayback(bed.sim, ['2']); // 2 during the gather's prompt
      const id = await create({
        to: '+74950000010',
        verbs: [
          {
            verb: 'gather',
            numDigits: 1,
            timeoutSec: 3,
            prompts: [{ media: ['sound:hello-world'] }],
            actionUrl: url,
          },
          { verb: 'play', media: ['sound:beep'] },
        ],
      });
      const job = await finalJob(id, 'delivered');
      expect(job.attempts![0]).to.deep.include({ digits: '2', outcome: 'delivered' });
      expect(requests).to.have.length(1);
      expect(requests[0]).to.deep.include({ signed: true });
      expect(requests[0]!.body).to.deep.include({
        callId: job.attempts![0]!.callId,
        verb: 'gather',
        digits: '2',
      });
      expect((requests[0]!.body.call as Record<string, string>).autocallId).to.equal(String(id));
    } finally {
      await new Promise((resolve) => menu.close(resolve));
    }
  });

  it('a notification call in progress when the engine restarts is taken over: the same call goes on, one attempt, never dialled again', async () => {
    await start();
    bed.sim.customers.set('74950000011', { mode: 'answer', answerAfterMs: 200 });
    const id = await create({ to: '+74950000011', verbs: [{ verb: 'pause', sec: 120 }] });
    await until(
      async () =>
        (await jobOf(id)).status === 'in_progress' &&
        bed.sim.channels().some((c) => c.state === 'Up'),
      'the customer answered',
    );
    const started = await bed.crm.waitForWebhook(
      (w) =>
        w.body.type === 'call.started' &&
        (w.body.data.variables as Record<string, string> | undefined)?.autocallId === String(id),
    );
    const callId = started.body.callId;
    const { config, logger } = bed.engine;
    await bed.engine.stop();
    expect(bed.sim.channels()).to.have.length(1); // Asterisk keeps the channel in the app
    bed.sim.clearRequests();
    restarted = await startEngine(config, { logger, simulator: bed.sim });
    await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.recovered' && w.body.callId === callId,
    );
    // The script runs again on the same call: still in progress, nothing hung up, nothing dialled.
    const api2 = <T>(path: string, body?: unknown) =>
      apiRequest<T>(restarted!.httpUrl, path, body === undefined ? {} : { body });
    expect((await api2<AutocallJobView>(`/v1/autocalls/${id}`)).body.status).to.equal(
      'in_progress',
    );
    expect(bed.sim.channels()).to.have.length(1);
    expect(bed.sim.requests.some((r) => r.method === 'POST' && r.path === '/channels')).to.equal(
      false,
    );
    // The new engine owns the attempt: canceling the job ends it and hangs the call up.
    expect((await api2(`/v1/autocalls/${id}/cancel`, {})).status).to.be.below(300);
    let job: AutocallJobView | undefined;
    await until(async () => {
      job = (await api2<AutocallJobView>(`/v1/autocalls/${id}`)).body;
      return job.status === 'canceled';
    }, 'the job canceled');
    expect(job!.attempts!.map((a) => [a.attempt, a.outcome, a.callId])).to.deep.equal([
      [1, 'canceled', callId],
    ]);
    const ended = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ended' && w.body.callId === callId,
    );
    expect(ended.body.data).to.deep.include({ hangupBy: 'system', endReason: 'autocall_canceled' });
    await until(() => bed.sim.channels().length === 0, 'the channel is hung up');
  });

  it('asterisk.fcgi: autocall, then autocallstatus answers Answer: OK (Sent) once delivered', async () => {
    await start();
    const fcgi = (query: string) =>
      apiRequest(bed.engine.httpUrl, `/fcgi-bin/asterisk.fcgi?${query}&api_key=${TEST_API_KEY}`, {
        key: null,
      });
    const sent = await fcgi('autocall=84950000009&file1=hello-world&file2=hello-world');
    expect(sent.text).to.match(/^Answer: OK\nAutoCallID: \d+\n$/);
    const id = Number(/^AutoCallID: (\d+)$/m.exec(sent.text)![1]);
    await until(
      async () => (await fcgi(`autocallstatus=${id}`)).text === 'Answer: OK (Sent)\n',
      'Answer: OK (Sent)',
    );
    const attempt = (await jobOf(id)).attempts![0]!;
    expect(attempt.outcome).to.equal('delivered');
    expect(attempt.playedSec).to.be.within(2, 3); // two hello-world of 1.4 s each
  });
});
