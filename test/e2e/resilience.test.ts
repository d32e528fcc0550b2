/**
 * Resilience, end to end on the simulator with the real ari-client: the ARI WebSocket
 * drops or Asterisk becomes unreachable during live calls, and the engine restarts with calls
 * up. Asterisk replays nothing (fixtures fact 13): the engine must list channels and bridges and
 * put its calls right, keep those still up (`call.recovered`), and end with the right
 * disposition those that ended while it was not looking.
 */
import { expect } from 'chai';
import { startEngine, type Engine } from '../../src/main.ts';
import type { CallSnapshot } from '../../src/calls/model.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import type { ReceivedWebhook } from '../support/fake-crm.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
const CUSTOMER = '+74957654321';
let caller = 79170000000;
const nextCaller = (): string => String(++caller);

/** The call's webhook types, checking signatures and gap-free sequence numbers. */
function typesOf(bed: TestBed, callId: string): string[] {
  const events = bed.crm.eventsOf(callId);
  events.forEach((w, i) => {
    expect(w.signatureValid, `signature of ${w.body.type}`).to.equal(true);
    expect(w.body.sequence, `sequence of ${w.body.type} of ${callId}`).to.equal(i + 1);
  });
  return events.map((w) => w.body.type);
}

function webhook(bed: TestBed, callId: string, type: string): ReceivedWebhook {
  const found = bed.crm.eventsOf(callId).find((w) => w.body.type === type);
  if (!found) throw new Error(`no ${type} for ${callId}`);
  return found;
}

function waitFor(
  bed: TestBed,
  callId: string,
  type: string,
  timeoutMs = 10_000,
): Promise<ReceivedWebhook> {
  return bed.crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === type, timeoutMs);
}

async function callIdOf(bed: TestBed, from: string): Promise<string> {
  const started = await bed.crm.waitForWebhook(
    (w) => w.body.type === 'call.started' && w.body.data.from === from,
  );
  return started.body.callId;
}

function legOf(call: CallSnapshot | undefined, role: string): string {
  const leg = call?.legs.find(
    (l) => l.role === role && (role === 'caller' || l.outcome !== 'canceled'),
  );
  if (!leg) throw new Error(`no ${role} leg`);
  return leg.channelId;
}

async function readiness(
  engine: Engine,
): Promise<{ status: number; body: { checks?: Record<string, Record<string, string>> } }> {
  const response = await fetch(`${engine.httpUrl}/readyz`);
  return {
    status: response.status,
    body: (await response.json()) as { checks?: Record<string, Record<string, string>> },
  };
}

const channelIds = (bed: TestBed): Set<string> => new Set(bed.sim.channels().map((c) => c.id));

/** `GET /ari<path>` on the simulator, as the engine would see it. */
async function ariGet<T>(bed: TestBed, path: string): Promise<T> {
  const auth = Buffer.from(`${bed.sim.username}:${bed.sim.password}`).toString('base64');
  const response = await fetch(`${bed.sim.url}/ari${path}`, {
    headers: { authorization: `Basic ${auth}` },
  });
  return (await response.json()) as T;
}

