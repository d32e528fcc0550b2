/**
 * The simulated Asterisk: channels (inbound, created, originated; dial, answer, hang-ups,
 * continue), bridges, endpoints and device states, behaving like Asterisk 22 in
 * `shared/fixtures/ari/traces/`. Playbacks and recordings live in `playbacks.ts`/`recordings.ts`,
 * event delivery in `events.ts`.
 *
 * Event routing follows Stasis subscriptions: an app gets the events of a channel while the
 * channel is in its Stasis app, plus those of channels it subscribed to explicitly (channels it
 * created or originated, their originators, `applications/subscribe`); a bridge's events go to the
 * apps whose channels entered it. That is why an inbound channel gets no `ChannelDestroyed` after
 * its `StasisEnd` while an app-created one does (fixtures fact 7), and why an originated channel's
 * `Dial` events arrive before its `StasisStart` (fact 8).
 *
 * Asterisk never hangs up the other leg nor destroys bridges by itself (fact 9): neither does this.
 */
import type { Logger } from 'winston';
import type { AriCallerId, ChannelState } from '../ari/types.ts';
import type { AppRegistry } from './apps.ts';
import { CAUSE } from './causes.ts';
import type { SimClock, SimTimer } from './clock.ts';
import { DialplanRunner } from './dialplanRunner.ts';
import { Dialling } from './dialling.ts';
import { allocationFailed, ariError } from './errors.ts';
import type { IdFactory } from './ids.ts';
import { ASTERISK_ID, EventBus, type Delivery, type Scope } from './events.ts';
import type { MediaHost } from './host.ts';
import { Bridging } from './bridges.ts';
import { Endpoints } from './endpoints.ts';
import { Hangups } from './hangups.ts';
import { PhoneMedia } from './phoneMedia.ts';
import { Playbacks } from './playbacks.ts';
import { Recordings } from './recordings.ts';
import { parseCallerId, Variables } from './variables.ts';
import {
  channelJson,
  EMPTY_CALLER_ID,
  type ChannelKind,
  type DialAttempt,
  type Party,
  type SimBridge,
  type SimChannel,
} from './model.ts';
import type { PhoneBook } from './phones.ts';
import type { PhoneBehaviour, SimulatorRaces } from './types.ts';

/** A parsed dial target (`PJSIP/101`, `PJSIP/79161234567@client-trunk`). */
interface EndpointTarget {
  party: Party;
  /** Endpoint the channel belongs to (`PJSIP/101`, `PJSIP/client-trunk`). */
  endpoint: string;
  /** Resource used in the channel name (`101`, `client-trunk`). */
  nameResource: string;
  /** What follows `PJSIP/`: Asterisk's dial string (`101`, `79161234567@client-trunk`). */
  dialstring: string;
  context: string;
  defaultCaller: AriCallerId;
}

/** Options of `POST /channels/create`. */
export interface CreateOptions {
  endpoint?: string;
  app?: string;
  appArgs?: string;
  channelId?: string;
  originator?: string;
  formats?: string;
  variables: Array<[string, string]>;
}

/** Options of `POST /channels` (originate). */
export interface OriginateOptions {
  endpoint?: string;
  extension?: string;
  context?: string;
  priority?: number;
  label?: string;
  app?: string;
  appArgs?: string;
  callerId?: string;
  /** Seconds; 0 = default 30 s; -1 = no timeout. */
  timeoutSec: number;
  channelId?: string;
  originator?: string;
  formats?: string;
  variables: Array<[string, string]>;
}

