/**
 * Operators dialling out from their phones: `Stasis(crm-app,outbound,<number>)`,
 * the customer dialled through the trunk chosen by prefix, bridged, cleaned up.
 */
import { expect } from 'chai';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { releasedCall } from '../support/released.ts';

describe('operator dials out (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  it('dials the customer through the trunk chosen by prefix, with the company caller ID, and bridges', async () => {
    bed = await startTestBed({
      TRUNKS: '*=PJSIP/{number}@client-trunk,7916=PJSIP/{number}@client-trunk',
      COMPANY_CALLER_ID: '74957654321',
    });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 1500, hangupAfterMs: 2000 });
    const { channelId } = await bed.sim.injectOperatorCall({ extension: '102', to: '79161234567' });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.from === '102',
    );
    const callId = started.body.callId;
    const end = await bed.crm.waitForEnded(callId);
    expect(started.body.data).to.include({ direction: 'out', from: '102', to: '79161234567' });
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.answered',
      'call.ended',
    ]);
    expect(bed.crm.eventsOf(callId)[1]!.body.data).to.include({ extension: '102' });
    const data = end.body.data;
    expect(data).to.include({
      direction: 'out',
      answeredBy: '102',
      disposition: 'answered',
      hangupBy: 'customer',
    });
    const answeredAt = Date.parse(String(data.answeredAt));
    expect(answeredAt - Date.parse(String(data.startedAt))).to.be.at.least(1500 * 0.02 - 5);

    const create = bed.sim.requests.find((r) => r.path === '/channels/create');
    expect(create?.query).to.include({ endpoint: 'PJSIP/79161234567@client-trunk' });
    expect(JSON.stringify(create?.body)).to.include('"CALLERID(num)":"74957654321"');
    const dial = bed.sim.requests.find(
      (r) => r.path === `/channels/${String(create?.query.channelId)}/dial`,
    );
    expect(dial?.query).to.include({ caller: channelId });
    const paths = bed.sim.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).to.include.members([
      `POST /channels/${channelId}/ring`,
      `POST /channels/${channelId}/answer`,
      `DELETE /channels/${channelId}`,
    ]);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('blind-transfers to 103: the operator who dialled out stays on until 103 answers, then 103 has the customer', async () => {
    bed = await startTestBed();
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 200 });
    const { channelId: phone } = await bed.sim.injectOperatorCall({
      extension: '102',
      to: '79161234568',
    });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.to === '79161234568',
    );
    const callId = started.body.callId;
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.answered',
    );
    await bed.engine.calls.settled();
    bed.sim.phones.set('103', { mode: 'answer', answerAfterMs: 500 });
    const ringing = await bed.engine.calls.transferCall(callId, { kind: 'extension', to: '103' });
    expect(ringing).to.deep.include({ state: 'bridged', answeredBy: '102' });
    expect(ringing.transfer).to.include({ to: '103', state: 'ringing' });
    expect(bed.sim.channels().some((c) => c.id === phone)).to.equal(true);
    await bed.crm.waitForWebhook(
      (w) =>
        w.body.callId === callId &&
        w.body.type === 'call.answered' &&
        w.body.data.extension === '103',
    );
    await bed.engine.calls.settled();
    const call = bed.engine.calls.getCall(callId)!;
    expect(call).to.include({ state: 'bridged', answeredBy: '103' });
    const customer = call.legs.find((l) => l.role === 'customer')!.channelId;
    const op103 = call.legs.find((l) => l.extension === '103')!.channelId;
    const bridge = (await bed.engine.gateway.bridges.list()).find(
      (b) => b.name === `call-${callId}`,
    );
    expect([...bridge!.channels].sort()).to.deep.equal([customer, op103].sort());
    expect(bed.engine.calls.currentCallOf('102')).to.equal(undefined);
    bed.sim.hangup(op103);
    const end = await bed.crm.waitForEnded(callId);
    expect(end.body.data).to.include({ answeredBy: '103', hangupBy: 'operator' });
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.answered',
      'call.ringing',
      'call.transferred',
      'call.answered',
      'call.ended',
    ]);
    const stored = await releasedCall(bed, callId);
    expect(stored.legs.map((l) => [l.role, l.extension])).to.deep.equal([
      ['caller', '102'],
      ['customer', undefined],
      ['operator', '103'],
    ]);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('hangs the operator up with reason busy when the customer is busy', async () => {
    bed = await startTestBed();
    bed.sim.customers.set('79161234500', { mode: 'busy' });
    const { channelId } = await bed.sim.injectOperatorCall({ extension: '101', to: '79161234500' });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.to === '79161234500',
    );
    const end = await bed.crm.waitForEnded(started.body.callId);
    expect(bed.crm.eventsOf(started.body.callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.ended',
    ]);
    expect(end.body.data).to.include({ disposition: 'busy', talkSec: 0 });
    const hangup = bed.sim.requests.find(
      (r) => r.method === 'DELETE' && r.path === `/channels/${channelId}`,
    );
    expect(hangup?.query).to.include({ reason: 'busy' });
  });

  it('cancels the customer leg when the operator hangs up while it rings', async () => {
    bed = await startTestBed();
    bed.sim.customers.set('*', { mode: 'ring' });
    await bed.sim.injectOperatorCall({ extension: '103', to: '79161234501', abandonAfterMs: 3000 });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.to === '79161234501',
    );
    const end = await bed.crm.waitForEnded(started.body.callId);
    expect(end.body.data).to.include({ disposition: 'canceled', hangupBy: 'operator' });
    const leg = (await releasedCall(bed, started.body.callId)).legs.find(
      (l) => l.role === 'customer',
    )!;
    expect(
      bed.sim.requests.some(
        (r) => r.method === 'DELETE' && r.path === `/channels/${leg.channelId}`,
      ),
    ).to.equal(true);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('toll fraud from a desk phone: premium-rate +7 809 and a number outside the allow-list are refused before the trunk is dialled (congestion to the phone); an ordinary number connects', async () => {
    bed = await startTestBed();
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 500 });
    // As a Russian operator dials them: 8 809… (premium-rate), 810 1 213… (the USA).
    const refusals = [
      { to: '88095051234', endReason: 'destination_type_not_allowed', e164: '+78095051234' },
      { to: '81012133734253', endReason: 'destination_not_allowed', e164: '+12133734253' },
    ];
    for (const { to, endReason, e164 } of refusals) {
      const { channelId } = await bed.sim.injectOperatorCall({ extension: '102', to });
      const started = await bed.crm.waitForWebhook(
        (w) => w.body.type === 'call.started' && w.body.data.to === to,
      );
      const end = await bed.crm.waitForEnded(started.body.callId);
      expect(end.body.data, to).to.include({
        disposition: 'failed',
        hangupBy: 'system',
        endReason,
        talkSec: 0,
      });
      expect(bed.crm.eventsOf(started.body.callId).map((w) => w.body.type)).to.deep.equal([
        'call.started',
        'call.ended',
      ]);
      const hangup = bed.sim.requests.find(
        (r) => r.method === 'DELETE' && r.path === `/channels/${channelId}`,
      );
      expect(hangup?.query, to).to.include({ reason: 'congestion' });
      expect(
        bed.logs.some(
          (l) =>
            l.message === 'call refused by the toll-fraud guard' &&
            l.source === 'operator_phone' &&
            l.reason === endReason &&
            l.operator === '102' &&
            l.to === e164,
        ),
        to,
      ).to.equal(true);
    }
    // Nothing was dialled: no channel towards the trunk, the phones were never even rung.
    expect(bed.sim.requests.filter((r) => r.path === '/channels/create')).to.have.length(0);
    expect(bed.sim.requests.filter((r) => r.path.endsWith('/ring'))).to.have.length(0);
    const metrics = await bed.engine.registry.getSingleMetricAsString(
      'aricrm_call_guard_refusals_total',
    );
    for (const { endReason } of refusals)
      expect(metrics).to.include(`source="operator_phone",reason="${endReason}"} 1`);

    await bed.sim.injectOperatorCall({ extension: '102', to: '89161234567' });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.to === '89161234567',
    );
    const end = await bed.crm.waitForEnded(started.body.callId);
    expect(end.body.data).to.include({ disposition: 'answered', answeredBy: '102' });
    expect(end.body.data).to.not.have.property('endReason');
    const create = bed.sim.requests.find((r) => r.path === '/channels/create');
    expect(create?.query.endpoint).to.equal('PJSIP/89161234567@client-trunk');
    expect(bed.sim.channels()).to.have.length(0);
  });
});
