/**
 * Answering-machine detection across an engine restart, end to end on the simulator: the engine
 * stops while the customer channel is out of Stasis in the `crm-amd` context (AMD() listening),
 * or after the verdict while the script plays, and a new engine starts on the same store. The
 * simulated phone sends no audio until the test makes it speak (`sim.speak`), so the verdict
 * comes exactly when the test wants: after the new engine is up, or while no engine is connected.
 */
import { expect } from 'chai';
import type { AriChannel } from '../../src/ari/types.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import { autocallClient } from '../support/autocalls.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { until } from '../support/until.ts';

/** Simulated time 5 times faster than real time: AMD's 30 s of listening last 6 s. */
const TIME_SCALE = 0.2;

describe('notification calls with answering-machine detection across an engine restart (e2e)', function () {
  this.timeout(40_000);
  let bed: TestBed;
  let restarted: Engine | undefined;
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && bed)
      for (const line of bed.logs.filter((l) => l.level !== 'debug').slice(-80))
        console.log(JSON.stringify(line));
    await restarted?.stop();
    restarted = undefined;
    await bed?.stop();
  });

  const start = async (): Promise<TestBed> => {
    bed = await startTestBed({ AUTOCALL_RING_TIMEOUT_SEC: '5' }, {}, { timeScale: TIME_SCALE });
    return bed;
  };
  /** The API of the engine running now (the restarted one once there is one). */
  const { create, jobOf, finalJob } = autocallClient(
    () => (restarted ?? bed.engine).httpUrl,
    20_000,
  );
  /** The customer channel, once AMD() listens to it in the crm-amd context. */
  const inAmd = async (): Promise<AriChannel> => {
    let channel: AriChannel | undefined;
    await until(
      () =>
        (channel = bed.sim
          .channels()
          .find((c) => c.dialplan?.context === 'crm-amd' && c.dialplan.app_name === 'AMD')) !==
        undefined,
      'the customer channel in crm-amd, AMD() listening',
    );
    return channel!;
  };
  const callOf = async (id: number): Promise<string> =>
    (
      await bed.crm.waitForWebhook(
        (w) =>
          w.body.type === 'call.started' &&
          (w.body.data.variables as Record<string, string> | undefined)?.autocallId === String(id),
      )
    ).body.callId;
  /** Stop the engine (the calls stay up in Asterisk) and start a new one on the same store. */
  const restart = async (between?: () => Promise<void>): Promise<void> => {
    const { config, logger } = bed.engine;
    await bed.engine.stop();
    await between?.();
    restarted = await startEngine(config, { logger, simulator: bed.sim });
  };
  const requests = (method: string, suffix: string) =>
    bed.sim.requests.filter((r) => r.method === method && r.path.endsWith(suffix));
  const webhookTypes = (callId: string) => bed.crm.eventsOf(callId).map((w) => w.body.type);
  const confirm = { digit: '1', prompt: ['hello-world'], timeoutSec: 5, repeats: 1 };

  it('restart while AMD listens, a person answers after the new engine is up: the new engine gets the verdict, the confirm prompt and the message play, delivered', async () => {
    await start();
    bed.sim.customers.set('74950000201', { mode: 'answer', answerAfterMs: 500 });
    const id = await create({
      to: '+74950000201',
      files: ['hello-world'],
      confirm,
      amd: { enabled: true, totalAnalysisTimeMs: 30_000 },
      tries: 2,
      triesPeriodSec: 1,
    });
    const callId = await callOf(id);
    const channel = await inAmd();
    await restart();
    const recovered = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.recovered' && w.body.callId === callId,
    );
    expect(recovered.body.data).to.include({ reason: 'engine_restart' });
    // The new engine waits for the verdict: nothing plays, the channel stays in AMD().
    expect(requests('POST', '/play')).to.have.length(0);
    expect((await inAmd()).id).to.equal(channel.id);
    expect((await jobOf(id)).status).to.equal('in_progress');

    bed.sim.speak(channel.id, 'human');
    // Back in Stasis with the verdict, the confirm prompt plays: the person presses 1.
    await until(() => requests('POST', '/play').length === 1, 'the confirm prompt');
    bed.sim.pressDigits(channel.id, { digits: '1', afterMs: 200 });
    const job = await finalJob(id, 'delivered');
    expect(job.attempts, JSON.stringify(job.attempts)).to.have.length(1);
    expect(job.attempts![0]).to.deep.include({
      attempt: 1,
      callId,
      dialStatus: 'ANSWER',
      outcome: 'delivered',
      amdStatus: 'HUMAN',
      amdCause: 'HUMAN-800-800',
      digits: '1',
    });
    expect(job.attempts![0]!.playedSec).to.be.at.least(1);
    // One call, dialled once, sent to AMD once; the CRM hears of it once of each.
    expect(requests('POST', '/channels').filter((r) => r.path === '/channels')).to.have.length(1);
    expect(requests('POST', '/continue')).to.have.length(1);
    await bed.crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === callId);
    expect(webhookTypes(callId)).to.deep.equal(['call.started', 'call.recovered', 'call.ended']);
    expect(bed.crm.eventsOf(callId)[2]!.body.data).to.deep.include({
      disposition: 'answered',
      hangupBy: 'system',
    });
    const finished = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'autocall.finished' && w.body.callId === `autocall-${id}`,
    );
    expect(finished.body.data).to.deep.include({ status: 'delivered', amdStatus: 'HUMAN' });
    expect(webhookTypes(`autocall-${id}`)).to.deep.equal(['autocall.attempt', 'autocall.finished']);
    await until(() => bed.sim.channels().length === 0, 'no channel left');
  });

  it('restart while AMD listens, a machine answers after the new engine is up: hung up at once, the job ends machine', async () => {
    await start();
    bed.sim.customers.set('74950000202', { mode: 'answer', answerAfterMs: 500 });
    const id = await create({
      to: '+74950000202',
      files: ['hello-world'],
      confirm,
      amd: { enabled: true, totalAnalysisTimeMs: 30_000 },
      tries: 3,
      triesPeriodSec: 1,
    });
    const callId = await callOf(id);
    const channel = await inAmd();
    await restart();
    await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.recovered' && w.body.callId === callId,
    );
    bed.sim.speak(channel.id, 'machine');
    const job = await finalJob(id, 'machine');
    expect(job.attempts, JSON.stringify(job.attempts)).to.have.length(1);
    expect(job.attempts![0]).to.deep.include({
      callId,
      outcome: 'machine',
      amdStatus: 'MACHINE',
      amdCause: 'LONGGREETING-1500-1500',
      playedSec: 0,
    });
    expect(requests('POST', '/play')).to.have.length(0);
    const ended = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ended' && w.body.callId === callId,
    );
    expect(ended.body.data).to.deep.include({
      disposition: 'answered',
      hangupBy: 'system',
      endReason: 'answering_machine',
    });
    expect(webhookTypes(callId)).to.deep.equal(['call.started', 'call.recovered', 'call.ended']);
    const finished = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'autocall.finished' && w.body.callId === `autocall-${id}`,
    );
    expect(finished.body.data).to.deep.include({ status: 'machine', amdStatus: 'MACHINE' });
    await until(() => bed.sim.channels().length === 0, 'no channel left');
  });

  it('restart while AMD listens, the customer hangs up before the verdict: the new engine hears it, cut_short, retried', async () => {
    await start();
    bed.sim.customers.set('74950000206', { mode: 'answer', answerAfterMs: 500 });
    const id = await create({
      to: '+74950000206',
      files: ['hello-world'],
      amd: { enabled: true, totalAnalysisTimeMs: 30_000 },
      tries: 2,
      triesPeriodSec: 1,
    });
    const callId = await callOf(id);
    const channel = await inAmd();
    await restart();
    await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.recovered' && w.body.callId === callId,
    );
    // The retry reaches a person.
    bed.sim.customers.set('74950000206', { mode: 'answer', answerAfterMs: 500, voice: 'human' });
    bed.sim.hangup(channel.id);
    const ended = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ended' && w.body.callId === callId,
    );
    expect(ended.body.data).to.deep.include({ disposition: 'answered', hangupBy: 'customer' });
    const job = await finalJob(id, 'delivered');
    expect(job.attempts!.map((a) => [a.callId === callId, a.outcome, a.amdStatus])).to.deep.equal([
      [true, 'cut_short', undefined],
      [false, 'delivered', 'HUMAN'],
    ]);
    expect(webhookTypes(callId)).to.deep.equal(['call.started', 'call.recovered', 'call.ended']);
  });

  it('the verdict comes while no engine is connected: Asterisk hangs up, the new engine ends the call and retries the job', async () => {
    await start();
    bed.sim.customers.set('74950000203', { mode: 'answer', answerAfterMs: 500 });
    const id = await create({
      to: '+74950000203',
      files: ['hello-world'],
      amd: { enabled: true, totalAnalysisTimeMs: 30_000 },
      tries: 2,
      triesPeriodSec: 1,
    });
    const callId = await callOf(id);
    const channel = await inAmd();
    await restart(async () => {
      bed.sim.speak(channel.id, 'machine');
      // Stasis(crm-app,amd,MACHINE,…) finds no engine (STASISSTATUS=FAILED): the dialplan
      // tries again for 10 simulated seconds, then hangs the channel up.
      await until(() => bed.sim.channels().length === 0, 'the channel hung up by the dialplan');
      // The retry reaches the machine again, this time with an engine to hear the verdict.
      bed.sim.customers.set('74950000203', {
        mode: 'answer',
        answerAfterMs: 500,
        voice: 'machine',
      });
    });
    const job = await finalJob(id, 'machine');
    expect(job.attempts!.map((a) => [a.callId === callId, a.outcome, a.amdStatus])).to.deep.equal([
      [true, 'cut_short', undefined],
      [false, 'machine', 'MACHINE'],
    ]);
    const ended = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ended' && w.body.callId === callId,
    );
    expect(ended.body.data).to.deep.include({
      disposition: 'answered',
      hangupBy: 'system',
      endReason: 'reconciled',
    });
    expect(webhookTypes(callId)).to.deep.equal(['call.started', 'call.ended']);
    await until(() => bed.sim.channels().length === 0, 'no channel left');
  });

  it("the verdict comes while no engine is connected, the new engine starts within the dialplan's wait: it gets the channel with the verdict at the next try; machine on the first attempt", async () => {
    await start();
    bed.sim.customers.set('74950000204', { mode: 'answer', answerAfterMs: 500 });
    const id = await create({
      to: '+74950000204',
      files: ['hello-world'],
      amd: { enabled: true, totalAnalysisTimeMs: 30_000 },
      tries: 2,
      triesPeriodSec: 1,
    });
    const callId = await callOf(id);
    const channel = await inAmd();
    await restart(async () => {
      bed.sim.speak(channel.id, 'machine');
      // Stasis() failed (no engine): the channel waits in [crm-amd] to try again.
      await until(
        () => bed.sim.channels().find((c) => c.id === channel.id)?.dialplan?.app_name === 'Wait',
        'the channel waiting in crm-amd for an engine',
      );
    });
    const job = await finalJob(id, 'machine');
    expect(job.attempts!.map((a) => [a.callId === callId, a.outcome, a.amdStatus])).to.deep.equal([
      [true, 'machine', 'MACHINE'],
    ]);
    const ended = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ended' && w.body.callId === callId,
    );
    expect(ended.body.data).to.deep.include({
      disposition: 'answered',
      hangupBy: 'system',
      endReason: 'answering_machine',
    });
    expect(webhookTypes(callId)).to.deep.equal(['call.started', 'call.recovered', 'call.ended']);
    await until(() => bed.sim.channels().length === 0, 'no channel left');
  });

  it('restart after the verdict, while the confirm prompt plays: the script runs again from its beginning without a second detection; the verdict is kept', async () => {
    await start();
    bed.sim.customers.set('74950000204', { mode: 'answer', answerAfterMs: 500 });
    const id = await create({
      to: '+74950000204',
      files: ['hello-world'],
      confirm: { ...confirm, timeoutSec: 30 },
      amd: { enabled: true, totalAnalysisTimeMs: 30_000 },
      tries: 2,
      triesPeriodSec: 1,
    });
    const callId = await callOf(id);
    const channel = await inAmd();
    bed.sim.speak(channel.id, 'human');
    await until(() => requests('POST', '/play').length === 1, 'the confirm prompt');
    await restart();
    await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.recovered' && w.body.callId === callId,
    );
    // The new engine plays the confirm prompt again (once the old one has ended).
    await until(() => requests('POST', '/play').length === 2, 'the confirm prompt again');
    bed.sim.pressDigits(channel.id, { digits: '1', afterMs: 200 });
    const job = await finalJob(id, 'delivered');
    expect(job.attempts, JSON.stringify(job.attempts)).to.have.length(1);
    expect(job.attempts![0]).to.deep.include({
      callId,
      outcome: 'delivered',
      amdStatus: 'HUMAN',
      amdCause: 'HUMAN-800-800',
      digits: '1',
    });
    expect(requests('POST', '/continue')).to.have.length(1);
    await bed.crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === callId);
    expect(webhookTypes(callId)).to.deep.equal(['call.started', 'call.recovered', 'call.ended']);
    await until(() => bed.sim.channels().length === 0, 'no channel left');
  });

  it('restart while the message plays to a machine (onMachine message): the message plays again in full without the confirm prompt, still machine', async () => {
    await start();
    bed.sim.customers.set('74950000205', { mode: 'answer', answerAfterMs: 500 });
    const message = Array.from({ length: 5 }, () => 'sound:hello-world');
    const id = await create({
      to: '+74950000205',
      files: message,
      confirm: { ...confirm, prompt: ['beep'] },
      amd: { enabled: true, onMachine: 'message', totalAnalysisTimeMs: 30_000 },
      tries: 3,
      triesPeriodSec: 1,
    });
    const callId = await callOf(id);
    const channel = await inAmd();
    bed.sim.speak(channel.id, 'machine');
    await until(() => requests('POST', '/play').length === 1, 'the message');
    await restart(async () => bed.sim.clearRequests());
    await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.recovered' && w.body.callId === callId,
    );
    const job = await finalJob(id, 'machine');
    expect(job.attempts, JSON.stringify(job.attempts)).to.have.length(1);
    expect(job.attempts![0]).to.deep.include({
      callId,
      outcome: 'machine',
      amdStatus: 'MACHINE',
      amdCause: 'LONGGREETING-1500-1500',
    });
    // The new engine played the message again, every item, and no confirm prompt.
    const played = requests('POST', '/play').flatMap(
      (r) => (r.body as { media?: string[] } | undefined)?.media ?? r.query.media,
    );
    expect(played).to.deep.equal(message);
    expect(requests('POST', '/continue')).to.have.length(0);
    await bed.crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === callId);
    expect(webhookTypes(callId)).to.deep.equal(['call.started', 'call.recovered', 'call.ended']);
    await until(() => bed.sim.channels().length === 0, 'no channel left');
  });
});