/** The model of one simulated Asterisk; REST handlers, the WebSocket and the public API drive it. */
export class Pbx implements MediaHost {
  readonly channels = new Map<string, SimChannel>();
  readonly bridges = new Map<string, SimBridge>();
  readonly events: EventBus;
  readonly playbacks: Playbacks;
  readonly recordings: Recordings;
  readonly endpoints: Endpoints;
  readonly bridging: Bridging;
  readonly hangups: Hangups;
  readonly phoneMedia: PhoneMedia;
  readonly dialplan: DialplanRunner;
  readonly dialling: Dialling;
  readonly variables: Variables;
  races: Required<SimulatorRaces> = {
    stasisStartBeforeCreateResponse: false,
    notInStasisAfterStasisStart: 0,
    notInStasisProbability: 0,
  };
  private readonly startupTime: string;

  constructor(
    readonly clock: SimClock,
    readonly ids: IdFactory,
    readonly apps: AppRegistry,
    readonly phones: PhoneBook,
    readonly trunk: string,
    log: Logger | undefined,
  ) {
    this.events = new EventBus(apps, clock, log);
    this.recordings = new Recordings(this);
    this.playbacks = new Playbacks(this, (name) => this.recordings.lengthMs(name));
    this.endpoints = new Endpoints(phones, trunk, this.events);
    this.bridging = new Bridging(this);
    this.hangups = new Hangups(this);
    this.phoneMedia = new PhoneMedia(this);
    this.dialplan = new DialplanRunner(this);
    this.dialling = new Dialling(this);
    this.variables = new Variables(this);
    this.startupTime = clock.timestamp();
  }

  // -------------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------------

  /** Hold back the events `fn` emits (see {@link EventBus.collect}). */
  collect<T>(fn: () => T): { result: T; deliveries: Delivery[] } {
    return this.events.collect(fn);
  }

  /** Send held deliveries; resolves when written to the sockets. */
  flush(deliveries: Delivery[]): Promise<void> {
    return this.events.flush(deliveries);
  }

  /** Emit an event; `fields` may be a function building them only when some app receives it. */
  emit(
    type: string,
    fields: Record<string, unknown> | (() => Record<string, unknown>),
    scope: Scope,
  ): void {
    this.events.emit(type, fields, scope);
  }

  /** Send an arbitrary event to an app (test hook). */
  emitRaw(app: string, event: Record<string, unknown>): void {
    this.events.emitRaw(app, event);
  }

  emitChannel(type: string, ch: SimChannel, fields: Record<string, unknown> = {}): void {
    this.emit(type, () => ({ ...fields, channel: channelJson(ch) }), { channels: [ch] });
  }

  setVar(ch: SimChannel, variable: string, value: string, emitEvent = true): void {
    ch.vars.set(variable, value);
    if (emitEvent)
      this.emit('ChannelVarset', () => ({ variable, value, channel: channelJson(ch) }), {
        channels: [ch],
      });
  }

  // -------------------------------------------------------------------------------------------
  // Channels
  // -------------------------------------------------------------------------------------------

  /** Parse an ARI endpoint; throws 500 Allocation failed like `ast_request` failing. */
  private resolveEndpoint(endpoint: string): EndpointTarget {
    const slash = endpoint.indexOf('/');
    const tech = endpoint.slice(0, slash);
    const resource = endpoint.slice(slash + 1);
    if (tech.toUpperCase() !== 'PJSIP' || !resource) throw allocationFailed();
    const at = resource.indexOf('@');
    if (at >= 0) {
      const number = resource.slice(0, at);
      const trunk = resource.slice(at + 1);
      if (trunk !== this.trunk || !number) throw allocationFailed();
      if (this.phones.customer(number).mode === 'unavailable') throw allocationFailed();
      return {
        party: { kind: 'customer', number },
        endpoint: `PJSIP/${trunk}`,
        nameResource: trunk,
        dialstring: resource,
        context: 'from-pstn',
        defaultCaller: { ...EMPTY_CALLER_ID },
      };
    }
    if (!this.phones.isExtension(resource)) throw allocationFailed();
    // A PJSIP endpoint without a contact: chan_pjsip cannot create the outgoing session.
    if (!this.phones.isReachable(resource)) throw allocationFailed();
    return {
      party: { kind: 'operator', extension: resource },
      endpoint: `PJSIP/${resource}`,
      nameResource: resource,
      dialstring: resource,
      context: 'from-internal',
      defaultCaller: { name: `Operator ${resource}`, number: resource },
    };
  }

