/**
 * The PBX simulator: an in-process fake Asterisk 22 that the real ari-client connects to over
 * HTTP and WebSocket (zero-setup demo and test bed). See `types.ts` for the public API and
 * `shared/fixtures/ari/README.md` for the behaviour it reproduces.
 *
 * ```ts
 * const sim = await startSimulator({ timeScale: 0.01 });
 * const ari = await ariClient.connect(sim.url, sim.username, sim.password);
 * sim.phones.set('102', { mode: 'busy' });
 * await sim.injectInboundCall({ from: '79161234567', to: '74951234567' });
 * ```
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Router } from 'express';
import type { AriChannel } from '../ari/types.ts';
import { AppRegistry } from './apps.ts';
import { SimClock } from './clock.ts';
import { createControlRouter } from './control.ts';
import { SimCallRejectedError } from './errors.ts';
import { IdFactory } from './ids.ts';
import { channelJson } from './model.ts';
import { Pbx } from './pbx.ts';
import { MAX_ANSWER_STAGGER_MS, PhoneBook } from './phones.ts';
import { createAriHandler } from './rest/router.ts';
import type {
  AnswerVoice,
  DtmfPlan,
  InboundCall,
  OperatorCall,
  PbxSimulator,
  PhoneBehaviour,
  PhoneInfo,
  RecordedRequest,
  ResponseHold,
  SimEvent,
  SimulatorOptions,
  SimulatorRaces,
} from './types.ts';
import { attachEventWebSocket } from './ws.ts';

export type {
  AnswerVoice,
  DtmfPlan,
  InboundCall,
  OperatorCall,
  PbxSimulator,
  PhoneBehaviour,
  PhoneInfo,
  RecordedRequest,
  ResponseHold,
  SimEvent,
  SimulatorOptions,
  SimulatorRaces,
} from './types.ts';
export { SimCallRejectedError, AriHttpError } from './errors.ts';
export {
  phoneBehaviourSchema,
  DEFAULT_BEHAVIOUR,
  MAX_ANSWER_STAGGER_MS,
  operatorDefaultBehaviour,
} from './phones.ts';

/** A hold of {@link PbxSimulator.holdResponses} in force. */
interface ActiveHold {
  method: string;
  path: string;
  /** The held answers' go-aheads, oldest first. */
  waiting: Array<() => void>;
  /** Requests held since the hold began. */
  count: number;
  watchers: Set<{ count: number; resolve: () => void }>;
}

