/**
 * Fidelity of the PBX simulator: each trace recorded from a real Asterisk 22 is replayed against
 * the simulator (same REST calls, each sent after the event it reacted to, ids mapped), with the
 * phones set up to behave like the trace's SIPp phones; the simulator must answer the same
 * statuses and error bodies and send the same events per channel/bridge/playback/recording
 * (types, order, states, causes, dial statuses, caller/connected, dialplan, args). Only
 * ChannelVarset noise, ids, timestamps and the order of the racy ringing events are ignored.
 */
import { createServer, type Server } from 'node:http';
import { expect } from 'chai';
import {
  SimCallRejectedError,
  startSimulator,
  type InboundCall,
  type PbxSimulator,
} from '../../src/simulator/index.ts';
import { DECLARED_EVENT_TYPES } from '../../src/simulator/swagger/declarations.ts';
import { expectSameEvents, expectSameRest, expectSameVolume } from './support/compare.ts';
import { ari, AppSocket, replay, type ReplayedCall } from './support/driver.ts';
import { IdMap, loadTrace, type Json, type TraceLine } from './support/trace.ts';
import { asteriskTime, untilSimulatedTime } from '../support/sim-time.ts';

/** Simulated time runs 20x faster than real time. */
const TIME_SCALE = 0.05;
const CALLER = '79161234567';
const DID = '74951234567';

