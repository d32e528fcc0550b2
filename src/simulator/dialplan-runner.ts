/**
 * The simulated dialplan at work: phone calls entering it (a customer calling in on `pstn-in`, an
 * operator dialling a number from their phone), its execution step by step (`dialplan.ts` holds
 * the extensions), also for a channel `continue`d out of Stasis or originated into an extension,
 * and the answer of such a channel (dialplan `Answer()` or ARI `answer`).
 */
import { CAUSE } from './causes.ts';
import { type DialplanContext, findExtension } from './dialplan.ts';
import { mediaDurationMs } from './media.ts';
import type { SimChannel } from './model.ts';
import type { Pbx } from './pbx.ts';
import type { DtmfPlan } from './types.ts';

/** The dialplan of a {@link Pbx} and the calls that enter it. */
export class DialplanRunner {
  constructor(private readonly pbx: Pbx) {}

  /**
   * A call arrives on `pstn-in` into `from-pstn` (state Ring, caller name = number unless given)
   * and reaches `Stasis(app,inbound,<DID>)` at priority 2. Returns false when Stasis failed (no
   * WebSocket, fact 14): the call is then hung up at once.
   */
  inboundCall(call: {
    from: string;
    to: string;
    callerName?: string;
    app: string;
    hangupAfterMs?: number;
    abandonAfterMs?: number;
    dtmf?: DtmfPlan;
  }): { channel: SimChannel; accepted: boolean } {
    return this.dialplanCall(call, {
      party: { kind: 'pstn', number: call.from },
      resource: 'pstn-in',
      caller: { name: call.callerName ?? call.from, number: call.from },
      context: 'from-pstn',
    });
  }

  /**
   * An operator dials a customer from their phone: `PJSIP/<ext>` into `from-internal`, which
   * sends numbers of 5+ digits to `Stasis(app,outbound,<number>)` (asterisk-conf/extensions.conf).
   * The caller ID is the endpoint's own (`"Operator 101" <101>`, as in the traces).
   */
  operatorCall(call: {
    extension: string;
    to: string;
    app: string;
    hangupAfterMs?: number;
    abandonAfterMs?: number;
    dtmf?: DtmfPlan;
  }): { channel: SimChannel; accepted: boolean } {
    return this.dialplanCall(call, {
      party: { kind: 'operator', extension: call.extension },
      resource: call.extension,
      caller: { name: `Operator ${call.extension}`, number: call.extension },
      context: 'from-internal',
    });
  }

  /** A phone call entering the dialplan (state Ring) at `context`, extension `call.to`. */
  private dialplanCall(
    call: {
      to: string;
      app: string;
      hangupAfterMs?: number;
      abandonAfterMs?: number;
      dtmf?: DtmfPlan;
    },
    from: {
      party: SimChannel['party'];
      resource: string;
      caller: { name: string; number: string };
      context: string;
    },
  ): { channel: SimChannel; accepted: boolean } {
    const ch = this.pbx.newChannel({
      kind: 'inbound',
      party: from.party,
      endpoint: `PJSIP/${from.resource}`,
      nameResource: from.resource,
      protocolId: this.pbx.ids.inboundCallId(),
      state: 'Ring',
      caller: from.caller,
      context: from.context,
      exten: call.to,
      dialstring: null,
    });
    ch.inbound = { app: call.app };
    if (call.hangupAfterMs !== undefined) ch.inbound.hangupAfterMs = call.hangupAfterMs;
    if (call.dtmf) ch.inbound.dtmf = { ...call.dtmf };
    if (call.abandonAfterMs !== undefined) {
      ch.inbound.abandonAfterMs = call.abandonAfterMs;
      this.pbx.channelTimer(ch, call.abandonAfterMs, () => {
        if (ch.state !== 'Up') this.pbx.hangups.callerCancels(ch);
      });
    }
    this.pbx.endpoints.endpointChanged(ch.endpoint);
    this.run(ch, from.context, call.to, 1);
    return { channel: ch, accepted: ch.stasis !== null };
  }

