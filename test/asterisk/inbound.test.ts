/**
 * Inbound calls on a real Asterisk 22 (the kit), SIPp phones as operators and callers, the engine
 * as a real process: answered, busy then the next operator, ring-all (also two operators answering
 * at the same moment), nobody answers, the caller abandons, the operator hangs up first. Each checks the webhooks (order, sequence, signatures),
 * the call record of GET /v1/calls/{id}, what each SIPp phone received, and that Asterisk has no
 * channel or bridge left.
 */
import { expect } from 'chai';
import { type AcceptanceBed } from './support/bed.ts';
import {
  CALLER,
  DID,
  callIn,
  describeOnAsterisk,
  routeTo,
  useAcceptanceBed,
} from './support/suite.ts';
import { Sipp } from './support/sipp.ts';
import { until } from '../support/until.ts';

describeOnAsterisk('real Asterisk: inbound calls', () => {
  let bed!: AcceptanceBed;
  useAcceptanceBed((b) => (bed = b));

  it('answered: the operator answers, the caller hangs up, the operator gets a BYE', async () => {
    const { ports } = bed;
    routeTo(bed, ['101']);
    const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 1000,
    });
    const { caller, callId } = await callIn(bed, 'uac.xml', 2000);
    const ended = await bed.ended(callId);
    await caller.passed();
    await operator.passed();

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(ended).to.include({
      direction: 'in',
      from: CALLER,
      did: DID,
      answeredBy: '101',
      disposition: 'answered',
      hangupBy: 'caller',
    });
    expect(ended.waitSec).to.be.within(1, 3);
    expect(ended.talkSec).to.be.within(1, 4);
    const call = await bed.call(callId);
    expect(call).to.include({ state: 'ended', answeredBy: '101', disposition: 'answered' });
    expect(call.waitSec).to.equal(ended.waitSec);
    expect(call.talkSec).to.equal(ended.talkSec);
    expect(caller.sentRequests()).to.include('BYE');
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    await bed.asterisk.waitIdle();
  });

  it('sequential: operator 101 is busy (486), 102 is rung next and answers', async () => {
    const { ports } = bed;
    routeTo(bed, ['101', '102'], { strategy: 'sequential' });
    const busy = Sipp.phone('op101', 'uas_busy.xml', ports, ports.operators['101']);
    const answering = Sipp.phone('op102', 'uas_answer.xml', ports, ports.operators['102'], {
      pauseMs: 500,
    });
    const { caller, callId } = await callIn(bed, 'uac.xml', 1500);
    const ended = await bed.ended(callId);
    await Promise.all([caller.passed(), busy.passed(), answering.passed()]);

    const types = bed.webhookTypes(callId);
    expect(types[0]).to.equal('call.started');
    expect(types.slice(-3)).to.deep.equal(['call.ringing', 'call.answered', 'call.ended']);
    const ringing = bed.crm
      .eventsOf(callId)
      .filter((w) => w.body.type === 'call.ringing')
      .map((w) => w.body.data.extension);
    expect(ringing.at(-1)).to.equal('102');
    expect(ended).to.include({ answeredBy: '102', disposition: 'answered', hangupBy: 'caller' });
    const call = await bed.call(callId);
    expect(call.answeredBy).to.equal('102');
    const legs = Object.fromEntries(
      call.legs
        .filter((l) => l.extension)
        .map((l): [string, string | undefined] => [l.extension ?? '', l.outcome]),
    );
    expect(legs).to.deep.equal({ '101': 'busy', '102': 'answered' });
    expect(busy.receivedRequests()).to.deep.equal(['INVITE', 'ACK']);
    expect(answering.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    await bed.asterisk.waitIdle();
  });

  it('ring-all: 101, 102, 103 ring, 102 answers, 101 and 103 get a CANCEL', async () => {
    const { ports } = bed;
    routeTo(bed, ['101', '102', '103']);
    const ring101 = Sipp.phone('op101', 'uas_ring.xml', ports, ports.operators['101']);
    const answer102 = Sipp.phone('op102', 'uas_answer.xml', ports, ports.operators['102'], {
      pauseMs: 1500,
    });
    const ring103 = Sipp.phone('op103', 'uas_ring.xml', ports, ports.operators['103']);
    const { caller, callId } = await callIn(bed, 'uac.xml', 1500);
    const ended = await bed.ended(callId);
    await Promise.all([caller.passed(), ring101.passed(), answer102.passed(), ring103.passed()]);

    const types = bed.webhookTypes(callId);
    expect(types).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.ringing',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    const ringing = bed.crm
      .eventsOf(callId)
      .filter((w) => w.body.type === 'call.ringing')
      .map((w) => w.body.data.extension);
    expect([...ringing].sort()).to.deep.equal(['101', '102', '103']);
    expect(ended).to.include({ answeredBy: '102', disposition: 'answered', hangupBy: 'caller' });
    expect(ended.waitSec).to.be.within(1, 4);
    expect(ring101.receivedRequests()).to.deep.equal(['INVITE', 'CANCEL', 'ACK']);
    expect(ring103.receivedRequests()).to.deep.equal(['INVITE', 'CANCEL', 'ACK']);
    expect(answer102.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    const call = await bed.call(callId);
    expect(call.answeredBy).to.equal('102');
    await bed.asterisk.waitIdle();
  });

  it('ring-all, 101 and 102 answer at the same moment: one is bridged with the caller, the other hung up at once; one call.answered', async () => {
    const { ports } = bed;
    routeTo(bed, ['101', '102']);
    // Both phones ring for 1 s and answer, so their 200 OKs reach Asterisk within milliseconds
    // of each other (as far apart as the engine's two dials). The later one is usually answered
    // and hung up at once, but may also be cancelled just before it answers (its SIPp scenario
    // then fails on the CANCEL; only what the engine and Asterisk did is checked for it).
    const answer101 = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 1000,
    });
    const answer102 = Sipp.phone('op102', 'uas_answer.xml', ports, ports.operators['102'], {
      pauseMs: 1000,
    });
    const { caller, callId } = await callIn(bed, 'uac.xml', 4000);
    await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.answered' && w.body.callId === callId,
      15_000,
    );
    // While the caller talks: one bridge with the caller and one operator, and the other
    // operator's channel gone.
    let bridges: Array<{ channels: string[] }> = [];
    let channels: Array<{ id: string; name: string }> = [];
    await until(
      async () => {
        bridges = (await bed.asterisk.ari<Array<{ channels: string[] }>>('/bridges')).body;
        channels = (await bed.asterisk.ari<Array<{ id: string; name: string }>>('/channels')).body;
        return bridges.length === 1 && bridges[0]!.channels.length === 2 && channels.length === 2;
      },
      'one bridge of two channels and nothing else',
      10_000,
    );
    const ended = await bed.ended(callId);
    const winner = ended.answeredBy as string;
    const [winnerPhone, otherPhone] =
      winner === '101' ? [answer101, answer102] : [answer102, answer101];
    await Promise.all([caller.passed(), winnerPhone.passed(), otherPhone.exited]);

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(['101', '102']).to.include(winner);
    expect(ended).to.include({ disposition: 'answered', hangupBy: 'caller' });
    const answered = bed.crm.eventsOf(callId).find((w) => w.body.type === 'call.answered')!;
    expect(answered.body.data.extension).to.equal(winner);
    // The winner got its BYE when the caller hung up; the other phone either answered and got
    // its BYE at once, or was cancelled.
    expect(winnerPhone.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect([
      ['INVITE', 'ACK', 'BYE'],
      ['INVITE', 'CANCEL'],
      ['INVITE', 'CANCEL', 'ACK'],
    ]).to.deep.include(otherPhone.receivedRequests());
    const call = await bed.call(callId);
    expect(call.answeredBy).to.equal(winner);
    const legs = (call.legs ?? []).filter((l) => l.role === 'operator');
    expect(legs.map((l) => l.extension).sort()).to.deep.equal(['101', '102']);
    expect(legs.filter((l) => l.outcome === 'answered').map((l) => l.extension)).to.deep.equal([
      winner,
    ]);
    await bed.asterisk.waitIdle();
  });

  it('nobody answers: 101 rings out (CANCEL), the caller goes to the no-answer dialplan', async () => {
    const { ports } = bed;
    routeTo(bed, ['101'], { ringTimeoutSec: 2 });
    const ringing = Sipp.phone('op101', 'uas_ring.xml', ports, ports.operators['101']);
    // The engine's NO_ANSWER_DIALPLAN is service,9999,1: Answer, Playback(hello-world), Hangup.
    const { caller, callId } = await callIn(bed, 'uac_wait_bye.xml');
    const ended = await bed.ended(callId);
    await Promise.all([caller.passed(), ringing.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal(['call.started', 'call.ringing', 'call.ended']);
    expect(ended).to.include({ disposition: 'no_answer' });
    expect(ended).to.not.have.property('answeredBy');
    expect(ended.talkSec).to.equal(0);
    expect(ended.waitSec).to.be.within(2, 4);
    expect(ringing.receivedRequests()).to.deep.equal(['INVITE', 'CANCEL', 'ACK']);
    // Answered by the service number's dialplan, hung up by it after the playback.
    expect(caller.receivedResponses()).to.include('200');
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    const call = await bed.call(callId);
    expect(call).to.include({ disposition: 'no_answer', talkSec: 0 });
    await bed.asterisk.waitIdle();
  });

  it('the caller abandons while 101 rings: 101 gets a CANCEL, disposition canceled', async () => {
    const { ports } = bed;
    routeTo(bed, ['101']);
    const ringing = Sipp.phone('op101', 'uas_ring.xml', ports, ports.operators['101']);
    const { caller, callId } = await callIn(bed, 'uac_cancel.xml', 1500);
    const ended = await bed.ended(callId);
    await Promise.all([caller.passed(), ringing.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal(['call.started', 'call.ringing', 'call.ended']);
    expect(ended).to.include({ disposition: 'canceled', hangupBy: 'caller', talkSec: 0 });
    expect(ringing.receivedRequests()).to.deep.equal(['INVITE', 'CANCEL', 'ACK']);
    expect(caller.receivedResponses()).to.include.members(['180', '487']);
    const call = await bed.call(callId);
    expect(call).to.include({ disposition: 'canceled', hangupBy: 'caller' });
    await bed.asterisk.waitIdle();
  });

  it('the operator hangs up first: the caller gets a BYE', async () => {
    const { ports } = bed;
    routeTo(bed, ['101']);
    const operator = Sipp.phone('op101', 'uas_answer_bye.xml', ports, ports.operators['101'], {
      pauseMs: 1500,
    });
    const { caller, callId } = await callIn(bed, 'uac_wait_bye.xml');
    const ended = await bed.ended(callId);
    await Promise.all([caller.passed(), operator.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(ended).to.include({
      answeredBy: '101',
      disposition: 'answered',
      hangupBy: 'operator',
    });
    expect(ended.talkSec).to.be.within(1, 3);
    expect(operator.sentRequests()).to.deep.equal(['BYE']);
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    const call = await bed.call(callId);
    expect(call).to.include({ hangupBy: 'operator', disposition: 'answered' });
    await bed.asterisk.waitIdle();
  });
});