  newChannel(init: {
    id?: string;
    kind: ChannelKind;
    party: Party;
    endpoint: string;
    nameResource: string;
    protocolId: string;
    state: ChannelState;
    caller: AriCallerId;
    context: string;
    exten: string;
    dialstring: string | null;
  }): SimChannel {
    const ch: SimChannel = {
      id: init.id ?? this.ids.uniqueId(),
      name: this.ids.channelName('PJSIP', init.nameResource),
      state: init.state,
      protocolId: init.protocolId,
      caller: { ...init.caller },
      connected: { ...EMPTY_CALLER_ID },
      accountcode: '',
      dialplan: {
        context: init.context,
        exten: init.exten,
        priority: 1,
        app_name: '',
        app_data: '',
      },
      creationtime: this.clock.timestamp(),
      language: 'en',
      kind: init.kind,
      party: init.party,
      endpoint: init.endpoint,
      dialstring: init.dialstring,
      vars: new Map(),
      stasis: null,
      subscribers: new Set(),
      bridgeId: null,
      phase: 'alive',
      dial: null,
      timers: new Set(),
      notInStasisBudget: 0,
      stasisReturns: 0,
      stasisStartedAtMs: 0,
      playbacks: [],
      hangupCause: 0,
    };
    this.channels.set(ch.id, ch);
    this.endpoints.addChannel(ch);
    // Published at allocation, before any app subscribes: only subscribeAll apps see it.
    this.emitChannel('ChannelCreated', ch);
    return ch;
  }

  channelTimer(ch: SimChannel, delayMs: number, fn: () => void): SimTimer {
    const timer = this.clock.after(delayMs, () => {
      ch.timers.delete(timer);
      if (ch.phase === 'alive') fn();
    });
    ch.timers.add(timer);
    return timer;
  }

  setState(ch: SimChannel, state: ChannelState): void {
    if (ch.state === state) return;
    ch.state = state;
    if (state === 'Up') ch.answeredAtMs = this.clock.nowMs();
    this.emitChannel('ChannelStateChange', ch);
    this.endpoints.endpointChanged(ch.endpoint);
  }

  assertNewId(id: string | undefined): void {
    if (id !== undefined && (this.channels.has(id) || this.bridges.has(id))) {
      throw ariError(409, 'Channel with given unique ID already exists');
    }
  }

  /**
   * Put a channel in Stasis: `dialplan` shows `Stasis(app,args)`, `STASISSTATUS` is cleared and
   * StasisStart is sent. Returns false (STASISSTATUS=FAILED) when the app has no WebSocket
   * (fixtures fact 14).
   */
  enterStasis(
    ch: SimChannel,
    app: string,
    appArgs: string | undefined,
    dialplanEvent: boolean,
  ): boolean {
    const data = appArgs ? `${app},${appArgs}` : app;
    ch.dialplan.app_name = 'Stasis';
    ch.dialplan.app_data = data;
    if (dialplanEvent)
      this.emitChannel('ChannelDialplan', ch, { dialplan_app: 'Stasis', dialplan_app_data: data });
    this.setVar(ch, 'STASISSTATUS', '');
    if (!this.apps.isActive(app)) {
      this.setVar(ch, 'STASISSTATUS', 'FAILED');
      return false;
    }
    const args = appArgs ? appArgs.split(',') : [];
    ch.stasis = { app, args };
    ch.notInStasisBudget = this.races.notInStasisAfterStasisStart;
    ch.stasisStartedAtMs = this.clock.nowMs();
    this.emit('StasisStart', { args, channel: channelJson(ch) }, { channels: [ch] });
    return true;
  }

