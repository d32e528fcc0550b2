/**
 * The /v1 API end to end: the engine, the PBX simulator
 * with the real ari-client, a real local CRM, real HTTP with API keys. Every webhook the CRM
 * receives is also checked against the OpenAPI webhook schemas.
 */
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import sinon from 'sinon';
import { lifecycleEventSchema } from '../../src/http/schemas.ts';
import { apiRequest, type ApiAnswer } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { until } from '../support/until.ts';
import { callReleased } from '../support/released.ts';

type CallBody = Record<string, unknown> & { id: string; state: string };

/** Poll GET /v1/calls/{id} until `predicate` holds. */
async function waitForCall(
  bed: TestBed,
  id: string,
  predicate: (call: CallBody) => boolean,
  timeoutMs = 5000,
): Promise<CallBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await apiRequest<CallBody>(bed.engine.httpUrl, `/v1/calls/${id}`);
    if (res.status === 200 && predicate(res.body)) return res.body;
    if (Date.now() > deadline)
      throw new Error(`call ${id} never matched; last: ${JSON.stringify(res.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function post(bed: TestBed, path: string, body: unknown, headers?: Record<string, string>) {
  return apiRequest<CallBody>(bed.engine.httpUrl, path, { method: 'POST', body, headers });
}

async function bridgedInbound(
  bed: TestBed,
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

/**
 * Operator 101 and customers answer after 200 ms (customers hang up 200 ms later); another
 * connection then takes the database's write lock, so the engine's commits wait until it is
 * released (`COMMIT`/`close()` on the returned handle).
 */
function answeringBedWithStoreLocked(bed: TestBed): Database.Database {
  bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
  bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 200 });
  const other = new Database(join(bed.dataDir, 'ari-crm.sqlite'));
  other.exec('BEGIN IMMEDIATE');
  return other;
}

/** The legs of a call (API shape). */
type LegBody = { channelId: string; role: string; extension?: string; outcome?: string };

function legsOf(call: CallBody): LegBody[] {
  return call.legs as LegBody[];
}

/** The operator leg of `extension` in a call (the first one when there are several). */
function operatorLegOf(call: CallBody, extension: string): LegBody {
  const leg = legsOf(call).find((l) => l.role === 'operator' && l.extension === extension);
  if (!leg) throw new Error(`no leg of ${extension} in ${JSON.stringify(call.legs)}`);
  return leg;
}

/** The channels in the call's mixing bridge now (ARI `GET /bridges`), sorted. */
async function bridgedChannels(bed: TestBed, callId: string): Promise<string[]> {
  const bridges = await bed.engine.gateway.bridges.list();
  const bridge = bridges.find((b) => b.name === `call-${callId}`);
  return [...(bridge?.channels ?? [])].sort();
}

/** The event types the CRM received for a call, in order. */
function typesOf(bed: TestBed, callId: string): string[] {
  return bed.crm.eventsOf(callId).map((w) => w.body.type);
}

describe('API /v1 (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    if (!bed) return;
    for (const webhook of bed.crm.webhooks) lifecycleEventSchema.parse(webhook.body);
    await bed.stop();
  });

  it('click-to-call: 202 at once, operator first, customer through the trunk template, both answer', async () => {
    bed = await startTestBed({
      TRUNKS: '7=PJSIP/{national_prefixed}@client-trunk,*=PJSIP/{e164}@client-trunk',
      CLICK_TO_CALL_CALLERID_NAME: 'Sales',
    });
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 2000, hangupAfterMs: 3000 });
    const res = await post(bed, '/v1/calls', {
      operator: '101',
      to: '+7 495 765-43-21',
      variables: { dealId: 'D-17' },
    });
    expect(res.status).to.equal(202);
    expect(res.body).to.include({
      status: 'accepted',
      state: 'dialing_operator',
      to: '+74957654321',
    });
    expect(res.headers.get('location')).to.equal(`/v1/calls/${res.body.id}`);
    const ended = await waitForCall(bed, res.body.id, (c) => c.state === 'ended');
    expect(ended).to.include({ disposition: 'answered', answeredBy: '101', direction: 'out' });
    expect(ended).to.have.property('endedAt');
    expect(ended.waitSec).to.be.a('number');
    expect(ended.talkSec).to.be.a('number');
    expect(ended.variables).to.deep.equal({ dealId: 'D-17' });

    const originate = bed.sim.requests.find((r) => r.method === 'POST' && r.path === '/channels');
    expect(String(originate?.query.callerId)).to.equal('"Sales" <+74957654321>');
    expect(String(originate?.query.timeout)).to.equal('20');
    const create = bed.sim.requests.find((r) => r.path === '/channels/create');
    expect(String(create?.query.endpoint)).to.equal('PJSIP/84957654321@client-trunk');

    const end = await bed.crm.waitForEnded(res.body.id);
    expect(end.body.data).to.include({ direction: 'out', disposition: 'answered' });
    const started = bed.crm.eventsOf(res.body.id)[0]!;
    expect(started.body.data).to.deep.include({
      to: '+74957654321',
      variables: { dealId: 'D-17' },
    });
  });

  it('without the journal log, click-to-call answers 202 only once the store holds the call (store held up by another writer)', async () => {
    bed = await startTestBed({ JOURNAL_LOG: 'false' });
    const other = answeringBedWithStoreLocked(bed);
    let callId = '';
    try {
      let answered = false;
      const pending = post(bed, '/v1/calls', { operator: '101', to: '+74957654321' }).then((r) => {
        answered = true;
        return r;
      });
      // The call is under way (the operator leg is originated) while its commit waits…
      await until(
        () => bed.sim.requests.some((r) => r.method === 'POST' && r.path === '/channels'),
        'the operator leg originated',
      );
      expect(answered).to.equal(false);
      // …and is accepted once the store has it.
      other.exec('COMMIT');
      const res = await pending;
      expect(res.status).to.equal(202);
      callId = res.body.id;
      const row = other
        .prepare('SELECT direction, to_number FROM calls WHERE id = ?')
        .get(res.body.id);
      expect(row).to.deep.equal({ direction: 'out', to_number: '+74957654321' });
    } finally {
      other.close();
    }
    expect((await bed.crm.waitForEnded(callId)).body.data).to.include({ disposition: 'answered' });
  });

  it('with the journal log, click-to-call answers 202 while the store is held up, and the store gets the call once free', async () => {
    bed = await startTestBed();
    const other = answeringBedWithStoreLocked(bed);
    let callId = '';
    try {
      const res = await post(bed, '/v1/calls', { operator: '101', to: '+74957654321' });
      expect(res.status).to.equal(202);
      callId = res.body.id;
      // Accepted from the journal log: the store has nothing yet, the log has the call.
      expect(other.prepare('SELECT id FROM calls WHERE id = ?').get(callId)).to.equal(undefined);
      expect(statSync(join(bed.dataDir, 'ari-crm.sqlite.journal-log')).size).to.be.greaterThan(0);
      // Its call.started went out at once too.
      const started = await bed.crm.waitForWebhook(
        (w) => w.body.callId === callId && w.body.type === 'call.started',
      );
      expect(started.body.data).to.include({ direction: 'out' });
      other.exec('COMMIT');
    } finally {
      other.close();
    }
    expect((await bed.crm.waitForEnded(callId)).body.data).to.include({ disposition: 'answered' });
    const check = new Database(join(bed.dataDir, 'ari-crm.sqlite'), { readonly: true });
    try {
      await until(
        () => check.prepare('SELECT state FROM calls WHERE id = ?').get(callId) !== undefined,
        'the call committed',
      );
    } finally {
      check.close();
    }
  });

  it('retries a busy operator and connects on the second try', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'busy' });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 300, hangupAfterMs: 300 });
    const gone = new Promise<void>((resolve) => {
      const off = bed.sim.onEvent((e) => {
        if (e.type === 'ChannelDestroyed') {
          off();
          resolve();
        }
      });
    });
    const res = await post(bed, '/v1/calls', {
      operator: '101',
      to: '84957654321',
      tries: 2,
      triesPeriodSec: 1,
    });
    expect(res.status).to.equal(202);
    await gone;
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
    const ended = await waitForCall(bed, res.body.id, (c) => c.state === 'ended');
    expect(ended).to.include({ disposition: 'answered' });
    const legs = (ended.legs as Array<{ role: string; outcome?: string }>).filter(
      (l) => l.role === 'operator',
    );
    expect(legs.map((l) => l.outcome)).to.deep.equal(['busy', 'answered']);
  });

  it('gives up when the operator never answers, ringing CLICK_TO_CALL_RING_TIMEOUT_SEC', async () => {
    bed = await startTestBed({ CLICK_TO_CALL_RING_TIMEOUT_SEC: '5' });
    bed.sim.phones.set('102', { mode: 'ring' });
    // (Retries are covered above; one try keeps this test fast.)
    const res = await post(bed, '/v1/calls', { operator: '102', to: '+74957654321', tries: 1 });
    const ended = await waitForCall(bed, res.body.id, (c) => c.state === 'ended');
    expect(ended).to.include({ disposition: 'no_answer', endReason: 'operator_unreachable' });
    const originates = bed.sim.requests.filter(
      (r) => r.method === 'POST' && r.path === '/channels',
    );
    expect(originates.map((r) => String(r.query.timeout))).to.deep.equal(['5']);
  });

  it('ends with disposition busy when the customer is busy', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
    bed.sim.customers.set('*', { mode: 'busy' });
    const res = await post(bed, '/v1/calls', { operator: '101', to: '+74957654321' });
    const ended = await waitForCall(bed, res.body.id, (c) => c.state === 'ended');
    expect(ended).to.include({ disposition: 'busy', talkSec: 0 });
  });

  it('an idempotent repeat returns the same call and dials once', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 300, hangupAfterMs: 300 });
    const headers = { 'idempotency-key': 'crm-task-9001' };
    const body = { operator: '101', to: '+74957654321' };
    const first = await post(bed, '/v1/calls', body, headers);
    const second = await post(bed, '/v1/calls', body, headers);
    expect(second.status).to.equal(202);
    expect(second.body).to.deep.equal(first.body);
    await bed.crm.waitForEnded(first.body.id);
    const third = await post(bed, '/v1/calls', body, headers);
    expect(third.body.id).to.equal(first.body.id);
    expect(
      bed.sim.requests.filter((r) => r.method === 'POST' && r.path === '/channels'),
    ).to.have.length(1);
    const conflict = await post(bed, '/v1/calls', { ...body, to: '+74957654322' }, headers);
    expect(conflict.status).to.equal(409);
    expect(conflict.body).to.include({ code: 'idempotency_conflict' });
  });

  it('hangs a call up on request; 409 once ended; 404 for unknown ids', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 100 });
    const res = await post(bed, '/v1/calls', { operator: '101', to: '+74957654321' });
    await waitForCall(bed, res.body.id, (c) => c.state === 'bridged');
    const hung = await post(bed, `/v1/calls/${res.body.id}/hangup`, undefined);
    expect(hung.status).to.equal(200);
    expect(hung.body).to.include({ state: 'ended', disposition: 'answered', hangupBy: 'system' });
    await bed.crm.waitForEnded(res.body.id);
    expect(bed.sim.channels()).to.have.length(0);
    // The engine let go of the call: the store tells it ended from an unknown id.
    await callReleased(bed, res.body.id);
    const again = await post(bed, `/v1/calls/${res.body.id}/hangup`, undefined);
    expect(again.status).to.equal(409);
    expect(again.body).to.include({ code: 'call_ended' });
    const stored = await apiRequest<CallBody>(bed.engine.httpUrl, `/v1/calls/${res.body.id}`);
    expect(stored.status).to.equal(200);
    expect(stored.body).to.include({ state: 'ended', disposition: 'answered' });
    const unknown = await apiRequest(bed.engine.httpUrl, '/v1/calls/no-such-call');
    expect(unknown.status).to.equal(404);
    expect(unknown.body).to.include({ code: 'call_not_found' });
  });

  it('never loses an ended call while the store lags or fails: memory answers until the store has it', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 100 });
    const res = await post(bed, '/v1/calls', { operator: '101', to: '+74957654321' });
    const id = res.body.id;
    const bridged = await waitForCall(bed, id, (c) => c.state === 'bridged');
    await bed.engine.journal.flush();
    const channelIds = (bridged.legs as Array<{ channelId: string }>).map((l) => l.channelId);
    const destroyed = new Promise<void>((resolve) => {
      const left = new Set(channelIds);
      const off = bed.engine.gateway.onEvent((event) => {
        if (event.type === 'ChannelDestroyed') left.delete(event.channel.id);
        if (left.size > 0) return;
        off();
        resolve();
      });
    });
    // The store stops taking writes (disk full): the call's end cannot be committed.
    const failing = sinon.stub(bed.engine.store, 'writeBatch').rejects(new Error('disk I/O error'));
    try {
      const hung = await post(bed, `/v1/calls/${id}/hangup`, undefined);
      expect(hung.body).to.include({ state: 'ended', disposition: 'answered' });
      await destroyed;
      await bed.engine.calls.settled();
      // Every channel is gone; the call is held only because the store does not have it yet.
      expect(bed.engine.calls.memoryFootprint()).to.include({ calls: 1, channels: 0 });
      expect((await bed.engine.store.calls.getCall(id))?.state).to.equal('bridged');
      const read = await apiRequest<CallBody>(bed.engine.httpUrl, `/v1/calls/${id}`);
      expect(read.status).to.equal(200);
      expect(read.body).to.include({ state: 'ended', disposition: 'answered' });
      const again = await post(bed, `/v1/calls/${id}/hangup`, undefined);
      expect(again.status).to.equal(409);
      expect(again.body).to.include({ code: 'call_ended' });
      const transfer = await post(bed, `/v1/calls/${id}/transfer`, { to: '9999' });
      expect(transfer.status).to.equal(409);
      expect(transfer.body).to.include({ code: 'call_ended' });
    } finally {
      failing.restore();
    }
    // The journal's retry commits the end; only then does the service let the call go.
    await callReleased(bed, id);
    expect(bed.engine.calls.memoryFootprint()).to.include({ calls: 0, channels: 0 });
    const stored = await apiRequest<CallBody>(bed.engine.httpUrl, `/v1/calls/${id}`);
    expect(stored.status).to.equal(200);
    expect(stored.body).to.include({ state: 'ended', disposition: 'answered' });
    expect(stored.body).to.have.property('updatedAt'); // the stored record, not a snapshot
    const late = await post(bed, `/v1/calls/${id}/hangup`, undefined);
    expect(late.status).to.equal(409);
    expect(late.body).to.include({ code: 'call_ended' });
  });

  it('transfers to the service number: the customer continues at service,9999,1', async () => {
    bed = await startTestBed();
    const { callId, callerChannelId } = await bridgedInbound(bed, '79161112234');
    const res = await post(bed, `/v1/calls/${callId}/transfer`, { to: '9999' });
    expect(res.status).to.equal(200);
    const end = await bed.crm.waitForEnded(callId);
    expect(end.body.data).to.include({ disposition: 'answered', endReason: 'transferred' });
    const cont = bed.sim.requests.find((r) => r.path === `/channels/${callerChannelId}/continue`);
    expect(cont?.query).to.include({ context: 'service', extension: '9999', priority: '1' });
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.include('call.transferred');
    await callReleased(bed, callId);
    const late = await post(bed, `/v1/calls/${callId}/transfer`, { to: '9999' });
    expect(late.status).to.equal(409);
    expect(late.body).to.include({ code: 'call_ended' });
    const unknown = await post(bed, '/v1/calls/nope/transfer', { to: '9999' });
    expect(unknown.status).to.equal(404);
  });

  it('blind-transfers to 102 under the same call id', async () => {
    bed = await startTestBed();
    const { callId } = await bridgedInbound(bed, '79161112235');
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 300 });
    const res = await post(bed, `/v1/calls/${callId}/transfer`, { to: '102', kind: 'extension' });
    expect(res.status).to.equal(202); // 102 rings; 101 stays on the call until 102 answers
    await bed.crm.waitForWebhook(
      (w) =>
        w.body.callId === callId &&
        w.body.type === 'call.answered' &&
        w.body.data.extension === '102',
    );
    const current = await apiRequest(bed.engine.httpUrl, '/v1/operators/102/current-call');
    expect(current.body).to.include({ callId, state: 'bridged' });
    const old = await apiRequest(bed.engine.httpUrl, '/v1/operators/101/current-call');
    expect(old.status).to.equal(404);
  });

  it('blind-transfers a click-to-call: 102 rings while 101 and the customer talk, then takes the customer over; call.ended names 102 and the legs show both operators', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 200 });
    const placed = await post(bed, '/v1/calls', { operator: '101', to: '+74957654321' });
    const id = placed.body.id;
    const bridged = await waitForCall(bed, id, (c) => c.state === 'bridged');
    await bed.engine.calls.settled();
    const op101 = operatorLegOf(bridged, '101').channelId;
    const customer = legsOf(bridged).find((l) => l.role === 'customer')!.channelId;

    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 1500 });
    const res = await post(bed, `/v1/calls/${id}/transfer`, { to: '102', kind: 'extension' });
    expect(res.status).to.equal(202);
    expect(res.body).to.include({ state: 'bridged', answeredBy: '101' });
    expect(res.body.transfer).to.include({ kind: 'extension', to: '102', state: 'ringing' });
    await bed.crm.waitForWebhook(
      (w) =>
        w.body.callId === id && w.body.type === 'call.ringing' && w.body.data.extension === '102',
    );
    // While 102 rings, the customer still talks with 101.
    expect(await bridgedChannels(bed, id)).to.deep.equal([op101, customer].sort());
    expect(typesOf(bed, id)).to.not.include('call.transferred');

    await bed.crm.waitForWebhook(
      (w) =>
        w.body.callId === id && w.body.type === 'call.answered' && w.body.data.extension === '102',
    );
    await bed.engine.calls.settled();
    const after = await waitForCall(bed, id, (c) => c.answeredBy === '102');
    expect(after).to.include({ state: 'bridged' });
    expect(after).to.not.have.property('transfer');
    const op102 = operatorLegOf(after, '102').channelId;
    await until(() => !bed.sim.channels().some((c) => c.id === op101), "101's channel to go");
    expect(await bridgedChannels(bed, id)).to.deep.equal([customer, op102].sort());
    expect(bed.sim.channels().find((c) => c.id === op102)?.state).to.equal('Up');

    bed.sim.hangup(customer);
    const end = await bed.crm.waitForEnded(id);
    expect(end.body.data).to.include({
      disposition: 'answered',
      answeredBy: '102',
      hangupBy: 'customer',
    });
    expect(typesOf(bed, id)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ringing',
      'call.transferred',
      'call.answered',
      'call.ended',
    ]);
    expect(bed.crm.eventsOf(id)[4]!.body.data).to.deep.equal({ to: '102', kind: 'extension' });
    await callReleased(bed, id);
    const stored = await apiRequest<CallBody>(bed.engine.httpUrl, `/v1/calls/${id}`);
    expect(stored.body).to.include({ state: 'ended', answeredBy: '102' });
    expect(operatorLegOf(stored.body, '101')).to.include({ outcome: 'answered' });
    expect(operatorLegOf(stored.body, '102')).to.include({ outcome: 'answered' });
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('a blind transfer to an unreachable extension answers 409 transfer_failed and the customer stays with the first operator', async () => {
    bed = await startTestBed();
    const { callId, callerChannelId } = await bridgedInbound(bed, '79161112237');
    const op101 = operatorLegOf(await waitForCall(bed, callId, () => true), '101').channelId;
    bed.sim.phones.set('102', { mode: 'unavailable' });
    const res = await post(bed, `/v1/calls/${callId}/transfer`, { to: '102', kind: 'extension' });
    expect(res.status).to.equal(409);
    expect(res.body).to.include({ code: 'transfer_failed' });
    const failed = await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.transfer_failed',
    );
    expect(failed.body.data).to.include({
      to: '102',
      kind: 'extension',
      dialStatus: 'unavailable',
    });
    await bed.engine.calls.settled();
    const call = await waitForCall(bed, callId, () => true);
    expect(call).to.include({ state: 'bridged', answeredBy: '101' });
    expect(call).to.not.have.property('transfer');
    expect(operatorLegOf(call, '102')).to.include({ outcome: 'unavailable' });
    expect(await bridgedChannels(bed, callId)).to.deep.equal([callerChannelId, op101].sort());
    expect(typesOf(bed, callId)).to.not.include.members(['call.transferred', 'call.ended']);

    bed.sim.hangup(callerChannelId);
    const end = await bed.crm.waitForEnded(callId);
    expect(end.body.data).to.include({
      disposition: 'answered',
      answeredBy: '101',
      hangupBy: 'caller',
    });
    expect(end.body.data).to.not.have.property('endReason');
  });

  it('a blind transfer that rings out or finds the target busy goes on with the first operator; a second transfer while one rings is 409 transfer_in_progress', async () => {
    bed = await startTestBed({ RING_TIMEOUT_SEC: '60' }); // 1.2 s of real time
    const { callId, callerChannelId } = await bridgedInbound(bed, '79161112238');
    const op101 = operatorLegOf(await waitForCall(bed, callId, () => true), '101').channelId;
    bed.sim.phones.set('102', { mode: 'ring' });
    const res = await post(bed, `/v1/calls/${callId}/transfer`, { to: '102', kind: 'extension' });
    expect(res.status).to.equal(202);
    const again = await post(bed, `/v1/calls/${callId}/transfer`, { to: '103', kind: 'extension' });
    expect(again.status).to.equal(409);
    expect(again.body).to.include({ code: 'transfer_in_progress' });
    const service = await post(bed, `/v1/calls/${callId}/transfer`, { to: '9999' });
    expect(service.status).to.equal(409);
    expect(service.body).to.include({ code: 'transfer_in_progress' });
    const noAnswer = await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.transfer_failed',
    );
    expect(noAnswer.body.data).to.include({ to: '102', dialStatus: 'no_answer', cause: 19 });

    bed.sim.phones.set('103', { mode: 'busy' });
    const busy = await post(bed, `/v1/calls/${callId}/transfer`, { to: '103', kind: 'extension' });
    expect(busy.status).to.equal(202);
    const refused = await bed.crm.waitForWebhook(
      (w) =>
        w.body.callId === callId &&
        w.body.type === 'call.transfer_failed' &&
        w.body.data.to === '103',
    );
    expect(refused.body.data).to.include({ dialStatus: 'busy', cause: 17 });
    await bed.engine.calls.settled();
    const call = await waitForCall(bed, callId, () => true);
    expect(call).to.include({ state: 'bridged', answeredBy: '101' });
    expect(await bridgedChannels(bed, callId)).to.deep.equal([callerChannelId, op101].sort());
    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ringing',
      'call.transfer_failed',
      'call.transfer_failed',
    ]);
    // The call can still be transferred once the earlier attempts are over.
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200 });
    const ok = await post(bed, `/v1/calls/${callId}/transfer`, { to: '102', kind: 'extension' });
    expect(ok.status).to.equal(202);
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.transferred',
    );
    await waitForCall(bed, callId, (c) => c.answeredBy === '102');
  });

  it('a blind transfer to the operator already on the call is 409 transfer_to_self and rings nobody; after a transfer, to the new operator too', async () => {
    bed = await startTestBed({ RING_TIMEOUT_SEC: '60' }); // 1.2 s of real time
    const { callId, callerChannelId } = await bridgedInbound(bed, '79161112239');
    const op101 = operatorLegOf(await waitForCall(bed, callId, () => true), '101').channelId;
    const creates = () => bed.sim.requests.filter((r) => r.path === '/channels/create').length;
    const createdBefore = creates();
    const self = await post(bed, `/v1/calls/${callId}/transfer`, { to: '101', kind: 'extension' });
    expect(self.status).to.equal(409);
    expect(self.body).to.include({ code: 'transfer_to_self' });
    expect(String(self.body.message)).to.include('101');
    expect(creates()).to.equal(createdBefore);
    await bed.engine.calls.settled();
    const unchanged = await waitForCall(bed, callId, () => true);
    expect(unchanged).to.include({ state: 'bridged', answeredBy: '101' });
    expect(unchanged).to.not.have.property('transfer');
    expect(await bridgedChannels(bed, callId)).to.deep.equal([callerChannelId, op101].sort());

    // The extension already ringing for the transfer: the transfer in progress answers.
    // 102 rings until both requests are answered (then picks up), whatever the machine's load.
    bed.sim.phones.set('102', { mode: 'ring' });
    const res = await post(bed, `/v1/calls/${callId}/transfer`, { to: '102', kind: 'extension' });
    expect(res.status).to.equal(202);
    const twice = await post(bed, `/v1/calls/${callId}/transfer`, { to: '102', kind: 'extension' });
    expect([twice.status, twice.body.code]).to.deep.equal([409, 'transfer_in_progress']);
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200 });
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.transferred',
    );
    await waitForCall(bed, callId, (c) => c.answeredBy === '102');
    const again = await post(bed, `/v1/calls/${callId}/transfer`, { to: '102', kind: 'extension' });
    expect([again.status, again.body.code]).to.deep.equal([409, 'transfer_to_self']);
    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ringing',
      'call.transferred',
      'call.answered',
    ]);
    expect(
      legsOf(await waitForCall(bed, callId, () => true)).map((l) => l.extension),
    ).to.deep.equal([undefined, '101', '102']);
  });

  for (const who of ['caller', 'operator'] as const) {
    it(`the ${who} hanging up while a blind transfer rings ends the call and stops the ringing`, async () => {
      bed = await startTestBed();
      const { callId, callerChannelId } = await bridgedInbound(bed, '79161112239');
      const op101 = operatorLegOf(await waitForCall(bed, callId, () => true), '101').channelId;
      bed.sim.phones.set('102', { mode: 'ring' });
      const res = await post(bed, `/v1/calls/${callId}/transfer`, { to: '102', kind: 'extension' });
      expect(res.status).to.equal(202);
      await bed.crm.waitForWebhook(
        (w) =>
          w.body.callId === callId &&
          w.body.type === 'call.ringing' &&
          w.body.data.extension === '102',
      );
      bed.sim.hangup(who === 'caller' ? callerChannelId : op101);
      const end = await bed.crm.waitForEnded(callId);
      expect(end.body.data).to.include({
        disposition: 'answered',
        answeredBy: '101',
        hangupBy: who,
      });
      await until(() => bed.sim.channels().length === 0, 'every channel to be gone');
      expect(typesOf(bed, callId)).to.not.include('call.transfer_failed');
      await callReleased(bed, callId);
      const stored = await apiRequest<CallBody>(bed.engine.httpUrl, `/v1/calls/${callId}`);
      expect(operatorLegOf(stored.body, '102')).to.include({ outcome: 'canceled' });
    });
  }

  it("call.ended carries the call's endReason (api_hangup)", async () => {
    bed = await startTestBed();
    const { callId } = await bridgedInbound(bed, '79161112240');
    const res = await post(bed, `/v1/calls/${callId}/hangup`, undefined);
    expect(res.body).to.include({ endReason: 'api_hangup' });
    const end = await bed.crm.waitForEnded(callId);
    expect(end.body.data).to.include({ endReason: 'api_hangup', hangupBy: 'system' });
  });

  it('refuses to transfer a call that is not bridged (409 call_not_bridged)', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['103'], ringTimeoutSec: 600 },
    }));
    bed.sim.phones.set('103', { mode: 'ring' });
    await bed.sim.injectInboundCall({ from: '79161112236', to: '74951234567' });
    const ringing = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ringing' && w.body.data.from === '79161112236',
    );
    const res = await post(bed, `/v1/calls/${ringing.body.callId}/transfer`, { to: '9999' });
    expect(res.status).to.equal(409);
    expect(res.body).to.include({ code: 'call_not_bridged' });
  });

  it("answers an operator's current call by extension and by workstation IP", async () => {
    bed = await startTestBed({ OPERATOR_IP_MAP: '127.0.0.1=101' });
    const { callId, callerChannelId } = await bridgedInbound(bed, '79161112233');
    const expected = {
      callId,
      customerChannelId: callerChannelId,
      callerId: { number: '79161112233', name: '' },
      direction: 'in',
      state: 'bridged',
    };
    const byExt = await apiRequest(bed.engine.httpUrl, '/v1/operators/101/current-call');
    expect(byExt.status).to.equal(200);
    expect(byExt.body).to.deep.equal(expected);
    const byIp = await apiRequest(bed.engine.httpUrl, '/v1/operators/me/current-call');
    expect(byIp.body).to.deep.equal(expected);
    const none = await apiRequest(bed.engine.httpUrl, '/v1/operators/102/current-call');
    expect(none.status).to.equal(404);
    expect(none.body).to.include({ code: 'no_active_call' });
  });

  it('toll fraud: a premium-rate Russian number (+7 809) gets 403 destination_type_not_allowed and is never dialled; toll-free +7 800 and a mobile are called', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 200 });
    const premium = await post(bed, '/v1/calls', { operator: '101', to: '+7 809 505-12-34' });
    expect(premium.status).to.equal(403);
    expect(premium.body).to.deep.equal({
      code: 'destination_type_not_allowed',
      message:
        'calls to +78095051234 are not allowed: it is a premium-rate number (PREMIUM_RATE, denied by DESTINATION_DENIED_TYPES)',
      field: 'to',
      numberType: 'PREMIUM_RATE',
    });
    const tollFree = await post(bed, '/v1/calls', { operator: '101', to: '8 800 555-35-35' });
    const mobile = await post(bed, '/v1/calls', { operator: '102', to: '+7 916 123-45-67' });
    expect([tollFree.status, mobile.status]).to.deep.equal([202, 202]);
    for (const id of [tollFree.body.id, mobile.body.id])
      expect(await waitForCall(bed, id, (c) => c.state === 'ended')).to.include({
        disposition: 'answered',
      });
    const dialled = bed.sim.requests
      .filter((r) => r.path === '/channels/create')
      .map((r) => String(r.query.endpoint));
    expect(dialled.some((endpoint) => endpoint.includes('78095051234'))).to.equal(false);
    expect(dialled.filter((endpoint) => /78005553535|79161234567/.test(endpoint))).to.have.length(
      2,
    );
    expect(
      await bed.engine.registry.getSingleMetricAsString('aricrm_call_guard_refusals_total'),
    ).to.include('reason="destination_type_not_allowed"} 1');
    expect(
      bed.logs.some(
        (l) => l.reason === 'destination_type_not_allowed' && l.numberType === 'PREMIUM_RATE',
      ),
    ).to.equal(true);
  });

  it('security: auth failures, destination refused, rate limit with Retry-After, call cap', async () => {
    bed = await startTestBed({ CALLS_RATE_LIMIT_PER_MIN: '2', MAX_LIVE_ORIGINATED_CALLS: '1' });
    bed.sim.phones.set('101', { mode: 'ring' });
    const url = bed.engine.httpUrl;
    const body = { operator: '101', to: '+74957654321' };
    const noKey = await apiRequest(url, '/v1/calls', { body, key: null });
    expect([noKey.status, noKey.body.code]).to.deep.equal([401, 'unauthorized']);
    const badKey = await apiRequest(url, '/v1/calls', { body, key: 'x'.repeat(30) });
    expect([badKey.status, badKey.body.code]).to.deep.equal([403, 'forbidden']);

    const foreign = await post(bed, '/v1/calls', { operator: '101', to: '+1 213 373 4253' });
    expect([foreign.status, foreign.body.code]).to.deep.equal([403, 'destination_not_allowed']);
    const first = await post(bed, '/v1/calls', body);
    expect(first.status).to.equal(202);
    const capped = await post(bed, '/v1/calls', body);
    expect([capped.status, capped.body.code]).to.deep.equal([429, 'too_many_calls']);
    const limited: ApiAnswer<CallBody> = await post(bed, '/v1/calls', body);
    expect([limited.status, limited.body.code]).to.deep.equal([429, 'rate_limited']);
    expect(Number(limited.headers.get('retry-after'))).to.be.within(1, 60);
    const metrics = await bed.engine.registry.getSingleMetricAsString(
      'aricrm_call_guard_refusals_total',
    );
    for (const reason of ['destination_not_allowed', 'too_many_calls', 'rate_limited'])
      expect(metrics).to.include(`reason="${reason}"} 1`);
    expect(bed.logs.some((l) => l.reason === 'rate_limited' && l.keyName === 'test')).to.equal(
      true,
    );
    await post(bed, `/v1/calls/${first.body.id}/hangup`, undefined);
  });

  it('malformed bodies and numbers are 400s naming the field, nothing is dialled', async () => {
    bed = await startTestBed();
    const bad = await post(bed, '/v1/calls', { operator: '101', to: 'call me maybe' });
    expect(bad.status).to.equal(400);
    expect(bad.body).to.include({ code: 'invalid_number', field: 'to' });
    const missing = await post(bed, '/v1/calls', { to: '+74957654321' });
    expect(missing.body).to.include({ code: 'invalid_request', field: 'operator' });
    const broken = await post(bed, '/v1/calls', '{"operator":');
    expect(broken.body).to.include({ code: 'invalid_json' });
    expect(bed.sim.requests.some((r) => r.method === 'POST' && r.path === '/channels')).to.equal(
      false,
    );
  });
});
