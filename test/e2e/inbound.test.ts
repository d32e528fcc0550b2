/**
 * End to end: the engine on the PBX simulator through the real ari-client, a real local HTTP
 * server as the CRM (route lookups + signed webhooks). Each test drives one call like a phone
 * user would and checks what the CRM and Asterisk saw.
 */
import { expect } from 'chai';
import { ENGINE_EVENT_FILTER } from '../../src/ari/gateway.ts';
import type { CallRecord } from '../../src/store/calls.ts';
import { apiRequest } from '../support/api.ts';
import { scaled, startTestBed, type TestBed } from '../support/engine.ts';
import type { ReceivedWebhook } from '../support/fake-crm.ts';
import { hangUpAfterAnswer } from '../support/phone.ts';
import { releasedCall } from '../support/released.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
let caller = 79160000000;
/** A fresh caller number per test, so webhooks of different tests never mix. */
const nextCaller = (): string => String(++caller);

/** The call's webhooks, checked for order, signatures and envelope; returns their types. */
function sequenceOf(bed: TestBed, callId: string): string[] {
  const events = bed.crm.eventsOf(callId);
  events.forEach((w, i) => {
    expect(w.signatureValid, `signature of ${w.body.type}`).to.equal(true);
    expect(w.body.sequence, `sequence of ${w.body.type}`).to.equal(i + 1);
    expect(w.headers['x-event-id']).to.equal(w.body.id);
    expect(w.headers['x-event-type']).to.equal(w.body.type);
    expect(Number.isNaN(Date.parse(w.body.occurredAt)), 'occurredAt is a date').to.equal(false);
  });
  expect(new Set(events.map((w) => w.body.id)).size).to.equal(events.length);
  return events.map((w) => w.body.type);
}

async function startedCall(bed: TestBed, from: string): Promise<string> {
  const started = await bed.crm.waitForWebhook(
    (w) => w.body.type === 'call.started' && w.body.data.from === from,
  );
  return started.body.callId;
}

/** ARI requests the engine made about a channel (method + path without ids for readability). */
function requestsFor(bed: TestBed, channelId: string): string[] {
  return bed.sim.requests
    .filter((r) => r.path.includes(channelId) || JSON.stringify(r.query ?? {}).includes(channelId))
    .map((r) => `${r.method} ${r.path.replace(channelId, '{id}')}`);
}

function ended(w: ReceivedWebhook): Record<string, unknown> {
  return w.body.data;
}

