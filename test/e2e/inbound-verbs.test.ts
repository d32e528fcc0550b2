/**
 * End to end: an inbound call whose CRM route answer is a call script (`{"verbs": [...]}`), on
 * the PBX simulator through the real ari-client, with a real local HTTP server as the CRM (route
 * lookup, the menu's actionUrl, signed webhooks). Each test drives one call like a caller would
 * (pressing digits, hanging up) and checks what the CRM and Asterisk saw.
 */
import { expect } from 'chai';
import { startEngine, type Engine } from '../../src/main.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import type { ReceivedWebhook } from '../support/fake-crm.ts';
import { apiRequest } from '../support/api.ts';
import { releasedCall } from '../support/released.ts';
import { onPlaybackStarted, pressOnPlayback } from '../support/phone.ts';
import { until } from '../support/until.ts';
import { verifyWav } from '../../src/recordings/wav.ts';

const DID = '74951234567';
const CRM_KEY = 'crm-key-0123456789abcdef';
let caller = 79170000000;
/** A fresh caller number per test, so webhooks of different tests never mix. */
const nextCaller = (): string => String(++caller);

async function startedCall(bed: TestBed, from: string): Promise<string> {
  const started = await bed.crm.waitForWebhook(
    (w) => w.body.type === 'call.started' && w.body.data.from === from,
  );
  return started.body.callId;
}

/**
 * An inbound call from a fresh caller number to {@link DID}, injected into the simulator with
 * `options` (DTMF, hang-up or abandon times); resolves with the caller number, the caller's
 * channel id and the call id of its `call.started` webhook.
 */
async function callIn(
  bed: TestBed,
  options: Omit<Parameters<TestBed['sim']['injectInboundCall']>[0], 'from' | 'to'> = {},
): Promise<{ from: string; channelId: string; callId: string }> {
  const from = nextCaller();
  const { channelId } = await bed.sim.injectInboundCall({ from, to: DID, ...options });
  const callId = await startedCall(bed, from);
  return { from, channelId, callId };
}

function typesOf(bed: TestBed, callId: string): string[] {
  return bed.crm.eventsOf(callId).map((w) => w.body.type);
}

const data = (w: ReceivedWebhook): Record<string, unknown> => w.body.data;

/** Index of the first ARI request matching, -1 when none. */
function indexOf(bed: TestBed, method: string, path: string | RegExp): number {
  return bed.sim.requests.findIndex(
    (r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)),
  );
}

/**
 * The menu: a welcome (1.4 s), then one digit with its prompt (16 s, cut by the digit), sent to
 * the CRM's actionUrl. Callers press their digit when the prompt (the second playback) starts
 * (a digit at a fixed time after the answer could come before a loaded engine started it).
 */
const pressDuringPrompt = (bed: TestBed, digit: string): void =>
  void pressOnPlayback(bed.sim, ['', digit]);
/** The menu script, its actionUrl at the fake CRM. */
function menu(bed: TestBed): unknown[] {
  return [
    { verb: 'play', media: ['sound:hello-world'] },
    {
      verb: 'gather',
      numDigits: 1,
      timeoutSec: 5,
      prompts: [{ media: ['sound:demo-congrats'] }],
      actionUrl: bed.crm.verbsUrl('?menu=main'),
    },
    { verb: 'hangup' },
  ];
}

