/**
 * Click-to-call, transfer and an operator's current call, through the call
 * service against the simulator with the real ari-client. (The HTTP API over the same service is
 * tested in test/api.)
 */
import { expect } from 'chai';
import { startEngine, type Engine } from '../../src/main.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import type { ReceivedWebhook } from '../support/fake-crm.ts';
import { callReleased, releasedCall } from '../support/released.ts';
import { until } from '../support/until.ts';

const CUSTOMER = '+74957654321';

function typesOf(bed: TestBed, callId: string): string[] {
  const events = bed.crm.eventsOf(callId);
  events.forEach((w, i) => {
    expect(w.signatureValid).to.equal(true);
    expect(w.body.sequence).to.equal(i + 1);
  });
  return events.map((w) => w.body.type);
}

function cdr(w: ReceivedWebhook): Record<string, unknown> {
  return w.body.data;
}

/** Wait until the simulator sends an event matching `predicate`. */
function simEvent(
  bed: TestBed,
  predicate: (e: Record<string, unknown> & { type: string }) => boolean,
): Promise<void> {
  return new Promise((resolve) => {
    const off = bed.sim.onEvent((e) => {
      if (predicate(e)) {
        off();
        resolve();
      }
    });
  });
}

describe('click-to-call (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  it('rings the operator first with "CRM" <customer>, then dials the customer and bridges them', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 2000, hangupAfterMs: 3000 });
    const call = bed.engine.calls.startClickToCall({
      operator: '101',
      to: CUSTOMER,
      variables: { dealId: 'D-17' },
      tries: 1,
      triesPeriodSec: 1,
    });
    expect(call.state).to.equal('dialing_operator');
    const end = await bed.crm.waitForEnded(call.id);
    expect(typesOf(bed, call.id)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    const [started, ringing, answered] = bed.crm.eventsOf(call.id);
    expect(started!.body.data).to.deep.include({
      direction: 'out',
      from: '101',
      to: CUSTOMER,
      variables: { dealId: 'D-17' },
    });
    expect(ringing!.body.data).to.include({ extension: '101' });
    expect(answered!.body.data).to.include({ extension: '101' });
    expect(cdr(end)).to.include({
      direction: 'out',
      disposition: 'answered',
      answeredBy: '101',
      hangupBy: 'customer',
    });

    // Operator leg first: originate with the CRM caller ID; the customer leg only after it.
    const paths = bed.sim.requests.map((r) => `${r.method} ${r.path}`);
    const originate = bed.sim.requests.find((r) => r.method === 'POST' && r.path === '/channels');
    expect(originate?.query).to.include({ endpoint: 'PJSIP/101', app: 'crm-app' });
    expect(String(originate?.query.callerId)).to.equal(`"CRM" <${CUSTOMER}>`);
    const create = bed.sim.requests.find((r) => r.path === '/channels/create');
    expect(String(create?.query.endpoint)).to.match(/74957654321@client-trunk$/);
    expect(JSON.stringify(create?.body)).to.include('"CALLERID(num)":"74957654321"');
    expect(paths.indexOf('POST /channels')).to.be.below(paths.indexOf('POST /channels/create'));
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('retries a busy operator and connects on the second try', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'busy' });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 500, hangupAfterMs: 500 });
    const firstAttemptGone = simEvent(bed, (e) => e.type === 'ChannelDestroyed');
    const call = bed.engine.calls.startClickToCall({
      operator: '101',
      to: CUSTOMER,
      tries: 2,
      triesPeriodSec: 1,
    });
    await firstAttemptGone;
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
    const end = await bed.crm.waitForEnded(call.id);
    expect(cdr(end)).to.include({ disposition: 'answered', answeredBy: '101' });
    const originates = bed.sim.requests.filter(
      (r) => r.method === 'POST' && r.path === '/channels',
    );
    expect(originates).to.have.length(2);
    const legs = (await releasedCall(bed, call.id)).legs.filter((l) => l.role === 'operator');
    expect(legs.map((l) => l.outcome)).to.deep.equal(['busy', 'answered']);
    // The second try came about triesPeriodSec after the first failed.
    const gap = originates[1]!.at - originates[0]!.at;
    expect(gap).to.be.at.least(1000);
  });

  it('gives up after all tries when the operator never answers', async () => {
    bed = await startTestBed({ CLICK_TO_CALL_RING_TIMEOUT_SEC: '5' });
    bed.sim.phones.set('102', { mode: 'ring' });
    const call = bed.engine.calls.startClickToCall({
      operator: '102',
      to: CUSTOMER,
      tries: 2,
      triesPeriodSec: 1,
    });
    const end = await bed.crm.waitForEnded(call.id);
    expect(cdr(end)).to.include({ disposition: 'no_answer', talkSec: 0 });
    expect(await releasedCall(bed, call.id)).to.include({ endReason: 'operator_unreachable' });
    expect(
      bed.sim.requests.filter((r) => r.method === 'POST' && r.path === '/channels'),
    ).to.have.length(2);
    expect(bed.sim.requests.some((r) => r.path === '/channels/create')).to.equal(false);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('plays a short tone to the operator and hangs up when the customer is busy', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
    bed.sim.customers.set('*', { mode: 'busy' });
    const call = bed.engine.calls.startClickToCall({
      operator: '101',
      to: CUSTOMER,
      tries: 1,
      triesPeriodSec: 1,
    });
    const end = await bed.crm.waitForEnded(call.id);
    expect(cdr(end)).to.include({ disposition: 'busy', talkSec: 0 });
    expect(typesOf(bed, call.id)).to.deep.equal(['call.started', 'call.ringing', 'call.ended']);
    const operatorId = (await releasedCall(bed, call.id)).legs.find(
      (l) => l.role === 'operator',
    )!.channelId;
    const play = bed.sim.requests.find((r) => r.path === `/channels/${operatorId}/play`);
    expect(play?.query).to.deep.include({ media: 'sound:beep' });
    const hangup = bed.sim.requests.find(
      (r) => r.method === 'DELETE' && r.path === `/channels/${operatorId}`,
    );
    expect(bed.sim.requests.indexOf(hangup!)).to.be.greaterThan(bed.sim.requests.indexOf(play!));
  });

  it('hangs up both legs on request', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 100 });
    const call = bed.engine.calls.startClickToCall({
      operator: '101',
      to: CUSTOMER,
      tries: 1,
      triesPeriodSec: 1,
    });
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === call.id && w.body.type === 'call.answered',
    );
    const after = await bed.engine.calls.hangupCall(call.id);
    expect(after).to.include({ state: 'ended', disposition: 'answered', hangupBy: 'system' });
    // The service holds the ended call until its end is committed: a second hang-up is refused.
    await expectRejects(bed.engine.calls.hangupCall(call.id), 'call_ended');
    await bed.crm.waitForEnded(call.id);
    expect(bed.sim.channels()).to.have.length(0);
    // Then only the store knows it (the API answers 409 from there: test/api/calls.e2e.test.ts).
    await callReleased(bed, call.id);
    expect(bed.engine.calls.getCall(call.id)).to.equal(undefined);
    expect(await bed.engine.store.calls.getCall(call.id)).to.include({ state: 'ended' });
    await expectRejects(bed.engine.calls.hangupCall(call.id), 'call_not_found');
    await expectRejects(bed.engine.calls.hangupCall('no-such-call'), 'call_not_found');
  });
});