describe('resilience (e2e): ARI outage and engine restart', function () {
  this.timeout(60_000);
  let bed: TestBed;
  let restarted: Engine | undefined;

  afterEach(async () => {
    await restarted?.stop();
    restarted = undefined;
    await bed?.stop();
  });

  it('keeps 50 live calls through a dropped WebSocket: all recovered, their hang-ups handled, their records complete', async () => {
    bed = await startTestBed({ ARI_RECONNECT_MAX_DELAY_MS: '200' });
    bed.crm.setMaxListeners(200);
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const callers = Array.from({ length: 50 }, nextCaller);
    const channels = await Promise.all(
      callers.map((from) => bed.sim.injectInboundCall({ from, to: DID })),
    );
    const ids = await Promise.all(callers.map((from) => callIdOf(bed, from)));
    await Promise.all(ids.map((id) => waitFor(bed, id, 'call.answered')));
    const states = bed.engine.calls.activeCalls().map((c) => c.state);
    expect(states, JSON.stringify(states)).to.have.length(50);
    expect(
      states.every((s) => s === 'bridged'),
      JSON.stringify(states),
    ).to.equal(true);

    // The WebSocket drops (server side) and Asterisk stays unreachable until we say so.
    bed.sim.dropWebSockets();
    bed.sim.refuseConnections();
    await until(() => !bed.engine.gateway.isConnected(), 'the engine to notice the drop');
    expect(bed.engine.calls.activeCalls()).to.have.length(50);
    bed.sim.acceptConnections();

    const recovered = await Promise.all(ids.map((id) => waitFor(bed, id, 'call.recovered')));
    for (const w of recovered) {
      expect(w.body.data).to.deep.include({
        reason: 'ari_reconnect',
        state: 'bridged',
        answeredBy: '101',
      });
      expect(w.body.data.outageSec).to.be.a('number');
    }
    expect(bed.engine.calls.activeCalls()).to.have.length(50);
    expect(bed.sim.channels()).to.have.length(100);

    // Every hang-up after the reconnect is handled: the other leg hung up, the bridge destroyed.
    for (const { channelId } of channels) bed.sim.hangup(channelId);
    const ended = await Promise.all(ids.map((id) => waitFor(bed, id, 'call.ended')));
    for (const [i, w] of ended.entries()) {
      expect(w.body.data).to.include({
        disposition: 'answered',
        hangupBy: 'caller',
        answeredBy: '101',
      });
      expect(typesOf(bed, ids[i]!)).to.deep.equal([
        'call.started',
        'call.ringing',
        'call.answered',
        'call.recovered',
        'call.ended',
      ]);
    }
    await until(() => bed.sim.channels().length === 0, 'every channel to be gone');
    await bed.engine.calls.settled();
    expect(bed.engine.calls.trackedChannels()).to.equal(0);
    expect(await ariGet(bed, '/bridges')).to.deep.equal([]);

    // The records in the store are complete.
    await bed.engine.journal.flush();
    for (const id of ids) {
      const record = await bed.engine.store.calls.getCall(id);
      expect(record).to.deep.include({
        state: 'ended',
        disposition: 'answered',
        hangupBy: 'caller',
      });
      expect(record!.legs.every((leg) => leg.endedAt !== undefined)).to.equal(true);
    }
  });

  it('ends with the right disposition the calls whose channels changed or vanished while ARI was unreachable', async () => {
    bed = await startTestBed({ ARI_RECONNECT_MAX_DELAY_MS: '200' });
    const plan = new Map<string, { extension: string; ringTimeoutSec: number }>();
    bed.crm.onRoute((req) => {
      const { extension, ringTimeoutSec } = plan.get(req.from) ?? {
        extension: '101',
        ringTimeoutSec: 20,
      };
      return {
        body: { action: 'dial', strategy: 'ringall', extensions: [extension], ringTimeoutSec },
      };
    });
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.phones.set('102', { mode: 'ring' });
    bed.sim.phones.set('103', { mode: 'ring' });
    const place = async (extension: string, ringTimeoutSec = 600) => {
      const from = nextCaller();
      plan.set(from, { extension, ringTimeoutSec });
      const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
      const callId = await callIdOf(bed, from);
      return { from, channelId, callId };
    };
    const callerLeaves = await place('101'); // bridged; the caller hangs up during the outage
    const bothLeave = await place('101'); // bridged; both hang up during the outage
    const abandons = await place('102'); // ringing; the caller gives up during the outage
    const answers = await place('103'); // ringing; the operator answers during the outage
    const ringsOut = await place('102', 60); // ringing; the dial timeout expires during the outage
    await waitFor(bed, callerLeaves.callId, 'call.answered');
    await waitFor(bed, bothLeave.callId, 'call.answered');
    for (const c of [abandons, answers, ringsOut]) await waitFor(bed, c.callId, 'call.ringing');
    const calls = bed.engine.calls;
    const opOf = (callId: string): string => legOf(calls.getCall(callId), 'operator');
    const callerLeavesOp = opOf(callerLeaves.callId);
    const bothLeaveOp = opOf(bothLeave.callId);
    const abandonsOp = opOf(abandons.callId);
    const ringsOutOp = opOf(ringsOut.callId);

    bed.sim.refuseConnections();
    await until(() => !bed.engine.gateway.isConnected(), 'the engine to notice the outage');
    bed.sim.hangup(callerLeaves.channelId);
    bed.sim.hangup(bothLeave.channelId);
    bed.sim.hangup(bothLeaveOp);
    bed.sim.hangup(abandons.channelId);
    bed.sim.phones.set('103', { mode: 'answer', answerAfterMs: 0 });
    await until(() => !channelIds(bed).has(ringsOutOp), 'the dial timeout of the ringing leg');
    const during = channelIds(bed);
    expect(during.has(callerLeavesOp), 'nobody hung the operator up yet (fact 9)').to.equal(true);
    expect(during.has(abandonsOp), 'the abandoned operator leg still rings (fact 6)').to.equal(
      true,
    );
    // Nothing reached the CRM about these changes while the engine could not see them.
    for (const c of [callerLeaves, bothLeave, abandons, answers, ringsOut])
      expect(typesOf(bed, c.callId)).to.not.include('call.ended');
    bed.sim.acceptConnections();

    const cdr = async (callId: string) => (await waitFor(bed, callId, 'call.ended')).body.data;
    expect(await cdr(callerLeaves.callId)).to.include({
      disposition: 'answered',
      hangupBy: 'caller',
      answeredBy: '101',
    });
    expect(await cdr(bothLeave.callId)).to.include({ disposition: 'answered', hangupBy: 'system' });
    expect(await cdr(abandons.callId)).to.include({ disposition: 'canceled', hangupBy: 'caller' });
    expect(await cdr(ringsOut.callId)).to.include({ disposition: 'no_answer', hangupBy: 'system' });
    for (const c of [callerLeaves, bothLeave, abandons, ringsOut])
      expect(typesOf(bed, c.callId)).to.not.include('call.recovered');

    // The operator who picked up while the engine was away is bridged now.
    await waitFor(bed, answers.callId, 'call.recovered');
    expect(typesOf(bed, answers.callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.recovered',
    ]);
    expect(webhook(bed, answers.callId, 'call.recovered').body.data).to.include({
      reason: 'ari_reconnect',
      state: 'bridged',
      answeredBy: '103',
    });
    expect(calls.getCall(answers.callId)!.state).to.equal('bridged');
    bed.sim.hangup(answers.channelId);
    expect(await cdr(answers.callId)).to.include({ disposition: 'answered', hangupBy: 'caller' });

    // What was left of the ended calls was cleaned up: operator legs hung up, bridges destroyed.
    await until(() => bed.sim.channels().length === 0, 'every channel to be gone');
    await bed.engine.journal.flush();
    const store = bed.engine.store.calls;
    expect(await store.getCall(callerLeaves.callId)).to.deep.include({ endReason: 'reconciled' });
    // The CRM is told too: who hung up and when are unknown for these calls.
    expect(webhook(bed, callerLeaves.callId, 'call.ended').body.data).to.include({
      endReason: 'reconciled',
    });
    expect(await store.getCall(bothLeave.callId)).to.deep.include({ endReason: 'reconciled' });
    expect(await store.getCall(abandons.callId)).to.deep.include({ endReason: 'abandoned' });
    expect(await store.getCall(ringsOut.callId)).to.deep.include({ endReason: 'nobody_answered' });
    const ringsOutLeg = (await store.getCall(ringsOut.callId))!.legs.find(
      (l) => l.channelId === ringsOutOp,
    );
    expect(ringsOutLeg).to.include({ outcome: 'no_answer' });
  });

  it('routes a caller whose StasisStart was lost with a WebSocket that had silently died, and leaves the live call alone', async () => {
    bed = await startTestBed({ ARI_RECONNECT_MAX_DELAY_MS: '200' });
    const extensionOf = new Map<string, string>();
    bed.crm.onRoute((req) => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        extensions: [extensionOf.get(req.from) ?? '101'],
        ringTimeoutSec: 20,
      },
    }));
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200 });
    const first = nextCaller();
    const live = await bed.sim.injectInboundCall({ from: first, to: DID });
    const liveId = await callIdOf(bed, first);
    await waitFor(bed, liveId, 'call.answered');

    // The connection goes silent: Asterisk still has the app connected and lets a new caller in,
    // but its StasisStart never reaches the engine.
    bed.sim.stallWebSockets();
    const second = nextCaller();
    extensionOf.set(second, '102');
    const { channelId } = await bed.sim.injectInboundCall({ from: second, to: DID });
    expect(channelIds(bed).has(channelId)).to.equal(true);
    expect(bed.crm.routeRequests.some((r) => r.body.from === second)).to.equal(false);
    expect(bed.engine.calls.activeCalls()).to.have.length(1);

    // The engine's ping timeout drops the connection; it reconnects and finds the caller.
    bed.sim.dropWebSockets();
    const callId = await callIdOf(bed, second);
    const answered = await waitFor(bed, callId, 'call.answered');
    expect(answered.body.data).to.include({ extension: '102' });
    expect(typesOf(bed, callId)).to.deep.equal(['call.started', 'call.ringing', 'call.answered']);
    expect(webhook(bed, callId, 'call.started').body.data).to.include({
      direction: 'in',
      from: second,
      did: DID,
    });
    const line = bed.logs.find(
      (l) => l.message === 'routing a caller whose StasisStart was missed',
    );
    expect(line).to.include({ channelId, stasisArgs: `inbound,${DID}` });
    expect(bed.logs.some((l) => l.message === 'hanging up a channel of no live call')).to.equal(
      false,
    );
    // One call for that caller, and the live call kept.
    expect(bed.crm.routeRequests.filter((r) => r.body.from === second)).to.have.length(1);
    expect(legOf(bed.engine.calls.getCall(callId), 'caller')).to.equal(channelId);
    await waitFor(bed, liveId, 'call.recovered');
    expect(bed.engine.calls.activeCalls().map((c) => c.state)).to.deep.equal([
      'bridged',
      'bridged',
    ]);
    expect(channelIds(bed).has(live.channelId)).to.equal(true);

    // Still the engine's call: the caller hangs up, the call ends normally.
    bed.sim.hangup(channelId);
    const ended = await waitFor(bed, callId, 'call.ended');
    expect(ended.body.data).to.include({
      answeredBy: '102',
      disposition: 'answered',
      hangupBy: 'caller',
    });
  });

  it('finishes a bridging the outage cut short once ARI is back, instead of tearing the call down', async () => {
    bed = await startTestBed({ ARI_RECONNECT_MAX_DELAY_MS: '200' });
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const gateway = bed.engine.gateway;
    const addChannel = gateway.bridges.addChannel.bind(gateway.bridges);
    let cut = false;
    gateway.bridges.addChannel = (bridgeId, ids) => {
      if (!cut) {
        cut = true; // Asterisk becomes unreachable just as the engine bridges the call
        bed.sim.refuseConnections();
      }
      return addChannel(bridgeId, ids);
    };
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await callIdOf(bed, from);
    await until(() => cut && !gateway.isConnected(), 'the outage');
    await bed.engine.calls.settled();
    expect(bed.engine.calls.getCall(callId)?.state).to.equal('bridged');
    expect(bed.sim.channels()).to.have.length(2);
    bed.sim.acceptConnections();

    expect((await waitFor(bed, callId, 'call.recovered')).body.data).to.include({
      reason: 'ari_reconnect',
      state: 'bridged',
    });
    const opId = legOf(bed.engine.calls.getCall(callId), 'operator');
    const bridges = await ariGet<Array<{ channels: string[] }>>(bed, '/bridges');
    expect(bridges).to.have.length(1);
    expect(bridges[0]!.channels).to.have.members([channelId, opId]);
    bed.sim.hangup(channelId);
    expect((await waitFor(bed, callId, 'call.ended')).body.data).to.include({
      disposition: 'answered',
      hangupBy: 'caller',
    });
    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.recovered',
      'call.ended',
    ]);
    await until(() => bed.sim.channels().length === 0, 'every channel to be gone');
    expect(await ariGet(bed, '/bridges')).to.deep.equal([]);
  });

  it('answers /readyz 503 while ARI is unreachable and 200 again once reconnected', async () => {
    bed = await startTestBed({ ARI_RECONNECT_MAX_DELAY_MS: '200' });
    expect((await readiness(bed.engine)).status).to.equal(200);
    bed.sim.refuseConnections();
    await until(async () => (await readiness(bed.engine)).status === 503, '/readyz 503');
    const down = await readiness(bed.engine);
    expect(down.body.checks?.ari).to.deep.include({
      status: 'failed',
      reason: 'ARI WebSocket is not connected',
    });
    // Still down after more tries: the engine keeps trying, Asterisk keeps refusing.
    const refused = (): number =>
      bed.logs.filter((l) => l.message === 'ARI connection failed; retrying').length;
    const triedBefore = refused();
    await until(() => refused() >= triedBefore + 2, 'two more refused reconnects');
    expect((await readiness(bed.engine)).status).to.equal(503);
    bed.sim.acceptConnections();
    await until(async () => (await readiness(bed.engine)).status === 200, '/readyz 200');
    expect((await readiness(bed.engine)).body.checks?.ari).to.deep.equal({ status: 'ok' });
  });

  it('restarted while Asterisk is unreachable: serves the API at once, refuses call commands with 503 ari_unavailable, and adopts its calls once ARI connects', async () => {
    bed = await startTestBed({ ARI_RECONNECT_MAX_DELAY_MS: '200' });
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', ringTimeoutSec: 600, extensions: ['101'] },
    }));
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await callIdOf(bed, from);
    await waitFor(bed, callId, 'call.answered');

    const { config, logger } = bed.engine;
    await bed.engine.stop();
    bed.sim.refuseConnections(); // Asterisk is down when the engine comes back
    restarted = await startEngine(config, { logger, simulator: bed.sim, waitForAri: false });
    const engine = restarted;

    const down = await readiness(engine);
    expect(down.status).to.equal(503);
    expect(down.body.checks?.ari).to.deep.include({ status: 'failed' });
    const hangup = await apiRequest(engine.httpUrl, `/v1/calls/${callId}/hangup`, {
      method: 'POST',
    });
    expect(hangup.status).to.equal(503);
    expect(hangup.body).to.include({ code: 'ari_unavailable' });
    expect(hangup.headers.get('retry-after')).to.equal('5');
    // The store still answers: the call, adopted, as it stood when the engine stopped.
    const stored = await apiRequest(engine.httpUrl, `/v1/calls/${callId}`);
    expect(stored.status).to.equal(200);
    expect(stored.body).to.include({ id: callId, state: 'bridged' });
    expect(channelIds(bed).has(channelId)).to.equal(true);

    bed.sim.acceptConnections();
    const recovered = await waitFor(bed, callId, 'call.recovered');
    expect(recovered.body.data).to.include({ reason: 'engine_restart', state: 'bridged' });
    expect((await readiness(engine)).status).to.equal(200);
    const ended = await apiRequest(engine.httpUrl, `/v1/calls/${callId}/hangup`, {
      method: 'POST',
    });
    expect(ended.status).to.equal(200);
    const end = await waitFor(bed, callId, 'call.ended');
    expect(end.body.data).to.include({ disposition: 'answered', answeredBy: '101' });
  });

  it('a blind transfer ringing across an engine restart: the customer stays with the first operator, and the target takes over when it answers after the restart', async () => {
    bed = await startTestBed({ RING_TIMEOUT_SEC: '600' }); // 12 s of real time: rings throughout
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.phones.set('102', { mode: 'ring' });
    const from = nextCaller();
    const { channelId: customer } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await callIdOf(bed, from);
    await waitFor(bed, callId, 'call.answered');
    await bed.engine.calls.settled();
    const op101 = legOf(bed.engine.calls.getCall(callId), 'operator');
    await bed.engine.calls.transferCall(callId, { kind: 'extension', to: '102' });
    await bed.crm.waitForWebhook(
      (w) =>
        w.body.callId === callId &&
        w.body.type === 'call.ringing' &&
        w.body.data.extension === '102',
    );
    await bed.engine.calls.settled();
    await bed.engine.journal.flush();

    const { config, logger } = bed.engine;
    await bed.engine.stop();
    restarted = await startEngine(config, { logger, simulator: bed.sim });
    const recovered = await waitFor(bed, callId, 'call.recovered');
    expect(recovered.body.data).to.include({ state: 'bridged', answeredBy: '101' });
    expect(restarted.calls.getCall(callId)?.transfer).to.include({ to: '102', state: 'ringing' });
    const bridgeOf = async (): Promise<string[]> => {
      const bridges = await ariGet<Array<{ name: string; channels: string[] }>>(bed, '/bridges');
      return [...(bridges.find((b) => b.name === `call-${callId}`)?.channels ?? [])].sort();
    };
    expect(await bridgeOf()).to.deep.equal([customer, op101].sort());

    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 100 }); // 102 picks up now
    await waitFor(bed, callId, 'call.transferred');
    await until(() => !channelIds(bed).has(op101), "101's channel to be hung up");
    const call = restarted.calls.getCall(callId)!;
    expect(call).to.include({ state: 'bridged', answeredBy: '102' });
    const op102 = call.legs.find((l) => l.extension === '102')!.channelId;
    expect(await bridgeOf()).to.deep.equal([customer, op102].sort());
    bed.sim.hangup(customer);
    const end = await waitFor(bed, callId, 'call.ended');
    expect(end.body.data).to.include({ answeredBy: '102', hangupBy: 'caller' });
    expect(typesOf(bed, callId).slice(-3)).to.deep.equal([
      'call.transferred',
      'call.answered',
      'call.ended',
    ]);
  });

  it('adopts the calls of a stopped engine on restart and finishes them with the right CDR', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.phones.set('102', { mode: 'ring' });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 200 });
    const plan = new Map<string, string>();
    bed.crm.onRoute((req) => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        ringTimeoutSec: 600,
        extensions: [plan.get(req.from) ?? '101'],
      },
    }));
    const inbound = async (extension: string) => {
      const from = nextCaller();
      plan.set(from, extension);
      const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
      return { channelId, callId: await callIdOf(bed, from) };
    };
    const talking = await inbound('101'); // bridged across the restart
    const leavesMeanwhile = await inbound('101'); // the caller hangs up while the engine is down
    const ringing = await inbound('102'); // rings across the restart, answered after it
    const c2c = bed.engine.calls.startClickToCall({
      operator: '101',
      to: CUSTOMER,
      variables: { dealId: 'D-5' },
      tries: 1,
      triesPeriodSec: 1,
    }); // click-to-call bridged across the restart
    const answered = await waitFor(bed, talking.callId, 'call.answered');
    await waitFor(bed, leavesMeanwhile.callId, 'call.answered');
    await waitFor(bed, ringing.callId, 'call.ringing');
    await waitFor(bed, c2c.id, 'call.answered');
    const customerLeg = legOf(bed.engine.calls.getCall(c2c.id), 'customer');
    const before = bed.engine.calls.getCall(talking.callId)!;

    const { config, logger } = bed.engine;
    await bed.engine.stop();
    // The engine is gone; Asterisk keeps the channels in the app (fact 13).
    expect(channelIds(bed).has(talking.channelId)).to.equal(true);
    bed.sim.hangup(leavesMeanwhile.channelId);

    restarted = await startEngine(config, { logger, simulator: bed.sim });
    const recovered = await Promise.all(
      [talking.callId, ringing.callId, c2c.id].map((id) => waitFor(bed, id, 'call.recovered')),
    );
    expect(recovered.map((w) => w.body.data)).to.deep.equal([
      {
        reason: 'engine_restart',
        state: 'bridged',
        answeredBy: '101',
        outageSec: recovered[0]!.body.data.outageSec,
      },
      {
        reason: 'engine_restart',
        state: 'operator_ringing',
        outageSec: recovered[1]!.body.data.outageSec,
      },
      {
        reason: 'engine_restart',
        state: 'bridged',
        answeredBy: '101',
        outageSec: recovered[2]!.body.data.outageSec,
      },
    ]);
    const gone = await waitFor(bed, leavesMeanwhile.callId, 'call.ended');
    expect(gone.body.data).to.include({ disposition: 'answered', hangupBy: 'caller' });
    expect(typesOf(bed, leavesMeanwhile.callId)).to.not.include('call.recovered');
    expect(restarted.calls.getCall(talking.callId)).to.deep.include({
      state: 'bridged',
      answeredBy: '101',
      answeredAt: before.answeredAt,
    });

    // Hang-ups after the restart: the talk time runs from the answer before the restart.
    await until(
      () => Date.now() - Date.parse(String(before.answeredAt)) >= 1200,
      'a conversation of more than 1 s',
    );
    bed.sim.hangup(talking.channelId);
    const end = (await waitFor(bed, talking.callId, 'call.ended')).body.data;
    expect(end).to.include({
      disposition: 'answered',
      hangupBy: 'caller',
      answeredBy: '101',
      answeredAt: before.answeredAt,
    });
    const talkMs = Date.parse(String(end.endedAt)) - Date.parse(String(end.answeredAt));
    expect(end.talkSec).to.equal(Math.round(talkMs / 1000));
    expect(end.talkSec).to.be.at.least(1);
    expect(Date.parse(String(answered.body.occurredAt))).to.be.closeTo(
      Date.parse(String(end.answeredAt)),
      50,
    );
    expect(typesOf(bed, talking.callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.recovered',
      'call.ended',
    ]);

    // The ringing operator answers after the restart: bridged as usual, then hangs up.
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 0 });
    await waitFor(bed, ringing.callId, 'call.answered');
    await until(() => restarted!.calls.getCall(ringing.callId)?.state === 'bridged', 'bridged');
    const ringingOp = legOf(restarted.calls.getCall(ringing.callId), 'operator');
    bed.sim.hangup(ringingOp);
    expect((await waitFor(bed, ringing.callId, 'call.ended')).body.data).to.include({
      disposition: 'answered',
      hangupBy: 'operator',
      answeredBy: '102',
    });

    // The click-to-call customer hangs up after the restart.
    bed.sim.hangup(customerLeg);
    expect((await waitFor(bed, c2c.id, 'call.ended')).body.data).to.include({
      direction: 'out',
      disposition: 'answered',
      hangupBy: 'customer',
    });
    expect(typesOf(bed, c2c.id)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.recovered',
      'call.ended',
    ]);

    await until(() => bed.sim.channels().length === 0, 'every channel to be gone');
    await restarted.calls.settled();
    expect(restarted.calls.activeCalls()).to.deep.equal([]);
    expect(restarted.calls.trackedChannels()).to.equal(0);
    await restarted.journal.flush();
    expect(await restarted.store.calls.unfinishedCalls()).to.deep.equal([]);
  });
});
