/**
 * Call scripts end to end: the gateway with the real ari-client against the PBX simulator, a
 * customer reached through the trunk (or calling in), the script run on the answered channel.
 * Media over HTTP is served by a real local server the simulator fetches (as Asterisk does);
 * `actionUrl` is answered by a real local CRM server. Each test checks what a user notices:
 * the verb results, the ARI requests Asterisk received, the channel hung up or not.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createAriGateway, ENGINE_EVENT_FILTER, newChannelId } from '../../src/ari/gateway.ts';
import type { AriGateway, StasisStartEvent } from '../../src/ari/types.ts';
import { mediaUri } from '../../src/calls/verbs/schema.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import {
  createVerbCrm,
  gatewayVerbChannel,
  parseScript,
  runScript,
  type ScriptRun,
  type ScriptVerb,
  type VerbContext,
} from '../../src/calls/verbs/index.ts';
import { verifyWebhookSignature } from '../../src/events/signature.ts';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { audioFile, framesIn } from '../../src/simulator/wav.ts';
import type { PhoneBehaviour } from '../../src/simulator/types.ts';
import { closedPort, json, startServer, type TestServer } from '../crm/helpers.ts';
import { pressOnPlayback } from '../support/phone.ts';
import { until } from '../support/until.ts';

const CUSTOMER = '79161234567';
const DID = '74951234567';
const SECRET = 'verbs-test-secret-0123456789abcdef';
/** Real ms per simulated ms: a 10 s prompt lasts 500 ms. */
const TIME_SCALE = 0.05;

function script(input: unknown[]): ScriptVerb[] {
  const parsed = parseScript(input);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.verbs;
}