/** A click-to-call placed by {@link startPlacedAndHeld}, its originate's answer held back. */
interface PlacedAndHeld {
  callId: string;
  hold: ReturnType<TestBed['sim']['holdResponses']>;
}

/**
 * Start a test bed (`options` of `startTestBed`) and a click-to-call on it whose operator phone
 * (101) rings for good (600 s ring time), the answer to its originate (`POST /channels`) held
 * back by the simulator; resolves once Asterisk has it. `started` gets the bed as soon as it runs
 * (for the test's clean-up, even when the rest never comes).
 */
async function startPlacedAndHeld(
  started: (bed: TestBed) => void,
  options: { timeScale?: number } = {},
): Promise<PlacedAndHeld> {
  const bed = await startTestBed({ CLICK_TO_CALL_RING_TIMEOUT_SEC: '600' }, {}, options);
  started(bed);
  bed.sim.phones.set('101', { mode: 'ring' });
  const hold = bed.sim.holdResponses('POST', '/channels');
  const call = bed.engine.calls.startClickToCall({
    operator: '101',
    to: CUSTOMER,
    tries: 1,
    triesPeriodSec: 1,
  });
  await hold.whenHeld();
  return { callId: call.id, hold };
}

describe('click-to-call hung up while the operator leg is being placed (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  /** {@link startPlacedAndHeld}, the operator's phone ringing meanwhile. */
  async function placedAndHeld(): Promise<PlacedAndHeld> {
    const placed = await startPlacedAndHeld((started) => (bed = started));
    expect(bed.sim.channels()).to.have.length(1); // the operator's phone rings meanwhile
    return placed;
  }

  function operatorHangups(operatorId: string): number {
    return bed.sim.requests.filter(
      (r) => r.method === 'DELETE' && r.path === `/channels/${operatorId}`,
    ).length;
  }

  it("hangs up the operator's phone once Asterisk answers the originate", async () => {
    const { callId, hold } = await placedAndHeld();
    const hungUp = bed.engine.calls.hangupCall(callId);
    hold.release();
    expect(await hungUp).to.include({ state: 'ended', disposition: 'canceled' });
    await bed.crm.waitForEnded(callId);
    const stored = await releasedCall(bed, callId);
    expect(stored).to.include({ endReason: 'api_hangup', disposition: 'canceled' });
    const [operator] = stored.legs;
    expect(operator).to.include({ role: 'operator', outcome: 'canceled' });
    expect(operatorHangups(operator!.channelId)).to.equal(1);
    expect(bed.sim.channels()).to.have.length(0);
    const types = typesOf(bed, callId);
    expect(types.filter((t) => t === 'call.ended')).to.have.length(1);
    expect(types.at(-1)).to.equal('call.ended');
    expect(types).to.not.include('call.answered');
  });

  it("ends as the CRM asked and hangs up the operator's phone by its id when the originate's answer is lost", async () => {
    const { callId, hold } = await placedAndHeld();
    const hungUp = bed.engine.calls.hangupCall(callId);
    // The connection drops before Asterisk's answer reaches the engine (back 300 ms later):
    // the originate fails with a connection error, though the phone rings.
    bed.sim.refuseConnections(300);
    hold.release();
    // The engine could not know the operator was rung (their leg failed), but the CRM's hang-up
    // decides how the call ends.
    expect(await hungUp).to.include({
      state: 'ended',
      disposition: 'canceled',
      endReason: 'api_hangup',
    });
    const ended = await bed.crm.waitForEnded(callId);
    expect(cdr(ended)).to.include({ disposition: 'canceled', endReason: 'api_hangup' });
    const stored = await releasedCall(bed, callId);
    expect(stored).to.include({ disposition: 'canceled', endReason: 'api_hangup' });
    expect(stored.legs[0]).to.include({ role: 'operator', outcome: 'failed' });
    const operatorId = stored.legs[0]!.channelId;
    // Once ARI answers again, the engine hangs the channel up: the phone stops ringing (with the
    // 600 s ring time it would ring on for minutes otherwise).
    await until(() => bed.sim.channels().length === 0, 'the operator channel hung up', 5000);
    expect(operatorHangups(operatorId)).to.equal(1);
    const types = typesOf(bed, callId);
    expect(types.filter((t) => t === 'call.ended')).to.have.length(1);
    expect(types.at(-1)).to.equal('call.ended');
  });
});

