/**
 * The gateway with the real ari-client against the PBX simulator (src/simulator): typed events
 * for real call flows, typed errors, the not-in-Stasis race, reconnects, listener cleanup.
 */
import { createServer } from 'node:net';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import {
  createAriGateway,
  ENGINE_EVENT_FILTER,
  newBridgeId,
  newChannelId,
  type AriGatewayOptions,
} from '../../src/ari/gateway.ts';
import {
  AriBadRequestError,
  AriError,
  AriNotFoundError,
  AriServerError,
} from '../../src/ari/errors.ts';
import type { AriEvent, AriGateway, StasisStartEvent } from '../../src/ari/types.ts';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { APP } from './support/events.ts';
import { captureLogger, metricValue, nextEvent, until, watchStates } from './support/helpers.ts';

const CALLER = '79161234567';
const DID = '74951234567';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('ARI gateway against the PBX simulator', function () {
  this.timeout(10_000);
  let sim: PbxSimulator | undefined;
  let gw: AriGateway;
  let registry: Registry;
  let logs: ReturnType<typeof captureLogger>;

  function makeGateway(url: string, opts: Partial<AriGatewayOptions> = {}): AriGateway {
    registry = new Registry();
    logs = captureLogger();
    gw = createAriGateway({
      url,
      username: 'asterisk',
      password: 'asterisk',
      app: APP,
      logger: logs.logger,
      registry,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      channelListenerGraceMs: 50,
      ...opts,
    });
    return gw;
  }

  async function connected(opts: Partial<AriGatewayOptions> = {}): Promise<PbxSimulator> {
    sim = await startSimulator({ timeScale: 0.01 });
    makeGateway(sim.url, opts);
    await gw.start();
    return sim;
  }

  /** Inject an inbound call and resolve with its StasisStart as the gateway delivered it. */
  async function inbound(s: PbxSimulator): Promise<StasisStartEvent> {
    const started = nextEvent<StasisStartEvent>(
      gw,
      (e) => e.type === 'StasisStart' && e.args[0] === 'inbound',
    );
    const { channelId } = await s.injectInboundCall({ from: CALLER, to: DID });
    const event = await started;
    expect(event.channel.id).to.equal(channelId);
    return event;
  }

  afterEach(async () => {
    await gw?.stop();
    await sim?.close();
    sim = undefined;
  });

  it('connects with the real ari-client and receives a typed StasisStart for an injected call', async () => {
    const s = await connected();
    expect(gw.isConnected()).to.equal(true);
    const start = await inbound(s);
    expect(start.args).to.deep.equal(['inbound', DID]);
    expect(start.application).to.equal(APP);
    expect(start.channel.caller.number).to.equal(CALLER);
    expect(start.channel.dialplan.context).to.equal('from-pstn');
    expect(
      await metricValue(registry, 'aricrm_ari_events_total', { type: 'StasisStart' }),
    ).to.equal(1);
    const app = await gw.applications.get(APP);
    expect(app.channel_ids).to.include(start.channel.id);
  });

  it('creates a channel with a client id and gets its events, even when StasisStart beats the HTTP answer', async () => {
    const s = await connected();
    s.setRaces({ stasisStartBeforeCreateResponse: true });
    const caller = await inbound(s);
    const id = newChannelId('op');
    const events: AriEvent[] = [];
    const stasisStarted = new Promise<void>((resolve) => {
      gw.onChannel(id, (e) => {
        events.push(e);
        if (e.type === 'StasisStart') resolve();
      });
    });
    const channel = await gw.channels.create({
      endpoint: 'PJSIP/101',
      channelId: id,
      appArgs: ['operator', caller.channel.id],
      variables: { 'CALLERID(name)': 'CRM: Ivan Petrov' },
    });
    expect(channel.id).to.equal(id);
    expect(channel.state).to.equal('Down');
    expect(Object.getPrototypeOf(channel)).to.equal(Object.prototype);
    await stasisStarted;
    const start = events.find((e): e is StasisStartEvent => e.type === 'StasisStart');
    expect(start?.args).to.deep.equal(['operator', caller.channel.id]);
    const created = s.requests.find((r) => r.path === '/channels/create');
    expect(created?.query).to.include({
      endpoint: 'PJSIP/101',
      app: APP,
      channelId: id,
      appArgs: `operator,${caller.channel.id}`,
    });
    expect(created?.body).to.deep.equal({ variables: { 'CALLERID(name)': 'CRM: Ivan Petrov' } });

    // dial: the operator (answers after 1 s simulated) goes Up; the Dial events concern both legs.
    const answered = nextEvent(
      gw,
      (e) => e.type === 'Dial' && e.dialstatus === 'ANSWER' && e.peer.id === id,
    );
    await gw.channels.dial(id, { caller: caller.channel.id, timeoutSec: 30 });
    await answered;
    expect(events.some((e) => e.type === 'Dial' && e.dialstatus === 'ANSWER')).to.equal(true);
  });

  it('maps 404, 500 and 400 answers to typed errors with the right kind and status', async () => {
    const s = await connected();
    const notFound = await rejection(gw.channels.get('does-not-exist'));
    expect(notFound).to.be.instanceOf(AriNotFoundError);
    expect(notFound).to.include({
      kind: 'not_found',
      status: 404,
      asteriskMessage: 'Channel not found',
    });

    const noBridge = await rejection(gw.bridges.addChannel('does-not-exist', ['x']));
    expect(noBridge).to.be.instanceOf(AriNotFoundError);
    expect(noBridge).to.include({
      asteriskMessage: 'Bridge not found',
      operation: 'bridges.addChannel',
    });

    const allocation = await rejection(
      gw.channels.create({ endpoint: 'Bogus/1', channelId: newChannelId(), appArgs: [] }),
    );
    expect(allocation).to.be.instanceOf(AriServerError);
    expect(allocation).to.include({
      kind: 'server_error',
      status: 500,
      asteriskMessage: 'Allocation failed',
    });

    const unknownEndpoint = await rejection(
      gw.channels.originate({
        endpoint: 'PJSIP/nosuchendpoint',
        channelId: newChannelId(),
        appArgs: [],
      }),
    );
    expect(unknownEndpoint).to.be.instanceOf(AriServerError);

    const noEndpoint = await rejection(
      gw.channels.originate({ endpoint: '', channelId: newChannelId(), appArgs: [] }),
    );
    expect(noEndpoint).to.be.instanceOf(AriBadRequestError);
    expect(noEndpoint).to.include({ kind: 'bad_request', status: 400 });
    expect((noEndpoint as AriError).asteriskMessage).to.match(/Endpoint must be specified/);

    const noRecording = await rejection(gw.recordings.getStoredFile('none-such'));
    expect(noRecording).to.be.instanceOf(AriNotFoundError);
    expect(noRecording).to.include({ asteriskMessage: 'Recording not found' });

    expect(s.requests.filter((r) => r.status >= 400)).to.have.length(6);
  });

  it('retries 409 "Channel not in Stasis application" right after StasisStart and succeeds', async () => {
    const s = await connected();
    s.setRaces({ notInStasisAfterStasisStart: 2 });
    const start = await inbound(s);
    await gw.channels.ring(start.channel.id);
    const rings = s.requests.filter((r) => r.path === `/channels/${start.channel.id}/ring`);
    expect(rings.map((r) => r.status)).to.deep.equal([409, 409, 204]);
    expect(rings[0]?.response).to.deep.equal({ message: 'Channel not in Stasis application' });
    expect(
      await metricValue(registry, 'aricrm_ari_command_retries_total', {
        operation: 'channels.ring',
      }),
    ).to.equal(2);
  });

  it('does not retry a non-409 error', async () => {
    const s = await connected();
    s.clearRequests();
    await rejection(gw.channels.answer('does-not-exist'));
    await rejection(gw.channels.hangup('does-not-exist'));
    const channelRequests = s.requests.filter((r) => r.path.startsWith('/channels'));
    expect(channelRequests.map((r) => `${r.method} ${r.path} ${r.status}`)).to.deep.equal([
      'POST /channels/does-not-exist/answer 404',
      'DELETE /channels/does-not-exist 404',
    ]);
    expect(await metricValue(registry, 'aricrm_ari_command_retries_total')).to.equal(0);
  });

  it('asks Asterisk not to send the event types the engine never reads (eventFilter) before reporting the connection, again after a reconnect', async () => {
    const s = await connected();
    // Set before the connection is reported.
    const expected = ENGINE_EVENT_FILTER.disallowed?.map((type) => ({ type }));
    expect((await gw.applications.get(APP)).events_disallowed).to.deep.equal(expected);
    const seen: AriEvent[] = [];
    gw.onEvent((e) => void seen.push(e));
    // An answered, bridged call is rich in ChannelVarset (BRIDGEPEER, RTPAUDIOQOS…).
    const caller = await inbound(s);
    const leg = newChannelId();
    await gw.channels.create({ endpoint: 'PJSIP/101', channelId: leg, appArgs: ['op'] });
    await gw.channels.dial(leg, { caller: caller.channel.id });
    await nextEvent(gw, (e) => e.type === 'Dial' && e.dialstatus === 'ANSWER');
    const bridge = newBridgeId();
    await gw.bridges.create({ bridgeId: bridge, type: ['mixing'] });
    await gw.bridges.addChannel(bridge, [caller.channel.id, leg]);
    await gw.channels.hangup(leg);
    await nextEvent(gw, (e) => e.type === 'ChannelDestroyed' && e.channel.id === leg);
    expect(seen.map((e) => e.type)).to.include.members(['StasisStart', 'Dial', 'ChannelDestroyed']);
    expect(seen.filter((e) => ENGINE_EVENT_FILTER.disallowed?.includes(e.type))).to.deep.equal([]);
    await gw.channels.hangup(caller.channel.id);
    await nextEvent(gw, (e) => e.type === 'StasisEnd' && e.channel.id === caller.channel.id);
    await gw.bridges.destroy(bridge);
    // Without a WebSocket and with nothing in it the app is forgotten, its filter with it.
    s.dropWebSockets();
    const watch = watchStates(gw);
    await watch.waitFor('connected');
    expect((await gw.applications.get(APP)).events_disallowed).to.deep.equal(expected);
  });

  it('subscribes the app to device states (presence): DeviceStateChanged passes the event filter; reads a device state', async () => {
    const s = await connected();
    const app = await gw.applications.subscribe(['deviceState:PJSIP/101', 'deviceState:PJSIP/102']);
    expect(app.device_names).to.include.members(['PJSIP/101', 'PJSIP/102']);
    expect(await gw.deviceStates.get('PJSIP/101')).to.deep.equal({
      name: 'PJSIP/101',
      state: 'NOT_INUSE',
    });
    const offline = nextEvent(
      gw,
      (e) => e.type === 'DeviceStateChanged' && e.device_state.name === 'PJSIP/101',
    );
    s.phones.setRegistered('101', false);
    const event = await offline;
    expect(event.type === 'DeviceStateChanged' && event.device_state.state).to.equal('UNAVAILABLE');
    expect(await gw.deviceStates.get('PJSIP/101')).to.include({ state: 'UNAVAILABLE' });
    expect(await gw.endpoints.get('PJSIP', '101')).to.include({ state: 'offline' });
    s.phones.setRegistered('101', true);
    expect(ENGINE_EVENT_FILTER.disallowed).to.not.include('DeviceStateChanged');
    expect(ENGINE_EVENT_FILTER.disallowed).to.not.include('EndpointStateChange');
  });

  it('reconnects after the WebSocket is dropped; events resume and live channels are still listed', async () => {
    const s = await connected();
    const watch = watchStates(gw);
    const first = await inbound(s);
    s.dropWebSockets();
    await watch.waitFor('disconnected');
    await watch.waitFor('connected');
    expect(watch.states).to.deep.equal(['disconnected', 'connecting', 'connected']);
    expect(gw.isConnected()).to.equal(true);
    expect(await metricValue(registry, 'aricrm_ari_reconnects_total')).to.equal(1);
    // fixtures fact 13: nothing replayed, the channel is still there to be listed
    expect((await gw.channels.list()).map((c) => c.id)).to.include(first.channel.id);
    const second = await inbound(s);
    expect(second.channel.id).not.to.equal(first.channel.id);
  });

  it('keeps retrying while Asterisk is unreachable at start and connects when it comes up', async () => {
    const port = await freePort();
    makeGateway(`http://127.0.0.1:${port}`, { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    let done = false;
    const started = gw.start().then(() => {
      done = true;
    });
    await until(
      () => logs.lines.filter((l) => l.message === 'ARI connection failed; retrying').length >= 3,
      'three failed tries',
    );
    expect(done).to.equal(false);
    sim = await startSimulator({ timeScale: 0.01, port });
    await started;
    expect(gw.isConnected()).to.equal(true);
    await inbound(sim);
  });

  it('an unknown event type does not crash the gateway and is counted', async () => {
    const s = await connected();
    s.emitRawEvent(APP, { type: 'ChannelTalkingStarted', channel: { id: 'x' } });
    s.emitRawEvent(APP, { type: 'SomethingFromAsterisk99' });
    await inbound(s);
    expect(await metricValue(registry, 'aricrm_ari_events_unknown_total')).to.equal(2);
    expect(gw.isConnected()).to.equal(true);
  });

  it('a throwing or rejecting listener is counted and the others still get the events', async () => {
    const onHandlerError = sinon.spy();
    sim = await startSimulator({ timeScale: 0.01 });
    makeGateway(sim.url, { onHandlerError });
    await gw.start();
    gw.onEvent(() => {
      throw new Error('sync failure');
    });
    gw.onEvent(() => Promise.reject(new Error('async failure')));
    const seen: string[] = [];
    gw.onEvent((e) => void seen.push(e.type));
    await inbound(sim);
    await until(() => onHandlerError.callCount >= 2, 'both failures reported');
    expect(seen).to.include('StasisStart');
    expect(await metricValue(registry, 'aricrm_ari_handler_errors_total')).to.equal(
      onHandlerError.callCount,
    );
    expect(onHandlerError.args.map((a) => (a[0] as Error).message).slice(0, 2)).to.deep.equal([
      'sync failure',
      'async failure',
    ]);
  });

  it('removes channel listeners after ChannelDestroyed of a channel the app created', async () => {
    const s = await connected();
    const caller = await inbound(s);
    const id = newChannelId('op');
    const types: string[] = [];
    gw.onChannel(id, (e) => void types.push(e.type));
    const up = nextEvent(gw, (e) => e.type === 'StasisStart' && e.channel.id === id);
    await gw.channels.create({
      endpoint: 'PJSIP/102',
      channelId: id,
      appArgs: ['operator', caller.channel.id],
    });
    await up;
    expect(await metricValue(registry, 'aricrm_ari_channel_listeners')).to.equal(1);
    const destroyed = nextEvent(gw, (e) => e.type === 'ChannelDestroyed' && e.channel.id === id);
    await gw.channels.hangup(id);
    await destroyed;
    expect(types).to.include.members(['StasisStart', 'StasisEnd', 'ChannelDestroyed']);
    expect(types[types.length - 1]).to.equal('ChannelDestroyed');
    expect(await metricValue(registry, 'aricrm_ari_channel_listeners')).to.equal(0);
  });

  it('removes channel listeners of a dialplan channel after its StasisEnd (no ChannelDestroyed follows)', async () => {
    const s = await connected();
    const start = await inbound(s);
    const id = start.channel.id;
    const types: string[] = [];
    gw.onChannel(id, (e) => void types.push(e.type));
    await gw.channels.answer(id);
    const ended = nextEvent(gw, (e) => e.type === 'StasisEnd' && e.channel.id === id);
    await gw.channels.continueInDialplan(id, {
      context: 'service',
      extension: '9999',
      priority: 1,
    });
    await ended;
    expect(await metricValue(registry, 'aricrm_ari_channel_listeners')).to.equal(1);
    await until(
      async () => (await metricValue(registry, 'aricrm_ari_channel_listeners')) === 0,
      'listener cleanup',
    );
    expect(types).to.include('StasisEnd');
    expect(types).not.to.include('ChannelDestroyed');
  });

  it('bridges two legs with client ids and records the bridge (plain JSON answers)', async () => {
    const s = await connected();
    const caller = await inbound(s);
    await gw.channels.answer(caller.channel.id);
    const op = newChannelId('op');
    const opUp = nextEvent(
      gw,
      (e) => e.type === 'Dial' && e.dialstatus === 'ANSWER' && e.peer.id === op,
    );
    await gw.channels.create({
      endpoint: 'PJSIP/101',
      channelId: op,
      appArgs: ['operator', caller.channel.id],
    });
    await gw.channels.dial(op, { caller: caller.channel.id, timeoutSec: 30 });
    await opUp;
    const bridgeId = newBridgeId();
    const bridge = await gw.bridges.create({ bridgeId, type: ['mixing'] });
    expect(bridge.id).to.equal(bridgeId);
    const bothIn = new Promise<void>((resolve) => {
      const off = gw.onEvent((e) => {
        if (
          e.type === 'ChannelEnteredBridge' &&
          e.bridge.id === bridgeId &&
          e.bridge.channels.length === 2
        ) {
          off();
          resolve();
        }
      });
    });
    await gw.bridges.addChannel(bridgeId, [caller.channel.id, op]);
    await bothIn;
    const recording = await gw.bridges.record(bridgeId, { name: `rec-${bridgeId}`, format: 'wav' });
    expect(recording.name).to.equal(`rec-${bridgeId}`);
    expect(Object.getPrototypeOf(recording)).to.equal(Object.prototype);
    expect((await gw.bridges.get(bridgeId)).channels.sort()).to.deep.equal(
      [caller.channel.id, op].sort(),
    );
    await gw.channels.hangup(op);
    await gw.bridges.destroy(bridgeId);
  });

  it('writes nothing but JSON to stdout while connecting', async () => {
    sim = await startSimulator({ timeScale: 0.01 });
    makeGateway(sim.url);
    const written: string[] = [];
    const stub = sinon.stub(process.stdout, 'write').callsFake((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await gw.start();
      await gw.channels.list();
    } finally {
      stub.restore();
    }
    for (const line of written
      .join('')
      .split('\n')
      .filter((l) => l.trim())) {
      expect(() => JSON.parse(line) as unknown, `stdout line: ${line}`).not.to.throw();
    }
  });
});