describe('inbound calls (e2e: engine + simulator + CRM)', function () {
  this.timeout(20_000);
  let bed: TestBed;

  afterEach(async () => {
    await bed?.stop();
  });

  it('routes by the CRM, rings the operator with the customer name, bridges the answer and logs every step', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: {
        customer: { id: '42', name: 'Ivan Petrov' },
        action: 'dial',
        strategy: 'ringall',
        extensions: ['101'],
        ringTimeoutSec: 20,
      },
    }));
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const hungUp = hangUpAfterAnswer(bed, callId, 'caller', 3000); // 3 s of talk
    const end = await bed.crm.waitForEnded(callId);
    await hungUp;

    expect(sequenceOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    const [started, ringing, answered] = bed.crm.eventsOf(callId);
    expect(started!.body.data).to.include({ direction: 'in', from, to: DID, did: DID });
    expect(ringing!.body.data).to.include({ extension: '101' });
    expect(answered!.body.data).to.include({ extension: '101' });
    const cdr = ended(end);
    expect(cdr).to.include({
      direction: 'in',
      from,
      to: DID,
      did: DID,
      answeredBy: '101',
      disposition: 'answered',
      hangupBy: 'caller',
    });
    const startedAt = Date.parse(String(cdr.startedAt));
    const answeredAt = Date.parse(String(cdr.answeredAt));
    const endedAt = Date.parse(String(cdr.endedAt));
    expect(answeredAt - startedAt).to.be.at.least(scaled(1000) - 5);
    expect(endedAt - answeredAt).to.be.at.least(scaled(3000) - 5);
    expect(cdr.waitSec).to.equal(Math.round((answeredAt - startedAt) / 1000));
    expect(cdr.talkSec).to.equal(Math.round((endedAt - answeredAt) / 1000));

    // The CRM was asked with the caller and the DID.
    expect(bed.crm.routeRequests.at(-1)!.body).to.deep.equal({ callId, from, did: DID });
    // Asterisk: caller rang, operator leg created with CALLERID at create time, dialled, caller
    // answered, bridged; after the caller's hang-up the operator leg and the bridge were removed.
    const create = bed.sim.requests.find(
      (r) => r.method === 'POST' && r.path === '/channels/create',
    );
    expect(create).to.not.equal(undefined);
    expect(create!.query).to.include({ endpoint: 'PJSIP/101', app: 'crm-app' });
    expect(JSON.stringify(create!.body)).to.include('"CALLERID(name)":"CRM: Ivan Petrov"');
    expect(JSON.stringify(create!.body)).to.include(`"CALLERID(num)":"${from}"`);
    const opId = String(create!.query.channelId);
    expect(requestsFor(bed, channelId)).to.include.members([
      'POST /channels/{id}/ring',
      'POST /channels/{id}/answer',
    ]);
    expect(requestsFor(bed, opId)).to.include.members([
      'POST /channels/{id}/dial',
      'DELETE /channels/{id}',
    ]);
    const bridgeCreate = bed.sim.requests.find(
      (r) =>
        r.method === 'POST' && r.path.startsWith('/bridges/') && !r.path.includes('addChannel'),
    );
    const bridgeId = bridgeCreate!.path.split('/')[2]!;
    expect(
      bed.sim.requests.some(
        (r) => r.method === 'DELETE' && r.path === `/bridges/${bridgeId}` && r.status === 204,
      ),
    ).to.equal(true);
    expect(bed.sim.channels()).to.have.length(0);
    expect(bed.engine.calls.trackedChannels()).to.equal(0);
    // The log tells the story with the call id on every line.
    const messages = bed.logs.filter((l) => l.callId === callId).map((l) => l.message);
    expect(messages).to.include.members([
      'inbound call',
      'route decided',
      'leg ringing',
      'call answered and bridged',
      'call ended',
    ]);
  });

  it('tries the next operator when the first is busy (sequential)', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: {
        action: 'dial',
        strategy: 'sequential',
        extensions: ['102', '101'],
        ringTimeoutSec: 15,
      },
    }));
    bed.sim.phones.set('102', { mode: 'busy' });
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    const from = nextCaller();
    await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const hungUp = hangUpAfterAnswer(bed, callId, 'operator', 1000);
    const end = await bed.crm.waitForEnded(callId);
    await hungUp;
    expect(sequenceOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(bed.crm.eventsOf(callId)[1]!.body.data).to.include({ extension: '101' });
    expect(ended(end)).to.include({
      disposition: 'answered',
      answeredBy: '101',
      hangupBy: 'operator',
    });
    const creates = bed.sim.requests
      .filter((r) => r.path === '/channels/create')
      .map((r) => r.query.endpoint);
    expect(creates).to.deep.equal(['PJSIP/102', 'PJSIP/101']);
    const call = await releasedCall(bed, callId);
    expect(call.legs.find((l) => l.extension === '102')).to.include({ outcome: 'busy', cause: 17 });
  });

  it('rings all operators, bridges the first to answer and cancels the others', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        extensions: ['101', '102', '103'],
        ringTimeoutSec: 20,
      },
    }));
    bed.sim.phones.set('101', { mode: 'ring' });
    bed.sim.phones.set('102', { mode: 'ring' });
    bed.sim.phones.set('103', { mode: 'ring' });
    const from = nextCaller();
    await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    // 102 picks up once the three phones ring; the caller hangs up after half a second of talk.
    await until(
      () => bed.crm.eventsOf(callId).filter((w) => w.body.type === 'call.ringing').length === 3,
      'the three phones ringing',
    );
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 0 });
    const hungUp = hangUpAfterAnswer(bed, callId, 'caller', 500);
    const end = await bed.crm.waitForEnded(callId);
    await hungUp;
    const types = sequenceOf(bed, callId);
    expect(types.filter((t) => t === 'call.ringing')).to.have.length(3);
    expect(types.slice(-2)).to.deep.equal(['call.answered', 'call.ended']);
    expect(ended(end)).to.include({ disposition: 'answered', answeredBy: '102' });
    const call = await releasedCall(bed, callId);
    expect(
      call.legs.filter((l) => l.role === 'operator').map((l) => [l.extension, l.outcome]),
    ).to.have.deep.members([
      ['101', 'canceled'],
      ['102', 'answered'],
      ['103', 'canceled'],
    ]);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('sends the caller to the no-answer dialplan when nobody answers', async () => {
    bed = await startTestBed({ NO_ANSWER_DIALPLAN: 'service,9999,1' });
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101', '103'], ringTimeoutSec: 5 },
    }));
    bed.sim.phones.set('101', { mode: 'ring' });
    bed.sim.phones.set('103', { mode: 'ring' });
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const end = await bed.crm.waitForEnded(callId);
    expect(sequenceOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.ringing',
      'call.ended',
    ]);
    expect(ended(end)).to.include({ disposition: 'no_answer', talkSec: 0 });
    expect(ended(end)).to.not.have.property('answeredBy');
    const cont = bed.sim.requests.find((r) => r.path === `/channels/${channelId}/continue`);
    expect(cont?.query).to.include({ context: 'service', extension: '9999' });
    const legs = (await releasedCall(bed, callId)).legs.filter((l) => l.role === 'operator');
    expect(legs.map((l) => l.outcome)).to.deep.equal(['no_answer', 'no_answer']);
    expect(legs.map((l) => l.cause)).to.deep.equal([19, 19]);
  });

  it('hangs up every ringing operator at once when the caller abandons', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101', '103'], ringTimeoutSec: 20 },
    }));
    bed.sim.phones.set('101', { mode: 'ring' });
    bed.sim.phones.set('103', { mode: 'ring' });
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    // The caller gives up (CANCEL) once both operators' phones ring.
    for (const extension of ['101', '103']) {
      await bed.crm.waitForWebhook(
        (w) =>
          w.body.callId === callId &&
          w.body.type === 'call.ringing' &&
          w.body.data.extension === extension,
      );
    }
    bed.sim.hangup(channelId);
    const end = await bed.crm.waitForEnded(callId);
    expect(sequenceOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.ringing',
      'call.ended',
    ]);
    expect(ended(end)).to.include({ disposition: 'canceled', hangupBy: 'caller', talkSec: 0 });
    const legIds = (await releasedCall(bed, callId)).legs
      .filter((l) => l.role === 'operator')
      .map((l) => l.channelId);
    for (const id of legIds) expect(requestsFor(bed, id)).to.include('DELETE /channels/{id}');
    expect(bed.sim.channels()).to.have.length(0);
  });

  it("shows an operator leg the caller's abandon cancelled as canceled, though its ChannelDestroyed never came", async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101'], ringTimeoutSec: 20 },
    }));
    bed.sim.phones.set('101', { mode: 'ring' });
    // Asterisk's reports of destroyed channels are lost from now on (as when the connection drops).
    const filter = await fetch(`${bed.sim.url}/ari/applications/crm-app/eventFilter`, {
      method: 'PUT',
      headers: {
        authorization: `Basic ${Buffer.from(`${bed.sim.username}:${bed.sim.password}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        disallowed: [...ENGINE_EVENT_FILTER.disallowed!, 'ChannelDestroyed'].map((type) => ({
          type,
        })),
      }),
    });
    expect(filter.status).to.equal(200);
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    await bed.crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === 'call.ringing');
    bed.sim.hangup(channelId);
    await bed.crm.waitForEnded(callId);
    expect(await bed.engine.calls.whenStored(callId, 5000)).to.equal(true);

    const details = await apiRequest<CallRecord>(bed.engine.httpUrl, `/v1/calls/${callId}`);
    expect(details.status).to.equal(200);
    const operator = details.body.legs.find((l) => l.role === 'operator');
    expect(operator).to.include({ extension: '101', outcome: 'canceled' });
    expect(operator?.cause).to.equal(undefined); // no report from Asterisk
    const stored = await bed.engine.store.calls.getCall(callId);
    expect(stored?.legs.find((l) => l.role === 'operator')).to.include({
      outcome: 'canceled',
      endedAt: stored?.endedAt,
    });
  });

  it('takes the fallback route when the CRM does not answer in time: the operator rings once the timeout passed, without waiting for the late answer', async () => {
    bed = await startTestBed({ CRM_TIMEOUT_MS: '300', FALLBACK_ROUTE: 'ringall:103' });
    // The CRM would answer "hangup" 10 s later: the call would never ring 103 had the engine
    // waited for it.
    const crmDelayMs = 10_000;
    bed.crm.onRoute(() => ({ delayMs: crmDelayMs, body: { action: 'hangup' } }));
    bed.sim.phones.set('103', { mode: 'answer', answerAfterMs: 100 });
    const from = nextCaller();
    await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const hungUp = hangUpAfterAnswer(bed, callId, 'operator', 100);
    const started = bed.crm.eventsOf(callId)[0]!;
    const ringing = await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.ringing',
    );
    expect(ringing.body.data).to.include({ extension: '103' });
    // Not before the timeout; well before the CRM's answer. (The deadline's precision is the
    // route client's unit test: here the engine's routing after it takes a loaded machine's time.)
    const routingMs = Date.parse(ringing.body.occurredAt) - Date.parse(started.body.occurredAt);
    expect(routingMs)
      .to.be.at.least(300)
      .and.below(crmDelayMs / 2);
    const end = await bed.crm.waitForEnded(callId);
    await hungUp;
    expect(sequenceOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(ended(end)).to.include({ disposition: 'answered', answeredBy: '103' });
    expect(bed.sim.requests.find((r) => r.path === '/channels/create')?.query).to.include({
      endpoint: 'PJSIP/103',
    });
    const warn = bed.logs.find(
      (l) =>
        l.callId === callId && l.message === 'CRM route lookup failed; using the fallback route',
    );
    expect(warn).to.include({ level: 'warn', reason: 'timeout' });
  });

  it('takes the fallback route when the CRM answers garbage', async () => {
    bed = await startTestBed({ FALLBACK_ROUTE: 'sequential:102' });
    bed.crm.onRoute(() => ({ raw: '{"action": "dial", "extensions": [' }));
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 100 });
    const from = nextCaller();
    await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const hungUp = hangUpAfterAnswer(bed, callId, 'operator', 100);
    const end = await bed.crm.waitForEnded(callId);
    await hungUp;
    expect(sequenceOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(ended(end)).to.include({ disposition: 'answered', answeredBy: '102' });
    expect(bed.sim.requests.find((r) => r.path === '/channels/create')?.query).to.include({
      endpoint: 'PJSIP/102',
    });
    const warn = bed.logs.find(
      (l) =>
        l.callId === callId && l.message === 'CRM route lookup failed; using the fallback route',
    );
    expect(warn).to.include({ reason: 'invalid_body' });
  });

  it('hangs up the caller and destroys the bridge when the operator hangs up first', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.answered',
    );
    const opLeg = bed.engine.calls.getCall(callId)!.legs.find((l) => l.role === 'operator')!;
    bed.sim.hangup(opLeg.channelId);
    const end = await bed.crm.waitForEnded(callId);
    expect(ended(end)).to.include({
      disposition: 'answered',
      hangupBy: 'operator',
      answeredBy: '101',
    });
    expect(requestsFor(bed, channelId)).to.include('DELETE /channels/{id}');
    expect(
      bed.sim.requests.some(
        (r) => r.method === 'DELETE' && r.path.startsWith('/bridges/') && r.status === 204,
      ),
    ).to.equal(true);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('hangs up the operator and destroys the bridge when the caller hangs up first', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.answered',
    );
    bed.sim.hangup(channelId);
    const end = await bed.crm.waitForEnded(callId);
    expect(sequenceOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(ended(end)).to.include({
      disposition: 'answered',
      hangupBy: 'caller',
      answeredBy: '101',
    });
    const opLeg = (await releasedCall(bed, callId)).legs.find((l) => l.role === 'operator')!;
    expect(requestsFor(bed, opLeg.channelId)).to.include('DELETE /channels/{id}');
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('dials a busy operator, then ends busy and hangs the caller up with reason busy', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'sequential', extensions: ['102'], ringTimeoutSec: 10 },
    }));
    bed.sim.phones.set('102', { mode: 'busy' });
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const end = await bed.crm.waitForEnded(callId);
    expect(sequenceOf(bed, callId)).to.deep.equal(['call.started', 'call.ended']);
    expect(ended(end)).to.include({ disposition: 'busy', talkSec: 0 });
    const hangup = bed.sim.requests.find(
      (r) => r.method === 'DELETE' && r.path === `/channels/${channelId}`,
    );
    expect(hangup?.query).to.include({ reason: 'busy' });
  });
});

