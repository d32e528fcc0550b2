/**
 * The inbound flow: a customer calls a DID and Asterisk runs `Stasis(crm-app,inbound,<DID>)`.
 * Top to bottom:
 *
 * 1. {@link InboundFlow.start}: the call is created with its caller leg, `call.started`; the
 *    caller is rung (`POST /channels/{id}/ring`: the caller hears ringback);
 * 2. the CRM is asked for the route (`POST CRM_ROUTE_URL {callId, from, did}`; the route client
 *    falls back on any failure), outside the per-call chain;
 * 3. {@link InboundFlow.applyRoute}: `hangup`, or optionally answer and play a greeting (dialling
 *    starts on its `PlaybackFinished`), then {@link InboundFlow.startDialing}; or a call script
 *    (`verbs`), run by {@link InboundFlow.runCallScript} with this flow as its `dial`/`transfer`
 *    host (see "Call scripts" below);
 * 4. operator legs: all at once (ring-all) or one after another (sequential), each created with
 *    CALLERID set and dialled once in Stasis (the runtime's `placeOperatorLeg`);
 * 5. the first answer is bridged with the caller and the other legs cancelled (the runtime's
 *    `connect`, the default of {@link Flow.legAnswered});
 * 6. {@link InboundFlow.legUnanswered}: a busy or unanswered leg makes the next extension ring;
 *    with nobody left the caller goes to `NO_ANSWER_DIALPLAN` or is hung up.
 *
 * Operator presence (OPERATOR_PRESENCE_ROUTING, src/operators/): operators who do not take calls
 * now (offline, on a break or dnd, already on a call) are skipped when the dialling starts and
 * when a sequential route moves on; when that leaves nobody, step 6's no-answer path runs at once
 * (`nobody_answered`, disposition `no_answer`; a script's `dial` reports `NOANSWER`).
 *
 * Hang-ups (either side), transfers and the end of the call are the runtime's
 * (src/calls/runtime.ts) and the transfer flow's (src/calls/flows/transfer.ts).
 *
 * Call scripts (a CRM route answer `{"verbs": [...]}`, docs/crm-routing.md):
 * - the caller keeps hearing ringback until a verb needs media (`play`, `gather`, `record`):
 *   the channel is answered just before it, as a PBX answers before an IVR menu; a script that
 *   starts with `dial` rings operators with the caller still unanswered;
 * - `dial` rings operators as a dial route does; the first answer is bridged and the script
 *   ends there (the rest never runs); when nobody answers, the script goes on;
 * - `transfer` `service` continues the caller in the dialplan at `<serviceContext>,<DID>,1`;
 *   `transfer` to an extension rings it alone (the default ring time) and, unanswered, ends as an
 *   unanswered call does;
 * - `hangup`, or the script running out of verbs, ends the call;
 * - the CDR: `answered` only when an operator talked; otherwise the dialled operators'
 *   disposition, `no_answer` when none was dialled, `canceled` when the caller hung up.
 */
import { randomUUID } from 'node:crypto';
import type { AriChannel } from '../../ari/types.ts';
import type { Route } from '../../crm/types.ts';
import { type Disposition, type Leg, type LegOutcome, unansweredDisposition } from '../model.ts';
import type { CallContext, Flow } from '../context.ts';
import { type CallRuntime, isGone } from '../runtime.ts';
import { gatewayVerbChannel } from '../verbs/channel.ts';
import { runScript, type VerbReport } from '../verbs/runner.ts';
import type { DialVerb, ScriptVerb, TransferVerb } from '../verbs/schema.ts';
import type { HostVerbResult, VerbChannel, VerbHost } from '../verbs/types.ts';

/** Verbs that need the caller's channel answered (media flows both ways). */
const MEDIA_VERBS: ReadonlySet<ScriptVerb['verb']> = new Set(['play', 'gather', 'record']);

/** The dial status a script's `dial` reports when nobody answered, by the call's disposition. */
const DIAL_STATUS: Record<Disposition, string> = {
  answered: 'ANSWER',
  busy: 'BUSY',
  no_answer: 'NOANSWER',
  canceled: 'CANCEL',
  failed: 'CHANUNAVAIL',
};