describe('click-to-call whose lost originate the engine could not hang up before it stopped (e2e)', function () {
  this.timeout(30_000);
  let bed: TestBed;
  let restarted: Engine | undefined;
  afterEach(async () => {
    await restarted?.stop();
    restarted = undefined;
    await bed?.stop();
  });

  it("the next start hangs up the operator's phone still ringing outside the app", async () => {
    // 600 s of ring time is a minute of real time here: the phone rings throughout the test.
    const { callId, hold } = await startPlacedAndHeld((started) => (bed = started), {
      timeScale: 0.1,
    });
    // Asterisk goes away before its answer reaches the engine: the originate fails with a
    // connection error, the hang-up by id cannot be sent, and the engine stops meanwhile.
    bed.sim.refuseConnections();
    hold.release();
    const ended = await bed.crm.waitForEnded(callId);
    expect(cdr(ended)).to.include({ endReason: 'operator_unreachable' });
    const { config, logger } = bed.engine;
    await bed.engine.stop();
    const [ringing] = bed.sim.channels();
    expect(ringing).to.include({ state: 'Ringing' });
    expect(ringing!.dialplan.app_name).to.not.equal('Stasis'); // rung, not answered yet

    bed.sim.acceptConnections();
    restarted = await startEngine(config, { logger, simulator: bed.sim });
    await until(() => bed.sim.channels().length === 0, "the operator's phone hung up", 10_000);
    expect(
      bed.sim.requests.filter(
        (r) => r.method === 'DELETE' && r.path === `/channels/${ringing!.id}`,
      ),
    ).to.have.length(1);
    const line = bed.logs.find(
      (l) => l.message === 'hanging up a channel of no live call' && l.channelId === ringing!.id,
    );
    expect(line).to.include({ level: 'warn' });
  });
});

