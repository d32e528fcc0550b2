/**
 * Answering-machine detection of notification calls, end to end on the simulator: the answered
 * customer channel is continued to the `crm-amd` context, leaves Stasis while AMD() listens and
 * comes back with `amd,<AMDSTATUS>,<AMDCAUSE>`; a machine ends the job `machine`, a person or an
 * unsure verdict hears the confirm prompt and the message. The StasisEnd in between is not the
 * end of the call.
 */
import { expect } from 'chai';
import { apiRequest } from '../support/api.ts';
import { autocallClient } from '../support/autocalls.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { pressOnPlayback } from '../support/phone.ts';
import { until } from '../support/until.ts';

describe('notification calls with answering-machine detection on the simulator (e2e)', function () {
  this.timeout(30_000);
  let bed: TestBed;
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && bed)
      for (const line of bed.logs.filter((l) => l.level !== 'debug').slice(-60))
        console.log(JSON.stringify(line));
    await bed?.stop();
  });

  const start = async (env: Record<string, string> = {}): Promise<TestBed> => {
    bed = await startTestBed({ AUTOCALL_RING_TIMEOUT_SEC: '5', ...env });
    return bed;
  };
  const { api, create, finalJob } = autocallClient(() => bed.engine.httpUrl);
  /** The `continue` requests the engine sent to the simulated Asterisk. */
  const continues = () =>
    bed.sim.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/continue'));
  const confirm = { digit: '1', prompt: ['hello-world'], timeoutSec: 3, repeats: 1 };

  it('a machine answers: the job ends machine at once (no retry), nothing plays, one call.ended', async () => {
    await start();
    bed.sim.customers.set('74950000101', { mode: 'answer', answerAfterMs: 500, voice: 'machine' });
    const id = await create({
      to: '+74950000101',
      files: ['hello-world'],
      confirm,
      amd: { enabled: true },
      tries: 3,
      triesPeriodSec: 1,
    });
    const job = await finalJob(id, 'machine');
    expect(job.script.amd).to.deep.equal({ enabled: true, onMachine: 'hangup' });
    expect(job.attempts, JSON.stringify(job.attempts)).to.have.length(1);
    expect(job.attempts![0]).to.deep.include({
      dialStatus: 'ANSWER',
      outcome: 'machine',
      amdStatus: 'MACHINE',
      amdCause: 'LONGGREETING-1500-1500',
      playedSec: 0,
      digits: '',
    });
    expect(continues().map((r) => r.query)).to.deep.equal([
      { context: 'crm-amd', extension: 's', priority: '1' },
    ]);
    // Nothing was played to the machine: the engine hung up once the verdict came.
    expect(bed.sim.requests.filter((r) => r.path.endsWith('/play'))).to.have.length(0);

    const attempt = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'autocall.attempt' && w.body.callId === `autocall-${id}`,
    );
    expect(attempt.body.data).to.deep.include({
      outcome: 'machine',
      amdStatus: 'MACHINE',
      amdCause: 'LONGGREETING-1500-1500',
    });
    const finished = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'autocall.finished' && w.body.callId === `autocall-${id}`,
    );
    expect(finished.body.data).to.deep.include({
      status: 'machine',
      attempts: 1,
      amdStatus: 'MACHINE',
    });
    // The channel left Stasis for AMD and came back: one call, started and ended once.
    const callId = job.attempts![0]!.callId!;
    await bed.crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === callId);
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.ended',
    ]);
    const call = await api<Record<string, unknown>>(`/v1/calls/${callId}`);
    expect(call.body).to.deep.include({ disposition: 'answered', hangupBy: 'system' });
    const metrics = (await apiRequest(bed.engine.httpUrl, '/metrics', { key: null })).text;
    expect(metrics).to.match(/aricrm_autocall_attempts_total\{outcome="machine"\} 1/);
    expect(metrics).to.match(/aricrm_autocall_jobs_finished_total\{status="machine"\} 1/);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('a person answers: back from AMD the confirm prompt plays, 1 is pressed, delivered', async () => {
    await start();
    // AMD says HUMAN 1.3 s after the answer (a 0.5 s hello, 0.8 s of silence); 1 is pressed
    // when the confirm prompt that follows plays.
    bed.sim.customers.set('74950000102', { mode: 'answer', answerAfterMs: 500, voice: 'human' });
    pressOnPlayback(bed.sim, ['1']);
    const id = await create({
      to: '+74950000102',
      files: ['hello-world'],
      confirm,
      amd: { enabled: true },
      tries: 2,
      triesPeriodSec: 1,
    });
    const job = await finalJob(id, 'delivered');
    expect(job.attempts, JSON.stringify(job.attempts)).to.have.length(1);
    expect(job.attempts![0]).to.deep.include({
      outcome: 'delivered',
      amdStatus: 'HUMAN',
      amdCause: 'HUMAN-800-800',
    });
    expect(job.attempts![0]!.digits).to.equal('1');
    expect(job.attempts![0]!.playedSec).to.be.at.least(1);
    const callId = job.attempts![0]!.callId!;
    await bed.crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === callId);
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.ended',
    ]);
    expect(bed.crm.eventsOf(callId)[1]!.body.data).to.deep.include({ disposition: 'answered' });
  });

  it('AMD not sure (no audio, 1 s analysis from the job): the message plays, delivered', async () => {
    await start();
    bed.sim.customers.set('74950000103', { mode: 'answer', answerAfterMs: 500 });
    const id = await create({
      to: '+74950000103',
      files: ['hello-world'],
      amd: { enabled: true, totalAnalysisTimeMs: 1000, greetingMs: 1200 },
      tries: 1,
    });
    const job = await finalJob(id, 'delivered');
    expect(job.attempts![0]).to.deep.include({
      outcome: 'delivered',
      amdStatus: 'NOTSURE',
      amdCause: 'TOOLONG-900',
    });
    // The job's settings reached AMD() as channel variables set at originate.
    const originate = bed.sim.requests.find((r) => r.method === 'POST' && r.path === '/channels');
    expect((originate?.body as { variables: Record<string, string> }).variables).to.include({
      CRM_AMD_TOTAL_ANALYSIS_MS: '1000',
      CRM_AMD_GREETING_MS: '1200',
    });
  });

  it('onMachine message: the message plays to the machine without the confirm prompt; still machine', async () => {
    await start();
    bed.sim.customers.set('74950000104', { mode: 'answer', answerAfterMs: 500, voice: 'machine' });
    const id = await create({
      to: '+74950000104',
      files: ['hello-world'],
      confirm,
      amd: { enabled: true, onMachine: 'message' },
      tries: 3,
      triesPeriodSec: 1,
    });
    const job = await finalJob(id, 'machine');
    expect(job.attempts).to.have.length(1);
    expect(job.attempts![0]).to.deep.include({ outcome: 'machine', amdStatus: 'MACHINE' });
    expect(job.attempts![0]!.playedSec).to.be.at.least(1);
    const played = bed.sim.requests
      .filter((r) => r.path.endsWith('/play'))
      .map((r) => (r.body as { media?: string[] } | undefined)?.media ?? r.query.media);
    expect(played).to.have.length(1); // the message only, no confirm prompt
  });

  it('the customer hangs up while AMD listens: cut_short, retried, and no AMD verdict recorded', async () => {
    await start();
    bed.sim.customers.set('74950000105', {
      mode: 'answer',
      answerAfterMs: 500,
      voice: 'machine',
      hangupAfterMs: 700,
    });
    const id = await create({
      to: '+74950000105',
      files: ['hello-world'],
      amd: { enabled: true },
      tries: 2,
      triesPeriodSec: 1,
    });
    const job = await finalJob(id, 'no_answer');
    expect(job.attempts!.map((a) => [a.outcome, a.amdStatus])).to.deep.equal([
      ['cut_short', undefined],
      ['cut_short', undefined],
    ]);
    const callId = job.attempts![0]!.callId!;
    const ended = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.ended' && w.body.callId === callId,
    );
    expect(ended.body.data).to.deep.include({ disposition: 'answered', hangupBy: 'customer' });
  });

  it('cancel while AMD listens: the channel is hung up in the dialplan, the job is canceled', async () => {
    await start();
    // No audio: AMD would listen for its whole 30 s (0.6 s of real time here).
    bed.sim.customers.set('74950000109', { mode: 'answer', answerAfterMs: 300 });
    const id = await create({
      to: '+74950000109',
      files: ['hello-world'],
      amd: { enabled: true, totalAnalysisTimeMs: 30_000 },
      tries: 3,
    });
    await until(async () => continues().length === 1, 'the channel sent to crm-amd');
    const cancel = await api(`/v1/autocalls/${id}/cancel`, {});
    expect(cancel.status, JSON.stringify(cancel.body)).to.be.oneOf([200, 202]);
    const job = await finalJob(id, 'canceled');
    expect(job.attempts!.map((a) => [a.dialStatus, a.outcome, a.amdStatus])).to.deep.equal([
      ['ANSWER', 'canceled', undefined],
    ]);
    const callId = job.attempts![0]!.callId!;
    await bed.crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === callId);
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.ended',
    ]);
    await until(async () => bed.sim.channels().length === 0, 'no channel left');
  });

  it('ARI unreachable when AMD hands the channel back: Asterisk hangs it up, the attempt is cut_short and retried', async () => {
    await start();
    bed.sim.customers.set('74950000110', { mode: 'answer', answerAfterMs: 300, voice: 'human' });
    const id = await create({
      to: '+74950000110',
      files: ['hello-world'],
      // HUMAN 10.5 simulated seconds after the answer (0.2 s of real time): ARI goes away first.
      amd: { enabled: true, afterGreetingSilenceMs: 10_000, totalAnalysisTimeMs: 30_000 },
      tries: 2,
      triesPeriodSec: 1,
    });
    await until(async () => continues().length === 1, 'the channel sent to crm-amd');
    bed.sim.refuseConnections();
    bed.sim.dropWebSockets();
    // Stasis(crm-app,amd,…) finds no WebSocket (STASISSTATUS=FAILED): the dialplan tries again
    // for 10 simulated seconds, then hangs up.
    await until(async () => bed.sim.channels().length === 0, 'the channel hung up by Asterisk');
    bed.sim.acceptConnections();
    const job = await finalJob(id, 'delivered');
    expect(job.attempts!.map((a) => [a.outcome, a.amdStatus])).to.deep.equal([
      ['cut_short', undefined],
      ['delivered', 'HUMAN'],
    ]);
    expect(job.attempts![1]!.amdCause).to.equal('HUMAN-10000-10000');
    const callId = job.attempts![0]!.callId!;
    await bed.crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === callId);
    expect(bed.crm.eventsOf(callId).filter((w) => w.body.type === 'call.ended')).to.have.length(1);
  });

  it("ARI back within the dialplan's wait after AMD handed the channel back: the engine reconnects, gets the channel with the verdict, delivered on the first attempt", async () => {
    // Simulated time 5 times faster than real time: the dialplan's 10 s of tries last 2 s, longer
    // than the engine's first reconnect delay.
    bed = await startTestBed({ AUTOCALL_RING_TIMEOUT_SEC: '5' }, {}, { timeScale: 0.2 });
    bed.sim.customers.set('74950000111', { mode: 'answer', answerAfterMs: 300, voice: 'human' });
    const id = await create({
      to: '+74950000111',
      files: ['hello-world'],
      // HUMAN 10.5 simulated seconds after the answer (2.1 s of real time): ARI goes away first.
      amd: { enabled: true, afterGreetingSilenceMs: 10_000, totalAnalysisTimeMs: 30_000 },
      tries: 2,
      triesPeriodSec: 1,
    });
    await until(async () => continues().length === 1, 'the channel sent to crm-amd');
    bed.sim.refuseConnections();
    bed.sim.dropWebSockets();
    // Stasis(crm-app,amd,…) finds no WebSocket: the channel waits in crm-amd to try again.
    await until(
      async () => bed.sim.channels().some((c) => c.dialplan?.app_name === 'Wait'),
      'the channel waiting in crm-amd for an engine',
    );
    bed.sim.acceptConnections();
    const job = await finalJob(id, 'delivered');
    expect(job.attempts!.map((a) => [a.outcome, a.amdStatus])).to.deep.equal([
      ['delivered', 'HUMAN'],
    ]);
    expect(job.attempts![0]!.amdCause).to.equal('HUMAN-10000-10000');
    const callId = job.attempts![0]!.callId!;
    await bed.crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === callId);
    expect(bed.crm.eventsOf(callId).filter((w) => w.body.type === 'call.ended')).to.have.length(1);
  });

  it('a campaign default turns AMD on for its jobs; a job may turn it off', async () => {
    await start();
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 300, voice: 'machine' });
    const campaign = await api<{ id: number }>('/v1/campaigns', {
      name: 'amd',
      maxConcurrent: 2,
      callsPerSecond: 10,
      defaults: { files: ['hello-world'], tries: 1, amd: { enabled: true } },
    });
    expect(campaign.status, JSON.stringify(campaign.body)).to.equal(201);
    const jobs = await api<{ ids: number[] }>(`/v1/campaigns/${campaign.body.id}/jobs`, {
      jobs: [{ to: '+74950000106' }, { to: '+74950000107', amd: { enabled: false } }],
    });
    expect(jobs.status, JSON.stringify(jobs.body)).to.equal(202);
    const [withAmd, without] = jobs.body.ids as [number, number];
    expect((await finalJob(withAmd, 'machine')).attempts![0]!.amdStatus).to.equal('MACHINE');
    const plain = await finalJob(without, 'delivered');
    expect(plain.attempts![0]!.amdStatus).to.equal(undefined);
  });

  it('refuses bad AMD settings with 400 naming the field', async () => {
    await start();
    const cases: Array<[unknown, string]> = [
      [{ enabled: 'yes' }, 'amd.enabled'],
      [{ enabled: true, onMachine: 'voicemail' }, 'amd.onMachine'],
      [{ enabled: true, totalAnalysisTimeMs: 10 }, 'amd.totalAnalysisTimeMs'],
      [{ enabled: true, beep: true }, 'amd.beep'],
    ];
    for (const [amd, field] of cases) {
      const res = await api('/v1/autocalls', { to: '+74950000108', files: ['hello-world'], amd });
      expect([res.status, res.body.code, res.body.field], JSON.stringify(amd)).to.deep.equal([
        400,
        'invalid_request',
        field,
      ]);
    }
  });
});
