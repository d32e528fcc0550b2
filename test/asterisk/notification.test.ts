/**
 * Notification calls on a real Asterisk 22 (the kit): the engine originates the customer's SIPp
 * phone through the `client-trunk` endpoint, plays the confirm prompt, waits for the digit (RFC
 * 2833 DTMF from SIPp), plays the message and hangs up; a busy customer is retried, then busy;
 * with answering-machine detection the channel goes through the project's `[crm-amd]` context
 * (added to the kit's configuration by the bed) and back.
 */
import { expect } from 'chai';
import type { AutocallJobView } from '../../src/autocalls/index.ts';
import { until } from '../support/until.ts';
import { sharedBed, stopSharedBed, type AcceptanceBed } from './support/bed.ts';
import { kitAvailable } from './support/kit.ts';
import { Sipp } from './support/sipp.ts';

const CUSTOMER = '+74957654321';

if (kitAvailable()) {
  after(stopSharedBed);
  describe('real Asterisk: notification calls', function () {
    this.timeout(90_000);
    let bed: AcceptanceBed;

    before(async function () {
      this.timeout(180_000);
      bed = await sharedBed();
    });
    afterEach(async function () {
      if (this.currentTest?.state === 'failed' && bed) console.log(bed.engineLog());
      await bed?.reset();
    });

    async function createJob(body: Record<string, unknown>): Promise<number> {
      const answer = await bed.api<AutocallJobView>('/v1/autocalls', {
        body: { to: CUSTOMER, ...body },
      });
      expect(answer.status, answer.text).to.equal(202);
      return answer.body.id;
    }
    async function finalJob(id: number, status: string): Promise<AutocallJobView> {
      let job: AutocallJobView | undefined;
      await until(
        async () => {
          job = (await bed.api<AutocallJobView>(`/v1/autocalls/${id}`)).body;
          return job.status === status;
        },
        `job ${id} ${status} (last: ${job?.status})`,
        60_000,
      );
      return job!;
    }

    it('the customer presses 1 after the prompt: hello-world plays, delivered, the engine hangs up', async () => {
      const { ports } = bed;
      const customer = Sipp.phone('customer', 'uas_answer_dtmf1.xml', ports, ports.trunk, {
        pauseMs: 500,
      });
      const id = await createJob({
        files: ['sound:hello-world'],
        confirm: { digit: '1', prompt: ['hello-world'], timeoutSec: 5, repeats: 2 },
        tries: 1,
      });
      const job = await finalJob(id, 'delivered');
      await customer.passed();
      const attempt = job.attempts![0]!;
      expect(attempt).to.deep.include({ dialStatus: 'ANSWER', digits: '1', outcome: 'delivered' });
      expect(attempt.playedSec).to.be.within(1, 2); // hello-world is about 1.4 s
      expect(customer.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
      const ended = await bed.ended(attempt.callId!);
      expect(ended).to.include({ direction: 'out', disposition: 'answered', hangupBy: 'system' });
      await bed.asterisk.waitIdle();
    });

    it('answering-machine detection: the channel leaves Stasis for [crm-amd], comes back NOTSURE (a phone sending no audio), the message plays, delivered', async () => {
      const { ports } = bed;
      // uas_answer sends no audio: AMD() is not sure once its total analysis time is over.
      const customer = Sipp.phone('customer', 'uas_answer.xml', ports, ports.trunk, {
        pauseMs: 300,
      });
      const id = await createJob({
        files: ['sound:hello-world'],
        amd: { enabled: true, totalAnalysisTimeMs: 2000 },
        tries: 1,
      });
      const job = await finalJob(id, 'delivered');
      await customer.passed();
      const attempt = job.attempts![0]!;
      expect(attempt).to.deep.include({
        dialStatus: 'ANSWER',
        outcome: 'delivered',
        amdStatus: 'NOTSURE',
      });
      expect(attempt.amdCause).to.match(/^TOOLONG-\d+$/);
      expect(attempt.playedSec).to.be.within(1, 2);
      expect(customer.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
      // The StasisEnd on the way to the dialplan did not end the call: it ended once, answered,
      // hung up by the engine after the message.
      const ended = await bed.ended(attempt.callId!);
      expect(ended).to.include({ direction: 'out', disposition: 'answered', hangupBy: 'system' });
      const endedEvents = bed.crm.webhooks.filter(
        (w) => w.body.type === 'call.ended' && w.body.callId === attempt.callId,
      );
      expect(endedEvents).to.have.length(1);
      await bed.asterisk.waitIdle();
    });

    it('a busy customer is retried tries times, then the job ends busy', async () => {
      const { ports } = bed;
      const customer = Sipp.phone('customer', 'uas_busy.xml', ports, ports.trunk, { calls: 2 });
      const id = await createJob({ files: ['sound:hello-world'], tries: 2, triesPeriodSec: 1 });
      const job = await finalJob(id, 'busy');
      await customer.passed();
      expect(job.attempts!.map((a) => [a.dialStatus, a.cause, a.outcome])).to.deep.equal([
        ['BUSY', 17, 'busy'],
        ['BUSY', 17, 'busy'],
      ]);
      await bed.asterisk.waitIdle();
    });
  });
}