describe('transfers and current call (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  async function bridgedInbound(
    from: string,
  ): Promise<{ callId: string; callerChannelId: string }> {
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const { channelId } = await bed.sim.injectInboundCall({ from, to: '74951234567' });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.from === from,
    );
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === started.body.callId && w.body.type === 'call.answered',
    );
    await bed.engine.calls.settled();
    return { callId: started.body.callId, callerChannelId: channelId };
  }

  it("knows an operator's current call, with the customer's channel and caller ID", async () => {
    bed = await startTestBed(); // the fake CRM routes to 101
    const { callId, callerChannelId } = await bridgedInbound('79161112233');
    expect(bed.engine.calls.currentCallOf('101')).to.deep.equal({
      callId,
      customerChannelId: callerChannelId,
      callerId: { number: '79161112233', name: '' },
      direction: 'in',
      state: 'bridged',
    });
    expect(bed.engine.calls.currentCallOf('102')).to.equal(undefined);
    // The customer's UniqueID finds the call too (asterisk.fcgi transfer=UNIQUEID).
    expect(bed.engine.calls.findCallByChannel(callerChannelId)?.id).to.equal(callId);
    expect(bed.engine.calls.findCallByChannel('no-such-channel')).to.equal(undefined);
  });

  it('sends the customer to the service number and hangs the operator up', async () => {
    bed = await startTestBed(); // the fake CRM routes to 101
    const { callId, callerChannelId } = await bridgedInbound('79161112234');
    const operatorId = bed.engine.calls
      .getCall(callId)!
      .legs.find((l) => l.role === 'operator')!.channelId;
    await bed.engine.calls.transferCall(callId, { kind: 'service', to: '9999' });
    const end = await bed.crm.waitForEnded(callId);
    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.transferred',
      'call.ended',
    ]);
    expect(bed.crm.eventsOf(callId)[3]!.body.data).to.deep.equal({ to: '9999', kind: 'service' });
    expect(cdr(end)).to.include({ disposition: 'answered', answeredBy: '101' });
    const paths = bed.sim.requests.map((r) => `${r.method} ${r.path}`);
    const cont = bed.sim.requests.find((r) => r.path === `/channels/${callerChannelId}/continue`);
    expect(cont?.query).to.include({ context: 'service', extension: '9999', priority: '1' });
    expect(paths.findIndex((p) => p.endsWith('/removeChannel'))).to.be.below(
      paths.indexOf(`POST /channels/${callerChannelId}/continue`),
    );
    expect(paths).to.include(`DELETE /channels/${operatorId}`);
    // The customer is in the service dialplan now, not hung up by the engine.
    expect(paths).to.not.include(`DELETE /channels/${callerChannelId}`);
  });

  it('blind-transfers to another operator under the same call id', async () => {
    bed = await startTestBed(); // the fake CRM routes to 101
    const { callId } = await bridgedInbound('79161112235');
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 300 });
    await bed.engine.calls.transferCall(callId, { kind: 'extension', to: '102' });
    await bed.crm.waitForWebhook(
      (w) =>
        w.body.callId === callId &&
        w.body.type === 'call.answered' &&
        w.body.data.extension === '102',
    );
    await bed.engine.calls.settled();
    expect(bed.engine.calls.currentCallOf('102')?.callId).to.equal(callId);
    expect(bed.engine.calls.currentCallOf('101')).to.equal(undefined);
    expect(bed.engine.calls.getCall(callId)!.state).to.equal('bridged');
    const callerChannelId = bed.engine.calls
      .getCall(callId)!
      .legs.find((l) => l.role === 'caller')!.channelId;
    bed.sim.hangup(callerChannelId);
    const end = await bed.crm.waitForEnded(callId);
    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ringing', // 102 rings while 101 still talks with the customer
      'call.transferred', // 102 answered and took over
      'call.answered',
      'call.ended',
    ]);
    expect(cdr(end)).to.include({ disposition: 'answered', hangupBy: 'caller' });
    // 102 talked last; the call's legs keep both operators.
    expect(cdr(end)).to.include({ answeredBy: '102' });
    const stored = await releasedCall(bed, callId);
    expect(stored).to.include({ answeredBy: '102' });
    const operators = stored.legs.filter((l) => l.role === 'operator');
    expect(operators.map((l) => [l.extension, l.outcome])).to.deep.equal([
      ['101', 'answered'],
      ['102', 'answered'],
    ]);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('refuses to transfer a call that is not bridged', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['103'], ringTimeoutSec: 600 },
    }));
    bed.sim.phones.set('103', { mode: 'ring' });
    await bed.sim.injectInboundCall({ from: '79161112236', to: '74951234567' });
    const ringing = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ringing' && w.body.data.from === '79161112236',
    );
    await expectRejects(
      bed.engine.calls.transferCall(ringing.body.callId, { kind: 'service', to: '9999' }),
      'call_not_bridged',
    );
    expect(bed.engine.calls.currentCallOf('103')).to.include({ state: 'operator_ringing' });
  });
});

async function expectRejects(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (err) {
    expect((err as { code?: string }).code).to.equal(code);
    return;
  }
  expect.fail(`expected a rejection with code ${code}`);
}
