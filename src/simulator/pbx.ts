/**
 * The simulated Asterisk: the live channels and bridges, the event emission every part shares,
 * a channel's allocation, timers, state and Stasis, composed with the parts that act on them,
 * behaving like Asterisk 22 in `shared/fixtures/ari/traces/`:
 *
 * - `legs.ts`: ARI create, dial and originate of outgoing legs;
 * - `dialling.ts`: what a dialled phone does (ring, answer, refusal) and dial timeouts;
 * - `dialplan-runner.ts`: calls entering the dialplan (inbound, operator), its execution, continue;
 * - `hangups.ts`: every kind of hang-up and what follows it;
 * - `bridges.ts`: bridges, their technology, BRIDGEPEER and connected lines;
 * - `phone-media.ts`: the voice AMD() listens to and the DTMF of the phones;
 * - `variables.ts`: channel variables, CALLERID() and CONNECTEDLINE();
 * - `endpoints.ts`: endpoints and device states;
 * - `playbacks.ts`, `recordings.ts`: media; `events.ts`: event delivery.
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
import { Bridging } from './bridges.ts';
import type { SimClock, SimTimer } from './clock.ts';
import { Dialling } from './dialling.ts';
import { DialplanRunner } from './dialplan-runner.ts';
import { Endpoints } from './endpoints.ts';
import { ariError } from './errors.ts';
import { ASTERISK_ID, EventBus, type Delivery, type Scope } from './events.ts';
import { Hangups } from './hangups.ts';
import type { MediaHost } from './host.ts';
import type { IdFactory } from './ids.ts';
import { Legs } from './legs.ts';
import {
  channelJson,
  EMPTY_CALLER_ID,
  type ChannelKind,
  type Party,
  type SimBridge,
  type SimChannel,
} from './model.ts';
import { PhoneMedia } from './phone-media.ts';
import type { PhoneBook } from './phones.ts';
import { Playbacks } from './playbacks.ts';
import { Recordings } from './recordings.ts';
import type { SimulatorRaces } from './types.ts';
import { Variables } from './variables.ts';

/** The model of one simulated Asterisk; REST handlers, the WebSocket and the public API drive it. */
export class Pbx implements MediaHost {
  readonly channels = new Map<string, SimChannel>();
  readonly bridges = new Map<string, SimBridge>();
  readonly events: EventBus;
  readonly playbacks: Playbacks;
  readonly recordings: Recordings;
  readonly endpoints: Endpoints;
  readonly variables: Variables;
  readonly legs: Legs;
  readonly dialling: Dialling;
  readonly dialplan: DialplanRunner;
  readonly bridging: Bridging;
  readonly phoneMedia: PhoneMedia;
  readonly hangups: Hangups;
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
    this.variables = new Variables(this);
    this.legs = new Legs(this);
    this.dialling = new Dialling(this);
    this.dialplan = new DialplanRunner(this);
    this.bridging = new Bridging(this);
    this.phoneMedia = new PhoneMedia(this);
    this.hangups = new Hangups(this);
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

  /** Emit a channel event (`channel` snapshot taken only when some app receives it). */
  emitChannel(type: string, ch: SimChannel, fields: Record<string, unknown> = {}): void {
    this.emit(type, () => ({ ...fields, channel: channelJson(ch) }), { channels: [ch] });
  }

  /** Set a plain channel variable; ChannelVarset unless `emitEvent` is false. */
  setVar(ch: SimChannel, variable: string, value: string, emitEvent = true): void {
    ch.vars.set(variable, value);
    if (emitEvent)
      this.emit('ChannelVarset', () => ({ variable, value, channel: channelJson(ch) }), {
        channels: [ch],
      });
  }

  // -------------------------------------------------------------------------------------------
  // Channels and Stasis
  // -------------------------------------------------------------------------------------------

  /** Allocate a channel on its endpoint (ChannelCreated); the caller sets it going. */
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

  /** A timer of the channel: cancelled when it is destroyed, runs only while it is alive. */
  channelTimer(ch: SimChannel, delayMs: number, fn: () => void): SimTimer {
    const timer = this.clock.after(delayMs, () => {
      ch.timers.delete(timer);
      if (ch.phase === 'alive') fn();
    });
    ch.timers.add(timer);
    return timer;
  }

  /** Change the channel state (ChannelStateChange, endpoint/device state); Up records the answer time. */
  setState(ch: SimChannel, state: ChannelState): void {
    if (ch.state === state) return;
    ch.state = state;
    if (state === 'Up') ch.answeredAtMs = this.clock.nowMs();
    this.emitChannel('ChannelStateChange', ch);
    this.endpoints.endpointChanged(ch.endpoint);
  }

  /** 409 when a channel or bridge already has the id asked for. */
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

  /** StasisEnd when the channel is in Stasis; the app is forgotten if it has nothing left. */
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

  /** Forget an app without a WebSocket once it has no channels or bridges (fact 13). */
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