  leaveStasis(ch: SimChannel): void {
    if (!ch.stasis) return;
    this.emitChannel('StasisEnd', ch);
    const app = ch.stasis.app;
    ch.stasis = null;
    this.forgetAppIfIdle(app);
  }

  /** Whether an app still has channels or bridges (keeps it registered without a WebSocket, fact 13). */
  appHasResources(app: string): boolean {
    for (const ch of this.channels.values())
      if (ch.stasis?.app === app || ch.subscribers.has(app)) return true;
    for (const b of this.bridges.values()) if (b.subscribers.has(app)) return true;
    return false;
  }

  forgetAppIfIdle(app: string): void {
    if (this.apps.isActive(app)) return; // connected: never forgotten (no scan of every channel)
    this.apps.forgetIfIdle(app, this.appHasResources(app));
  }

  /**
   * Find a channel for a command that needs it in Stasis (Asterisk's `find_control`): 404
   * "Channel not found", 409 "Channel not in Stasis application" — also for the first commands
   * after a StasisStart when race (b) is on.
   */
  control(channelId: string): SimChannel {
    const ch = this.channels.get(channelId);
    if (!ch) throw ariError(404, 'Channel not found');
    if (!ch.stasis) throw ariError(409, 'Channel not in Stasis application');
    if (ch.notInStasisBudget > 0) {
      ch.notInStasisBudget--;
      throw ariError(409, 'Channel not in Stasis application');
    }
    const p = this.races.notInStasisProbability;
    if (p > 0 && this.clock.nowMs() - ch.stasisStartedAtMs <= 100 && Math.random() < p) {
      throw ariError(409, 'Channel not in Stasis application');
    }
    return ch;
  }

  /** 412 "Channel in invalid state" for Down/Rsrvd/Ringing channels (media and state commands). */
  assertValidState(ch: SimChannel): void {
    if (ch.state === 'Down' || ch.state === 'Rsrvd' || ch.state === 'Ringing') {
      throw ariError(412, 'Channel in invalid state');
    }
  }

  /**
   * `POST /channels/create`: the channel enters Stasis at once in state Down (fact 1); variables
   * (e.g. CALLERID(name), fact 3) are applied first. Returns the snapshot the HTTP answer carries.
   */
  create(opts: CreateOptions): SimChannel {
    if (!opts.endpoint) throw ariError(400, 'Endpoint must be specified');
    if (!opts.app) throw ariError(400, 'Application name is required');
    if (opts.originator && opts.formats)
      throw ariError(400, "Originator and formats can't both be specified");
    const target = this.resolveEndpoint(opts.endpoint);
    this.assertNewId(opts.channelId);
    const ch = this.newChannel({
      id: opts.channelId,
      kind: 'created',
      party: target.party,
      endpoint: target.endpoint,
      nameResource: target.nameResource,
      protocolId: this.ids.uuid(),
      state: 'Down',
      caller: target.defaultCaller,
      context: target.context,
      exten: 's',
      dialstring: target.dialstring,
    });
    const active = this.apps.isActive(opts.app);
    if (active) {
      ch.subscribers.add(opts.app);
      const originator = opts.originator ? this.channels.get(opts.originator) : undefined;
      originator?.subscribers.add(opts.app);
    }
    this.endpoints.endpointChanged(ch.endpoint);
    this.variables.apply(ch, opts.variables, true);
    return ch;
  }

  /** Second half of create: the channel runs `Stasis(app,appArgs)` (a failed Stasis hangs it up). */
  startCreated(ch: SimChannel, app: string, appArgs: string | undefined): void {
    if (!this.enterStasis(ch, app, appArgs, true))
      this.hangups.scheduleDestroy(ch, CAUSE.NORMAL_CLEARING);
  }