describe('simulator fidelity: trace replay', function () {
  this.timeout(20_000);
  let sim: PbxSimulator;
  let socket: AppSocket;

  /** Start the simulator (once per test) and connect the app. */
  async function start(timeScale = TIME_SCALE): Promise<void> {
    sim = await startSimulator({ timeScale });
    socket = await AppSocket.open(sim);
  }

  beforeEach(async function () {
    // inbound-answered needs a slower clock (see there); every other test starts here.
    if (!this.currentTest?.title.startsWith('inbound-answered')) await start();
  });

  afterEach(async () => {
    // ari-client throws inside its WebSocket handler for a type without a model in events.json.
    for (const e of socket?.events ?? [])
      expect(DECLARED_EVENT_TYPES, 'event types with a model').to.include(e.type);
    await socket?.close();
    await sim?.close();
  });

  /** Inject the trace's inbound call and map the trace's inbound channel to it. */
  async function inbound(
    trace: TraceLine[],
    ids: IdMap,
    call: Partial<InboundCall> = {},
  ): Promise<string> {
    const first = trace.find((l) => l.kind === 'event' && l.event.type === 'StasisStart');
    if (!first || first.kind !== 'event') throw new Error('trace has no StasisStart');
    const { channelId } = await sim.injectInboundCall({ from: CALLER, to: DID, ...call });
    ids.set(String((first.event.channel as Json).id), channelId);
    return channelId;
  }

  async function run(
    name: string,
    setup: (trace: TraceLine[], ids: IdMap) => Promise<void> = async () => {},
  ): Promise<{ calls: ReplayedCall[]; ids: IdMap }> {
    const trace = loadTrace(name);
    const ids = new IdMap();
    await setup(trace, ids);
    const calls = await replay(sim, socket, trace, ids);
    await expectSameEvents(socket, trace, ids);
    expectSameVolume(socket, trace);
    return { calls, ids };
  }

  it('inbound-answered: ring, create+dial 101 with CALLERID, answer, bridge, record, caller hangs up, real WAV', async () => {
    // The trace's recording lasts 3.006 s (duration 3, 48044 bytes): here the caller hangs up
    // once the simulator's clock reads 3.2 s after RecordingStarted, so the recording lasts 3.x s
    // whatever the real-time latency of the replaying app.
    const scale = 0.1;
    await start(scale);
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
    const trace = loadTrace('inbound-answered');
    const ids = new IdMap();
    const callerId = await inbound(trace, ids);
    const callerHangsUp = socket
      .next((e) => e.type === 'RecordingStarted', 'RecordingStarted', 0, 10_000)
      .then((e) => untilSimulatedTime(sim, asteriskTime(String(e.timestamp)) + 3200))
      .then(() => sim.hangup(callerId));
    const calls = await replay(sim, socket, trace, ids);
    await callerHangsUp;
    await expectSameEvents(socket, trace, ids);
    expectSameVolume(socket, trace);
    expectSameRest(calls, ids, {
      binary: ({ result }) => {
        expect(result.contentType).to.equal('audio/wav');
        const wav = result.bytes;
        expect(wav.subarray(0, 4).toString('ascii')).to.equal('RIFF');
        expect(wav.subarray(8, 16).toString('ascii')).to.equal('WAVEfmt ');
        expect(wav.readUInt16LE(20)).to.equal(1); // PCM
        expect(wav.readUInt16LE(22)).to.equal(1); // mono
        expect(wav.readUInt32LE(24)).to.equal(8000);
        expect(wav.readUInt16LE(34)).to.equal(16);
        expect(wav.readUInt32LE(4)).to.equal(wav.length - 8);
        expect(wav.readUInt32LE(40)).to.equal(wav.length - 44);
        // duration 3 s (as RecordingFinished said): 3 s of 8 kHz 16-bit audio, under 4 s.
        expect(wav.length).to.be.within(44 + 3 * 16000, 44 + 4 * 16000 - 1);
      },
    });
  });

  it('inbound-operator-busy: 102 answers 486', async () => {
    sim.phones.set('102', { mode: 'busy' });
    const { calls, ids } = await run('inbound-operator-busy', (trace, map) =>
      inbound(trace, map).then(() => undefined),
    );
    expectSameRest(calls, ids);
  });

  it('inbound-operator-no-answer: 103 rings until the 5 s dial timeout', async () => {
    sim.phones.set('103', { mode: 'ring' });
    const { calls, ids } = await run('inbound-operator-no-answer', (trace, map) =>
      inbound(trace, map).then(() => undefined),
    );
    expectSameRest(calls, ids);
  });

  it('inbound-caller-abandons: 103 rings, the caller CANCELs after 2 s, the operator leg keeps ringing', async () => {
    sim.phones.set('103', { mode: 'ring' });
    const { calls, ids } = await run('inbound-caller-abandons', (trace, map) =>
      inbound(trace, map, { abandonAfterMs: 2000 }).then(() => undefined),
    );
    expectSameRest(calls, ids);
  });

  it('click-to-call-answered: originate 101 into Stasis, on answer create+dial the client, bridge, hang up both', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 800 });
    sim.customers.set('74957654321', { mode: 'answer', answerAfterMs: 1000 });
    const { calls, ids } = await run('click-to-call-answered');
    expectSameRest(calls, ids);
  });

  it('click-to-call-client-busy: the customer answers 486, the operator hears a beep', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 800 });
    sim.customers.set('*', { mode: 'busy' });
    const { calls, ids } = await run('click-to-call-client-busy');
    expectSameRest(calls, ids);
  });

  it('autocall-playback: originate to a customer, play hello-world then beep (PlaybackContinuing)', async () => {
    sim.customers.set('79161234567', { mode: 'answer', answerAfterMs: 500 });
    const { calls, ids } = await run('autocall-playback');
    expectSameRest(calls, ids);
  });

  it('amd-continue: an originated customer continued to [crm-amd] leaves Stasis, runs AMD() and comes back with amd,NOTSURE,TOOLONG-…', async () => {
    // The kit's SIPp uas_answer sends no audio: AMD is not sure once its total analysis time
    // (5000 ms, then 1000 ms from CRM_AMD_TOTAL_ANALYSIS_MS) is over.
    sim.customers.set(CALLER, { mode: 'answer', answerAfterMs: 300, voice: 'none' });
    const { calls, ids } = await run('amd-continue');
    expectSameRest(calls, ids);
    const back = socket.events.filter(
      (e) => e.type === 'StasisStart' && (e.args as string[])[0] === 'amd',
    );
    expect(back.map((e) => e.args)).to.deep.equal([
      ['amd', 'NOTSURE', 'TOOLONG-4900'],
      ['amd', 'NOTSURE', 'TOOLONG-900'],
    ]);
  });

  it('transfer-to-service: the caller leaves the bridge and continues to service,9999,1', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    const { calls, ids } = await run('transfer-to-service', (trace, map) =>
      inbound(trace, map).then(() => undefined),
    );
    expectSameRest(calls, ids);
    // The caller runs Answer, Playback(hello-world), Hangup in the dialplan: gone after ~1.4 s.
    const callerId = ids.id('1795277187.77');
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (!sim.channels().some((c) => c.id === callerId)) {
          clearInterval(poll);
          resolve();
        } else if (Date.now() - started > 5000) {
          clearInterval(poll);
          reject(new Error('the caller never left the service dialplan'));
        }
      }, 5);
    });
  });

  it('ws-reconnect: the app WebSocket closes mid-call; channels stay bridged; events resume, nothing replayed', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    const trace = loadTrace('ws-reconnect');
    const ids = new IdMap();
    const callerId = await inbound(trace, ids, { hangupAfterMs: 6000 });
    const calls = await replay(sim, socket, trace, ids, {
      notes: {
        'closing the app WebSocket': async () => {
          // The connected-line update of the bridging was still delivered before the close.
          await socket.next(
            (e) => e.type === 'ChannelConnectedLine' && (e.channel as Json).id === callerId,
            'ChannelConnectedLine',
          );
          await socket.close();
        },
        'WebSocket reopened': () => socket.connect(),
      },
    });
    await expectSameEvents(socket, trace, ids);
    expectSameRest(calls, ids);
  });

  it('call-while-disconnected: no WebSocket and no channels: app unregistered, the call is rejected at once', async () => {
    await socket.close();
    const trace = loadTrace('call-while-disconnected');
    const [apps, channels] = trace.filter((l) => l.kind === 'rest');
    const listed = await ari(sim, 'GET', '/applications');
    expect(listed.status).to.equal(apps!.kind === 'rest' ? apps!.status : 0);
    expect(listed.body).to.deep.equal([]);
    let rejected: unknown;
    try {
      await sim.injectInboundCall({ from: CALLER, to: DID });
    } catch (err) {
      rejected = err;
    }
    expect(rejected).to.be.instanceOf(SimCallRejectedError);
    const after = await ari(sim, 'GET', '/channels');
    expect(after.status).to.equal(channels!.kind === 'rest' ? channels!.status : 0);
    expect(after.body).to.deep.equal([]);
  });

  /** The pstn-in channel ids of the trace's inbound calls, in order. */
  function inboundIds(trace: TraceLine[]): string[] {
    return trace
      .filter((l) => l.kind === 'event' && l.event.type === 'StasisStart')
      .map((l) => (l as { event: Json }).event.channel as Json)
      .filter((c) => String(c.name).startsWith('PJSIP/pstn-in-'))
      .map((c) => String(c.id));
  }

  it('dtmf-received: a customer presses 1 during a playback; in a native_rtp bridge no DTMF is seen, in a dtmf_events bridge it is', async () => {
    const press = { digits: '1', afterMs: 1500, durationMs: 280 };
    sim.customers.set('79161234567', { mode: 'answer', answerAfterMs: 500, dtmf: press });
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 500, dtmf: press });
    const trace = loadTrace('dtmf-received');
    const ids = new IdMap();
    const callers = inboundIds(trace);
    let next = 0;
    const injectCaller = async (): Promise<void> => {
      const { channelId } = await sim.injectInboundCall({
        from: CALLER,
        to: DID,
        hangupAfterMs: 4000,
      });
      ids.set(callers[next++] as string, channelId);
    };
    const calls = await replay(sim, socket, trace, ids, {
      notes: { 'inbound call in a': injectCaller },
    });
    await expectSameEvents(socket, trace, ids);
    expectSameVolume(socket, trace);
    expectSameRest(calls, ids);
    const digits = socket.events.filter((e) => e.type === 'ChannelDtmfReceived');
    expect(digits.map((e) => [e.digit, e.duration_ms])).to.deep.equal([
      ['1', 280],
      ['1', 280],
    ]);
  });

  describe('with a media server', () => {
    let media: Server;
    let mediaUrl: string;
    const served: string[] = [];

    beforeEach(async () => {
      // A 2 s WAV (8 kHz 16-bit mono) at /prompt.wav, 404 elsewhere.
      const wav = Buffer.alloc(44 + 32000);
      wav.write('RIFF', 0, 'ascii');
      wav.writeUInt32LE(wav.length - 8, 4);
      wav.write('WAVEfmt ', 8, 'ascii');
      wav.writeUInt32LE(16, 16);
      wav.writeUInt16LE(1, 20);
      wav.writeUInt16LE(1, 22);
      wav.writeUInt32LE(8000, 24);
      wav.writeUInt32LE(16000, 28);
      wav.writeUInt16LE(2, 32);
      wav.writeUInt16LE(16, 34);
      wav.write('data', 36, 'ascii');
      wav.writeUInt32LE(32000, 40);
      served.length = 0;
      media = createServer((req, res) => {
        served.push(`${req.method} ${req.url}`);
        if (req.url === '/prompt.wav') res.writeHead(200, { 'content-type': 'audio/wav' }).end(wav);
        else res.writeHead(404).end('not found');
      });
      await new Promise<void>((resolve) => media.listen(0, '127.0.0.1', resolve));
      const addr = media.address();
      mediaUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    });

    afterEach(() => new Promise<void>((resolve) => media.close(() => resolve())));

    it('play-http-media: sound:http:// is fetched (each time) and plays for the WAV length; 404 and unreachable URLs fail at once', async () => {
      sim.customers.set('79161234567', { mode: 'answer', answerAfterMs: 300 });
      const trace = loadTrace('play-http-media');
      const ids = new IdMap();
      const recorded = trace.find(
        (l) => l.kind === 'rest' && String(l.query.media ?? '').includes('/prompt.wav'),
      );
      const traceUrl = /http:\/\/127\.0\.0\.1:\d+/.exec(
        String(recorded?.kind === 'rest' ? recorded.query.media : ''),
      )?.[0];
      ids.set(traceUrl as string, mediaUrl);
      const started = Date.now();
      const calls = await replay(sim, socket, trace, ids);
      await expectSameEvents(socket, trace, ids);
      expectSameVolume(socket, trace);
      expectSameRest(calls, ids);
      expect(served).to.deep.equal(['GET /prompt.wav', 'GET /prompt.wav', 'GET /missing.wav']);
      // Two 2 s files on the simulated clock (20x faster): at least 200 real ms.
      expect(Date.now() - started).to.be.at.least((2 * 2000 * TIME_SCALE) | 0);
    });
  });

  it('device-endpoint-state: endpoint and device subscriptions, their events (channel events twice via the endpoint), unsubscribe', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
    const { calls, ids } = await run('device-endpoint-state');
    expectSameRest(calls, ids);
  });

  it('event-filter: a disallowed list keeps ChannelVarset and ChannelDialplan away, an allowed list lets only its types through; bad filters 400; forgotten with the app', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
    sim.customers.set('79161234567', { mode: 'answer', answerAfterMs: 300 });
    const trace = loadTrace('event-filter');
    const ids = new IdMap();
    const [callerTraceId] = inboundIds(trace);
    const calls = await replay(sim, socket, trace, ids, {
      // The caller calls once the filter is set, just before the trace's first answer to it.
      beforeRest: async (line) => {
        if (line.path !== `/channels/${String(callerTraceId)}/ring`) return;
        const { channelId } = await sim.injectInboundCall({
          from: CALLER,
          to: DID,
          hangupAfterMs: 2000,
        });
        ids.set(callerTraceId as string, channelId);
      },
      // With nothing in it and no WebSocket the app is forgotten, its filter with it.
      notes: {
        'closing the app WebSocket': () => socket.close(),
        'WebSocket reopened': () => socket.connect(),
      },
    });
    await expectSameEvents(socket, trace, ids);
    expectSameVolume(socket, trace);
    expectSameRest(calls, ids);
    expect(socket.events.filter((e) => e.type === 'ChannelVarset')).to.deep.equal([]);
  });

  it('errors: error bodies for unknown ids, missing/invalid parameters, unknown endpoints; listings', async () => {
    // The recording had one channel of crm-app on PJSIP/101 (listed by endpoints and the app).
    const precondition = await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
    });
    expect(precondition.status).to.equal(200);
    await socket.next((e) => e.type === 'StasisStart', 'StasisStart of the precondition channel');
    socket.events.length = 0;
    const { calls, ids } = await run('errors', async (_trace, map) => {
      map.set('1795277161.76', String((precondition.body as Json).id));
    });
    expectSameRest(calls, ids);
  });
});
