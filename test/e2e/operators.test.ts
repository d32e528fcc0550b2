/**
 * End to end: operator presence on the PBX simulator. Phones register and unregister, calls ring
 * and are answered, the CRM sets statuses; the API, the `operator.state` webhooks, the pull feed
 * and inbound routing follow.
 */
import { expect } from 'chai';
import type { Operator } from '../../src/operators/index.ts';
import { apiRequest } from '../support/api.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import { collectingLogger, startTestBed, TIME_SCALE, type TestBed } from '../support/engine.ts';
import { FakeCrm } from '../support/fake-crm.ts';
import type { ReceivedWebhook } from '../support/fake-crm.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
/** The operators whose presence these tests follow (the test bed turns presence off by default). */
const PRESENCE = { OPERATOR_EXTENSIONS: '101,102,103' };
let caller = 79170000000;
const nextCaller = (): string => String(++caller);

/** The operator as `GET /v1/operators/{extension}` answers. */
async function operator(bed: TestBed, extension: string): Promise<Operator> {
  const answer = await apiRequest<Operator>(bed.engine.httpUrl, `/v1/operators/${extension}`);
  expect(answer.status).to.equal(200);
  return answer.body;
}

/** Wait until the API shows `extension` in `state`. */
async function untilState(bed: TestBed, extension: string, state: string): Promise<void> {
  await until(
    async () => (await operator(bed, extension)).state === state,
    `${extension} ${state}`,
  );
}

/** Wait until the engine has read every phone from the simulator: all idle. */
async function allIdle(bed: TestBed): Promise<void> {
  for (const ext of ['101', '102', '103']) await untilState(bed, ext, 'idle');
}

/** The `operator.state` webhooks of `extension` received so far. */
function stateWebhooks(bed: TestBed, extension: string): ReceivedWebhook[] {
  return bed.crm.webhooks.filter(
    (w) => w.body.type === 'operator.state' && w.body.data.extension === extension,
  );
}

/** Wait for an `operator.state` webhook of `extension` whose data includes `data`. */
function stateWebhook(
  bed: TestBed,
  extension: string,
  data: Record<string, unknown>,
  after = 0,
): Promise<ReceivedWebhook> {
  return bed.crm.waitForWebhook(
    (w) =>
      w.body.type === 'operator.state' &&
      w.body.data.extension === extension &&
      w.body.sequence > after &&
      Object.entries(data).every(([k, v]) => w.body.data[k] === v),
    10_000,
  );
}

async function startedCall(bed: TestBed, from: string): Promise<string> {
  const started = await bed.crm.waitForWebhook(
    (w) => w.body.type === 'call.started' && w.body.data.from === from,
  );
  return started.body.callId;
}