describe('inbound call flow details (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  it('plays the CRM greeting to the answered caller before ringing the operators', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        extensions: ['101'],
        ringTimeoutSec: 20,
        greeting: ['sound:hello-world'],
      },
    }));
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    const seen: string[] = [];
    bed.sim.onEvent((e) => {
      if (
        e.type === 'PlaybackFinished' ||
        (e.type === 'Dial' && (e as { dialstatus?: string }).dialstatus === '')
      )
        seen.push(e.type);
    });
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const hungUp = hangUpAfterAnswer(bed, callId, 'operator', 100);
    const end = await bed.crm.waitForEnded(callId);
    await hungUp;
    expect(ended(end)).to.include({ disposition: 'answered', answeredBy: '101' });
    const paths = bed.sim.requests.map((r) => `${r.method} ${r.path}`);
    const answerAt = paths.indexOf(`POST /channels/${channelId}/answer`);
    const playAt = paths.findIndex((p) => p.startsWith(`POST /channels/${channelId}/play`));
    const createAt = paths.indexOf('POST /channels/create');
    expect(answerAt).to.be.within(0, playAt);
    expect(playAt).to.be.below(createAt);
    // The greeting finished before the operator's phone was dialled.
    expect(seen).to.deep.equal(['PlaybackFinished', 'Dial']);
  });

  it('ends a call whose caller hung up before it was rung as abandoned, not as a failure', async () => {
    bed = await startTestBed();
    const ring = bed.engine.gateway.channels.ring.bind(bed.engine.gateway.channels);
    // The caller cancels while the engine's ring command is on its way: Asterisk answers 404.
    bed.engine.gateway.channels.ring = async (channelId) => {
      bed.sim.hangup(channelId);
      return ring(channelId);
    };
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    const end = await bed.crm.waitForEnded(callId);
    expect(ended(end)).to.include({ disposition: 'canceled', hangupBy: 'caller', talkSec: 0 });
    expect(bed.sim.requests.find((r) => r.path === `/channels/${channelId}/ring`)?.status).to.equal(
      404,
    );
    expect(await releasedCall(bed, callId)).to.include({ endReason: 'abandoned' });
    const metrics = await bed.engine.registry.getSingleMetricAsString(
      'aricrm_call_handler_errors_total',
    );
    expect(metrics).to.match(/aricrm_call_handler_errors_total 0$/m);
    expect(bed.logs.some((l) => l.level === 'error' && l.callId === callId)).to.equal(false);
  });

  it('cleans the call up and counts the failure when a call step throws, and keeps serving calls', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    const original = bed.engine.gateway.bridges.create.bind(bed.engine.gateway.bridges);
    let failures = 0;
    bed.engine.gateway.bridges.create = async (params) => {
      if (failures++ === 0) throw new Error('simulated bug in a call step');
      return original(params);
    };
    const first = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from: first, to: DID });
    const firstId = await startedCall(bed, first);
    const end = await bed.crm.waitForEnded(firstId);
    expect(ended(end)).to.include({ hangupBy: 'system' });
    expect(await releasedCall(bed, firstId)).to.include({ endReason: 'handler_error' });
    expect(requestsFor(bed, channelId)).to.include('DELETE /channels/{id}');
    const metrics = await bed.engine.registry.getSingleMetricAsString(
      'aricrm_call_handler_errors_total',
    );
    expect(metrics).to.match(/aricrm_call_handler_errors_total 1$/m);
    expect(bed.logs.some((l) => l.level === 'error' && l.callId === firstId)).to.equal(true);

    const second = nextCaller();
    await bed.sim.injectInboundCall({ from: second, to: DID });
    const secondId = await startedCall(bed, second);
    const hungUp = hangUpAfterAnswer(bed, secondId, 'operator', 100);
    expect(ended(await bed.crm.waitForEnded(secondId))).to.include({ disposition: 'answered' });
    await hungUp;
    expect(bed.sim.channels()).to.have.length(0);
  });
});
