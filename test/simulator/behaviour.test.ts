/**
 * Simulator behaviour beyond the recorded scenarios: the README facts checked directly (1, 3, 7,
 * 8, 9, 13, 14), phone behaviours (unavailable, congestion, busy/timeout of an originate, a
 * ringing phone picked up later), dialplan continue, playbacks, recordings, presence events,
 * the simulated clock, and the public API hooks.
 */
import { expect } from 'chai';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { about, ari, AppSocket, bridgeInboundCall } from './support/driver.ts';
import type { Json } from './support/trace.ts';

const CALLER = '79161234567';
const DID = '74951234567';

const chan = (e: Json): Json => (e.channel ?? e.peer) as Json;

describe('simulator behaviour', function () {
  this.timeout(10_000);
  let sim: PbxSimulator;
  let socket: AppSocket;

  beforeEach(async () => {
    sim = await startSimulator({ timeScale: 0.02 });
    socket = await AppSocket.open(sim);
  });

  afterEach(async () => {
    await socket?.close();
    await sim?.close();
  });

  /** Types of the events about channel `id` (ChannelVarset noise left out). */
  function typesOf(id: string): string[] {
    return socket.events
      .filter((e) => e.type !== 'ChannelVarset' && about(id)(e))
      .map((e) => String(e.type));
  }

  it('fact 1/3: a created channel enters Stasis at once in state Down; /variable before its StasisStart answers 409', async () => {
    // An originated channel is not in Stasis until answered: the window is easy to see there.
    sim.phones.set('101', { mode: 'ring' });
    const orig = await ari(sim, 'POST', '/channels', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      channelId: 'orig-1',
    });
    expect(orig.status).to.equal(200);
    expect((orig.body as Json).dialplan).to.deep.include({
      app_name: 'AppDial2',
      app_data: '(Outgoing Line)',
    });
    const setVar = await ari(sim, 'POST', '/channels/orig-1/variable', {
      variable: 'CALLERID(name)',
      value: 'x',
    });
    expect(setVar).to.deep.include({
      status: 409,
      body: { message: 'Channel not in Stasis application' },
    });
    const created = await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/102',
      app: 'crm-app',
      channelId: 'cr-1',
    });
    expect((created.body as Json).state).to.equal('Down');
    const start = await socket.next(
      (e) => e.type === 'StasisStart' && about('cr-1')(e),
      'StasisStart',
    );
    expect(chan(start).state).to.equal('Down');
    expect(
      (await ari(sim, 'POST', '/channels/cr-1/variable', { variable: 'X', value: '1' })).status,
    ).to.equal(204);
    // Commands that need an answered channel answer 412 on a Down/Ringing one.
    expect(await ari(sim, 'POST', '/channels/cr-1/answer')).to.deep.include({
      status: 412,
      body: { message: 'Channel in invalid state' },
    });
  });

  it('fact 7/8: an originate reports Dial and Ringing before StasisStart; a dialplan channel gets no ChannelDestroyed', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
    await ari(sim, 'POST', '/channels', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      appArgs: 'click2call',
      callerId: '"CRM" <74957654321>',
      channelId: 'o-1',
    });
    await socket.next((e) => e.type === 'StasisStart' && about('o-1')(e), 'StasisStart');
    expect(typesOf('o-1')).to.deep.equal([
      'Dial',
      'Dial',
      'ChannelStateChange',
      'ChannelStateChange',
      'Dial',
      'StasisStart',
    ]);
    const { channelId } = await sim.injectInboundCall({ from: CALLER, to: DID });
    await socket.next(
      (e) => e.type === 'StasisStart' && about(channelId)(e),
      'inbound StasisStart',
    );
    await ari(sim, 'DELETE', `/channels/${channelId}`);
    await ari(sim, 'DELETE', '/channels/o-1');
    await socket.next(
      (e) => e.type === 'ChannelDestroyed' && about('o-1')(e),
      'ChannelDestroyed of the originated channel',
    );
    expect(typesOf(channelId)).to.deep.equal(['StasisStart', 'ChannelHangupRequest', 'StasisEnd']);
  });

  it('fact 9: Asterisk never hangs up the other leg nor destroys the bridge', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    const channelId = await bridgeInboundCall(sim, socket, {
      from: CALLER,
      to: DID,
      answerCaller: true,
    });
    sim.hangup(channelId); // the caller hangs up
    await socket.next((e) => e.type === 'StasisEnd' && about(channelId)(e), 'caller StasisEnd');
    const left = await ari(sim, 'GET', '/bridges/b1');
    expect(left.status).to.equal(200);
    expect((left.body as Json).channels).to.deep.equal(['op']);
    expect(sim.channels().map((c) => c.id)).to.deep.equal(['op']);
    expect((await ari(sim, 'GET', '/channels/op')).body).to.deep.include({ state: 'Up' });
  });

  it('fact 13: with the WebSocket gone, channels stay bridged, the app stays listed, events are dropped, nothing is replayed', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    const channelId = await bridgeInboundCall(sim, socket, { from: CALLER, to: DID });
    const sent: string[] = [];
    sim.onEvent((e) => sent.push(e.type));
    await socket.close();
    sim.hangup('op'); // the operator hangs up while the app is away
    const app = await ari(sim, 'GET', '/applications/crm-app');
    expect(app.status).to.equal(200);
    expect(app.body).to.deep.include({ channel_ids: [channelId], bridge_ids: ['b1'] });
    const before = socket.events.length;
    await socket.connect();
    sim.hangup(channelId);
    await socket.next(
      (e) => e.type === 'StasisEnd' && about(channelId)(e),
      'caller StasisEnd after reconnect',
      before,
    );
    const after = socket.events.slice(before);
    expect(after.filter(about('op'))).to.deep.equal([]);
    expect(after.filter((e) => e.type !== 'ChannelVarset').map((e) => e.type)).to.deep.equal([
      'ChannelHangupRequest',
      'ChannelLeftBridge',
      'StasisEnd',
    ]);
    expect(
      (after.find((e) => e.type === 'ChannelLeftBridge')?.bridge as Json).channels,
    ).to.deep.equal([]);
    expect(sent.every((t) => after.some((e) => e.type === t))).to.equal(true);
  });

  it('dropWebSockets closes every app WebSocket from the server side; the app keeps its channels', async () => {
    const { channelId } = await sim.injectInboundCall({ from: CALLER, to: DID });
    await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
    const closed = new Promise<void>((resolve) =>
      (socket as unknown as { ws: { once(ev: string, fn: () => void): void } }).ws.once(
        'close',
        resolve,
      ),
    );
    sim.dropWebSockets();
    await closed;
    expect((await ari(sim, 'GET', '/applications/crm-app')).body).to.deep.include({
      channel_ids: [channelId],
    });
    let error: unknown;
    await sim.injectInboundCall({ from: CALLER, to: DID }).catch((err: unknown) => (error = err));
    expect(error).to.have.property('reason', 'app_not_connected');
  });

  it('a silent WebSocket (stallWebSockets): a new call enters the app, its StasisStart is lost, GET /channels shows it in Stasis; a new WebSocket gets events again', async () => {
    const first = await sim.injectInboundCall({ from: CALLER, to: DID });
    await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
    sim.stallWebSockets();
    // Asterisk still has the app connected: the call is accepted and enters Stasis.
    const { channelId } = await sim.injectInboundCall({ from: '79160000002', to: DID });
    sim.hangup(first.channelId);
    const listed = (await ari(sim, 'GET', '/channels')).body as Json[];
    expect(listed.map((c) => [c.id, c.state, (c.dialplan as Json).app_data])).to.deep.equal([
      [channelId, 'Ring', `crm-app,inbound,${DID}`],
    ]);
    // The app heard nothing of it: neither its StasisStart nor the other caller's hang-up.
    expect(socket.events.filter(about(channelId))).to.deep.equal([]);
    expect(typesOf(first.channelId)).to.deep.equal(['StasisStart']);

    // The stalled connection dropped (the app's ping timeout), a new one opened.
    sim.dropWebSockets();
    await socket.close();
    socket = await AppSocket.open(sim);
    sim.hangup(channelId);
    await socket.next((e) => e.type === 'StasisEnd' && about(channelId)(e), 'StasisEnd');
  });

  it('fact 14: without WebSocket and channels the app is unregistered and inbound calls are rejected', async () => {
    expect((await ari(sim, 'GET', '/applications')).body).to.deep.equal([
      {
        name: 'crm-app',
        channel_ids: [],
        bridge_ids: [],
        endpoint_ids: [],
        device_names: [],
        events_allowed: [],
        events_disallowed: [],
      },
    ]);
    await socket.close();
    expect((await ari(sim, 'GET', '/applications')).body).to.deep.equal([]);
    expect(await ari(sim, 'GET', '/applications/crm-app')).to.deep.include({
      status: 404,
      body: { message: 'Application not found' },
    });
    const control = sim.controlRouter();
    expect(control).to.be.a('function');
    let error: unknown;
    await sim.injectInboundCall({ from: CALLER, to: DID }).catch((err: unknown) => (error = err));
    expect(error).to.have.property('name', 'SimCallRejectedError');
    expect(sim.channels()).to.deep.equal([]);
  });

  it('unavailable phones: create and originate answer 500 Allocation failed, the endpoint is offline', async () => {
    sim.phones.set('103', { mode: 'unavailable' });
    sim.customers.set('70000000000', { mode: 'unavailable' });
    for (const [path, endpoint] of [
      ['/channels/create', 'PJSIP/103'],
      ['/channels', 'PJSIP/103'],
      ['/channels/create', 'PJSIP/70000000000@client-trunk'],
    ] as const) {
      expect(
        await ari(sim, 'POST', path, { endpoint, app: 'crm-app' }),
        `${path} ${endpoint}`,
      ).to.deep.include({ status: 500, body: { error: 'Allocation failed' } });
    }
    expect((await ari(sim, 'GET', '/endpoints/PJSIP/103')).body).to.deep.include({
      state: 'offline',
    });
    expect((await ari(sim, 'GET', '/deviceStates/PJSIP%2F103')).body).to.deep.equal({
      name: 'PJSIP/103',
      state: 'UNAVAILABLE',
    });
    expect((await ari(sim, 'GET', '/endpoints/PJSIP/101')).body).to.deep.include({
      state: 'online',
    });
  });

  it('dial: congestion answers cause 34 tech_cause 503; a ringing phone set to answer picks up', async () => {
    sim.phones.set('102', { mode: 'congestion' });
    await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/102',
      app: 'crm-app',
      channelId: 'c1',
    });
    await ari(sim, 'POST', '/channels/c1/dial');
    const destroyed = await socket.next(
      (e) => e.type === 'ChannelDestroyed' && about('c1')(e),
      'destroyed',
    );
    expect(destroyed).to.deep.include({
      cause: 34,
      cause_txt: 'Circuit/channel congestion',
      tech_cause: 503,
    });
    expect(typesOf('c1')).to.deep.equal([
      'ChannelDialplan',
      'StasisStart',
      'Dial',
      'ChannelHangupRequest',
      'StasisEnd',
      'ChannelDestroyed',
    ]);

    sim.phones.set('101', { mode: 'ring' });
    await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      channelId: 'r1',
    });
    await ari(sim, 'POST', '/channels/r1/dial', { timeout: 30 });
    await socket.next(
      (e) => e.type === 'Dial' && e.dialstatus === 'RINGING' && about('r1')(e),
      'RINGING',
    );
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    await socket.next(
      (e) => e.type === 'Dial' && e.dialstatus === 'ANSWER' && about('r1')(e),
      'ANSWER',
    );
    expect(sim.phones.list().find((p) => p.extension === '101')?.channelIds).to.deep.equal(['r1']);
  });

  it('originate: busy reports Dial BUSY and 17 "User busy"; the ring timeout destroys with 19; no StasisStart', async () => {
    sim.customers.set('71111111111', { mode: 'busy' });
    sim.customers.set('72222222222', { mode: 'ring' });
    await ari(sim, 'POST', '/channels', {
      endpoint: 'PJSIP/71111111111@client-trunk',
      app: 'crm-app',
      channelId: 'ob',
    });
    await ari(sim, 'POST', '/channels', {
      endpoint: 'PJSIP/72222222222@client-trunk',
      app: 'crm-app',
      channelId: 'ot',
      timeout: 2,
    });
    const busy = await socket.next(
      (e) => e.type === 'ChannelDestroyed' && about('ob')(e),
      'busy destroyed',
    );
    expect(busy).to.deep.include({ cause: 17, cause_txt: 'User busy', tech_cause: 486 });
    expect(
      socket.events
        .filter(about('ob'))
        .map(
          (e) => `${String(e.type)}${e.dialstatus !== undefined ? ` ${String(e.dialstatus)}` : ''}`,
        ),
    ).to.deep.equal(['Dial ', 'ChannelHangupRequest', 'Dial BUSY', 'ChannelDestroyed']);
    const timeout = await socket.next(
      (e) => e.type === 'ChannelDestroyed' && about('ot')(e),
      'timeout destroyed',
    );
    expect(timeout).to.deep.include({ cause: 19, cause_txt: 'User alerting, no answer' });
    expect(typesOf('ot')).to.not.include('StasisStart');
  });

  it('continue: a dialplan channel leaves Stasis and runs the dialplan; an unknown extension hangs it up; a created channel is hung up', async () => {
    const { channelId } = await sim.injectInboundCall({ from: CALLER, to: DID });
    await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
    expect(
      await ari(sim, 'POST', `/channels/${channelId}/continue`, {
        context: 'service',
        extension: '9999',
        label: 'nolabel',
      }),
    ).to.deep.include({
      status: 404,
      body: { message: 'Requested label can not be found' },
    });
    expect(
      (
        await ari(sim, 'POST', `/channels/${channelId}/continue`, {
          context: 'nowhere',
          extension: '1',
        })
      ).status,
    ).to.equal(204);
    await socket.next((e) => e.type === 'StasisEnd', 'StasisEnd');
    expect(sim.channels()).to.deep.equal([]);

    await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      channelId: 'k1',
    });
    await ari(sim, 'POST', '/channels/k1/dial');
    await socket.next((e) => e.type === 'Dial' && e.dialstatus === 'ANSWER', 'ANSWER');
    await ari(sim, 'POST', '/channels/k1/continue', {
      context: 'service',
      extension: '9999',
      priority: 1,
    });
    const gone = await socket.next(
      (e) => e.type === 'ChannelDestroyed' && about('k1')(e),
      'k1 destroyed',
    );
    expect(gone).to.deep.include({ cause: 16, cause_txt: 'Normal Clearing' });
  });

  it('playback: one at a time per channel, stop ends it done, a queued one is canceled, unknown media fails', async () => {
    await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      channelId: 'down',
    });
    expect(
      await ari(sim, 'POST', '/channels/down/play', { media: 'sound:hello-world' }),
    ).to.deep.include({ status: 412, body: { message: 'Channel in invalid state' } });
    const { channelId } = await sim.injectInboundCall({ from: CALLER, to: DID });
    await socket.next((e) => e.type === 'StasisStart' && about(channelId)(e), 'StasisStart');
    await ari(sim, 'POST', `/channels/${channelId}/answer`);
    const first = await ari(sim, 'POST', `/channels/${channelId}/play/pb-1`, {
      media: 'tone:ring',
    });
    expect(first).to.deep.include({ status: 201 });
    expect(first.body).to.deep.equal({
      id: 'pb-1',
      media_uri: 'tone:ring',
      target_uri: `channel:${channelId}`,
      language: 'en',
      state: 'queued',
    });
    await ari(sim, 'POST', `/channels/${channelId}/play/pb-2`, { media: 'sound:beep' });
    await ari(sim, 'POST', `/channels/${channelId}/play/pb-3`, { media: 'video:nope' });
    await socket.next((e) => e.type === 'PlaybackStarted', 'first playback started');
    expect((await ari(sim, 'GET', '/playbacks/pb-2')).body).to.deep.include({ state: 'queued' });
    expect((await ari(sim, 'DELETE', '/playbacks/pb-1')).status).to.equal(204);
    const failed = await socket.next(
      (e) => e.type === 'PlaybackFinished' && (e.playback as Json).id === 'pb-3',
      'pb-3 finished',
    );
    expect(failed.playback).to.deep.include({ state: 'failed' });
    const seq = socket.events
      .filter((e) => String(e.type).startsWith('Playback'))
      .map(
        (e) =>
          `${String(e.type)} ${String((e.playback as Json).id)} ${String((e.playback as Json).state)}`,
      );
    expect(seq).to.deep.equal([
      'PlaybackStarted pb-1 playing',
      'PlaybackFinished pb-1 done',
      'PlaybackStarted pb-2 playing',
      'PlaybackFinished pb-2 done',
      'PlaybackStarted pb-3 playing',
      'PlaybackFinished pb-3 failed',
    ]);
    expect(await ari(sim, 'GET', '/playbacks/pb-1')).to.deep.include({
      status: 404,
      body: { message: 'Playback not found' },
    });
  });

  it("recording: maxDurationSeconds 3 ends at the clock's whole-second tick after 3 s (a 3-4 s WAV, duration 3, as Asterisk's); ifExists=fail answers 409; stop and cancel; unknown format 422", async () => {
    await ari(sim, 'POST', '/bridges/rb', { type: 'mixing' });
    const { channelId } = await sim.injectInboundCall({ from: CALLER, to: DID });
    await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
    await ari(sim, 'POST', `/channels/${channelId}/answer`);
    await ari(sim, 'POST', '/bridges/rb/addChannel', { channel: channelId });
    expect(
      await ari(sim, 'POST', '/bridges/rb/record', { name: 'r', format: 'mp9' }),
    ).to.deep.include({
      status: 422,
      body: { message: 'specified format is unknown on this system' },
    });
    const rec = await ari(sim, 'POST', '/bridges/rb/record', {
      name: 'r',
      format: 'wav',
      maxDurationSeconds: 3,
    });
    expect(rec).to.deep.include({
      status: 201,
      body: { name: 'r', format: 'wav', state: 'queued', target_uri: 'bridge:rb' },
    });
    const started = await socket.next((e) => e.type === 'RecordingStarted', 'RecordingStarted');
    const done = await socket.next((e) => e.type === 'RecordingFinished', 'RecordingFinished');
    expect(done.recording).to.deep.equal({
      name: 'r',
      format: 'wav',
      state: 'done',
      target_uri: 'bridge:rb',
      duration: 3,
    });
    const file = await ari(sim, 'GET', '/recordings/stored/r/file');
    expect(file.contentType).to.equal('audio/wav');
    // Asterisk stops once its time() is more than 3 whole seconds past the start's: the file
    // holds the audio up to that tick (the start is known to the millisecond: ±1 frame).
    const startMs = Date.parse(String(started.timestamp).replace('+0000', 'Z'));
    const lengthMs = (Math.floor(startMs / 1000) + 4) * 1000 - startMs;
    expect(lengthMs).to.be.within(3001, 4000);
    const frames = Math.floor(lengthMs / 20);
    expect(file.bytes.length).to.be.within(44 + 320 * (frames - 1), 44 + 320 * (frames + 1));
    expect(
      await ari(sim, 'POST', '/bridges/rb/record', { name: 'r', format: 'wav' }),
    ).to.deep.include({
      status: 409,
      body: { message: "Recording 'r' already exists and can not be overwritten" },
    });
    await ari(sim, 'POST', '/bridges/rb/record', { name: 'r2', format: 'wav' });
    expect((await ari(sim, 'GET', '/recordings/live/r2')).body).to.deep.include({
      state: 'recording',
    });
    expect((await ari(sim, 'POST', '/recordings/live/r2/stop')).status).to.equal(204);
    await ari(sim, 'POST', '/bridges/rb/record', { name: 'r3', format: 'wav' });
    expect((await ari(sim, 'DELETE', '/recordings/live/r3')).status).to.equal(204);
    const canceled = await socket.next(
      (e) => e.type === 'RecordingFinished' && (e.recording as Json).name === 'r3',
      'r3 finished',
    );
    expect(canceled.recording).to.deep.include({ state: 'canceled' });
    expect((await ari(sim, 'GET', '/recordings/stored')).body).to.deep.equal([
      { name: 'r', format: 'wav' },
      { name: 'r2', format: 'wav' },
    ]);
    expect((await ari(sim, 'DELETE', '/recordings/stored/r2')).status).to.equal(204);
    expect(await ari(sim, 'DELETE', '/recordings/stored/r2')).to.deep.include({
      status: 404,
      body: { message: 'Recording not found' },
    });
  });

  it('presence: an app subscribed to an endpoint and a device gets EndpointStateChange and DeviceStateChanged', async () => {
    const sub = await ari(sim, 'POST', '/applications/crm-app/subscription', {
      eventSource: 'endpoint:PJSIP/101,deviceState:PJSIP/101',
    });
    expect(sub.body).to.deep.include({ endpoint_ids: ['PJSIP/101'], device_names: ['PJSIP/101'] });
    expect(
      await ari(sim, 'POST', '/applications/crm-app/subscription', { eventSource: 'foo:bar' }),
    ).to.deep.include({ status: 400, body: { message: 'Invalid event source URI scheme' } });
    sim.phones.set('101', { mode: 'ring' });
    await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      channelId: 'p1',
    });
    await ari(sim, 'POST', '/channels/p1/dial');
    const ringing = await socket.next(
      (e) => e.type === 'DeviceStateChanged' && (e.device_state as Json).state === 'RINGING',
      'RINGING device state',
    );
    expect(ringing.device_state).to.deep.equal({ name: 'PJSIP/101', state: 'RINGING' });
    const ep = await socket.next((e) => e.type === 'EndpointStateChange', 'EndpointStateChange');
    expect(ep.endpoint).to.deep.include({ technology: 'PJSIP', resource: '101', state: 'online' });
    await ari(sim, 'DELETE', '/channels/p1');
    await socket.next(
      (e) => e.type === 'DeviceStateChanged' && (e.device_state as Json).state === 'NOT_INUSE',
      'NOT_INUSE',
    );
    expect(
      await ari(sim, 'PUT', '/deviceStates/PJSIP%2F101', { deviceState: 'BUSY' }),
    ).to.deep.include({ status: 409, body: { message: 'Uncontrolled device specified' } });
    expect(
      (await ari(sim, 'PUT', '/deviceStates/Stasis:agent-7', { deviceState: 'INUSE' })).status,
    ).to.equal(204);
    expect((await ari(sim, 'GET', '/deviceStates')).body).to.deep.equal([
      { name: 'Stasis:agent-7', state: 'INUSE' },
    ]);
  });

  it('the simulated clock: timestamps and durations follow simulated time, UniqueIDs are <unix>.<seq>', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 10_000 });
    await ari(sim, 'POST', '/channels/create', { endpoint: 'PJSIP/101', app: 'crm-app' });
    const start = await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
    const id = String(chan(start).id);
    expect(id).to.match(/^\d{10}\.\d+$/);
    expect(String(chan(start).name)).to.match(/^PJSIP\/101-[0-9a-f]{8}$/);
    const realStart = Date.now();
    await ari(sim, 'POST', `/channels/${id}/dial`);
    const ringing = await socket.next(
      (e) => e.type === 'Dial' && e.dialstatus === 'RINGING',
      'RINGING',
    );
    const answer = await socket.next(
      (e) => e.type === 'Dial' && e.dialstatus === 'ANSWER',
      'ANSWER',
    );
    const simulatedMs =
      Date.parse(String(answer.timestamp).replace('+0000', 'Z')) -
      Date.parse(String(ringing.timestamp).replace('+0000', 'Z'));
    // 10 s of simulated ringing, to the millisecond: a real timer that fires late (a loaded
    // machine) does not make simulated time pass faster. Timestamps are whole milliseconds.
    expect(simulatedMs).to.be.within(10_000 - 1, 10_000 + 1);
    // In far less real time (200 ms unloaded; the clock stands still while timers run late).
    expect(Date.now() - realStart).to.be.below(5_000);
    expect(String(answer.timestamp)).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
  });

  it('hangupSpreadMs: answered phones hang up at random moments between hangupAfterMs and hangupAfterMs + hangupSpreadMs', async () => {
    sim.phones.set('101', {
      mode: 'answer',
      answerAfterMs: 0,
      hangupAfterMs: 1000,
      hangupSpreadMs: 4000,
    });
    const ids = Array.from({ length: 12 }, (_, i) => `spread-${i}`);
    const at = (e: Json): number => Date.parse(String(e.timestamp).replace('+0000', 'Z'));
    const talks = await Promise.all(
      ids.map(async (channelId) => {
        const answered = socket.next(
          (e) => e.type === 'Dial' && e.dialstatus === 'ANSWER' && about(channelId)(e),
          `${channelId} ANSWER`,
        );
        const hungUp = socket.next(
          (e) => e.type === 'ChannelHangupRequest' && about(channelId)(e),
          `${channelId} hang-up`,
        );
        await ari(sim, 'POST', '/channels', { endpoint: 'PJSIP/101', app: 'crm-app', channelId });
        return at(await hungUp) - at(await answered);
      }),
    );
    // Simulated ms, whole (±1 from flooring the timestamps). A real timer that fires late on a
    // loaded machine runs at its simulated due time: no slack above the spread is needed.
    for (const talk of talks) expect(talk).to.be.within(1000 - 1, 5000 + 1);
    expect(Math.max(...talks) - Math.min(...talks)).to.be.above(1000);
  });

  it('subscribeAll: an app sees every channel and bridge, from ChannelCreated on, and BridgeCreated', async () => {
    const all = await AppSocket.open(sim, 'monitor', true);
    try {
      await ari(sim, 'POST', '/bridges/b-all', { type: 'mixing' });
      const { channelId } = await sim.injectInboundCall({ from: CALLER, to: DID });
      await all.next(
        (e) => e.type === 'StasisStart' && about(channelId)(e),
        'StasisStart seen by the monitor',
      );
      expect(all.events.filter((e) => e.type !== 'ChannelVarset').map((e) => e.type)).to.deep.equal(
        [
          'BridgeCreated',
          'ChannelCreated',
          'EndpointStateChange',
          'DeviceStateChanged',
          'ChannelDialplan',
          'ChannelDialplan',
          'StasisStart',
        ],
      );
      await socket.next((e) => e.type === 'StasisStart', 'StasisStart seen by crm-app');
      expect(socket.events.map((e) => e.type)).to.deep.equal(['StasisStart']);
    } finally {
      await all.close();
    }
  });

  it('keeps only the last requestLogLimit requests', async () => {
    const small = await startSimulator({ timeScale: 0.02, requestLogLimit: 2 });
    try {
      for (const path of ['/channels', '/bridges', '/endpoints']) await ari(small, 'GET', path);
      expect(small.requests.map((r) => r.path)).to.deep.equal(['/bridges', '/endpoints']);
    } finally {
      await small.close();
    }
  });

  it('emitRawEvent sends any event to the app; onEvent sees what is sent; requests are recorded', async () => {
    const seen: string[] = [];
    const off = sim.onEvent((e) => seen.push(e.type));
    sim.emitRawEvent('crm-app', { type: 'SomethingNew', detail: 1 });
    const raw = await socket.next((e) => e.type === 'SomethingNew', 'raw event');
    expect(raw).to.deep.include({ type: 'SomethingNew', detail: 1, application: 'crm-app' });
    expect(seen).to.deep.equal(['SomethingNew']);
    off();
    sim.clearRequests();
    await ari(sim, 'GET', '/channels/nope');
    expect(sim.requests).to.have.length(1);
    expect(sim.requests[0]).to.deep.include({
      method: 'GET',
      path: '/channels/nope',
      status: 404,
      response: { message: 'Channel not found' },
    });
  });
});

