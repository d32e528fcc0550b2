/**
 * The gateway against a scripted ARI server (./support/fake-ari.ts) with the real ari-client:
 * REST parameter mapping, typed errors with the HTTP status, the not-in-Stasis retry, the event
 * WebSocket (dispatch, unknown types, failing listeners, reconnect, dead peer), and stdout.
 */
import { createServer } from 'node:net';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import {
  createAriGateway,
  newBridgeId,
  newChannelId,
  newPlaybackId,
  type AriGatewayOptions,
} from '../../src/ari/gateway.ts';
import {
  AriBadRequestError,
  AriConflictError,
  AriConnectionError,
  AriError,
  AriNotFoundError,
  AriNotInStasisError,
  AriServerError,
} from '../../src/ari/errors.ts';
import type { AriEvent, AriGateway } from '../../src/ari/types.ts';
import { FakeAri, type FakeAriOptions, type FakeRequest } from './support/fake-ari.ts';
import { APP, ariChannel, ev } from './support/events.ts';
import { captureLogger, metricValue, nextEvent, until, watchStates } from './support/helpers.ts';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('ARI gateway (scripted ARI server)', function () {
  this.timeout(10_000);
  let fake: FakeAri;
  let gw: AriGateway;
  let registry: Registry;
  let logs: ReturnType<typeof captureLogger>;

  async function setup(
    opts: Partial<AriGatewayOptions> = {},
    fakeOpts: FakeAriOptions = {},
  ): Promise<void> {
    fake = await FakeAri.start(fakeOpts);
    registry = new Registry();
    logs = captureLogger();
    gw = createAriGateway({
      url: fake.url,
      username: fake.username,
      password: fake.password,
      app: APP,
      logger: logs.logger,
      registry,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      channelListenerGraceMs: 30,
      ...opts,
    });
  }

  afterEach(async () => {
    await gw?.stop();
    await fake?.close();
  });

  describe('connection', () => {
    it('opens the event WebSocket for the app with encoded credentials and reports connected', async () => {
      await setup();
      const watch = watchStates(gw);
      await gw.start();
      expect(gw.isConnected()).to.equal(true);
      expect(watch.states).to.deep.equal(['connecting', 'connected']);
      expect(fake.wsConnections).to.deep.equal([
        { app: APP, apiKey: `${fake.username}:${fake.password}`, subscribeAll: 'false' },
      ]);
      expect(await metricValue(registry, 'aricrm_ari_connected')).to.equal(1);
      // The same promise for concurrent starts; one connection.
      await gw.start();
      expect(fake.wsConnections).to.have.length(1);
    });

    it('reports connecting → connected → stopped and rejects nothing on a clean stop', async () => {
      await setup();
      const states: string[] = [];
      gw.onConnectionChange((s) => states.push(s));
      await gw.start();
      await gw.stop();
      expect(states).to.deep.equal(['connecting', 'connected', 'stopped']);
      expect(gw.isConnected()).to.equal(false);
      expect(await metricValue(registry, 'aricrm_ari_connected')).to.equal(0);
    });

    it('never logs the password', async () => {
      await setup();
      await gw.start();
      await gw.channels.list().catch(() => undefined);
      fake.dropWebSockets();
      await until(() => fake.wsConnections.length >= 2, 'reconnect');
      expect(logs.raw.join('\n')).not.to.include(fake.password);
      expect(logs.raw.join('\n')).not.to.include(encodeURIComponent(fake.password));
    });

    it('writes nothing but JSON log lines to stdout while connecting (swagger-client log routed)', async () => {
      await setup();
      const written: string[] = [];
      const stub = sinon.stub(process.stdout, 'write').callsFake((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      });
      const logSpy = sinon.spy(console, 'log');
      try {
        await gw.start();
        await gw.channels.list().catch(() => undefined);
      } finally {
        stub.restore();
        logSpy.restore();
      }
      for (const line of written
        .join('')
        .split('\n')
        .filter((l) => l.trim())) {
        expect(() => JSON.parse(line) as unknown, `stdout line: ${line}`).not.to.throw();
      }
      expect(logSpy.called).to.equal(false);
      // swagger-client's "deprecated version of Swagger" line went to the debug log instead.
      expect(
        logs.lines.some(
          (l) => String(l.message).includes('deprecated version of Swagger') && l.level === 'debug',
        ),
      ).to.equal(true);
    });

    it('keeps retrying while Asterisk is unreachable and connects when it comes up', async () => {
      const port = await freePort();
      registry = new Registry();
      logs = captureLogger();
      gw = createAriGateway({
        url: `http://127.0.0.1:${port}`,
        username: 'asterisk',
        password: 'secret',
        app: APP,
        logger: logs.logger,
        registry,
        reconnect: { initialDelayMs: 10, maxDelayMs: 40 },
      });
      const watch = watchStates(gw);
      const started = gw.start();
      let settled = false;
      void started.then(
        () => (settled = true),
        () => (settled = true),
      );
      await until(
        () => logs.lines.filter((l) => l.message === 'ARI connection failed; retrying').length >= 3,
        'three failed tries',
      );
      expect(settled).to.equal(false);
      expect(gw.isConnected()).to.equal(false);
      expect(() => gw.channels.list()).not.to.throw();
      const notLoaded = await gw.channels.list().catch((e: unknown) => e);
      expect(notLoaded).to.be.instanceOf(AriConnectionError);
      fake = await FakeAri.start({ port, username: 'asterisk', password: 'secret' });
      await started;
      expect(gw.isConnected()).to.equal(true);
      expect(watch.states).to.deep.equal(['connecting', 'connected']);
      expect(await gw.channels.list().catch((e: unknown) => e)).to.be.instanceOf(AriNotFoundError); // fake's default answer
    });

    it('keeps retrying on wrong credentials without crashing, and stop() rejects the pending start()', async () => {
      await setup();
      await fake.close();
      fake = await FakeAri.start({ username: 'asterisk', password: 'other' });
      gw = createAriGateway({
        url: fake.url,
        username: 'asterisk',
        password: 'wrong',
        app: APP,
        logger: logs.logger,
        registry: new Registry(),
        reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
      });
      const started = gw.start();
      await until(
        () => logs.lines.filter((l) => l.message === 'ARI connection failed; retrying').length >= 2,
        'two failed tries',
      );
      expect(
        String(logs.lines.find((l) => l.message === 'ARI connection failed; retrying')?.error),
      ).to.include('authentication failed');
      await gw.stop();
      const err = await started.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(AriConnectionError);
    });

    it('reconnects after the WebSocket drops and events resume', async () => {
      await setup();
      const watch = watchStates(gw);
      await gw.start();
      fake.dropWebSockets();
      await watch.waitFor('disconnected');
      await watch.waitFor('connected', 2);
      expect(watch.states).to.deep.equal([
        'connecting',
        'connected',
        'disconnected',
        'connecting',
        'connected',
      ]);
      expect(await metricValue(registry, 'aricrm_ari_reconnects_total')).to.equal(1);
      const got = nextEvent(gw, (e) => e.type === 'StasisStart');
      fake.send(ev.stasisStart('after-reconnect'));
      expect((await got).type).to.equal('StasisStart');
    });

    it('keeps reconnecting with backoff while the server is gone, forever', async () => {
      await setup();
      const port = fake.port;
      const watch = watchStates(gw);
      await gw.start();
      await fake.close();
      await watch.waitFor('disconnected');
      await until(
        () => logs.lines.filter((l) => l.message === 'ARI connection failed; retrying').length >= 4,
        'four failed tries',
      );
      fake = await FakeAri.start({ port, username: fake.username, password: fake.password });
      await watch.waitFor('connected', 2);
      expect(gw.isConnected()).to.equal(true);
    });

    it('backs off when every connection drops right after opening (flapping server)', async () => {
      await setup({ reconnect: { initialDelayMs: 5, maxDelayMs: 40, jitter: 0 } });
      await gw.start();
      fake.dropImmediately = true;
      fake.dropWebSockets();
      await until(() => fake.wsConnections.length >= 6, 'five reconnections');
      const delays = logs.lines
        .filter((l) => l.message === 'ARI WebSocket closed; reconnecting')
        .map((l) => l.delayMs);
      expect(delays.slice(0, 5)).to.deep.equal([5, 10, 20, 40, 40]);
    });

    it('drops a peer that stops answering pings and reconnects', async () => {
      await setup({ pingIntervalMs: 25 }, { autoPong: false });
      const watch = watchStates(gw);
      await gw.start();
      await watch.waitFor('disconnected');
      expect(logs.lines.some((l) => String(l.message).includes('did not answer ping'))).to.equal(
        true,
      );
      await until(() => fake.wsConnections.length >= 2, 'a new connection');
    });

    it('a peer that answers pings stays connected', async () => {
      await setup({ pingIntervalMs: 10 });
      const watch = watchStates(gw);
      await gw.start();
      await until(() => fake.pingsReceived >= 15, '15 pings answered');
      expect(watch.states).to.deep.equal(['connecting', 'connected']);
      expect(fake.wsConnections).to.have.length(1);
    });
  });

  describe('events', () => {
    beforeEach(async () => {
      await setup();
      await gw.start();
    });

    it('delivers typed events to onEvent listeners in arrival order and counts them by type', async () => {
      const seen: string[] = [];
      gw.onEvent((e) => {
        seen.push(`${e.type}:${'channel' in e && e.channel ? e.channel.id : ''}`);
      });
      const last = nextEvent(gw, (e) => e.type === 'ChannelDestroyed');
      fake.send(ev.stasisStart('c1'));
      fake.send(ev.stateChange('c1', 'Up'));
      fake.send(ev.varset('c1', 'BRIDGEPEER', 'x'));
      fake.send(ev.stasisEnd('c1'));
      fake.send(ev.destroyed('c1'));
      await last;
      expect(seen).to.deep.equal([
        'StasisStart:c1',
        'ChannelStateChange:c1',
        'ChannelVarset:c1',
        'StasisEnd:c1',
        'ChannelDestroyed:c1',
      ]);
      expect(
        await metricValue(registry, 'aricrm_ari_events_total', { type: 'StasisStart' }),
      ).to.equal(1);
      expect(await metricValue(registry, 'aricrm_ari_events_total')).to.equal(5);
    });

    it('handles a burst in order in slices of eventSliceMs, so timers and I/O run in between; 0 handles it in one go', async () => {
      /** Send 40 events at once, each taking ~0.5 ms to handle; how many were handled when a timer set at the first one ran. */
      const burst = async (): Promise<{ order: string[]; handledWhenTimerRan: number }> => {
        const order: string[] = [];
        let handledWhenTimerRan = -1;
        gw.onEvent((e) => {
          if (order.length === 0) setTimeout(() => (handledWhenTimerRan = order.length), 0);
          order.push('channel' in e && e.channel ? e.channel.id : '');
          const until = performance.now() + 0.5;
          while (performance.now() < until);
        });
        const last = nextEvent(gw, (e) => 'channel' in e && e.channel?.id === 'b39');
        fake.sendBurst(Array.from({ length: 40 }, (_, i) => ev.varset(`b${i}`, 'X', String(i))));
        await last;
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { order, handledWhenTimerRan };
      };
      const expected = Array.from({ length: 40 }, (_, i) => `b${i}`);
      /** A fresh scripted server and a gateway with `eventSliceMs`, connected. */
      const restart = async (eventSliceMs: number): Promise<void> => {
        await gw.stop();
        await fake.close();
        await setup({ eventSliceMs });
        await gw.start();
      };

      await restart(2);
      const sliced = await burst();
      expect(sliced.order).to.deep.equal(expected);
      // ~4 events (2 ms) per slice: the timer runs after the first slice or two, not after 20 ms.
      expect(sliced.handledWhenTimerRan, 'the timer ran before the burst was over').to.be.within(
        1,
        12,
      );

      await restart(0);
      const whole = await burst();
      expect(whole.order).to.deep.equal(expected);
      expect(whole.handledWhenTimerRan, 'no slices: the timer waited for the burst').to.equal(40);
    });

    it('drops, logs and counts unknown types and garbage without breaking the stream', async () => {
      const got = nextEvent(gw, (e) => e.type === 'StasisStart');
      fake.send({
        type: 'ChannelTalkingStarted',
        channel: ariChannel('x'),
        application: APP,
        timestamp: '',
      });
      fake.send({ type: 'ApplicationReplaced', application: APP, timestamp: '' });
      fake.send('this is not json');
      fake.send({ no: 'type' });
      fake.send(ev.stasisStart('c2'));
      await got;
      expect(await metricValue(registry, 'aricrm_ari_events_unknown_total')).to.equal(4);
      expect(logs.lines.some((l) => l.eventType === 'ChannelTalkingStarted')).to.equal(true);
      expect(
        logs.lines.some((l) => l.level === 'warn' && String(l.message).includes('same Stasis app')),
      ).to.equal(true);
      expect(gw.isConnected()).to.equal(true);
    });

    it('counts a throwing or rejecting listener, calls onHandlerError, and still serves the others', async () => {
      await gw.stop();
      const onHandlerError = sinon.spy();
      const unhandled = sinon.spy();
      process.on('unhandledRejection', unhandled);
      try {
        gw = createAriGateway({
          url: fake.url,
          username: fake.username,
          password: fake.password,
          app: APP,
          logger: logs.logger,
          registry: (registry = new Registry()),
          onHandlerError,
        });
        await gw.start();
        gw.onEvent(() => {
          throw new Error('sync boom');
        });
        gw.onEvent(async () => {
          throw new Error('async boom');
        });
        gw.onChannel('c3', () => {
          throw new Error('channel boom');
        });
        const healthy: string[] = [];
        gw.onEvent((e) => void healthy.push(e.type));
        const healthyChannel: string[] = [];
        gw.onChannel('c3', (e) => void healthyChannel.push(e.type));
        fake.send(ev.stasisStart('c3'));
        fake.send(ev.stasisEnd('c3'));
        await until(() => onHandlerError.callCount === 6, 'six handler errors');
        expect(healthy).to.deep.equal(['StasisStart', 'StasisEnd']);
        expect(healthyChannel).to.deep.equal(['StasisStart', 'StasisEnd']);
        expect(await metricValue(registry, 'aricrm_ari_handler_errors_total')).to.equal(6);
        const [err, event] = onHandlerError.firstCall.args as [Error, AriEvent];
        expect(err.message).to.equal('sync boom');
        expect(event.type).to.equal('StasisStart');
        const logged = logs.lines.filter((l) => l.message === 'ARI event listener failed');
        expect(logged).to.have.length(6);
        expect(logged[0]).to.include({ eventType: 'StasisStart', channelId: 'c3', level: 'error' });
        await new Promise((r) => setImmediate(r));
        expect(unhandled.called).to.equal(false);
      } finally {
        process.off('unhandledRejection', unhandled);
      }
    });

    it('onChannel gets only its channel events, and its listeners are removed after ChannelDestroyed', async () => {
      const id = newChannelId('op');
      const mine: string[] = [];
      gw.onChannel(id, (e) => void mine.push(e.type));
      expect(await metricValue(registry, 'aricrm_ari_channel_listeners')).to.equal(1);
      const done = nextEvent(gw, (e) => e.type === 'ChannelDestroyed' && e.channel.id === id);
      fake.send(ev.stasisStart('someone-else'));
      fake.send(ev.stasisStart(id));
      fake.send(ev.hangupRequest(id, 17));
      fake.send(ev.stasisEnd(id));
      fake.send(ev.destroyed(id, 17, 'User busy'));
      await done;
      expect(mine).to.deep.equal([
        'StasisStart',
        'ChannelHangupRequest',
        'StasisEnd',
        'ChannelDestroyed',
      ]);
      expect(await metricValue(registry, 'aricrm_ari_channel_listeners')).to.equal(0);
      // Later events for the same id reach nobody.
      const later = nextEvent(gw, (e) => e.type === 'StasisStart');
      fake.send(ev.stasisStart(id));
      await later;
      expect(mine).to.have.length(4);
    });

    it('removes the listeners of a dialplan channel the grace period after StasisEnd', async () => {
      const id = '1795277133.60';
      const off = gw.onChannel(id, () => undefined);
      gw.onChannel(id, () => undefined);
      expect(await metricValue(registry, 'aricrm_ari_channel_listeners')).to.equal(2);
      fake.send(ev.stasisStart(id));
      fake.send(ev.stasisEnd(id));
      await until(
        async () => (await metricValue(registry, 'aricrm_ari_channel_listeners')) === 0,
        'listeners removed',
      );
      off(); // unsubscribing after the cleanup is harmless
      expect(await metricValue(registry, 'aricrm_ari_channel_listeners')).to.equal(0);
    });

    it('stop() drops every listener', async () => {
      gw.onChannel('a', () => undefined);
      gw.onEvent(() => undefined);
      await gw.stop();
      expect(await metricValue(registry, 'aricrm_ari_channel_listeners')).to.equal(0);
    });
  });

  describe('REST', () => {
    beforeEach(async () => {
      await setup({ notInStasisRetry: { attempts: 6, delayMs: 2 } });
      await gw.start();
    });

    const last = (): FakeRequest => fake.restRequests[fake.restRequests.length - 1]!;

    it('maps every operation to the ARI path, method and parameter names', async () => {
      const channel = ariChannel('c-1', 'Down');
      fake.handler = (req) => {
        if (req.method === 'GET' && req.path === '/ari/channels/c-1/variable')
          return { status: 200, body: { value: 'CRM: Ivan' } };
        if (req.path.endsWith('/play'))
          return {
            status: 201,
            body: {
              id: 'pb-1',
              media_uri: 'sound:beep',
              target_uri: 'channel:c-1',
              state: 'queued',
            },
          };
        if (req.path.endsWith('/record'))
          return {
            status: 201,
            body: { name: 'r1', format: 'wav', state: 'queued', target_uri: 'bridge:b-1' },
          };
        if (
          req.path.startsWith('/ari/bridges/') &&
          req.method === 'POST' &&
          !req.path.endsWith('Channel')
        ) {
          return {
            status: 200,
            body: {
              id: 'b-1',
              technology: 'simple_bridge',
              bridge_type: 'mixing',
              bridge_class: 'stasis',
              creator: 'Stasis',
              name: 'call',
              channels: [],
            },
          };
        }
        if (
          req.method === 'POST' &&
          (req.path === '/ari/channels' || req.path === '/ari/channels/create')
        )
          return { status: 200, body: channel };
        return { status: 204 };
      };
      const expectCall = (
        method: string,
        path: string,
        query: Record<string, string>,
        body = '',
      ): void => {
        const r = last();
        expect({ method: r.method, path: r.path, query: r.query, body: r.body }).to.deep.equal({
          method,
          path,
          query,
          body,
        });
      };

      const created = await gw.channels.create({
        endpoint: 'PJSIP/101',
        channelId: 'c-1',
        appArgs: ['operator', '1795277133.60'],
        originator: '1795277133.60',
        variables: { 'CALLERID(name)': 'CRM: Ivan Petrov', 'CALLERID(num)': '79161234567' },
      });
      expectCall(
        'POST',
        '/ari/channels/create',
        {
          endpoint: 'PJSIP/101',
          app: APP,
          appArgs: 'operator,1795277133.60',
          channelId: 'c-1',
          originator: '1795277133.60',
        },
        '{"variables":{"CALLERID(name)":"CRM: Ivan Petrov","CALLERID(num)":"79161234567"}}',
      );
      expect(created).to.deep.equal(channel);
      expect(Object.getPrototypeOf(created)).to.equal(Object.prototype);

      await gw.channels.originate({
        endpoint: 'PJSIP/101',
        channelId: 'c-1',
        appArgs: ['c2c'],
        callerId: '"CRM" <74957654321>',
        timeoutSec: 30,
      });
      expectCall('POST', '/ari/channels', {
        endpoint: 'PJSIP/101',
        app: APP,
        appArgs: 'c2c',
        channelId: 'c-1',
        callerId: '"CRM" <74957654321>',
        timeout: '30',
      });

      await gw.channels.dial('c-1', { caller: 'in-1', timeoutSec: 5 });
      expectCall('POST', '/ari/channels/c-1/dial', { caller: 'in-1', timeout: '5' });
      await gw.channels.dial('c-1');
      expectCall('POST', '/ari/channels/c-1/dial', {});
      await gw.channels.answer('c-1');
      expectCall('POST', '/ari/channels/c-1/answer', {});
      await gw.channels.ring('c-1');
      expectCall('POST', '/ari/channels/c-1/ring', {});
      await gw.channels.ringStop('c-1');
      expectCall('DELETE', '/ari/channels/c-1/ring', {});
      await gw.channels.hangup('c-1', { reason: 'busy' });
      expectCall('DELETE', '/ari/channels/c-1', { reason: 'busy' });
      await gw.channels.hangup('c-1');
      expectCall('DELETE', '/ari/channels/c-1', {});
      await gw.channels.continueInDialplan('c-1', {
        context: 'service',
        extension: '9999',
        priority: 1,
      });
      expectCall('POST', '/ari/channels/c-1/continue', {
        context: 'service',
        extension: '9999',
        priority: '1',
      });
      const pb = await gw.channels.play('c-1', {
        media: ['sound:hello-world', 'sound:beep'],
        lang: 'ru',
        playbackId: 'pb-1',
      });
      expectCall('POST', '/ari/channels/c-1/play', {
        media: 'sound:hello-world,sound:beep',
        lang: 'ru',
        playbackId: 'pb-1',
      });
      expect(pb.id).to.equal('pb-1');
      await gw.channels.record('c-1', {
        name: 'r1',
        format: 'wav',
        maxDurationSec: 60,
        ifExists: 'overwrite',
        beep: false,
      });
      expectCall('POST', '/ari/channels/c-1/record', {
        name: 'r1',
        format: 'wav',
        maxDurationSeconds: '60',
        ifExists: 'overwrite',
        beep: 'false',
      });
      await gw.channels.setVariable('c-1', 'CALLERID(name)', 'CRM: Ivan');
      expectCall('POST', '/ari/channels/c-1/variable', {
        variable: 'CALLERID(name)',
        value: 'CRM: Ivan',
      });
      expect(await gw.channels.getVariable('c-1', 'CALLERID(name)')).to.equal('CRM: Ivan');
      expectCall('GET', '/ari/channels/c-1/variable', { variable: 'CALLERID(name)' });

      const bridge = await gw.bridges.create({
        bridgeId: 'b-1',
        type: ['mixing', 'dtmf_events'],
        name: 'call',
      });
      expectCall('POST', '/ari/bridges/b-1', { type: 'mixing,dtmf_events', name: 'call' });
      expect(bridge.id).to.equal('b-1');
      await gw.bridges.addChannel('b-1', ['c-1', 'c-2']);
      expectCall('POST', '/ari/bridges/b-1/addChannel', { channel: 'c-1,c-2' });
      await gw.bridges.removeChannel('b-1', ['c-2']);
      expectCall('POST', '/ari/bridges/b-1/removeChannel', { channel: 'c-2' });
      await gw.bridges.record('b-1', { name: 'call-1', format: 'wav', ifExists: 'fail' });
      expectCall('POST', '/ari/bridges/b-1/record', {
        name: 'call-1',
        format: 'wav',
        ifExists: 'fail',
      });
      await gw.bridges.play('b-1', { media: ['sound:beep'], playbackId: 'pb-2' });
      expectCall('POST', '/ari/bridges/b-1/play', { media: 'sound:beep', playbackId: 'pb-2' });
      await gw.bridges.destroy('b-1');
      expectCall('DELETE', '/ari/bridges/b-1', {});
      await gw.playbacks.stop('pb-1');
      expectCall('DELETE', '/ari/playbacks/pb-1', {});
      await gw.recordings.deleteStored('call 1');
      expectCall('DELETE', '/ari/recordings/stored/call%201', {});
    });

    it("answers a create or originate whose id Asterisk already holds with that channel (an earlier try's answer was lost)", async () => {
      // The answer to the first try was lost with its connection and the request went out again:
      // Asterisk has the channel (ringing an operator, for an originate) and refuses the retry.
      fake.handler = (req) => {
        if (req.method === 'POST')
          return { status: 409, body: { message: 'Channel with given unique ID already exists' } };
        if (req.method === 'GET' && req.path === '/ari/channels/op-1')
          return { status: 200, body: ariChannel('op-1', 'Ringing') };
        if (req.method === 'GET' && req.path === '/ari/channels/cu-1')
          return { status: 200, body: ariChannel('cu-1', 'Down') };
        return { status: 404, body: { message: 'Channel not found' } };
      };
      const originated = await gw.channels.originate({
        endpoint: 'PJSIP/101',
        channelId: 'op-1',
        appArgs: ['click2call', 'operator', 'call-1'],
      });
      expect(originated).to.include({ id: 'op-1', state: 'Ringing' });
      const created = await gw.channels.create({
        endpoint: 'PJSIP/74957654321@client-trunk',
        channelId: 'cu-1',
        appArgs: ['customer', 'call-1'],
      });
      expect(created).to.include({ id: 'cu-1', state: 'Down' });
      // Any other conflict stays an error.
      fake.handler = () => ({
        status: 409,
        body: { message: "Channel is not in the 'Down' state" },
      });
      const err = await gw.channels
        .originate({ endpoint: 'PJSIP/101', channelId: 'op-2', appArgs: [] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).to.be.instanceOf(AriConflictError);
    });

    it('returns plain JSON for lists and gets (no ari-client instances)', async () => {
      fake.handler = (req) => {
        if (req.path === '/ari/channels')
          return { status: 200, body: [ariChannel('a'), ariChannel('b')] };
        if (req.path === '/ari/bridges') return { status: 200, body: [] };
        if (req.path === '/ari/applications/crm-app') {
          return {
            status: 200,
            body: {
              name: APP,
              channel_ids: ['a'],
              bridge_ids: [],
              endpoint_ids: [],
              device_names: [],
            },
          };
        }
        if (req.path === '/ari/endpoints/PJSIP/101')
          return {
            status: 200,
            body: { technology: 'PJSIP', resource: '101', state: 'online', channel_ids: [] },
          };
        if (req.path === '/ari/deviceStates') return { status: 200, body: [] };
        if (req.path === '/ari/playbacks/pb-1')
          return {
            status: 200,
            body: {
              id: 'pb-1',
              media_uri: 'sound:beep',
              target_uri: 'channel:a',
              state: 'playing',
            },
          };
        if (req.path === '/ari/recordings/stored/r1')
          return { status: 200, body: { name: 'r1', format: 'wav' } };
        return { status: 404, body: { message: 'Not found' } };
      };
      const channels = await gw.channels.list();
      expect(channels.map((c) => c.id)).to.deep.equal(['a', 'b']);
      for (const c of channels) {
        expect(Object.getPrototypeOf(c)).to.equal(Object.prototype);
        expect(Object.keys(c)).not.to.include('_client');
        expect(JSON.stringify(c)).to.equal(JSON.stringify(ariChannel(c.id)));
      }
      expect(await gw.bridges.list()).to.deep.equal([]);
      expect((await gw.applications.get(APP)).channel_ids).to.deep.equal(['a']);
      expect((await gw.endpoints.get('PJSIP', '101')).state).to.equal('online');
      expect(await gw.deviceStates.list()).to.deep.equal([]);
      expect((await gw.playbacks.get('pb-1')).state).to.equal('playing');
      expect(await gw.recordings.getStored('r1')).to.deep.equal({ name: 'r1', format: 'wav' });
    });

    it('returns a stored recording file as the exact bytes', async () => {
      const bytes = Buffer.from([0x52, 0x49, 0x46, 0x46, 0x00, 0xff, 0x80, 0x7f, 0x0a, 0x0d]);
      fake.handler = () => ({ status: 200, raw: bytes, contentType: 'audio/x-wav' });
      const file = await gw.recordings.getStoredFile('call-1');
      expect(Buffer.isBuffer(file)).to.equal(true);
      expect(file.equals(bytes)).to.equal(true);
      expect(last().path).to.equal('/ari/recordings/stored/call-1/file');
    });

    it('maps 404/400/500/409/412/422 answers to typed errors carrying the status', async () => {
      const answers: Array<
        [status: number, body: unknown, cls: new (...a: never[]) => AriError, kind: string]
      > = [
        [404, { message: 'Channel not found' }, AriNotFoundError, 'not_found'],
        [400, { message: 'Endpoint must be specified' }, AriBadRequestError, 'bad_request'],
        [500, { error: 'Allocation failed' }, AriServerError, 'server_error'],
        [
          409,
          { message: 'Channel with given unique ID already exists' },
          AriConflictError,
          'conflict',
        ],
        [412, { message: 'Channel in invalid state' }, AriConflictError, 'conflict'],
        [
          422,
          { message: 'specified format is unknown on this system' },
          AriBadRequestError,
          'unprocessable',
        ],
        // status comes from the HTTP answer, not from guessing the text:
        [404, { message: 'A text Asterisk does not have' }, AriNotFoundError, 'not_found'],
        [404, undefined, AriNotFoundError, 'not_found'],
      ];
      for (const [status, body, cls, kind] of answers) {
        fake.handler = () => ({ status, body });
        const err = await gw.channels.get('x').then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `${status} ${JSON.stringify(body)}`).to.be.instanceOf(cls);
        expect((err as AriError).kind).to.equal(kind);
        expect((err as AriError).status).to.equal(status);
        expect((err as AriError).operation).to.equal('channels.get');
      }
      expect(
        await metricValue(registry, 'aricrm_ari_command_errors_total', {
          operation: 'channels.get',
          kind: 'not_found',
        }),
      ).to.equal(3);
      expect(
        await metricValue(registry, 'aricrm_ari_command_errors_total', {
          operation: 'channels.get',
        }),
      ).to.equal(answers.length);
    });

    it('retries 409 "Channel not in Stasis application" until the channel is in Stasis', async () => {
      let calls = 0;
      fake.handler = () =>
        ++calls <= 2
          ? { status: 409, body: { message: 'Channel not in Stasis application' } }
          : { status: 204 };
      await gw.channels.dial('op-1', { timeoutSec: 30 });
      expect(fake.restRequests.filter((r) => r.path === '/ari/channels/op-1/dial')).to.have.length(
        3,
      );
      expect(
        await metricValue(registry, 'aricrm_ari_command_retries_total', {
          operation: 'channels.dial',
        }),
      ).to.equal(2);
      expect(await metricValue(registry, 'aricrm_ari_command_errors_total')).to.equal(0);
    });

    it('gives up after the configured number of tries with AriNotInStasisError', async () => {
      fake.handler = () => ({
        status: 409,
        body: { message: 'Channel not in Stasis application' },
      });
      const err = await gw.channels.answer('gone').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(AriNotInStasisError);
      expect(
        fake.restRequests.filter((r) => r.path === '/ari/channels/gone/answer'),
      ).to.have.length(6);
      expect(
        await metricValue(registry, 'aricrm_ari_command_retries_total', {
          operation: 'channels.answer',
        }),
      ).to.equal(5);
      expect(
        await metricValue(registry, 'aricrm_ari_command_errors_total', {
          operation: 'channels.answer',
          kind: 'not_in_stasis',
        }),
      ).to.equal(1);
    });

    it('retries the same race on bridges.addChannel (422 "Channel not in Stasis application")', async () => {
      let calls = 0;
      fake.handler = () =>
        ++calls === 1
          ? { status: 422, body: { message: 'Channel not in Stasis application' } }
          : { status: 204 };
      await gw.bridges.addChannel('b-1', ['c-1']);
      expect(calls).to.equal(2);
    });

    it('never retries other errors (404, 500, other 409s)', async () => {
      const bodies: Array<[number, unknown]> = [
        [404, { message: 'Channel not found' }],
        [500, { error: 'Allocation failed' }],
        [409, { message: 'Bridge not in Stasis application' }],
        [400, { message: 'Endpoint must be specified' }],
      ];
      for (const [status, body] of bodies) {
        const before = fake.restRequests.length;
        fake.handler = () => ({ status, body });
        await gw.channels.ring('c-9').catch(() => undefined);
        expect(fake.restRequests.length - before, `${status}`).to.equal(1);
      }
      expect(await metricValue(registry, 'aricrm_ari_command_retries_total')).to.equal(0);
    });

    it('fails fast with AriConnectionError when Asterisk refuses connections (no hanging promise)', async () => {
      await fake.close();
      const t0 = Date.now();
      const err = await gw.channels.list().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(AriConnectionError);
      // ECONNRESET when the pooled keep-alive socket is found dead, ECONNREFUSED on a new one
      expect((err as AriError).asteriskMessage).to.match(/ECONNREFUSED|ECONNRESET/);
      const again = await gw.channels.list().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((again as AriError).asteriskMessage).to.include('ECONNREFUSED');
      expect(Date.now() - t0).to.be.below(2000);
    });

    it('fails with AriConnectionError when Asterisk does not answer within commandTimeoutMs', async () => {
      await gw.stop();
      gw = createAriGateway({
        url: fake.url,
        username: fake.username,
        password: fake.password,
        app: APP,
        logger: logs.logger,
        registry: new Registry(),
        commandTimeoutMs: 50,
      });
      await gw.start();
      fake.handler = () => new Promise(() => undefined);
      const err = await gw.channels.list().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(AriConnectionError);
      expect((err as AriError).asteriskMessage).to.include('within 50 ms');
    });

    it('turns a non-JSON success body into an error instead of crashing the process', async () => {
      const uncaught = sinon.spy();
      process.on('uncaughtException', uncaught);
      try {
        fake.handler = () => ({
          status: 200,
          raw: '<html>proxy error</html>',
          contentType: 'text/html',
        });
        const err = await gw.channels.get('c-1').then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(AriError);
        expect((err as AriError).asteriskMessage).to.include('invalid ARI response');
        expect(uncaught.called).to.equal(false);
      } finally {
        process.off('uncaughtException', uncaught);
      }
    });

    it('still sends commands after stop() (steps under way finish), and refuses every one once sealed', async () => {
      fake.handler = () => ({ status: 204 });
      await gw.stop();
      // Stopped: a step still under way can hang its caller up.
      await gw.channels.hangup('c-1');
      expect(last()).to.include({ method: 'DELETE', path: '/ari/channels/c-1' });
      const before = fake.restRequests.length;

      await gw.seal();
      const refused = async (command: () => Promise<unknown>): Promise<AriError> => {
        const err = await command().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(AriConnectionError);
        return err as AriError;
      };
      const err = await refused(() =>
        gw.channels.originate({ endpoint: 'PJSIP/101', channelId: 'c-2', appArgs: ['click2call'] }),
      );
      expect(err.operation).to.equal('channels.originate');
      expect(err.asteriskMessage).to.equal('the engine has stopped');
      await refused(() => gw.channels.hangup('c-1'));
      await refused(() => gw.recordings.getStoredFile('r-1'));
      await refused(() => gw.bridges.list());
      // Nothing reached Asterisk, and the sealed gateway does not connect again.
      expect(fake.restRequests.length).to.equal(before);
      const restart = await refused(() => gw.start());
      expect(restart.asteriskMessage).to.equal('the engine has stopped');
      expect(fake.wsConnections).to.have.length(1);
      expect(gw.isConnected()).to.equal(false);
      await gw.seal(); // idempotent
    });

    it('an empty id is a bad request that never reaches Asterisk', async () => {
      const before = fake.restRequests.length;
      const err = await gw.channels.get('').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(AriBadRequestError);
      expect(fake.restRequests.length).to.equal(before);
    });
  });

  describe('ids', () => {
    it('generates unique, prefixed client ids', () => {
      const ids = new Set(Array.from({ length: 1000 }, () => newChannelId()));
      expect(ids.size).to.equal(1000);
      expect(newChannelId('op')).to.match(/^op-[0-9a-f-]{36}$/);
      expect(newBridgeId()).to.match(/^br-[0-9a-f-]{36}$/);
      expect(newPlaybackId()).to.match(/^pb-[0-9a-f-]{36}$/);
      expect(() => newChannelId('bad prefix/')).to.throw(TypeError);
    });
  });
});