  /**
   * `POST /channels` / `POST /channels/{id}` (originate): dials at once; with `app` the channel
   * enters Stasis only when answered (fact 8), with `extension` it runs the dialplan.
   */
  originate(opts: OriginateOptions): SimChannel {
    if (!opts.endpoint) throw ariError(400, 'Endpoint must be specified');
    if (opts.originator && opts.formats)
      throw ariError(400, "Originator and formats can't both be specified");
    const slash = opts.endpoint.indexOf('/');
    if (slash <= 0 || slash === opts.endpoint.length - 1)
      throw ariError(400, 'Invalid endpoint specified');
    let onAnswer: DialAttempt['onAnswer'];
    if (opts.app) {
      onAnswer = { app: opts.app, args: opts.appArgs ? opts.appArgs.split(',') : [] };
    } else if (opts.extension) {
      let priority = opts.priority && opts.priority > 0 ? opts.priority : 1;
      if (opts.label) {
        if (!/^\d+$/.test(opts.label)) throw ariError(404, 'Requested label can not be found');
        priority = Number(opts.label);
        if (priority === 0) throw ariError(400, 'Requested priority is illegal');
      }
      onAnswer = { context: opts.context || 'default', exten: opts.extension, priority };
    } else {
      throw ariError(400, 'Application or extension must be specified');
    }
    const originator = opts.originator ? this.channels.get(opts.originator) : undefined;
    if (opts.originator && !originator)
      throw ariError(400, 'Provided originator channel was not found');
    const target = this.resolveEndpoint(opts.endpoint);
    this.assertNewId(opts.channelId);
    const ch = this.newChannel({
      id: opts.channelId,
      kind: 'originated',
      party: target.party,
      endpoint: target.endpoint,
      nameResource: target.nameResource,
      protocolId: this.ids.uuid(),
      state: 'Down',
      caller: target.defaultCaller,
      context: target.context,
      exten: 's',
      dialstring: null,
    });
    ch.dialplan.app_name = 'AppDial2';
    ch.dialplan.app_data = '(Outgoing Line)';
    // Published before the app subscribes to the channel: only endpoint subscribers (and
    // subscribeAll apps) see them (device-endpoint-state trace).
    this.emitChannel('ChannelDialplan', ch, {
      dialplan_app: 'AppDial2',
      dialplan_app_data: '(Outgoing Line)',
    });
    if (opts.callerId) {
      const id = parseCallerId(opts.callerId);
      // A number without a name keeps the endpoint's caller name (device-endpoint-state trace:
      // "Operator 101" <74957654321>); the connected line is the caller ID as given.
      ch.caller = { name: id.name || ch.caller.name, number: id.number };
      this.emitChannel('ChannelCallerId', ch, {
        caller_presentation: 0,
        caller_presentation_txt: 'Presentation Allowed, Not Screened',
      });
      ch.connected = { ...id };
      this.emitChannel('ChannelConnectedLine', ch);
    }
    this.variables.apply(ch, opts.variables, false);
    if (opts.app && this.apps.isActive(opts.app)) ch.subscribers.add(opts.app);
    const timeoutSec = opts.timeoutSec > 0 ? opts.timeoutSec : opts.timeoutSec === -1 ? 0 : 30;
    const behaviour = this.behaviourOf(ch.party);
    const attempt: DialAttempt = {
      via: 'originate',
      behaviour,
      device: target.dialstring,
      answered: false,
      timers: [],
    };
    if (onAnswer) attempt.onAnswer = onAnswer;
    ch.dial = attempt;
    this.endpoints.endpointChanged(ch.endpoint);
    // The dial runs in its own thread: events follow the HTTP answer.
    setImmediate(() => {
      if (ch.phase !== 'alive') return;
      this.emit(
        'Dial',
        { dialstatus: '', forward: '', dialstring: attempt.device, peer: channelJson(ch) },
        { channels: [ch] },
      );
      if (timeoutSec > 0) {
        attempt.timers.push(
          this.channelTimer(ch, timeoutSec * 1000, () => this.dialling.originateTimeout(ch)),
        );
      }
      this.dialling.runBehaviour(ch, attempt, false);
    });
    return ch;
  }

