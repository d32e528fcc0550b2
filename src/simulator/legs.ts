/**
 * Outgoing legs as ARI makes them: `POST /channels/create` (a channel in Stasis, state Down,
 * dialled later), `POST /channels/{id}/dial`, and the originate (`POST /channels`), which dials at
 * once and enters Stasis or the dialplan only when answered. The dial target (`PJSIP/101`,
 * `PJSIP/<number>@<trunk>`) decides who is behind the leg and so how it behaves once dialled
 * (`dialling.ts`).
 */
import type { AriCallerId } from '../ari/types.ts';
import { CAUSE } from './causes.ts';
import { allocationFailed, ariError } from './errors.ts';
import {
  channelJson,
  EMPTY_CALLER_ID,
  type DialAttempt,
  type Party,
  type SimChannel,
} from './model.ts';
import type { Pbx } from './pbx.ts';
import type { PhoneBehaviour } from './types.ts';
import { parseCallerId } from './variables.ts';

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

/** The outgoing legs of a {@link Pbx}. */
export class Legs {
  constructor(private readonly pbx: Pbx) {}

  /**
   * `POST /channels/create`: the channel enters Stasis at once in state Down (fact 1); variables
   * (e.g. CALLERID(name), fact 3) are applied first. Returns the snapshot the HTTP answer carries.
   */
  create(opts: CreateOptions): SimChannel {
    if (!opts.endpoint) throw ariError(400, 'Endpoint must be specified');
    if (!opts.app) throw ariError(400, 'Application name is required');
    if (opts.originator && opts.formats)
      throw ariError(400, "Originator and formats can't both be specified");
    const { ch } = this.newOutgoing(opts.endpoint, opts.channelId, 'created');
    const active = this.pbx.apps.isActive(opts.app);
    if (active) {
      ch.subscribers.add(opts.app);
      const originator = opts.originator ? this.pbx.channels.get(opts.originator) : undefined;
      originator?.subscribers.add(opts.app);
    }
    this.pbx.endpoints.endpointChanged(ch.endpoint);
    this.pbx.variables.apply(ch, opts.variables, true);
    return ch;
  }

  /** Second half of create: the channel runs `Stasis(app,appArgs)` (a failed Stasis hangs it up). */
  startCreated(ch: SimChannel, app: string, appArgs: string | undefined): void {
    if (!this.pbx.enterStasis(ch, app, appArgs, true))
      this.pbx.hangups.scheduleDestroy(ch, CAUSE.NORMAL_CLEARING);
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
    const originator = opts.originator ? this.pbx.channels.get(opts.originator) : undefined;
    if (opts.originator && !originator)
      throw ariError(400, 'Provided originator channel was not found');
    const { ch, target } = this.newOutgoing(opts.endpoint, opts.channelId, 'originated');
    ch.dialplan.app_name = 'AppDial2';
    ch.dialplan.app_data = '(Outgoing Line)';
    // Published before the app subscribes to the channel: only endpoint subscribers (and
    // subscribeAll apps) see them (device-endpoint-state trace).
    this.pbx.emitChannel('ChannelDialplan', ch, {
      dialplan_app: 'AppDial2',
      dialplan_app_data: '(Outgoing Line)',
    });
    if (opts.callerId) {
      const id = parseCallerId(opts.callerId);
      // A number without a name keeps the endpoint's caller name (device-endpoint-state trace:
      // "Operator 101" <74957654321>); the connected line is the caller ID as given.
      ch.caller = { name: id.name || ch.caller.name, number: id.number };
      this.pbx.emitChannel('ChannelCallerId', ch, {
        caller_presentation: 0,
        caller_presentation_txt: 'Presentation Allowed, Not Screened',
      });
      ch.connected = { ...id };
      this.pbx.emitChannel('ChannelConnectedLine', ch);
    }
    this.pbx.variables.apply(ch, opts.variables, false);
    if (opts.app && this.pbx.apps.isActive(opts.app)) ch.subscribers.add(opts.app);
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
    this.pbx.endpoints.endpointChanged(ch.endpoint);
    // The dial runs in its own thread: events follow the HTTP answer.
    setImmediate(() => {
      if (ch.phase !== 'alive') return;
      this.pbx.emit(
        'Dial',
        { dialstatus: '', forward: '', dialstring: attempt.device, peer: channelJson(ch) },
        { channels: [ch] },
      );
      if (timeoutSec > 0) {
        attempt.timers.push(
          this.pbx.channelTimer(ch, timeoutSec * 1000, () =>
            this.pbx.dialling.originateTimeout(ch),
          ),
        );
      }
      this.pbx.dialling.runBehaviour(ch, attempt, false);
    });
    return ch;
  }

