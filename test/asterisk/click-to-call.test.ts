/**
 * Click-to-call on a real Asterisk 22 (the kit): POST /v1/calls rings the operator's SIPp phone,
 * then dials the customer's SIPp phone through the `client-trunk` endpoint. Answered, customer
 * busy, operator busy then answered on the retry, and the compat `asterisk.fcgi?makecall=`.
 */
import { expect } from 'chai';
import { type AcceptanceBed } from './support/bed.ts';
import { describeOnAsterisk, useAcceptanceBed } from './support/suite.ts';
import { Sipp } from './support/sipp.ts';
import { until } from '../support/until.ts';

const CUSTOMER = '+74957654321';

describeOnAsterisk('real Asterisk: click-to-call', () => {
  let bed!: AcceptanceBed;
  useAcceptanceBed((b) => (bed = b));

  async function clickToCall(body: Record<string, unknown>): Promise<string> {
    const answer = await bed.api('/v1/calls', {
      body: { operator: '101', to: CUSTOMER, ...body },
    });
    expect(answer.status, answer.text).to.equal(202);
    return String(answer.body.id);
  }

  it('answered: operator 101 answers, the customer answers and hangs up, 101 gets a BYE', async () => {
    const { ports } = bed;
    const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    const customer = Sipp.phone('customer', 'uas_answer_bye.xml', ports, ports.trunk, {
      pauseMs: 2000,
    });
    const callId = await clickToCall({ variables: { dealId: 'D-17' } });
    const ended = await bed.ended(callId);
    await Promise.all([operator.passed(), customer.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(bed.crm.eventsOf(callId)[0]!.body.data).to.deep.include({
      direction: 'out',
      from: '101',
      to: CUSTOMER,
      variables: { dealId: 'D-17' },
    });
    expect(ended).to.include({
      direction: 'out',
      answeredBy: '101',
      disposition: 'answered',
      hangupBy: 'customer',
    });
    expect(ended.talkSec).to.be.within(1, 4);
    const call = await bed.call(callId);
    expect(call).to.include({ state: 'ended', disposition: 'answered', answeredBy: '101' });
    expect(call.legs.map((l) => [l.role, l.outcome])).to.deep.equal([
      ['operator', 'answered'],
      ['customer', 'answered'],
    ]);
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect(customer.sentRequests()).to.deep.equal(['BYE']);
    await bed.asterisk.waitIdle();
  });

  it('customer busy: the call ends busy, the operator gets a BYE', async () => {
    const { ports } = bed;
    const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    const customer = Sipp.phone('customer', 'uas_busy.xml', ports, ports.trunk);
    const callId = await clickToCall({});
    const ended = await bed.ended(callId);
    await Promise.all([operator.passed(), customer.passed()]);

    const types = bed.webhookTypes(callId);
    expect(types[0]).to.equal('call.started');
    expect(types.at(-1)).to.equal('call.ended');
    expect(types).to.not.include('call.answered');
    expect(ended).to.include({ direction: 'out', disposition: 'busy', talkSec: 0 });
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect(customer.receivedRequests()).to.deep.equal(['INVITE', 'ACK']);
    const call = await bed.call(callId);
    expect(call).to.include({ disposition: 'busy' });
    expect(call.legs.find((l) => l.role === 'customer')?.outcome).to.equal('busy');
    await bed.asterisk.waitIdle();
  });

  it('operator busy on the first try, answers the retry; the customer answers', async () => {
    const { ports } = bed;
    const busy = Sipp.phone('op101-busy', 'uas_busy.xml', ports, ports.operators['101']);
    const customer = Sipp.phone('customer', 'uas_answer_bye.xml', ports, ports.trunk, {
      pauseMs: 1500,
    });
    const callId = await clickToCall({ tries: 2, triesPeriodSec: 2 });
    await busy.passed();
    // The same phone, answering now (the retry comes triesPeriodSec after the busy).
    const answering = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    const ended = await bed.ended(callId);
    await Promise.all([answering.passed(), customer.passed()]);

    expect(bed.webhookTypes(callId).at(-1)).to.equal('call.ended');
    expect(ended).to.include({
      disposition: 'answered',
      answeredBy: '101',
      hangupBy: 'customer',
    });
    const call = await bed.call(callId);
    expect(call.legs.filter((l) => l.role === 'operator').map((l) => l.outcome)).to.deep.equal([
      'busy',
      'answered',
    ]);
    expect(busy.receivedRequests()).to.deep.equal(['INVITE', 'ACK']);
    expect(answering.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    await bed.asterisk.waitIdle();
  });

  it("hung up right after it was placed: the operator's ringing phone gets a CANCEL, nothing is left", async () => {
    const { ports } = bed;
    const operator = Sipp.phone('op101', 'uas_ring.xml', ports, ports.operators['101']);
    const callId = await clickToCall({});
    const hungUp = await bed.api(`/v1/calls/${callId}/hangup`, { method: 'POST' });
    expect(hungUp.status, hungUp.text).to.equal(200);
    // uas_ring rings until CANCEL: it passes once it got one (and the ACK of its 487).
    await operator.passed(5_000);
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'CANCEL', 'ACK']);
    const ended = await bed.ended(callId);
    expect(ended).to.include({ disposition: 'canceled', hangupBy: 'system', talkSec: 0 });
    expect(bed.webhookTypes(callId)).to.not.include('call.answered');
    const call = await bed.call(callId);
    expect(call).to.include({ endReason: 'api_hangup' });
    expect(call.legs.map((l) => [l.role, l.outcome])).to.deep.equal([['operator', 'canceled']]);
    await bed.asterisk.waitIdle();
  });

  it("the originate's answer is lost as the CRM hangs up: the operator's phone still gets a CANCEL within seconds", async () => {
    const { ports } = bed;
    const operator = Sipp.phone('op101', 'uas_ring.xml', ports, ports.operators['101']);
    const reconnects = (): number =>
      bed.engine!.lines.filter((l) => l.message === 'ARI reconnected').length;
    const before = reconnects();
    // Asterisk originates the operator leg (the phone rings), then every connection to the
    // engine drops before its answer arrives: the engine gets a connection error, or a 409
    // "already exists" when its HTTP client sends the request again on a new connection.
    const lost = bed.proxy.loseAnswerTo(/^POST \/ari\/channels\?/);
    const callId = await clickToCall({});
    const hungUp = await bed.api(`/v1/calls/${callId}/hangup`, { method: 'POST' });
    expect(hungUp.status, hungUp.text).to.equal(200);
    await lost;
    const ended = await bed.ended(callId);
    // The CRM's hang-up decides how the call ends, whether the engine learnt of the channel (409
    // "already exists" on the resent request) or gave the leg up (a connection error).
    expect(ended).to.include({ disposition: 'canceled', hangupBy: 'system' });
    expect(await bed.call(callId)).to.include({ endReason: 'api_hangup' });
    // Without its hang-up the phone would ring on for the 20 s ring time of the originate.
    await operator.passed(8_000);
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'CANCEL', 'ACK']);
    expect(bed.webhookTypes(callId).filter((t) => t === 'call.ended')).to.have.length(1);
    await bed.asterisk.waitIdle();
    await until(() => reconnects() > before, 'the engine connected to ARI again', 20_000);
  });

  it("the originate's answer is lost and the engine stops before it could hang the phone up: the next start does", async () => {
    const { ports } = bed;
    const operator = Sipp.phone('op101', 'uas_ring.xml', ports, ports.operators['101']);
    // Asterisk originates the operator leg (the phone rings), then ARI stays unreachable: the
    // engine gives the leg up and cannot send its hang-up by id before it stops.
    const lost = bed.proxy.loseAnswerTo(/^POST \/ari\/channels\?/).then(() => bed.proxy.cut(true));
    const callId = await clickToCall({});
    await lost;
    const engine = bed.engine!;
    const givenUp = await engine.waitForLine(
      (l) => l.message === 'could not create leg' && l.callId === callId,
    );
    const channelId = String(givenUp.legChannelId);
    await bed.ended(callId);
    await bed.stopEngine();
    const ringing = await bed.asterisk.ari<Array<{ id: string; state: string }>>(
      `/channels/${channelId}`,
    );
    expect(ringing.body, 'the phone still rings after the stop').to.include({
      id: channelId,
      state: 'Ringing',
    });
    expect(operator.receivedRequests()).to.deep.equal(['INVITE']);

    bed.proxy.restore();
    await bed.startEngine();
    const hungUp = await bed.engine!.waitForLine(
      (l) => l.message === 'hanging up a channel of no live call' && l.channelId === channelId,
    );
    expect(hungUp.reason).to.match(/outside the app/);
    // Well before the originate's own 20 s ring time.
    await operator.passed(5_000);
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'CANCEL', 'ACK']);
    expect(bed.webhookTypes(callId).filter((t) => t === 'call.ended')).to.have.length(1);
    await bed.asterisk.waitIdle();
  });

  it('compat asterisk.fcgi?makecall= answers "Answer: OK" once the customer rings', async () => {
    const { ports } = bed;
    const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    const customer = Sipp.phone('customer', 'uas_answer_bye.xml', ports, ports.trunk, {
      pauseMs: 1500,
    });
    // OPERATOR_IP_MAP=127.0.0.1=101: this workstation is operator 101's.
    const answer = await bed.api('/asterisk.fcgi?makecall=84957654321');
    expect(answer.status, answer.text).to.equal(200);
    expect(answer.text.trim()).to.equal('Answer: OK');
    const callId = answer.headers.get('x-call-id');
    expect(callId).to.be.a('string');
    const ended = await bed.ended(callId!);
    await Promise.all([operator.passed(), customer.passed()]);

    expect(bed.webhookTypes(callId!)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(ended).to.include({
      direction: 'out',
      to: CUSTOMER,
      answeredBy: '101',
      disposition: 'answered',
    });
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    await bed.asterisk.waitIdle();
  });
});
