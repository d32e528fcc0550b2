/**
 * Operators dialling out from their desk phones on a real Asterisk 22 (the kit): a SIPp phone
 * calls from operator 101's port (context from-internal, `Stasis(crm-app,outbound,<number>)`).
 * An ordinary number reaches the customer's SIPp phone behind `client-trunk` and is bridged; a
 * premium-rate number is refused by the toll-fraud guard before anything is dialled: the desk
 * phone gets 503, the trunk never an INVITE, the refusal is counted on /metrics and reported in
 * the webhooks and the call record.
 */
import { expect } from 'chai';
import { type AcceptanceBed } from './support/bed.ts';
import { describeOnAsterisk, useAcceptanceBed } from './support/suite.ts';
import { Sipp } from './support/sipp.ts';

/** `aricrm_call_guard_refusals_total{source="operator_phone",reason}` as /metrics says now. */
async function refusals(bed: AcceptanceBed, reason: string): Promise<number> {
  const metrics = await bed.api('/metrics', { key: null });
  expect(metrics.status).to.equal(200);
  const line = metrics.text
    .split('\n')
    .find((l) =>
      l.startsWith(`aricrm_call_guard_refusals_total{source="operator_phone",reason="${reason}"} `),
    );
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describeOnAsterisk('real Asterisk: operators dialling out from the desk phone', () => {
  let bed!: AcceptanceBed;
  useAcceptanceBed((b) => (bed = b));

  it('an ordinary number: the customer behind the trunk answers, bridged with operator 101', async () => {
    const { ports } = bed;
    const customer = Sipp.phone('customer', 'uas_answer.xml', ports, ports.trunk, {
      pauseMs: 500,
    });
    const next = bed.nextCallStarted();
    const desk = Sipp.deskPhone('op101-desk', 'uac.xml', ports, {
      extension: '101',
      number: '89161234567',
      pauseMs: 2000,
    });
    const started = await next;
    const callId = started.body.callId;
    expect(started.body.data).to.include({ direction: 'out', from: '101', to: '89161234567' });
    const ended = await bed.ended(callId);
    await Promise.all([desk.passed(), customer.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal(['call.started', 'call.answered', 'call.ended']);
    expect(bed.crm.eventsOf(callId)[1]!.body.data).to.include({ extension: '101' });
    expect(ended).to.include({
      direction: 'out',
      answeredBy: '101',
      disposition: 'answered',
      hangupBy: 'operator',
    });
    expect(ended).to.not.have.property('endReason');
    expect(customer.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect(desk.receivedResponses()).to.include('200');
    await bed.asterisk.waitIdle();
  });

  it('premium-rate 8 809…: refused before the trunk is dialled, 503 to the phone, counted on /metrics', async () => {
    const { ports } = bed;
    const number = '88095051234';
    const before = await refusals(bed, 'destination_type_not_allowed');
    // The customers' phone is there to answer: it must never get the call.
    const trunk = Sipp.phone('customer', 'uas_answer.xml', ports, ports.trunk, { pauseMs: 200 });
    const next = bed.nextCallStarted();
    const desk = Sipp.deskPhone('op101-desk', 'uac_refused.xml', ports, {
      extension: '101',
      number,
    });
    const started = await next;
    const callId = started.body.callId;
    const ended = await bed.ended(callId);
    await desk.passed();

    expect(started.body.data).to.include({ direction: 'out', from: '101', to: number });
    expect(bed.webhookTypes(callId)).to.deep.equal(['call.started', 'call.ended']);
    expect(ended).to.include({
      direction: 'out',
      disposition: 'failed',
      hangupBy: 'system',
      endReason: 'destination_type_not_allowed',
      talkSec: 0,
    });
    expect(ended).to.not.have.property('answeredBy');
    const call = await bed.call(callId);
    expect(call).to.include({
      state: 'ended',
      disposition: 'failed',
      endReason: 'destination_type_not_allowed',
    });
    // Asterisk answers the phone 503 Service Unavailable (hung up with cause congestion).
    expect(desk.receivedResponses().filter((c) => c !== '100')).to.deep.equal(['503']);
    expect(desk.sentRequests()).to.deep.equal(['INVITE', 'ACK']);
    expect(await refusals(bed, 'destination_type_not_allowed')).to.equal(before + 1);
    const logged = bed.engine!.lines.find(
      (l) => l.message === 'call refused by the toll-fraud guard' && l.callId === callId,
    );
    expect(logged).to.include({
      source: 'operator_phone',
      reason: 'destination_type_not_allowed',
      operator: '101',
      to: '+78095051234',
      numberType: 'PREMIUM_RATE',
    });
    await bed.asterisk.waitIdle();
    // Nothing went towards the trunk.
    expect(trunk.receivedRequests()).to.deep.equal([]);
    expect(trunk.child.exitCode, 'the trunk phone still waits for a call').to.equal(null);
  });
});