/**
 * Start a simulated Asterisk listening on `host:port` (ephemeral port by default).
 * Resolves once it accepts connections; `close()` stops it.
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<PbxSimulator> {
  const host = options.host ?? '127.0.0.1';
  const username = options.username ?? 'asterisk';
  const password = options.password ?? 'asterisk';
  const extensions = [...(options.extensions ?? ['101', '102', '103'])];
  const trunk = options.trunk ?? 'client-trunk';
  const log = options.logger;
  const clock = new SimClock(options.timeScale ?? 1);
  const ids = new IdFactory(clock);
  const apps = new AppRegistry();
  const stagger = options.operatorAnswerStaggerMs ?? 0;
  if (!Number.isInteger(stagger) || stagger < 0 || stagger > MAX_ANSWER_STAGGER_MS)
    throw new RangeError(
      `operatorAnswerStaggerMs must be whole ms from 0 to ${MAX_ANSWER_STAGGER_MS}, got ${stagger}`,
    );
  const phones = new PhoneBook(extensions, stagger);
  const pbx = new Pbx(clock, ids, apps, phones, trunk, log);
  const requests: RecordedRequest[] = [];
  const creds = { username, password };

  const requestLogLimit = Math.max(0, options.requestLogLimit ?? 10_000);
  const record = (r: RecordedRequest): void => {
    requests.push(r);
    if (requests.length > requestLogLimit) requests.splice(0, requests.length - requestLogLimit);
  };
  const holds: ActiveHold[] = [];
  const hold = (method: string, path: string): Promise<void> | undefined => {
    const h = holds.find((x) => x.method === method && x.path === path);
    if (!h) return undefined;
    return new Promise<void>((resolve) => {
      h.waiting.push(resolve);
      h.count++;
      for (const w of [...h.watchers]) {
        if (h.count < w.count) continue;
        h.watchers.delete(w);
        w.resolve();
      }
    });
  };
  const server = createServer(
    createAriHandler({ pbx, creds, record: requestLogLimit > 0 ? record : undefined, log, hold }),
  );
  const wss = attachEventWebSocket(server, pbx, creds, log);
  // Outage (refuseConnections): every new TCP connection is reset at once, REST and WebSocket
  // alike (Asterisk serves both on one HTTP server); the PBX itself keeps running.
  let refusing = false;
  let refuseTimer: NodeJS.Timeout | undefined;
  server.on('connection', (socket) => {
    if (refusing) socket.destroy();
  });
  const cutConnections = (): void => {
    for (const socket of apps.sockets()) socket.terminate();
    for (const client of wss.clients) client.terminate();
    server.closeAllConnections();
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closed = false;
  let router: Router | undefined;

  /**
   * Place a call into the dialplan; reject like Asterisk when Stasis refused it (fact 14: no
   * WebSocket for the app, or no such extension).
   */
  const accepted = (
    app: string,
    place: () => { channel: { id: string }; accepted: boolean },
  ): { channelId: string } => {
    const active = apps.isActive(app);
    const { channel, accepted: ok } = place();
    if (!ok)
      throw new SimCallRejectedError(
        app,
        channel.id,
        active ? 'no_such_extension' : 'app_not_connected',
      );
    return { channelId: channel.id };
  };

  const sim: PbxSimulator = {
    url: `http://${urlHost}:${address.port}`,
    username,
    password,
    timeScale: clock.timeScale,
    phones: {
      set(extension: string, behaviour: PhoneBehaviour): void {
        phones.setOperator(extension, behaviour);
        pbx.dialling.phoneChanged(extension);
      },
      get(extension: string): PhoneBehaviour {
        return phones.operator(extension);
      },
      reset(): void {
        phones.resetOperators();
        for (const ext of extensions) pbx.dialling.phoneChanged(ext);
      },
      setRegistered(extension: string, registered: boolean): void {
        phones.setRegistered(extension, registered);
        pbx.dialling.phoneChanged(extension);
      },
      list(): PhoneInfo[] {
        return extensions.map((extension) => ({
          extension,
          behaviour: phones.operator(extension),
          registered: phones.isRegistered(extension),
          channelIds: pbx.endpoints.endpointJson(extension).channel_ids,
        }));
      },
    },
    customers: {
      set(numberOrDefault: string, behaviour: PhoneBehaviour): void {
        phones.setCustomer(numberOrDefault, behaviour);
      },
      reset(): void {
        phones.resetCustomers();
      },
    },
    async injectInboundCall(call: InboundCall): Promise<{ channelId: string }> {
      const app = call.app ?? 'crm-app';
      const request: Parameters<Pbx['dialplan']['inboundCall']>[0] = {
        from: call.from,
        to: call.to,
        app,
      };
      if (call.callerName !== undefined) request.callerName = call.callerName;
      if (call.hangupAfterMs !== undefined) request.hangupAfterMs = call.hangupAfterMs;
      if (call.abandonAfterMs !== undefined) request.abandonAfterMs = call.abandonAfterMs;
      if (call.dtmf) request.dtmf = call.dtmf;
      return accepted(app, () => pbx.dialplan.inboundCall(request));
    },
    async injectOperatorCall(call: OperatorCall): Promise<{ channelId: string }> {
      const app = call.app ?? 'crm-app';
      const request: Parameters<Pbx['dialplan']['operatorCall']>[0] = {
        extension: call.extension,
        to: call.to,
        app,
      };
      if (call.hangupAfterMs !== undefined) request.hangupAfterMs = call.hangupAfterMs;
      if (call.abandonAfterMs !== undefined) request.abandonAfterMs = call.abandonAfterMs;
      if (call.dtmf) request.dtmf = call.dtmf;
      return accepted(app, () => pbx.dialplan.operatorCall(request));
    },
    hangup(channelId: string): void {
      const ch = pbx.channels.get(channelId);
      if (!ch) throw new RangeError(`no channel ${channelId}`);
      pbx.hangups.remoteHangup(ch);
    },
    eventCounts(): { offered: number; delivered: number } {
      return { offered: apps.offered, delivered: apps.delivered };
    },
    pressDigits(channelId: string, plan: DtmfPlan): void {
      const ch = pbx.channels.get(channelId);
      if (!ch) throw new RangeError(`no channel ${channelId}`);
      pbx.phoneMedia.pressDigits(ch, plan);
    },
    speak(channelId: string, voice: AnswerVoice): void {
      const ch = pbx.channels.get(channelId);
      if (!ch) throw new RangeError(`no channel ${channelId}`);
      pbx.phoneMedia.speak(ch, voice);
    },
    onEvent(listener: (event: SimEvent) => void, types?: readonly string[]): () => void {
      return apps.onEvent(listener, types);
    },
    emitRawEvent(app: string, event: Record<string, unknown>): void {
      pbx.emitRaw(app, event);
    },
    requests,
    clearRequests(): void {
      requests.length = 0;
    },
    setRaces(races: SimulatorRaces): void {
      pbx.races = { ...pbx.races, ...races };
    },
    holdResponses(method: string, path: string): ResponseHold {
      const h: ActiveHold = {
        method: method.toUpperCase(),
        path,
        waiting: [],
        count: 0,
        watchers: new Set(),
      };
      holds.push(h);
      return {
        get held() {
          return h.waiting.length;
        },
        whenHeld(count = 1): Promise<void> {
          if (h.count >= count) return Promise.resolve();
          return new Promise((resolve) => h.watchers.add({ count, resolve }));
        },
        release(): void {
          const i = holds.indexOf(h);
          if (i >= 0) holds.splice(i, 1);
          for (const resolve of h.waiting.splice(0)) resolve();
        },
      };
    },
    dropWebSockets(): void {
      for (const socket of apps.sockets()) socket.terminate();
    },
    stallWebSockets(): void {
      log?.info('sim ARI WebSockets stalled: events are lost');
      apps.stall();
    },
    refuseConnections(forMs?: number): void {
      if (closed) return;
      if (refuseTimer) clearTimeout(refuseTimer);
      refuseTimer = undefined;
      if (!refusing) log?.info('sim ARI outage: connections refused', { forMs });
      refusing = true;
      cutConnections();
      if (forMs !== undefined) {
        refuseTimer = setTimeout(() => sim.acceptConnections(), Math.max(0, forMs));
        refuseTimer.unref();
      }
    },
    acceptConnections(): void {
      if (refuseTimer) clearTimeout(refuseTimer);
      refuseTimer = undefined;
      if (refusing) log?.info('sim ARI outage over: connections accepted');
      refusing = false;
    },
    refusingConnections(): boolean {
      return refusing;
    },
    channels(): AriChannel[] {
      return [...pbx.channels.values()].map(channelJson);
    },
    controlRouter(): Router {
      router ??= createControlRouter(sim, log);
      return router;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (refuseTimer) clearTimeout(refuseTimer);
      for (const h of holds.splice(0)) for (const resolve of h.waiting.splice(0)) resolve();
      pbx.shutdown();
      for (const socket of apps.sockets()) socket.terminate();
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return sim;
}