describe('operator presence (e2e: engine + simulator + CRM)', function () {
  this.timeout(30_000);
  let bed: TestBed;
  let restarted: Engine | undefined;

  afterEach(async () => {
    await restarted?.stop();
    restarted = undefined;
    await bed?.stop();
  });

  it('lists every operator, follows a phone unregistering and registering (API, webhooks, feed, emitter)', async function () {
    bed = await startTestBed(PRESENCE);
    await allIdle(bed);
    const list = await apiRequest<{ items: Operator[] }>(bed.engine.httpUrl, '/v1/operators');
    expect(list.status).to.equal(200);
    expect(list.body.items.map((o) => [o.extension, o.state, o.status])).to.deep.equal([
      ['101', 'idle', 'available'],
      ['102', 'idle', 'available'],
      ['103', 'idle', 'available'],
    ]);
    for (const item of list.body.items)
      expect(Number.isNaN(Date.parse(item.since))).to.equal(false);
    const changes: Operator[] = [];
    bed.engine.presence.on('change', (op) => changes.push(op));

    // The phone unregisters (the simulator's control API, as a SIP phone's REGISTER Expires: 0).
    const off = await apiRequest(bed.engine.httpUrl, '/sim/phones/101/unregister', {
      method: 'POST',
    });
    expect(off.status).to.equal(200);
    expect(off.body).to.include({ extension: '101', registered: false });
    const offline = await stateWebhook(bed, '101', { state: 'offline' });
    expect(offline.body.data).to.include({
      status: 'available',
      previousState: 'idle',
    });
    expect(offline.body.callId).to.equal('operator-101');
    expect(offline.signatureValid).to.equal(true);
    expect(await operator(bed, '101')).to.include({ state: 'offline', status: 'available' });

    await apiRequest(bed.engine.httpUrl, '/sim/phones/101/register', { method: 'POST' });
    const online = await stateWebhook(
      bed,
      '101',
      { state: 'idle', previousState: 'offline' },
      offline.body.sequence,
    );
    expect(online.body.sequence).to.equal(offline.body.sequence + 1);
    expect((await operator(bed, '101')).since).to.equal(online.body.data.since);
    expect(changes.map((c) => [c.extension, c.state])).to.deep.equal([
      ['101', 'offline'],
      ['101', 'idle'],
    ]);

    // The pull feed has them too.
    const feed = await apiRequest<{ items: Array<{ event: { id: string; type: string } }> }>(
      bed.engine.httpUrl,
      '/v1/events?limit=1000',
    );
    const ids = feed.body.items.map((i) => i.event.id);
    expect(ids).to.include.members([offline.body.id, online.body.id]);
  });

  it('shows a call ringing the operator, then on_call, then idle, with the call id', async function () {
    bed = await startTestBed(PRESENCE);
    await allIdle(bed);
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101'], ringTimeoutSec: 20 },
    }));
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
    const from = nextCaller();
    await bed.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 2000 });
    const callId = await startedCall(bed, from);
    await bed.crm.waitForEnded(callId);
    const idle = await stateWebhook(bed, '101', { state: 'idle', previousState: 'on_call' });
    const states = stateWebhooks(bed, '101')
      .filter((w) => w.body.sequence <= idle.body.sequence)
      .map((w) => [w.body.data.state, w.body.data.callId]);
    expect(states.slice(-3)).to.deep.equal([
      ['ringing', callId],
      ['on_call', callId],
      ['idle', undefined],
    ]);
    const now = await operator(bed, '101');
    expect(now.state).to.equal('idle');
    expect(now).to.not.have.property('callId');
  });

  it('skips an operator on a break in a ring-all route; status errors are 400/404', async function () {
    bed = await startTestBed(PRESENCE);
    await allIdle(bed);
    const put = await apiRequest<Operator>(bed.engine.httpUrl, '/v1/operators/101/status', {
      method: 'PUT',
      body: { status: 'break' },
    });
    expect(put.status).to.equal(200);
    expect(put.body).to.include({ extension: '101', status: 'break', state: 'idle' });
    const onBreak = await stateWebhook(bed, '101', { status: 'break' });
    expect(onBreak.body.data).to.not.have.property('previousState');

    const bad = await apiRequest(bed.engine.httpUrl, '/v1/operators/101/status', {
      method: 'PUT',
      body: { status: 'lunch' },
    });
    expect(bad.status).to.equal(400);
    expect(bad.body).to.include({ code: 'invalid_request' });
    const unknown = await apiRequest(bed.engine.httpUrl, '/v1/operators/199/status', {
      method: 'PUT',
      body: { status: 'dnd' },
    });
    expect(unknown.status).to.equal(404);
    expect(unknown.body).to.include({ code: 'operator_not_found' });
    expect((await apiRequest(bed.engine.httpUrl, '/v1/operators/199')).body).to.include({
      code: 'operator_not_found',
    });
    expect((await apiRequest(bed.engine.httpUrl, '/v1/operators/abc')).status).to.equal(400);
    expect((await apiRequest(bed.engine.httpUrl, '/v1/operators', { key: null })).status).to.equal(
      401,
    );

    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101', '102'], ringTimeoutSec: 20 },
    }));
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 500 });
    const from = nextCaller();
    await bed.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 1000 });
    const callId = await startedCall(bed, from);
    const end = await bed.crm.waitForEnded(callId);
    expect(end.body.data).to.include({ disposition: 'answered', answeredBy: '102' });
    const rung = bed.crm
      .eventsOf(callId)
      .filter((w) => w.body.type === 'call.ringing')
      .map((w) => w.body.data.extension);
    expect(rung).to.deep.equal(['102']);
    const creates = bed.sim.requests
      .filter((r) => r.path === '/channels/create')
      .map((r) => r.query.endpoint);
    expect(creates).to.deep.equal(['PJSIP/102']);
  });

  it('does not ring an operator already on a call; the next call goes to the free one', async function () {
    bed = await startTestBed(PRESENCE);
    await allIdle(bed);
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101', '102'], ringTimeoutSec: 20 },
    }));
    // First call: only 101 answers (102 keeps ringing until 101's answer cancels it).
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
    bed.sim.phones.set('102', { mode: 'ring' });
    const first = nextCaller();
    // (simulated time: the caller stays on the line far longer than the test)
    await bed.sim.injectInboundCall({ from: first, to: DID, hangupAfterMs: 5_000_000 });
    const firstId = await startedCall(bed, first);
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === firstId && w.body.type === 'call.answered',
    );
    await untilState(bed, '101', 'on_call');
    await untilState(bed, '102', 'idle');
    const op101 = await operator(bed, '101');
    expect(op101).to.include({ callId: firstId });

    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 300 });
    const second = nextCaller();
    await bed.sim.injectInboundCall({ from: second, to: DID, hangupAfterMs: 500 });
    const secondId = await startedCall(bed, second);
    const end = await bed.crm.waitForEnded(secondId);
    expect(end.body.data).to.include({ disposition: 'answered', answeredBy: '102' });
    const rung = bed.crm
      .eventsOf(secondId)
      .filter((w) => w.body.type === 'call.ringing')
      .map((w) => w.body.data.extension);
    expect(rung).to.deep.equal(['102']);
    const logged = bed.logs.find(
      (l) => l.message === 'operator skipped: not taking calls now' && l.callId === secondId,
    );
    expect(logged).to.include({ extension: '101' });
  });

  it('runs the no-answer path at once when no operator of the route takes calls', async function () {
    bed = await startTestBed({ ...PRESENCE, NO_ANSWER_DIALPLAN: 'service,9999,1' });
    await allIdle(bed);
    await apiRequest(bed.engine.httpUrl, '/v1/operators/101/status', {
      method: 'PUT',
      body: { status: 'dnd' },
    });
    bed.sim.phones.setRegistered('102', false);
    await untilState(bed, '102', 'offline');
    bed.crm.onRoute(() => ({
      body: {
        action: 'dial',
        strategy: 'sequential',
        extensions: ['101', '102'],
        ringTimeoutSec: 20,
      },
    }));
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const end = await bed.crm.waitForEnded(callId);
    expect(end.body.data).to.include({ disposition: 'no_answer', endReason: 'nobody_answered' });
    // Nobody was rung: no ring time was spent.
    expect(end.body.data.waitSec).to.be.below(3);
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.ended',
    ]);
    expect(bed.sim.requests.filter((r) => r.path === '/channels/create')).to.have.length(0);
    const cont = bed.sim.requests.find((r) => r.path === `/channels/${channelId}/continue`);
    expect(cont?.query).to.include({ context: 'service', extension: '9999' });
  });

  it('two phones of a ring-all answer at the same instant: the loser is hung up and never shows on_call without the call', async function () {
    bed = await startTestBed(PRESENCE);
    await allIdle(bed);
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101', '102'], ringTimeoutSec: 20 },
    }));
    bed.sim.phones.set('101', { mode: 'ring' });
    bed.sim.phones.set('102', { mode: 'ring' });
    const from = nextCaller();
    await bed.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 5_000_000 });
    const callId = await startedCall(bed, from);
    const rang = {
      '101': await stateWebhook(bed, '101', { state: 'ringing', callId }),
      '102': await stateWebhook(bed, '102', { state: 'ringing', callId }),
    };
    // Both operators pick up in the same tick.
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 0 });
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 0 });
    const answered = await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.answered',
    );
    const winner = String(answered.body.data.extension);
    expect(['101', '102']).to.include(winner);
    const loser = winner === '101' ? '102' : '101';
    await until(
      () =>
        bed.logs.some((l) => l.message === 'leg answered after the call moved on; hanging it up'),
      'the late answer hung up',
    );
    const ringSeq = rang[loser].body.sequence;
    const idle = await stateWebhook(bed, loser, { state: 'idle' }, ringSeq);
    expect(await operator(bed, winner)).to.include({ state: 'on_call', callId });
    // From ringing to idle, every state the loser showed named the call (Asterisk may report its
    // phone in use before the engine knows it lost: on_call for that call, then idle).
    const between = stateWebhooks(bed, loser)
      .filter((w) => w.body.sequence > ringSeq && w.body.sequence < idle.body.sequence)
      .map((w) => [w.body.data.state, w.body.data.callId]);
    for (const [state, id] of between) {
      expect(state).to.equal('on_call');
      expect(id).to.equal(callId);
    }
    expect(between.length).to.be.at.most(1);
    expect(await operator(bed, loser)).to.include({ state: 'idle' });
  });

  it('the demo simulator: on a ring-all call one operator answers first and the other phones just stop ringing', async function () {
    const crm = await FakeCrm.start();
    const dataDir = mkdtempSync(join(tmpdir(), 'ari-crm-demo-'));
    let engine: Engine | undefined;
    try {
      // As `npm start` runs it: no ARI_URL (the built-in simulator with its defaults), no
      // CRM_ROUTE_URL (the fallback route ringall:101,102,103).
      engine = await startEngine(
        loadConfig({
          NODE_ENV: 'test',
          HTTP_PORT: '0',
          DATA_DIR: dataDir,
          SIM_TIME_SCALE: String(TIME_SCALE),
          CRM_WEBHOOK_URL: crm.webhookUrl,
          WEBHOOK_SECRET: crm.secret,
          OPERATOR_EXTENSIONS: '101,102,103',
        }),
        { logger: createSilentLogger() },
      );
      const sim = engine.simulator!;
      expect(sim.phones.list().map((p) => p.behaviour)).to.deep.equal([
        { mode: 'answer', answerAfterMs: 1000 },
        { mode: 'answer', answerAfterMs: 1700 },
        { mode: 'answer', answerAfterMs: 2400 },
      ]);
      for (const ext of ['101', '102', '103'])
        await crm.waitForWebhook(
          (w) => w.body.type === 'operator.state' && w.body.data.extension === ext,
        );
      const from = nextCaller();
      await sim.injectInboundCall({ from, to: DID, hangupAfterMs: 2000 });
      const started = await crm.waitForWebhook(
        (w) => w.body.type === 'call.started' && w.body.data.from === from,
      );
      const callId = started.body.callId;
      const end = await crm.waitForEnded(callId);
      expect(end.body.data).to.include({ disposition: 'answered', answeredBy: '101' });
      expect(crm.eventsOf(callId).filter((w) => w.body.type === 'call.answered')).to.have.length(1);
      // 102 and 103 rang for the call and went idle without ever being on it.
      for (const ext of ['102', '103']) {
        await crm.waitForWebhook(
          (w) =>
            w.body.type === 'operator.state' &&
            w.body.data.extension === ext &&
            w.body.data.state === 'idle' &&
            w.body.data.previousState === 'ringing',
        );
        const states = crm.webhooks
          .filter((w) => w.body.type === 'operator.state' && w.body.data.extension === ext)
          .map((w) => w.body.data.state);
        expect(states, ext).to.not.include('on_call');
      }
      // Their phones never picked up: no ANSWER but 101's reached the engine.
      const answers = sim.requests.filter((r) => r.path.endsWith('/answer'));
      expect(answers.length).to.be.at.most(1);
    } finally {
      await engine?.stop();
      await crm.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('across a restart: a phone that went idle while the engine was stopped gets one operator.state, the others none', async function () {
    bed = await startTestBed(PRESENCE);
    await allIdle(bed);
    // 101 takes one call, 102 rings for another (it never answers).
    bed.crm.onRoute((req) => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        extensions: [req.from === onCallFrom ? '101' : '102'],
        ringTimeoutSec: 600,
      },
    }));
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 0 });
    bed.sim.phones.set('102', { mode: 'ring' });
    const onCallFrom = nextCaller();
    await bed.sim.injectInboundCall({ from: onCallFrom, to: DID });
    const onCall = await startedCall(bed, onCallFrom);
    await stateWebhook(bed, '101', { state: 'on_call', callId: onCall });
    const ringingFrom = nextCaller();
    await bed.sim.injectInboundCall({ from: ringingFrom, to: DID });
    const ringing = await startedCall(bed, ringingFrom);
    await stateWebhook(bed, '102', { state: 'ringing', callId: ringing });

    // The engine stops with both calls up; meanwhile the calls end (every channel hung up).
    const { engine, sim, crm } = bed;
    await engine.stop();
    const stoppedAt = crm.webhooks.length;
    const before = new Map(
      ['101', '102', '103'].map((ext) => [ext, stateWebhooks(bed, ext).at(-1)?.body.sequence ?? 0]),
    );
    for (const channel of sim.channels()) sim.hangup(channel.id);
    await until(() => sim.channels().length === 0, 'the calls to end');

    // The next start reads the phones again: 101 and 102 are idle, 103 did not change.
    const { logger } = collectingLogger('info');
    restarted = await startEngine(engine.config, { logger, simulator: sim });
    await crm.waitForEnded(onCall);
    await crm.waitForEnded(ringing);
    const idle101 = await stateWebhook(bed, '101', { state: 'idle' }, before.get('101'));
    const idle102 = await stateWebhook(bed, '102', { state: 'idle' }, before.get('102'));
    expect(idle101.body.data).to.include({ previousState: 'on_call' });
    expect(idle102.body.data).to.include({ previousState: 'ringing' });
    await restarted.presence.flush();
    // Everything the restarted engine stored is delivered: the operator events are these two.
    const feed = await apiRequest<{ items: Array<{ event: { id: string; type: string } }> }>(
      restarted.httpUrl,
      '/v1/events?limit=1000',
    );
    const stored = feed.body.items.map((i) => i.event).filter((e) => e.type === 'operator.state');
    await until(
      () => stored.every((e) => crm.webhooks.some((w) => w.body.id === e.id)),
      'the stored events to be delivered',
    );
    const sinceStop = crm.webhooks
      .slice(stoppedAt)
      .filter((w) => w.body.type === 'operator.state')
      .map((w) => [w.body.data.extension, w.body.data.state]);
    expect(sinceStop).to.have.deep.members([
      ['101', 'idle'],
      ['102', 'idle'],
    ]);
    expect(await operator({ ...bed, engine: restarted }, '103')).to.include({ state: 'idle' });
  });

  it('keeps presence right across an ARI reconnect: re-subscribes and reads the phones again', async function () {
    bed = await startTestBed(PRESENCE);
    await allIdle(bed);
    const subscriptions = (): number =>
      bed.sim.requests.filter(
        (r) => r.method === 'POST' && r.path === '/applications/crm-app/subscription',
      ).length;
    const before = subscriptions();
    expect(before).to.be.at.least(1);

    // The engine loses ARI; meanwhile 102 unregisters (no event can reach the engine).
    bed.sim.refuseConnections();
    await until(() => !bed.engine.gateway.isConnected(), 'the engine to notice the outage');
    bed.sim.phones.setRegistered('102', false);
    expect((await operator(bed, '102')).state).to.equal('idle');
    bed.sim.acceptConnections();
    await until(() => bed.engine.gateway.isConnected(), 'the engine to reconnect', 20_000);

    // Read again after the reconnect: 102 is offline.
    await stateWebhook(bed, '102', { state: 'offline', previousState: 'idle' });
    expect(subscriptions()).to.be.above(before);
    // Subscribed again: a later change arrives as an event.
    bed.sim.phones.setRegistered('103', false);
    await stateWebhook(bed, '103', { state: 'offline' });
    expect(await operator(bed, '101')).to.include({ state: 'idle' });
  });
});