  /**
   * `POST /channels/{id}/dial` of a created channel: connected line from `caller`, `Dial ""`, then
   * what the phone does (see {@link PhoneBehaviour}); `timeoutSec` > 0 ends an unanswered dial with
   * HangupRequest 32 and ChannelDestroyed 19 "User alerting, no answer" (fact 5).
   */
  dial(ch: SimChannel, callerId: string | undefined, timeoutSec: number): void {
    const caller = callerId ? this.channels.get(callerId) : undefined;
    if (ch.state !== 'Down' && ch.state !== 'Rsrvd')
      throw ariError(409, "Channel is not in the 'Down' state");
    if (ch.kind !== 'created' || ch.dialstring === null || ch.dial)
      throw ariError(409, 'Dialing a channel not created by ARI');
    if (caller) {
      for (const [name, value] of caller.vars) {
        if (name.startsWith('__')) ch.vars.set(name, value);
        else if (name.startsWith('_')) ch.vars.set(name.slice(1), value);
      }
      const connected = { ...caller.caller };
      if (connected.name !== ch.connected.name || connected.number !== ch.connected.number) {
        ch.connected = connected;
        this.emitChannel('ChannelConnectedLine', ch);
      }
    }
    const attempt: DialAttempt = {
      via: 'dial',
      behaviour: this.behaviourOf(ch.party),
      device: ch.dialstring,
      answered: false,
      timers: [],
    };
    ch.dial = attempt;
    this.emit(
      'Dial',
      { dialstatus: '', forward: '', dialstring: attempt.device, peer: channelJson(ch) },
      { channels: [ch] },
    );
    if (timeoutSec > 0)
      attempt.timers.push(
        this.channelTimer(ch, timeoutSec * 1000, () => this.dialling.dialTimeout(ch)),
      );
    this.dialling.runBehaviour(ch, attempt, false);
  }

  private behaviourOf(party: Party): PhoneBehaviour {
    if (party.kind === 'operator') return this.phones.operator(party.extension);
    if (party.kind === 'customer') return this.phones.customer(party.number);
    return { mode: 'answer', answerAfterMs: 0 };
  }

  /** A channel hangs up or leaves Stasis: its playback and recordings end. */
  stopChannelMedia(ch: SimChannel): void {
    this.playbacks.stopForChannel(ch);
    this.recordings.finishFor(`channel:${ch.id}`);
  }

  /** {@link MediaHost.settleBridge}: see {@link Bridging.settle}. */
  settleBridge(bridge: SimBridge): void {
    this.bridging.settle(bridge);
  }

  /** {@link MediaHost.refreshTechnology}: see {@link Bridging.refreshTechnology}. */
  refreshTechnology(bridge: SimBridge): void {
    this.bridging.refreshTechnology(bridge);
  }

  // -------------------------------------------------------------------------------------------
  // Misc
  // -------------------------------------------------------------------------------------------

  /** `GET /asterisk/info` of the recorded Asterisk 22.10.1. */
  asteriskInfo(): Record<string, unknown> {
    return {
      build: {
        os: 'Linux',
        kernel: '6.18.44-fc-v669',
        machine: 'x86_64',
        options: 'OPTIONAL_API',
        date: '2026-11-21 15:45:42 UTC',
        user: 'root',
      },
      system: { version: '22.10.1', entity_id: ASTERISK_ID },
      config: { name: '', default_language: 'en', setid: { user: '', group: '' } },
      status: { startup_time: this.startupTime, last_reload_time: this.startupTime },
    };
  }

  /** Cancel every timer and forget all state (close). */
  shutdown(): void {
    this.clock.cancelAll();
    this.channels.clear();
    this.endpoints.clear();
    this.bridges.clear();
    this.recordings.live.clear();
  }
}
