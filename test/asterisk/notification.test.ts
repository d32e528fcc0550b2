/**
 * Notification calls on a real Asterisk 22 (the kit): the engine originates the customer's SIPp
 * phone through the `client-trunk` endpoint, plays the confirm prompt, waits for the digit (RFC
 * 2833 DTMF from SIPp), plays the message (Asterisk sounds and WAV files it fetches over HTTP)
 * and hangs up; a WAV that cannot be fetched fails its item, not the call; a busy customer is
 * retried, then busy; with answering-machine detection the channel goes through the project's
 * `[crm-amd]` context (added to the kit's configuration by the bed) and back, also across an
 * engine crash while `AMD()` listens (the verdict after the restart, while no engine runs, or the
 * customer hanging up meanwhile).
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AutocallJobView } from '../../src/autocalls/index.ts';
import { audioFile, framesIn } from '../../src/simulator/wav.ts';
import { closedPort } from '../crm/helpers.ts';
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

    /**
     * The customer channel once it runs `app` in `[crm-amd]` (Asterisk's own listing): `AMD()`
     * listening, or `Wait()` between two tries of a failed `Stasis()`.
     */
    async function channelInAmd(app: 'AMD' | 'Wait' = 'AMD'): Promise<string> {
      let id: string | undefined;
      await until(
        async () => {
          const channels =
            await bed.asterisk.ari<
              Array<{ id: string; dialplan: { context: string; app_name: string } }>
            >('/channels');
          id = channels.body.find(
            (c) => c.dialplan.context === 'crm-amd' && c.dialplan.app_name === app,
          )?.id;
          return id !== undefined;
        },
        `the customer channel in [crm-amd], running ${app}()`,
        20_000,
      );
      return id!;
    }
    /**
     * The job's one attempt, taken over by the engine started again, ends delivered with
     * Asterisk's NOTSURE verdict (a phone sending no audio) and the message played; the call is
     * started, recovered and ended once, and nothing is left in Asterisk.
     */
    async function deliveredAcrossRestart(
      id: number,
      callId: string,
      customer: Sipp,
    ): Promise<void> {
      const job = await finalJob(id, 'delivered');
      await customer.passed();
      expect(job.attempts, JSON.stringify(job.attempts)).to.have.length(1);
      expect(job.attempts![0]).to.deep.include({
        callId,
        dialStatus: 'ANSWER',
        outcome: 'delivered',
        amdStatus: 'NOTSURE',
      });
      expect(job.attempts![0]!.amdCause).to.match(/^TOOLONG-\d+$/);
      expect(job.attempts![0]!.playedSec).to.be.within(1, 2);
      expect(customer.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
      expect(await bed.ended(callId)).to.include({ disposition: 'answered', hangupBy: 'system' });
      expect(bed.webhookTypes(callId)).to.deep.equal([
        'call.started',
        'call.recovered',
        'call.ended',
      ]);
      await bed.asterisk.waitIdle();
    }
    /** Resolves once the store holds the call's answer (`GET /v1/calls` reads the store). */
    async function storedAnswered(callId: string): Promise<void> {
      await until(
        async () => {
          const page = await bed.api<{ items: Array<{ id: string; answeredAt?: string }> }>(
            '/v1/calls?direction=out&limit=20',
          );
          return page.body.items.some((c) => c.id === callId && c.answeredAt !== undefined);
        },
        'the store to hold the answer',
        10_000,
      );
    }
    /** The call id of the job's call (its `call.started` webhook). */
    async function callOfJob(id: number): Promise<string> {
      const started = await bed.crm.waitForWebhook(
        (w) =>
          w.body.type === 'call.started' &&
          (w.body.data.variables as Record<string, string> | undefined)?.autocallId === String(id),
        20_000,
      );
      return started.body.callId;
    }

    it('answering-machine detection across an engine crash: killed while AMD() listens, started again before the verdict; the new engine gets it, the message plays, delivered', async () => {
      const { ports } = bed;
      const customer = Sipp.phone('customer', 'uas_answer.xml', ports, ports.trunk, {
        pauseMs: 300,
      });
      const id = await createJob({
        files: ['sound:hello-world'],
        // No audio from SIPp: NOTSURE after 20 s, long enough for the engine to start again.
        amd: { enabled: true, totalAnalysisTimeMs: 20_000 },
        tries: 1,
      });
      const callId = await callOfJob(id);
      const channelId = await channelInAmd();
      await bed.killEngine();
      await bed.startEngine();
      const recovered = await bed.waitFor(callId, 'call.recovered');
      expect(recovered.body.data).to.include({ reason: 'engine_restart' });
      // Still in AMD(): the new engine waits for the verdict.
      expect(await channelInAmd()).to.equal(channelId);
      await deliveredAcrossRestart(id, callId, customer);
    });

    it('answering-machine detection across an engine crash: the verdict comes while no engine runs, Stasis() fails, the context tries again for 10 s and hangs up; the engine started after that ends the call, the attempt is cut_short', async () => {
      const { ports } = bed;
      const customer = Sipp.phone('customer', 'uas_answer.xml', ports, ports.trunk, {
        pauseMs: 300,
      });
      const id = await createJob({
        files: ['sound:hello-world'],
        amd: { enabled: true, totalAnalysisTimeMs: 2000 },
        tries: 1,
      });
      const callId = await callOfJob(id);
      await channelInAmd();
      // What the next engine knows of a call whose channel is gone is what the store holds: the
      // crash comes once the answer is stored (killed a moment earlier, the next engine would
      // end the call failed, not knowing the customer answered).
      await storedAnswered(callId);
      await bed.killEngine();
      // Stasis(crm-app,amd,NOTSURE,…) with no WebSocket for the app fails: the context tries
      // again every 0.5 s for 10 s, then its Hangup() sends the customer a BYE.
      await channelInAmd('Wait');
      await customer.passed();
      expect(customer.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
      await bed.asterisk.waitIdle();
      await bed.startEngine();
      const ended = await bed.ended(callId);
      expect(ended).to.include({
        disposition: 'answered',
        hangupBy: 'system',
        endReason: 'reconciled',
      });
      const job = await finalJob(id, 'no_answer');
      expect(job.attempts!.map((a) => [a.callId, a.outcome, a.amdStatus])).to.deep.equal([
        [callId, 'cut_short', undefined],
      ]);
      expect(bed.webhookTypes(callId)).to.deep.equal(['call.started', 'call.ended']);
    });

    it('answering-machine detection across an engine crash: the verdict comes while no engine runs, Stasis() fails and the context tries again; the engine started within its 10 s gets the channel with the verdict, the message plays, delivered', async () => {
      const { ports } = bed;
      const customer = Sipp.phone('customer', 'uas_answer.xml', ports, ports.trunk, {
        pauseMs: 300,
      });
      const id = await createJob({
        files: ['sound:hello-world'],
        amd: { enabled: true, totalAnalysisTimeMs: 2000 },
        tries: 1,
      });
      const callId = await callOfJob(id);
      const channelId = await channelInAmd();
      await bed.killEngine();
      // The verdict came, Stasis() failed: the channel waits in [crm-amd] for the next try.
      expect(await channelInAmd('Wait')).to.equal(channelId);
      await bed.startEngine();
      await deliveredAcrossRestart(id, callId, customer);
    });

    it('answering-machine detection across an engine crash: the customer hangs up while AMD() listens, after the new engine started; it hears the hang-up, cut_short', async () => {
      const { ports } = bed;
      // Answers, then hangs up (BYE) 12 s later, before AMD's 20 s are over.
      const customer = Sipp.phone('customer', 'uas_answer_bye.xml', ports, ports.trunk, {
        pauseMs: 12_000,
      });
      const id = await createJob({
        files: ['sound:hello-world'],
        amd: { enabled: true, totalAnalysisTimeMs: 20_000 },
        tries: 1,
      });
      const callId = await callOfJob(id);
      await channelInAmd();
      await bed.killEngine();
      await bed.startEngine();
      await bed.waitFor(callId, 'call.recovered');
      await customer.passed();
      // The engine hears the hang-up of a channel out of Stasis (its ChannelDestroyed).
      expect(await bed.ended(callId)).to.include({
        disposition: 'answered',
        hangupBy: 'customer',
      });
      const job = await finalJob(id, 'no_answer');
      expect(job.attempts!.map((a) => [a.callId, a.outcome, a.amdStatus])).to.deep.equal([
        [callId, 'cut_short', undefined],
      ]);
      expect(bed.webhookTypes(callId)).to.deep.equal([
        'call.started',
        'call.recovered',
        'call.ended',
      ]);
      await bed.asterisk.waitIdle();
    });

    /** A media server of the CRM: `GET /msg.wav` answers a 2 s WAV (`audio/wav`); requests kept. */
    async function mediaServer(): Promise<{ server: Server; origin: string; paths: string[] }> {
      const wav = audioFile('wav', framesIn(2000));
      const paths: string[] = [];
      const server = createServer((req, res) => {
        paths.push(`${req.method} ${req.url}`);
        if (req.url === '/msg.wav') {
          res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': wav.length });
          res.end(req.method === 'HEAD' ? undefined : wav);
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found');
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      return { server, origin: `http://127.0.0.1:${port}`, paths };
    }

    it('the customer presses 1: hello-world and a WAV served over HTTP play, delivered', async function () {
      const media = await mediaServer();
      try {
        const customer = Sipp.phone(
          'customer',
          'uas_answer_dtmf1.xml',
          bed.ports,
          bed.ports.trunk,
          {
            pauseMs: 500,
          },
        );
        // A short URL: Asterisk fetches it into its media cache and plays the cached file.
        const id = await createJob({
          files: ['sound:hello-world', `${media.origin}/msg.wav`],
          confirm: { digit: '1', prompt: ['hello-world'], timeoutSec: 5, repeats: 2 },
          tries: 1,
        });
        const job = await finalJob(id, 'delivered');
        await customer.passed();
        const attempt = job.attempts![0]!;
        expect(attempt).to.deep.include({
          dialStatus: 'ANSWER',
          digits: '1',
          outcome: 'delivered',
        });
        expect(attempt.playedSec).to.be.within(3, 4); // hello-world about 1.4 s, the WAV 2 s
        // The media server was asked for the URL as given.
        expect(media.paths).to.include('GET /msg.wav');
        expect(media.paths.every((p) => p === 'GET /msg.wav')).to.equal(true);
        const ended = await bed.ended(attempt.callId!);
        expect(ended).to.include({ direction: 'out', disposition: 'answered', hangupBy: 'system' });
        await bed.asterisk.waitIdle();
      } finally {
        media.server.close();
      }
    });

    it('a WAV that cannot be fetched fails its item, not the call: the next sound plays, the job ends failed', async function () {
      const media = await mediaServer();
      try {
        const customer = Sipp.phone('customer', 'uas_answer.xml', bed.ports, bed.ports.trunk, {
          pauseMs: 300,
        });
        const down = `http://127.0.0.1:${await closedPort()}/gone.wav`;
        const id = await createJob({
          files: [down, `${media.origin}/missing.wav`, 'sound:hello-world'],
          tries: 1,
        });
        const job = await finalJob(id, 'failed');
        await customer.passed();
        const attempt = job.attempts![0]!;
        expect(attempt).to.deep.include({ dialStatus: 'ANSWER', outcome: 'failed' });
        // The call went on after the failed items: hello-world played to its end.
        expect(attempt.playedSec).to.be.within(1, 2);
        expect(media.paths).to.include('GET /missing.wav');
        const ended = await bed.ended(attempt.callId!);
        expect(ended).to.include({ disposition: 'answered', hangupBy: 'system' });
        await bed.asterisk.waitIdle();
      } finally {
        media.server.close();
      }
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