describe('simulator: operator answer stagger (the demo)', function () {
  this.timeout(10_000);
  let sim: PbxSimulator | undefined;
  let socket: AppSocket | undefined;

  afterEach(async () => {
    await socket?.close();
    await sim?.close();
    sim = undefined;
    socket = undefined;
  });

  it('answers each operator phone later than the one before it, so a ring-all call has one answer first', async () => {
    // 2 s apart in simulated time, 400 ms in real time: room to hang the others up.
    sim = await startSimulator({ timeScale: 0.2, operatorAnswerStaggerMs: 2000 });
    socket = await AppSocket.open(sim);
    expect(sim.phones.list().map((p) => [p.extension, p.behaviour])).to.deep.equal([
      ['101', { mode: 'answer', answerAfterMs: 1000 }],
      ['102', { mode: 'answer', answerAfterMs: 3000 }],
      ['103', { mode: 'answer', answerAfterMs: 5000 }],
    ]);
    // The three phones of a ring-all, dialled at once (as the engine does: create, then dial).
    const ids = ['101', '102', '103'];
    for (const ext of ids)
      await ari(sim, 'POST', '/channels/create', {
        endpoint: `PJSIP/${ext}`,
        app: 'crm-app',
        channelId: `ring-${ext}`,
      });
    for (const ext of ids)
      await socket.next(
        (e) => e.type === 'StasisStart' && about(`ring-${ext}`)(e),
        `${ext} StasisStart`,
      );
    await Promise.all(ids.map((ext) => ari(sim!, 'POST', `/channels/ring-${ext}/dial`)));
    const first = await socket.next(
      (e) => e.type === 'Dial' && e.dialstatus === 'ANSWER',
      'the first answer',
    );
    expect(String((first.peer as Json).id)).to.equal('ring-101');
    // The app hangs up the phones still ringing, as the engine does for the losers.
    await Promise.all(['102', '103'].map((ext) => ari(sim!, 'DELETE', `/channels/ring-${ext}`)));
    for (const ext of ['102', '103'])
      await socket.next(
        (e) => e.type === 'ChannelDestroyed' && about(`ring-${ext}`)(e),
        `${ext} destroyed`,
      );
    const answers = socket.events.filter((e) => e.type === 'Dial' && e.dialstatus === 'ANSWER');
    expect(answers).to.have.length(1);
  });

  it('keeps every phone at 1000 ms without a stagger; reset goes back to the staggered defaults', async () => {
    const plain = await startSimulator({ timeScale: 0.02 });
    try {
      expect(plain.phones.list().map((p) => p.behaviour)).to.deep.equal(
        Array(3).fill({ mode: 'answer', answerAfterMs: 1000 }),
      );
    } finally {
      await plain.close();
    }
    sim = await startSimulator({ timeScale: 0.02, operatorAnswerStaggerMs: 700 });
    sim.phones.set('102', { mode: 'busy' });
    sim.phones.reset();
    expect(sim.phones.get('102')).to.deep.equal({ mode: 'answer', answerAfterMs: 1700 });
    await expectRejects(startSimulator({ operatorAnswerStaggerMs: -1 }), /operatorAnswerStaggerMs/);
    await expectRejects(
      startSimulator({ operatorAnswerStaggerMs: 1.5 }),
      /operatorAnswerStaggerMs/,
    );
  });
});

async function expectRejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    const started = await promise;
    await (started as PbxSimulator).close();
  } catch (err) {
    expect(err).to.be.instanceOf(RangeError);
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail('should have been refused');
}