  /**
   * `POST /channels/{id}/dial` of a created channel: connected line from `caller`, `Dial ""`, then
   * what the phone does (see {@link PhoneBehaviour}); `timeoutSec` > 0 ends an unanswered dial with
   * HangupRequest 32 and ChannelDestroyed 19 "User alerting, no answer" (fact 5).
   */
  dial(ch: SimChannel, callerId: string | undefined, timeoutSec: number): void {
    const caller = callerId ? this.pbx.channels.get(callerId) : undefined;
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
        this.pbx.emitChannel('ChannelConnectedLine', ch);
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
    this.pbx.emit(
      'Dial',
      { dialstatus: '', forward: '', dialstring: attempt.device, peer: channelJson(ch) },
      { channels: [ch] },
    );
    if (timeoutSec > 0)
      attempt.timers.push(
        this.pbx.channelTimer(ch, timeoutSec * 1000, () => this.pbx.dialling.dialTimeout(ch)),
      );
    this.pbx.dialling.runBehaviour(ch, attempt, false);
  }

  /**
   * A new outgoing channel to `endpoint` (`Down`, in the endpoint's context at `s`), as
   * `ast_request` makes it for a create (`dialstring` kept for the later `dial`) or an originate
   * (dialled at once, no dialstring), with the endpoint it resolved to. Throws like
   * {@link resolveEndpoint} and for an id in use.
   */
  private newOutgoing(
    endpoint: string,
    channelId: string | undefined,
    kind: 'created' | 'originated',
  ): { ch: SimChannel; target: EndpointTarget } {
    const target = this.resolveEndpoint(endpoint);
    this.pbx.assertNewId(channelId);
    const ch = this.pbx.newChannel({
      id: channelId,
      kind,
      party: target.party,
      endpoint: target.endpoint,
      nameResource: target.nameResource,
      protocolId: this.pbx.ids.uuid(),
      state: 'Down',
      caller: target.defaultCaller,
      context: target.context,
      exten: 's',
      dialstring: kind === 'created' ? target.dialstring : null,
    });
    return { ch, target };
  }

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
      if (trunk !== this.pbx.trunk || !number) throw allocationFailed();
      if (this.pbx.phones.customer(number).mode === 'unavailable') throw allocationFailed();
      return {
        party: { kind: 'customer', number },
        endpoint: `PJSIP/${trunk}`,
        nameResource: trunk,
        dialstring: resource,
        context: 'from-pstn',
        defaultCaller: { ...EMPTY_CALLER_ID },
      };
    }
    if (!this.pbx.phones.isExtension(resource)) throw allocationFailed();
    // A PJSIP endpoint without a contact: chan_pjsip cannot create the outgoing session.
    if (!this.pbx.phones.isReachable(resource)) throw allocationFailed();
    return {
      party: { kind: 'operator', extension: resource },
      endpoint: `PJSIP/${resource}`,
      nameResource: resource,
      dialstring: resource,
      context: 'from-internal',
      defaultCaller: { name: `Operator ${resource}`, number: resource },
    };
  }

  private behaviourOf(party: Party): PhoneBehaviour {
    if (party.kind === 'operator') return this.pbx.phones.operator(party.extension);
    if (party.kind === 'customer') return this.pbx.phones.customer(party.number);
    return { mode: 'answer', answerAfterMs: 0 };
  }
}