describe('call scripts on the PBX simulator', function () {
  this.timeout(20_000);
  let sim: PbxSimulator;
  let gw: AriGateway;
  let media: TestServer;
  let crm: TestServer;
  let registry: Registry;

  before(async () => {
    sim = await startSimulator({ timeScale: TIME_SCALE });
    registry = new Registry();
    gw = createAriGateway({
      url: sim.url,
      username: sim.username,
      password: sim.password,
      app: 'crm-app',
      logger: createSilentLogger(),
      registry,
      eventFilter: ENGINE_EVENT_FILTER,
      channelListenerGraceMs: 50,
    });
    await gw.start();
    // WAV files of 2 s (/short.wav) and 10 s (/long.wav), as a CRM's media server would serve.
    media = await startServer((req, res) => {
      const seconds = req.url.startsWith('/long') ? 10 : 2;
      res.writeHead(200, { 'content-type': 'audio/wav' });
      res.end(audioFile('wav', framesIn(seconds * 1000)));
    });
    crm = await startServer((_req, res) => json(res, 200, { verbs: [{ verb: 'hangup' }] }));
  });

  after(async () => {
    await gw?.stop();
    await sim?.close();
    await media?.close();
    await crm?.close();
  });

  beforeEach(() => {
    sim.clearRequests();
    sim.customers.reset();
    media.requests.length = 0;
    crm.requests.length = 0;
  });

  const origin = (server: TestServer) => new URL(server.url).origin;

  /** Originate to the customer through the trunk; resolves with the answered channel's id. */
  async function callCustomer(behaviour?: PhoneBehaviour): Promise<string> {
    if (behaviour) sim.customers.set(CUSTOMER, behaviour);
    const channelId = newChannelId('vb');
    const started = new Promise<void>((resolve) => {
      const off = gw.onChannel(channelId, (e) => {
        if (e.type === 'StasisStart') {
          off();
          resolve();
        }
      });
    });
    await gw.channels.originate({
      endpoint: `PJSIP/${CUSTOMER}@client-trunk`,
      channelId,
      appArgs: ['script'],
      callerId: DID,
      timeoutSec: 30,
    });
    await started;
    return channelId;
  }

  function context(channelId: string, extra: Partial<VerbContext> = {}): VerbContext {
    return {
      callId: `call-${channelId}`,
      channel: gatewayVerbChannel(gw, channelId),
      logger: createSilentLogger(),
      ...extra,
    };
  }

  /** The ARI requests Asterisk received for this channel's playbacks. */
  function plays(channelId: string): string[] {
    return sim.requests
      .filter((r) => r.method === 'POST' && r.path === `/channels/${channelId}/play`)
      .map((r) => r.query.media ?? '');
  }

  const alive = (channelId: string) => sim.channels().some((c) => c.id === channelId);

  /** Resolves when Asterisk started playing `mediaUri` on the channel. */
  function playbackStarted(channelId: string, mediaUri: string): Promise<void> {
    return new Promise((resolve) => {
      const off = gw.onChannel(channelId, (e) => {
        if (e.type === 'PlaybackStarted' && e.playback.media_uri === mediaUri) {
          off();
          resolve();
        }
      });
    });
  }

  it('plays sound:hello-world and a WAV served over HTTP, then hangs up', async () => {
    const channelId = await callCustomer();
    const wav = `${origin(media)}/short.wav`;
    const run = await runScript(
      context(channelId),
      script([{ verb: 'play', media: ['sound:hello-world', wav] }, { verb: 'hangup' }]),
    );
    expect(run.results.map((r) => [r.verb, r.outcome])).to.deep.equal([
      ['play', 'completed'],
      ['hangup', 'completed'],
    ]);
    expect(run.ended).to.equal('ended_by_verb');
    const play = run.results[0]!.play!;
    expect(play.playedItems).to.equal(2);
    expect(play.failedMedia).to.deep.equal([]);
    // hello-world is 1.4 s and the WAV 2 s on Asterisk's clock, plus the WAV's fetch (Asterisk
    // sends PlaybackStarted before it fetches the URL).
    expect(play.playedMs).to.be.at.least(3380);
    expect(plays(channelId)).to.deep.equal(['sound:hello-world', mediaUri(wav)]);
    expect(media.requests.map((r) => [r.method, r.url])).to.deep.equal([['GET', '/short.wav']]);
    expect(
      sim.requests.some((r) => r.method === 'DELETE' && r.path === `/channels/${channelId}`),
    ).to.equal(true);
    await until(() => !alive(channelId), 'the channel to be gone');
  });

  it('gather: the customer presses 1 during the prompt, which stops (barge-in)', async () => {
    const channelId = await callCustomer();
    const prompt = `${origin(media)}/long.wav`;
    const running = runScript(
      context(channelId),
      script([
        { verb: 'gather', numDigits: 1, timeoutSec: 5, prompts: [{ media: [prompt] }] },
        { verb: 'hangup' },
      ]),
    );
    await playbackStarted(channelId, mediaUri(prompt));
    sim.pressDigits(channelId, { digits: '1', afterMs: 500 });
    const run = await running;
    expect(run.results[0]).to.deep.include({
      verb: 'gather',
      outcome: 'completed',
      gather: { digits: '1', reason: 'numDigits' },
    });
    // The 10 s prompt was cut short: about 0.5 s + the 280 ms digit after it started (plus its
    // download, which Asterisk counts from PlaybackStarted too).
    expect(run.results[0]!.play!.playedItems).to.equal(0);
    expect(run.results[0]!.play!.playedMs).to.be.lessThan(8000);
    expect(
      sim.requests.some((r) => r.method === 'DELETE' && r.path.startsWith('/playbacks/')),
    ).to.equal(true);
    expect(run.ended).to.equal('ended_by_verb');
  });

  it('an unreachable media URL fails the play verb, the call goes on', async () => {
    const channelId = await callCustomer();
    const down = `http://127.0.0.1:${await closedPort()}/gone.wav`;
    const run = await runScript(
      context(channelId),
      script([
        { verb: 'play', media: [down] },
        { verb: 'play', media: ['sound:hello-world'] },
      ]),
    );
    expect(run.results.map((r) => [r.verb, r.outcome, r.reason])).to.deep.equal([
      ['play', 'failed', 'media_failed'],
      ['play', 'completed', undefined],
    ]);
    expect(run.results[0]!.play!.failedMedia.map((f) => f.media)).to.deep.equal([down]);
    expect(run.ended).to.equal('completed');
    expect(alive(channelId)).to.equal(true);
    await gw.channels.hangup(channelId);
  });

  it('the customer hanging up mid-play stops the script and reports it', async () => {
    const channelId = await callCustomer();
    const long = `${origin(media)}/long.wav`;
    const running = runScript(
      context(channelId),
      script([
        { verb: 'play', media: [long, 'sound:hello-world'] },
        { verb: 'pause', sec: 30 },
      ]),
    );
    await playbackStarted(channelId, mediaUri(long));
    sim.hangup(channelId);
    const run: ScriptRun = await running;
    expect(run.ended).to.equal('hangup');
    expect(run.hangup?.event).to.equal('ChannelHangupRequest');
    expect(run.results.map((r) => [r.verb, r.outcome])).to.deep.equal([['play', 'hangup']]);
    expect(run.results[0]!.play!.playedItems).to.equal(0);
    expect(plays(channelId)).to.deep.equal([mediaUri(long)]);
    // The playback was stopped through ARI (Asterisk may already have ended it: 404 is fine).
    await until(
      () => sim.requests.some((r) => r.method === 'DELETE' && r.path.startsWith('/playbacks/')),
      'DELETE /playbacks/{id}',
    );
    // The engine did not hang up a channel the customer already hung up.
    expect(
      sim.requests.some((r) => r.method === 'DELETE' && r.path === `/channels/${channelId}`),
    ).to.equal(false);
  });

  it('gather with actionUrl: the digits go to the CRM, whose {verbs:[hangup]} ends the call', async () => {
    const started = new Promise<StasisStartEvent>((resolve) => {
      const off = gw.onEvent((e) => {
        if (e.type === 'StasisStart' && e.args[0] === 'inbound') {
          off();
          resolve(e);
        }
      });
    });
    // The customer calls in and presses 2 when the menu prompt plays.
    const offPress = pressOnPlayback(sim, ['2']);
    await sim.injectInboundCall({ from: CUSTOMER, to: DID });
    const channelId = (await started).channel.id;
    await gw.channels.answer(channelId);
    const verbCrm = createVerbCrm({
      timeoutMs: 2000,
      secret: SECRET,
      logger: createSilentLogger(),
      registry,
    });
    const run = await runScript(
      context(channelId, { crm: verbCrm, call: { from: CUSTOMER, to: DID } }),
      script([
        {
          verb: 'gather',
          numDigits: 1,
          timeoutSec: 5,
          prompts: [{ media: ['sound:demo-congrats'] }],
          actionUrl: `${crm.url}?menu=main`,
        },
        { verb: 'play', media: ['sound:never-played'] },
      ]),
    );
    offPress();
    expect(crm.requests).to.have.length(1);
    const request = crm.requests[0]!;
    expect(request.url).to.equal('/route?menu=main');
    expect(JSON.parse(request.body)).to.deep.equal({
      callId: `call-${channelId}`,
      channelId,
      verb: 'gather',
      digits: '2',
      reason: 'numDigits',
      call: { from: CUSTOMER, to: DID },
    });
    expect(
      verifyWebhookSignature(SECRET, request.headers['x-signature'] as string, request.body),
    ).to.equal(true);
    expect(run.results.map((r) => [r.round, r.verb, r.outcome])).to.deep.equal([
      [0, 'gather', 'completed'],
      [1, 'hangup', 'completed'],
    ]);
    expect(run.ended).to.equal('ended_by_verb');
    expect(plays(channelId)).to.deep.equal(['sound:demo-congrats']); // never-played: not played
    await until(() => !alive(channelId), 'the channel to be gone');
  });

  it('record with maxSec: Asterisk records that long and the result names the recording', async () => {
    const channelId = await callCustomer();
    const run = await runScript(
      context(channelId),
      script([
        { verb: 'record', maxSec: 2, maxSilenceSec: 5, beep: true, finishOnKey: '#' },
        { verb: 'hangup' },
      ]),
    );
    const result = run.results[0]!;
    expect(result.outcome).to.equal('completed');
    expect(result.record).to.deep.include({ format: 'wav', durationSec: 2, reason: 'maxSec' });
    const name = result.record!.name;
    const request = sim.requests.find(
      (r) => r.method === 'POST' && r.path === `/channels/${channelId}/record`,
    );
    expect(request?.query).to.deep.include({
      name,
      format: 'wav',
      maxDurationSeconds: '2',
      maxSilenceSeconds: '5',
      beep: 'true',
      terminateOn: '#',
      ifExists: 'fail',
    });
    expect(await gw.recordings.getStored(name)).to.deep.equal({ name, format: 'wav' });
    expect(run.ended).to.equal('ended_by_verb');
  });

  it('record with finishOnKey: the customer pressing # ends the recording', async () => {
    const channelId = await callCustomer({ mode: 'answer', answerAfterMs: 500 });
    // The customer presses # 3 s into the recording (not at a fixed time after the answer,
    // which could come before a loaded machine started the recording).
    const offPress = sim.onEvent((e) => {
      if (
        e.type === 'RecordingStarted' &&
        (e.recording as { target_uri?: string }).target_uri === `channel:${channelId}`
      )
        sim.pressDigits(channelId, { digits: '#', afterMs: 3000 });
    });
    const run = await runScript(
      context(channelId),
      script([{ verb: 'record', maxSec: 60, finishOnKey: '#' }, { verb: 'hangup' }]),
    );
    const result = run.results[0]!;
    expect(result.outcome).to.equal('completed');
    offPress();
    expect(result.record).to.deep.include({ reason: 'finishOnKey' });
    // Pressed 3.3 s into the recording (the key is held 280 ms); well before maxSec.
    expect(result.record!.durationSec).to.be.within(2, 4);
    expect(run.ended).to.equal('ended_by_verb');
  });
});