/** Calls entering Stasis with `inbound,<DID>`. */
export class InboundFlow implements Flow {
  readonly name = 'inbound';
  readonly stasisRoles = ['inbound'];
  readonly callerChannel = 'customer';

  /** Aborted at engine shutdown: running scripts stop without ending their calls. */
  private readonly shutdown = new AbortController();

  constructor(private readonly rt: CallRuntime) {}

  /** Engine shutdown: stop every call script; their calls stay up for the next engine. */
  stopScripts(): void {
    this.shutdown.abort();
  }

  /** Inbound: ring the caller, ask the CRM, optionally greet, then ring operators. */
  async start(channel: AriChannel, args: string[]): Promise<void> {
    const did = args[1] || channel.dialplan.exten;
    const ctx = this.rt.dialplanCall(channel, 'inbound', 'in', channel.caller.number, did);
    const { call } = ctx;
    call.did = did;
    ctx.log.info('inbound call', { from: call.from, did });
    this.rt.deps.notifier.started(call);
    await this.rt.run(ctx, async () => {
      await this.rt.ringCaller(ctx);
    });
    const decision = await this.rt.deps.routes.lookup({ callId: call.id, from: call.from, did });
    // The route client already logged a failed lookup (warn, with its reason).
    ctx.log.info('route decided', {
      source: decision.source,
      fallbackReason: decision.failure?.reason,
      action: decision.route.action.type,
      durationMs: decision.durationMs,
    });
    await this.rt.run(ctx, () => this.applyRoute(ctx, decision.route));
  }

  /** The CRM's answer: hang up, or (after an optional greeting) ring the operators. */
  private async applyRoute(ctx: CallContext, route: Route): Promise<void> {
    const { call } = ctx;
    if (call.phase === 'ended') return;
    ctx.route = route;
    if (route.customer) call.customer = route.customer;
    if (route.action.type === 'hangup') {
      await this.rt.endCall(ctx, {
        disposition: 'failed',
        hangupBy: 'system',
        reason: 'route_hangup',
      });
      return;
    }
    if (route.action.type === 'verbs') {
      call.phase = 'greeting';
      ctx.script = {};
      // Outside the per-call chain: the script waits for steps queued on it (a dial's answer).
      void this.runCallScript(ctx, route.action.verbs);
      return;
    }
    ctx.ringTimeoutSec = route.action.ringTimeoutSec;
    if (route.greeting && route.greeting.media.length > 0) {
      call.phase = 'greeting';
      await this.rt.answerCaller(ctx);
      const playbackId = `pb-${randomUUID()}`;
      ctx.greetingPlaybackId = playbackId;
      this.rt.trackPlayback(ctx, playbackId);
      try {
        await this.rt.deps.gateway.channels.play(call.callerChannelId, {
          media: route.greeting.media,
          playbackId,
        });
        return; // dialling starts on PlaybackFinished
      } catch (err) {
        this.rt.untrackPlayback(ctx, playbackId);
        ctx.log.warn('greeting could not be played; dialling operators now', { err });
      }
    }
    await this.startDialing(ctx);
  }

  /** The greeting finished: ring the operators. */
  async playbackFinished(ctx: CallContext, playbackId: string): Promise<void> {
    if (playbackId === ctx.greetingPlaybackId && ctx.call.phase === 'greeting')
      await this.startDialing(ctx);
  }

  /** Ring the route's extensions: all at once, or the first of a sequential route. */
  private async startDialing(ctx: CallContext): Promise<void> {
    const action = ctx.route?.action;
    if (!action || action.type !== 'dial') return;
    ctx.call.phase = 'dialing';
    const extensions = [...new Set(action.extensions)];
    if (extensions.length === 0) {
      await this.rt.endCall(ctx, {
        disposition: 'failed',
        hangupBy: 'system',
        reason: 'no_extensions',
      });
      return;
    }
    const free = extensions.filter((ext) => this.takesCalls(ctx, ext));
    if (free.length === 0) {
      // Nobody takes calls now: the no-answer path at once (a sequential route's later
      // extensions were looked at too).
      ctx.pending = [];
      await this.nobodyDialled(ctx);
      return;
    }
    if (action.strategy === 'sequential') {
      ctx.pending = free.slice(1);
      await this.rt.placeOperatorLeg(ctx, free[0]!);
    } else {
      await Promise.all(free.map((ext) => this.rt.placeOperatorLeg(ctx, ext)));
    }
  }