describe('inbound calls routed to a call script (e2e: engine + simulator + CRM)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  let restarted: Engine | undefined;

  afterEach(async function () {
    await restarted?.stop();
    restarted = undefined;
    if (process.env.DUMP && this.currentTest?.state === 'failed')
      for (const l of bed.logs) console.log(JSON.stringify(l));
    await bed?.stop();
  });

  it('menu: the caller presses 2, the actionUrl answers dial 102, which is bridged', async () => {
    bed = await startTestBed({ CRM_API_KEY: CRM_KEY });
    bed.crm.onRoute(() => ({ body: { customer: { id: '42' }, verbs: menu(bed) } }));
    bed.crm.onVerbs((req) => ({
      body: {
        verbs:
          req.body.digits === '2'
            ? [{ verb: 'dial', extensions: ['102'], ringTimeoutSec: 10 }, { verb: 'hangup' }]
            : [{ verb: 'hangup' }],
      },
    }));
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 500, hangupAfterMs: 2000 });
    pressDuringPrompt(bed, '2');
    const { from, channelId, callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);

    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    const answered = bed.crm.eventsOf(callId)[2]!;
    expect(data(answered)).to.include({ extension: '102' });
    const cdr = data(end);
    expect(cdr).to.include({
      direction: 'in',
      from,
      did: DID,
      disposition: 'answered',
      answeredBy: '102',
      hangupBy: 'operator',
    });
    // Wait time counts until the operator answered (the menu included), talk time from then.
    const startedAt = Date.parse(String(cdr.startedAt));
    const answeredAt = Date.parse(String(cdr.answeredAt));
    expect(answeredAt).to.be.greaterThan(startedAt);
    expect(cdr.waitSec).to.equal(Math.round((answeredAt - startedAt) / 1000));

    // The CRM got the digit, signed, with its key.
    expect(bed.crm.verbsRequests).to.have.length(1);
    const request = bed.crm.verbsRequests[0]!;
    expect(request.url).to.equal('/verbs?menu=main');
    expect(request.signatureValid).to.equal(true);
    expect(request.headers.authorization).to.equal(`Bearer ${CRM_KEY}`);
    expect(request.body).to.deep.include({
      callId,
      channelId,
      verb: 'gather',
      digits: '2',
      reason: 'numDigits',
      call: { from, to: DID },
    });
    // Asterisk: the caller was answered for the menu, before 102 was created; the menu played.
    const answer = indexOf(bed, 'POST', `/channels/${channelId}/answer`);
    const create = indexOf(bed, 'POST', '/channels/create');
    expect(answer).to.be.at.least(0);
    expect(create).to.be.greaterThan(answer);
    expect(bed.sim.requests[create]!.query).to.include({ endpoint: 'PJSIP/102' });
    expect(indexOf(bed, 'POST', `/channels/${channelId}/play`)).to.be.within(answer, create);
    // Only 102 rang, and the script's last verb (hangup) never ran: the operator hung up.
    expect(bed.sim.requests.filter((r) => r.path === '/channels/create')).to.have.length(1);
    // Each verb's result is logged with the call id.
    const verbs = bed.logs
      .filter((l) => l.callId === callId && l.message === 'verb result')
      .map((l) => [l.verb, l.outcome, l.digits ?? l.dialStatus]);
    expect(verbs).to.deep.equal([
      ['play', 'completed', undefined],
      ['gather', 'completed', '2'],
      ['dial', 'completed', 'ANSWER'],
    ]);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('menu: nobody answers the dial, the next verb plays and the script hangs up', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({ body: { verbs: menu(bed) } }));
    bed.crm.onVerbs(() => ({
      body: {
        verbs: [
          { verb: 'dial', extensions: ['101', '103'], ringTimeoutSec: 2 },
          { verb: 'play', media: ['sound:vm-goodbye'] },
          { verb: 'hangup' },
        ],
      },
    }));
    bed.sim.phones.set('101', { mode: 'ring' });
    bed.sim.phones.set('103', { mode: 'ring' });
    pressDuringPrompt(bed, '1');
    const { channelId, callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);

    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.ringing',
      'call.ended',
    ]);
    const cdr = data(end);
    expect(cdr).to.include({
      disposition: 'no_answer',
      hangupBy: 'system',
      endReason: 'script_hangup',
      talkSec: 0,
    });
    expect(cdr).to.not.have.property('answeredBy');
    expect(cdr).to.not.have.property('answeredAt');
    // After both operators rang out, "goodbye" played, then the caller was hung up.
    const creates = bed.sim.requests
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => r.path === '/channels/create');
    expect(creates).to.have.length(2);
    const plays = bed.sim.requests
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => r.path === `/channels/${channelId}/play`);
    const goodbye = plays.find(({ r }) => JSON.stringify(r.query).includes('vm-goodbye'));
    expect(goodbye, 'vm-goodbye played').to.not.equal(undefined);
    expect(goodbye!.i).to.be.greaterThan(creates[1]!.i);
    const hangup = indexOf(bed, 'DELETE', `/channels/${channelId}`);
    expect(hangup).to.be.greaterThan(goodbye!.i);
    const legs = (await releasedCall(bed, callId)).legs.filter((l) => l.role === 'operator');
    expect(legs.map((l) => l.outcome)).to.deep.equal(['no_answer', 'no_answer']);
    const dial = bed.logs.find(
      (l) => l.callId === callId && l.message === 'verb result' && l.verb === 'dial',
    );
    expect(dial).to.include({ outcome: 'completed', dialStatus: 'NOANSWER' });
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('a dial with noAnswer "end": nobody answers, the caller takes the no-answer dialplan and the verbs after it never run', async () => {
    bed = await startTestBed({ NO_ANSWER_DIALPLAN: 'service,9999,1' });
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          { verb: 'dial', extensions: ['101'], ringTimeoutSec: 2, noAnswer: 'end' },
          { verb: 'play', media: ['sound:vm-goodbye'] },
        ],
      },
    }));
    bed.sim.phones.set('101', { mode: 'ring' });
    const { channelId, callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);
    expect(typesOf(bed, callId)).to.deep.equal(['call.started', 'call.ringing', 'call.ended']);
    expect(data(end)).to.include({ disposition: 'no_answer', endReason: 'nobody_answered' });
    const cont = bed.sim.requests.find((r) => r.path === `/channels/${channelId}/continue`);
    expect(cont?.query).to.include({ context: 'service', extension: '9999' });
    const goodbye = bed.sim.requests.find(
      (r) =>
        r.path === `/channels/${channelId}/play` && JSON.stringify(r.query).includes('vm-goodbye'),
    );
    expect(goodbye, 'the verb after the dial did not run').to.equal(undefined);
  });

  it('the caller hanging up during the menu ends the call; no operator is rung', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          { verb: 'play', media: ['sound:demo-congrats'] },
          { verb: 'dial', extensions: ['101'], ringTimeoutSec: 10 },
        ],
      },
    }));
    // The caller hangs up while the menu plays (not at a fixed time after the answer, which
    // could come before a loaded engine started the menu).
    onPlaybackStarted(bed.sim, (channel) => bed.sim.hangup(channel));
    const { channelId, callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);

    expect(typesOf(bed, callId)).to.deep.equal(['call.started', 'call.ended']);
    expect(data(end)).to.include({
      disposition: 'canceled',
      hangupBy: 'caller',
      endReason: 'abandoned',
    });
    expect(data(end)).to.not.have.property('answeredBy');
    expect(indexOf(bed, 'POST', `/channels/${channelId}/answer`)).to.be.at.least(0);
    expect(indexOf(bed, 'POST', '/channels/create')).to.equal(-1);
    const play = bed.logs.find(
      (l) => l.callId === callId && l.message === 'verb result' && l.verb === 'play',
    );
    expect(play).to.include({ outcome: 'hangup' });
    expect(
      bed.logs.filter((l) => l.callId === callId && l.message === 'verb result'),
    ).to.have.length(1);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('a script that starts with dial rings operators with the caller unanswered (ringback)', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: { verbs: [{ verb: 'dial', extensions: ['101'], ringTimeoutSec: 10 }] },
    }));
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500, hangupAfterMs: 500 });
    const { channelId, callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);
    expect(data(end)).to.include({ disposition: 'answered', answeredBy: '101' });
    // The caller was answered only when bridged, after the operator's leg was created.
    const create = indexOf(bed, 'POST', '/channels/create');
    expect(create).to.be.at.least(0);
    expect(indexOf(bed, 'POST', `/channels/${channelId}/answer`)).to.be.greaterThan(create);
  });

  it('the caller hanging up while a script dial rings: the operators are hung up, the script stops', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          { verb: 'dial', extensions: ['101'], ringTimeoutSec: 60 },
          { verb: 'play', media: ['sound:never-played'] },
        ],
      },
    }));
    bed.sim.phones.set('101', { mode: 'ring' });
    const { channelId, callId } = await callIn(bed);
    // The caller gives up once 101 rings (not after a fixed time: on a loaded machine the route
    // lookup and the dial may take longer than any such time).
    await bed.crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === 'call.ringing');
    bed.sim.hangup(channelId);
    const end = await bed.crm.waitForEnded(callId);
    expect(typesOf(bed, callId)).to.deep.equal(['call.started', 'call.ringing', 'call.ended']);
    expect(data(end)).to.include({
      disposition: 'canceled',
      hangupBy: 'caller',
      endReason: 'abandoned',
    });
    await until(
      () => bed.logs.some((l) => l.callId === callId && l.message === 'call script ended'),
      'the script to end',
    );
    expect(
      bed.logs.find((l) => l.callId === callId && l.message === 'call script ended'),
    ).to.include({ ended: 'hangup' });
    expect(
      bed.logs.find((l) => l.callId === callId && l.message === 'verb result' && l.verb === 'dial'),
    ).to.include({ outcome: 'hangup' });
    expect(indexOf(bed, 'POST', `/channels/${channelId}/play`)).to.equal(-1);
    await until(() => bed.sim.channels().length === 0, 'every channel to be gone');
  });

  it('takes the fallback route when the verbs answer is invalid, naming the bad field', async () => {
    bed = await startTestBed({ FALLBACK_ROUTE: 'sequential:102' });
    bed.crm.onRoute(() => ({
      body: { verbs: [{ verb: 'play', media: ['sound:hello-world'] }, { verb: 'gather' }] },
    }));
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 100, hangupAfterMs: 100 });
    const { channelId, callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);
    expect(data(end)).to.include({ disposition: 'answered', answeredBy: '102' });
    // Nothing of the script played.
    expect(indexOf(bed, 'POST', `/channels/${channelId}/play`)).to.equal(-1);
    const warn = bed.logs.find(
      (l) =>
        l.callId === callId && l.message === 'CRM route lookup failed; using the fallback route',
    );
    expect(warn).to.include({ level: 'warn', reason: 'invalid_body' });
    expect(String(warn!.detail)).to.include('verbs[1].timeoutSec');
    const metrics = (await apiRequest(bed.engine.httpUrl, '/metrics', { key: null })).text;
    expect(metrics).to.match(/aricrm_crm_route_fallbacks_total\{reason="invalid_body"\} 1/);
  });

  it('transfer to service: the caller continues in the dialplan at the service context', async () => {
    bed = await startTestBed({ SERVICE_CONTEXT: 'ivr-service' });
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          { verb: 'play', media: ['sound:beep'] },
          { verb: 'transfer', to: 'service' },
          { verb: 'play', media: ['sound:never-played'] },
        ],
      },
    }));
    const { channelId, callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);
    expect(data(end)).to.include({
      disposition: 'no_answer',
      hangupBy: 'system',
      endReason: 'transferred',
    });
    const cont = bed.sim.requests.find((r) => r.path === `/channels/${channelId}/continue`);
    expect(cont?.query).to.include({ context: 'ivr-service', extension: DID });
    // Handed to the dialplan: the engine neither hangs the caller up nor plays the rest.
    expect(indexOf(bed, 'DELETE', `/channels/${channelId}`)).to.equal(-1);
    expect(
      bed.sim.requests.some((r) => JSON.stringify(r.query ?? {}).includes('never-played')),
    ).to.equal(false);
  });

  it('transfer to an extension rings it; answered, the caller is bridged with it', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          { verb: 'play', media: ['sound:beep'] },
          { verb: 'transfer', to: '103' },
          { verb: 'play', media: ['sound:never-played'] },
        ],
      },
    }));
    bed.sim.phones.set('103', { mode: 'answer', answerAfterMs: 300, hangupAfterMs: 300 });
    const { callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);
    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(data(end)).to.include({ disposition: 'answered', answeredBy: '103' });
    expect(
      bed.sim.requests.some((r) => JSON.stringify(r.query ?? {}).includes('never-played')),
    ).to.equal(false);
  });

  it("record: the caller's message is stored, its signed link sent to the CRM, served with Range after the call", async () => {
    bed = await startTestBed({
      RECORDING_LINK_SECRET: 'verb-recording-link-secret-0123456789abcdef',
    });
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          { verb: 'record', maxSec: 2 },
          { verb: 'redirect', url: bed.crm.verbsUrl('?after=record') },
        ],
      },
    }));
    bed.crm.onVerbs(() => ({ body: { verbs: [{ verb: 'hangup' }] } }));
    const from = nextCaller();
    await bed.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(bed, from);
    await bed.crm.waitForEnded(callId);

    // The redirect after the record told the CRM about the recording, with its link.
    expect(bed.crm.verbsRequests).to.have.length(1);
    const recording = bed.crm.verbsRequests[0]!.body.recording as Record<string, unknown>;
    expect(recording).to.include({ format: 'wav', durationSec: 2, reason: 'maxSec' });
    const name = String(recording.name);
    expect(name).to.match(/^vrec-[0-9a-f-]{36}$/);
    const url = new URL(String(recording.url));
    expect(url.origin + url.pathname).to.equal(
      `${bed.engine.httpUrl}/v1/calls/${callId}/recordings/${name}`,
    );
    expect(Date.parse(String(recording.expiresAt))).to.be.greaterThan(Date.now());

    // The call is over: the link still plays, without an API key, a WAV of 2 s.
    const whole = await fetch(url);
    expect(whole.status).to.equal(200);
    expect(whole.headers.get('content-type')).to.equal('audio/wav');
    expect(whole.headers.get('accept-ranges')).to.equal('bytes');
    const bytes = Buffer.from(await whole.arrayBuffer());
    expect(bytes.length).to.equal(recording.bytes);
    // Asterisk stops at its clock's whole-second tick after maxSec: 2 to 3 s of audio.
    expect(verifyWav(bytes, 2).durationMs).to.be.within(2000, 3000);

    // A player seeks (206) and revalidates its copy (304).
    const part = await fetch(url, { headers: { range: 'bytes=0-3' } });
    expect(part.status).to.equal(206);
    expect(part.headers.get('content-range')).to.equal(`bytes 0-3/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).toString()).to.equal('RIFF');
    const etag = whole.headers.get('etag')!;
    const cached = await fetch(url, { headers: { 'if-none-match': etag } });
    expect(cached.status).to.equal(304);

    // An altered signature, or the link of another name, is refused; no key nor link → 401.
    const sig = url.searchParams.get('sig')!;
    const altered = new URL(url);
    altered.searchParams.set('sig', (sig[0] === '0' ? '1' : '0') + sig.slice(1));
    const otherName = new URL(url.href.replace(name, 'vrec-00000000-0000-4000-8000-000000000000'));
    for (const link of [altered, otherName]) {
      const refused = await apiRequest(link.origin, link.pathname + link.search, { key: null });
      expect(refused.status, link.href).to.equal(403);
      expect(refused.body.code).to.equal('link_invalid');
    }
    const path = `/v1/calls/${callId}/recordings/${name}`;
    const bare = await apiRequest(bed.engine.httpUrl, path, { key: null });
    expect(bare.status).to.equal(401);
    // With the API key it is served too; an unknown name is 404.
    expect((await apiRequest(bed.engine.httpUrl, path)).status).to.equal(200);
    const unknown = await apiRequest(
      bed.engine.httpUrl,
      `/v1/calls/${callId}/recordings/vrec-00000000-0000-4000-8000-000000000000`,
    );
    expect(unknown.status).to.equal(404);
    expect(unknown.body.code).to.equal('recording_not_found');
    // The call's details list it, with a fresh link to the same file.
    await until(
      async () =>
        (await apiRequest(bed.engine.httpUrl, `/v1/calls/${callId}`)).body.state === 'ended',
      'the call to be stored',
    );
    const details = await apiRequest(bed.engine.httpUrl, `/v1/calls/${callId}`);
    const listed = details.body.scriptRecordings as Array<Record<string, unknown>>;
    expect(listed.map((r) => [r.name, r.bytes])).to.deep.equal([[name, bytes.length]]);
    expect(new URL(String(listed[0]!.url)).pathname).to.equal(url.pathname);
    // Stored by the engine, so deleted from Asterisk.
    expect(indexOf(bed, 'DELETE', `/recordings/stored/${name}`)).to.be.at.least(0);

    // After an engine restart the same link still plays the same file.
    const { config, logger } = bed.engine;
    await bed.engine.stop();
    restarted = await startEngine(config, { logger, simulator: bed.sim });
    const again = await fetch(`${restarted.httpUrl}${url.pathname}${url.search}`);
    expect(again.status).to.equal(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(bytes)).to.equal(true);
  });

  it('a script that runs out of verbs ends the call (no silence)', async () => {
    bed = await startTestBed();
    bed.crm.onRoute(() => ({ body: { verbs: [{ verb: 'play', media: ['sound:beep'] }] } }));
    const { channelId, callId } = await callIn(bed);
    const end = await bed.crm.waitForEnded(callId);
    expect(data(end)).to.include({
      disposition: 'no_answer',
      hangupBy: 'system',
      endReason: 'script_ended',
    });
    expect(indexOf(bed, 'DELETE', `/channels/${channelId}`)).to.be.at.least(0);
    expect(bed.sim.channels()).to.have.length(0);
  });

  it('an engine restart in the middle of a script: the new engine asks the CRM again and runs its answer', async function () {
    this.timeout(40_000);
    bed = await startTestBed({ RING_TIMEOUT_SEC: '60' });
    // First answer: a long message (20 × 16 s), then 101; asked again after the restart: 101.
    bed.crm.onRoute(() => ({
      body: {
        verbs:
          bed.crm.routeRequests.length === 1
            ? [
                { verb: 'play', media: ['sound:demo-congrats'], loop: 20 },
                { verb: 'dial', extensions: ['101'], ringTimeoutSec: 10 },
              ]
            : [{ verb: 'dial', extensions: ['101'], ringTimeoutSec: 10 }],
      },
    }));
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300, hangupAfterMs: 500 });
    const { callId } = await callIn(bed);
    await until(
      () => bed.logs.some((l) => l.callId === callId && l.message === 'route decided'),
      'the route',
    );
    await bed.engine.calls.settled();
    await bed.engine.journal.flush();
    const { config, logger } = bed.engine;
    await bed.engine.stop();
    // The stopped engine stopped the script where it was (no verb runs on a closed ARI
    // connection), and neither ended the call nor rang anyone.
    await until(
      () => bed.logs.some((l) => l.callId === callId && l.message === 'call script ended'),
      'the script to stop',
    );
    expect(
      bed.logs.find((l) => l.callId === callId && l.message === 'call script ended'),
    ).to.include({ ended: 'stopped' });
    expect(typesOf(bed, callId)).to.deep.equal(['call.started']);
    expect(indexOf(bed, 'POST', '/channels/create')).to.equal(-1);

    restarted = await startEngine(config, { logger, simulator: bed.sim });
    const end = await bed.crm.waitForEnded(callId, 15_000);
    expect(typesOf(bed, callId)).to.deep.equal([
      'call.started',
      'call.recovered',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    const recovered = bed.crm.eventsOf(callId)[1]!;
    expect(data(recovered)).to.include({ state: 'greeting' });
    expect(bed.crm.routeRequests.map((r) => r.body.callId)).to.deep.equal([callId, callId]);
    expect(data(end)).to.include({ disposition: 'answered', answeredBy: '101' });
    expect(bed.sim.channels()).to.have.length(0);
  });
});