  /** Run the simulated dialplan from a location; a missing extension/priority hangs the channel up. */
  run(ch: SimChannel, context: string, exten: string, priority: number): void {
    if (ch.phase !== 'alive') return;
    const step = findExtension(context, exten)?.[priority - 1];
    if (!step) {
      ch.dialplan = { ...ch.dialplan, context, exten, priority };
      this.pbx.hangups.destroy(ch, CAUSE.NORMAL_CLEARING);
      return;
    }
    const dialplanContext: DialplanContext = {
      exten,
      app: ch.inbound?.app ?? originatedApp(ch) ?? 'crm-app',
      channel: ch.name,
      vars: (name) => ch.vars.get(name) ?? '',
    };
    const data = step.data(dialplanContext);
    ch.dialplan = { context, exten, priority, app_name: step.app, app_data: data };
    this.pbx.emitChannel('ChannelDialplan', ch, {
      dialplan_app: step.app,
      dialplan_app_data: data,
    });
    const next = () => this.run(ch, context, exten, priority + 1);
    switch (step.app) {
      case 'NoOp':
        next();
        return;
      case 'Answer':
        this.answer(ch);
        next();
        return;
      case 'Playback': {
        const ms = mediaDurationMs(`sound:${data}`, () => undefined) ?? 0;
        this.pbx.channelTimer(ch, ms, next);
        return;
      }
      case 'Hangup':
        this.pbx.hangups.destroy(ch, CAUSE.NORMAL_CLEARING);
        return;
      case 'Set': {
        const at = data.indexOf('=');
        this.pbx.setVar(ch, data.slice(0, at), data.slice(at + 1));
        next();
        return;
      }
      case 'GotoIf':
      case 'Goto': {
        const target = step.jump?.(dialplanContext);
        if (target === undefined) next();
        else this.run(ch, context, exten, target);
        return;
      }
      case 'Wait':
        this.pbx.channelTimer(ch, Number(data) * 1000, next);
        return;
      case 'AMD':
        this.pbx.phoneMedia.startAmd(ch, data, next);
        return;
      case 'Stasis': {
        const [app = '', ...rest] = data.split(',');
        if (!this.pbx.enterStasis(ch, app, rest.length > 0 ? rest.join(',') : undefined, false))
          next();
        return;
      }
    }
  }

  /**
   * `POST /channels/{id}/continue`: StasisEnd; a dialplan channel, or one originated into the
   * app, runs the dialplan at the new location (recorded: transfer-to-service, amd-continue); an
   * ARI-created one is hung up (its Stasis thread ends).
   */
  continueInDialplan(ch: SimChannel, context: string, exten: string, priority: number): void {
    const bridge = ch.bridgeId ? this.pbx.bridges.get(ch.bridgeId) : undefined;
    this.pbx.stopChannelMedia(ch);
    if (bridge) this.pbx.bridging.leave(bridge, ch);
    this.pbx.leaveStasis(ch);
    if (bridge) this.pbx.bridging.settle(bridge);
    if (ch.kind === 'inbound' || ch.kind === 'originated') {
      // An originated channel's first Stasis() returns too: it sets STASISSTATUS as the channel
      // hangs up, beside the one it is in then (amd-continue: two SUCCESS at the end).
      if (ch.kind === 'originated') ch.stasisReturns += 1;
      setImmediate(() => {
        if (ch.phase === 'alive') this.run(ch, context, exten, priority);
      });
    } else {
      this.pbx.setVar(ch, 'STASISSTATUS', 'SUCCESS');
      this.pbx.hangups.scheduleDestroy(ch, CAUSE.NORMAL_CLEARING);
    }
  }

  /** The inbound channel is answered (ARI answer or dialplan Answer): state Up; the caller's BYE timer starts. */
  answer(ch: SimChannel): void {
    if (ch.state === 'Up') return;
    this.pbx.setState(ch, 'Up');
    const after = ch.inbound?.hangupAfterMs;
    if (after !== undefined)
      this.pbx.channelTimer(ch, after, () => this.pbx.hangups.farEndHangsUp(ch));
    if (ch.inbound?.dtmf) this.pbx.phoneMedia.pressDigits(ch, ch.inbound.dtmf);
  }
}

/** The app an originated channel was sent to on answer (`POST /channels` `app`), if any. */
function originatedApp(ch: SimChannel): string | undefined {
  const next = ch.dial?.onAnswer;
  return next && 'app' in next ? next.app : undefined;
}