  /**
   * Whether the operator at `extension` may be rung now (operator presence: available, not
   * offline, not on a call); always true without presence routing. A skipped operator is
   * logged.
   */
  private takesCalls(ctx: CallContext, extension: string): boolean {
    const presence = this.rt.deps.presence;
    if (!presence || presence.takesCalls(extension)) return true;
    ctx.log.info('operator skipped: not taking calls now', { extension });
    return false;
  }

  /**
   * An operator answered: bridged with the caller (`CallRuntime.connect`); a script's `dial`
   * ends there, and so does the script.
   */
  async legAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    await this.rt.connect(ctx, leg);
    const dial = ctx.script?.dial;
    if (dial && ctx.call.phase === 'bridged') {
      ctx.script!.dial = undefined;
      dial.done({
        outcome: 'completed',
        dialStatus: 'ANSWER',
        ...(leg.extension !== undefined ? { answeredExtension: leg.extension } : {}),
        end: true,
      });
    }
  }

  /** An operator leg ended unanswered: see {@link nobodyDialled}. */
  legUnanswered(ctx: CallContext): Promise<void> {
    return this.nobodyDialled(ctx);
  }

  /**
   * Once no operator leg rings any more: the next extension of a sequential route, else the
   * caller goes to the no-answer dialplan (`continue`) or is hung up; `nobody_answered`.
   */
  async nobodyDialled(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    const dialled = [...call.legs.values()].filter((l) => l.role === 'operator');
    if (dialled.some((l) => !l.ended)) return;
    // The next extension of a sequential route that takes calls now.
    let next = ctx.pending.shift();
    while (next !== undefined && !this.takesCalls(ctx, next)) next = ctx.pending.shift();
    if (next !== undefined) {
      await this.rt.placeOperatorLeg(ctx, next);
      return;
    }
    const outcomes = dialled.map((l) => l.outcome).filter((o): o is LegOutcome => o !== undefined);
    // Nobody dialled (presence left no operator to ring): nobody answered.
    const disposition = dialled.length === 0 ? 'no_answer' : unansweredDisposition(outcomes);
    const scriptDial = ctx.script?.dial;
    if (scriptDial) {
      ctx.script!.dial = undefined;
      const dialStatus = DIAL_STATUS[disposition];
      if (!scriptDial.blind) {
        // The script goes on (e.g. "nobody is free", a voicemail `record`).
        call.phase = 'greeting';
        ctx.log.info('nobody answered the script dial; the script goes on', { dialStatus });
        scriptDial.done({ outcome: 'completed', dialStatus });
        return;
      }
      scriptDial.done({ outcome: 'completed', dialStatus, end: true });
    }
    const dialplan = this.rt.deps.options.noAnswerDialplan;
    if (dialplan) {
      ctx.released.add(call.callerChannelId);
      try {
        await this.rt.deps.gateway.channels.continueInDialplan(call.callerChannelId, dialplan);
        ctx.log.info('nobody answered; caller sent to the dialplan', { ...dialplan, disposition });
      } catch (err) {
        ctx.released.delete(call.callerChannelId);
        ctx.log.warn('could not send the caller to the no-answer dialplan; hanging up', { err });
      }
    }
    await this.rt.endCall(ctx, { disposition, hangupBy: 'system', reason: 'nobody_answered' });
  }

  /**
   * Run a call script on the caller's channel (outside the per-call chain), with this flow as
   * its host; each verb's result is logged with the call id. When the script ends without
   * ending the call (it ran out of verbs, hit the verb limit), the call ends
   * (`endReason: script_ended`).
   */
  private async runCallScript(ctx: CallContext, verbs: ScriptVerb[]): Promise<void> {
    const { call } = ctx;
    const base = gatewayVerbChannel(this.rt.deps.gateway, call.callerChannelId);
    // The `hangup` verb ends the call through the runtime (CDR, legs, `call.ended`).
    const channel: VerbChannel = {
      ...base,
      hangup: () => this.rt.run(ctx, () => this.endScriptCall(ctx, 'script_hangup')),
    };
    const host = this.hostFor(ctx);
    const recorder = this.rt.recorder;
    const run = await runScript(
      {
        callId: call.id,
        channel,
        host,
        ...(this.rt.deps.verbCrm ? { crm: this.rt.deps.verbCrm } : {}),
        ...(recorder?.keepVerbRecording
          ? {
              keepRecording: (name: string, durationSec?: number) =>
                recorder.keepVerbRecording!(call.id, name, durationSec),
            }
          : {}),
        call: { from: call.from, to: call.did ?? call.to },
        logger: ctx.log,
      },
      verbs,
      {
        signal: this.shutdown.signal,
        beforeVerb: async (verb) => {
          if (!MEDIA_VERBS.has(verb.verb) || ctx.callerAnswered) return;
          await this.rt.run(ctx, async () => {
            if (call.phase === 'ended') return;
            try {
              await this.rt.answerCaller(ctx);
            } catch (err) {
              if (!isGone(err)) throw err; // a hang-up: its StasisEnd ends the call
            }
          });
        },
        onVerb: (report) => logVerb(ctx, report),
      },
    );
    ctx.log.info('call script ended', { ended: run.ended, verbs: run.results.length });
    // `stopped`: the engine is shutting down; the call stays up for the next engine to adopt.
    if (run.ended === 'completed' || run.ended === 'verb_limit') {
      await this.rt.run(ctx, () => this.endScriptCall(ctx, 'script_ended'));
    }
  }

  /**
   * End a call whose script hung up or ran out: nobody talked to an operator, so the
   * disposition is the dialled operators' (busy, no_answer…), or `no_answer` when none was
   * dialled. The caller is hung up with cause normal clearing.
   */
  private async endScriptCall(ctx: CallContext, reason: string): Promise<void> {
    const { call } = ctx;
    if (call.phase === 'ended' || call.phase === 'bridged') return;
    const caller = call.legs.get(call.callerChannelId);
    if (caller) await this.rt.hangupLeg(ctx, caller, 'normal');
    await this.rt.endCall(ctx, {
      disposition: scriptDisposition(ctx),
      hangupBy: 'system',
      reason,
    });
  }

  /** The `dial` and `transfer` verbs of a call's script ({@link VerbHost}). */
  private hostFor(ctx: CallContext): VerbHost {
    return {
      dial: (verb: DialVerb, _channelId: string, signal: AbortSignal) =>
        this.scriptDial(ctx, verb, verb.noAnswer === 'end', signal),
      transfer: async (verb: TransferVerb, _channelId: string, signal: AbortSignal) => {
        if (verb.to !== 'service') {
          const dial: DialVerb = {
            verb: 'dial',
            extensions: [verb.to],
            strategy: 'ringall',
            ringTimeoutSec: this.rt.deps.options.defaultRingTimeoutSec,
            noAnswer: 'end',
          };
          return this.scriptDial(ctx, dial, true, signal);
        }
        return this.scriptToService(ctx);
      },
    };
  }

  /**
   * Ring the operators of a script's `dial` (or the extension of a `transfer`) as a dial route
   * does. Resolves once an operator answered and was bridged (`end: true`), nobody answered (the
   * dial status; with `blind` — a transfer, or a dial with `noAnswer: "end"` — the call then takes
   * the no-answer path of a dial route, `end: true`), or the caller hung up.
   */
  private scriptDial(
    ctx: CallContext,
    verb: DialVerb,
    blind: boolean,
    signal: AbortSignal,
  ): Promise<HostVerbResult> {
    return new Promise<HostVerbResult>((resolve) => {
      let settled = false;
      const done = (result: HostVerbResult): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const onAbort = (): void => done({ outcome: 'completed', reason: 'hangup' });
      signal.addEventListener('abort', onAbort, { once: true });
      void this.rt.run(ctx, async () => {
        const { call } = ctx;
        if (call.phase !== 'greeting' || !ctx.script || signal.aborted) {
          done({ outcome: 'failed', reason: 'call_ended', detail: 'the call is over' });
          return;
        }
        ctx.script.dial = { done, blind };
        const record = verb.record ?? ctx.route?.record;
        ctx.route = {
          ...ctx.route,
          action: {
            type: 'dial',
            strategy: verb.strategy,
            extensions: verb.extensions,
            ringTimeoutSec: verb.ringTimeoutSec,
          },
          ...(record !== undefined ? { record } : {}),
        };
        ctx.ringTimeoutSec = verb.ringTimeoutSec;
        ctx.log.info(blind ? 'script transfer: ringing the extension' : 'script dial', {
          extensions: verb.extensions,
          strategy: verb.strategy,
          ringTimeoutSec: verb.ringTimeoutSec,
        });
        await this.startDialing(ctx);
      });
    });
  }

  /**
   * A script's `transfer` to `service`: the caller continues in the dialplan at
   * `<serviceContext>,<DID>,1` and the call ends (`endReason: transferred`).
   */
  private async scriptToService(ctx: CallContext): Promise<HostVerbResult> {
    let result: HostVerbResult = { outcome: 'failed', reason: 'call_ended' };
    await this.rt.run(ctx, async () => {
      const { call } = ctx;
      if (call.phase !== 'greeting') return;
      const context = this.rt.deps.options.serviceContext ?? 'service';
      const extension = call.did ?? call.to;
      ctx.released.add(call.callerChannelId);
      try {
        await this.rt.deps.gateway.channels.continueInDialplan(call.callerChannelId, {
          context,
          extension,
          priority: 1,
        });
      } catch (err) {
        ctx.released.delete(call.callerChannelId);
        ctx.log.warn('script transfer to the service context failed', { err });
        result = {
          outcome: 'failed',
          reason: isGone(err) ? 'call_ended' : 'transfer_failed',
          detail: err instanceof Error ? err.message : String(err),
        };
        return;
      }
      ctx.log.info('script transfer: caller sent to the service context', { context, extension });
      await this.rt.endCall(ctx, {
        disposition: scriptDisposition(ctx),
        hangupBy: 'system',
        reason: 'transferred',
      });
      result = { outcome: 'completed', end: true };
    });
    return result;
  }

  /**
   * An adopted call whose route was lost with the old process: ask the CRM again and dial (a
   * greeting already started is not played again).
   */
  async resume(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    const skipGreeting = call.phase === 'greeting';
    const decision = await this.rt.deps.routes.lookup({
      callId: call.id,
      from: call.from,
      did: call.did ?? call.to,
    });
    ctx.log.info('route decided again after a restart', {
      source: decision.source,
      action: decision.route.action.type,
    });
    const { greeting, ...rest } = decision.route;
    await this.rt.run(ctx, async () => {
      if (call.phase !== 'routing' && call.phase !== 'greeting') return;
      await this.applyRoute(ctx, skipGreeting || !greeting ? rest : { ...rest, greeting });
    });
  }
}

/**
 * The disposition of a script call nobody talked on: that of the operators dialled (busy,
 * no_answer, failed), or `no_answer` when the script dialled nobody.
 */
function scriptDisposition(ctx: CallContext): Disposition {
  const outcomes = [...ctx.call.legs.values()]
    .filter((l) => l.role === 'operator')
    .map((l) => l.outcome)
    .filter((o): o is LegOutcome => o !== undefined);
  return outcomes.length === 0 ? 'no_answer' : unansweredDisposition(outcomes);
}

/** Log one verb's result with the call id (the context's logger carries it). */
function logVerb(ctx: CallContext, report: VerbReport): void {
  ctx.log.info('verb result', {
    verb: report.verb,
    round: report.round,
    index: report.index,
    outcome: report.outcome,
    reason: report.reason,
    durationMs: report.durationMs,
    digits: report.gather?.digits,
    gatherReason: report.gather?.reason,
    crmResult: report.crm?.result,
    dialStatus: report.host?.dialStatus,
    answeredExtension: report.host?.answeredExtension,
    recording: report.record?.name,
    recordingStored: report.record ? report.record.url !== undefined : undefined,
    failedMedia: report.play?.failedMedia.length || undefined,
  });
}
