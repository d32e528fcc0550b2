/**
 * The script runner: runs a call script's verbs in order on one channel (after
 * jambonz-feature-server's task list per call session) and reports each verb's outcome.
 *
 * - A hang-up (`ChannelHangupRequest`, `ChannelDestroyed`) or the channel leaving Stasis
 *   (`StasisEnd`) aborts the verb running: it stops its playback or recording through ARI and
 *   reports outcome `hangup`; the script ends with `ended: "hangup"`. A verb that finds the
 *   channel gone (ARI 404/422) reports `hangup` too, with the same effect.
 * - A verb that answers new verbs (`gather` with `actionUrl`, `redirect`) replaces the rest of the
 *   script with them (a new `round`); an empty list ends the script.
 * - A verb that ends the script (`hangup`, a `transfer`, a `dial` after which the call is over)
 *   ends it with `ended: "ended_by_verb"`.
 * - A failed verb (unreachable media, a CRM that does not answer, a refused recording) is
 *   reported and the script goes on.
 * - At most `maxVerbs` verbs run in all (a guard against a CRM that redirects forever).
 *
 * The runner never hangs the channel up by itself: when the script ends (`completed`) the flow
 * that started it decides what follows.
 */
import { describeError } from '../../http/outbound.ts';
import { ariTime } from './playback.ts';
import { createVerb } from './create.ts';
import type { ScriptVerb, VerbName } from './schema.ts';
import type { VerbContext, VerbResult } from './types.ts';

/** Default {@link RunScriptOptions.maxVerbs}. */
export const DEFAULT_MAX_VERBS = 200;

/** Options of {@link runScript}. */
export interface RunScriptOptions {
  /** Most verbs run in all, CRM answers included (default {@link DEFAULT_MAX_VERBS}). */
  maxVerbs?: number;
  /** Called after each verb, with its report (e.g. to journal it). A throw is logged. */
  onVerb?: (report: VerbReport) => void;
  /** Aborting it stops the script like a hang-up (the verb running stops), `ended: "stopped"`. */
  signal?: AbortSignal;
  /**
   * Awaited before each verb starts, e.g. to answer the channel before the first verb that
   * needs media (the inbound flow). A throw is reported as the verb failing, reason
   * `internal_error`.
   */
  beforeVerb?: (verb: ScriptVerb) => Promise<void>;
}

/** The outcome of one verb of a run, as reported. */
export interface VerbReport extends Omit<VerbResult, 'next'> {
  verb: VerbName;
  /** 0 for the script given, then 1, 2… for each list of verbs the CRM answered. */
  round: number;
  /** Position of the verb in its round's list. */
  index: number;
  /** Engine time the verb took, ms. */
  durationMs: number;
}

/** What a whole run gives. */
export interface ScriptRun {
  /**
   * `completed`: every verb ran; `hangup`: the channel hung up or left Stasis; `ended_by_verb`:
   * a `hangup`, `transfer` or `dial` verb ended it; `stopped`: the caller's signal aborted;
   * `verb_limit`: `maxVerbs` verbs ran.
   */
  ended: 'completed' | 'hangup' | 'ended_by_verb' | 'stopped' | 'verb_limit';
  /** The event that told the channel hung up, with its Q.850 cause when it had one. */
  hangup?: {
    event: 'ChannelHangupRequest' | 'StasisEnd' | 'ChannelDestroyed';
    cause?: number;
    at?: number;
  };
  /** One report per verb run, in order. */
  results: VerbReport[];
}

/**
 * Run `verbs` (validated with the script schema) on `ctx.channel`. Resolves when the script is
 * over; never rejects (a verb that throws is reported `failed`, reason `internal_error`).
 */
export async function runScript(
  ctx: VerbContext,
  verbs: readonly ScriptVerb[],
  options: RunScriptOptions = {},
): Promise<ScriptRun> {
  const maxVerbs = options.maxVerbs ?? DEFAULT_MAX_VERBS;
  const hungUp = new AbortController();
  const run: ScriptRun = { ended: 'completed', results: [] };
  const off = ctx.channel.onEvent((event) => {
    if (
      event.type !== 'ChannelHangupRequest' &&
      event.type !== 'ChannelDestroyed' &&
      event.type !== 'StasisEnd'
    )
      return;
    if (!run.hangup) {
      const cause = 'cause' in event ? event.cause : undefined;
      const at = ariTime(event.timestamp);
      run.hangup = {
        event: event.type,
        ...(cause !== undefined ? { cause } : {}),
        ...(at !== undefined ? { at } : {}),
      };
    }
    hungUp.abort();
  });
  const signal = options.signal ? AbortSignal.any([hungUp.signal, options.signal]) : hungUp.signal;
  let queue: readonly ScriptVerb[] = verbs;
  // The verbs' context; a `record` result goes along with the next CRM request.
  let verbCtx: VerbContext = ctx;
  let round = 0;
  let index = 0;
  try {
    while (index < queue.length) {
      if (signal.aborted) {
        run.ended = hungUp.signal.aborted ? 'hangup' : 'stopped';
        break;
      }
      if (run.results.length >= maxVerbs) {
        run.ended = 'verb_limit';
        ctx.logger.warn('call script stopped: too many verbs', { callId: ctx.callId, maxVerbs });
        break;
      }
      const spec = queue[index]!;
      const startedAt = performance.now();
      let result: VerbResult;
      try {
        await options.beforeVerb?.(spec);
        result = await createVerb(spec).exec(verbCtx, signal);
      } catch (err) {
        ctx.logger.error('a verb crashed', { callId: ctx.callId, verb: spec.verb, err });
        result = { outcome: 'failed', reason: 'internal_error', detail: describeError(err) };
      }
      if (result.record) verbCtx = { ...ctx, lastRecording: result.record };
      const { next, ...rest } = result;
      const report: VerbReport = {
        verb: spec.verb,
        round,
        index,
        ...rest,
        durationMs: Math.round(performance.now() - startedAt),
      };
      run.results.push(report);
      try {
        options.onVerb?.(report);
      } catch (err) {
        ctx.logger.error('onVerb listener failed', { callId: ctx.callId, err });
      }
      ctx.logger.debug('verb done', {
        callId: ctx.callId,
        verb: spec.verb,
        round,
        index,
        outcome: result.outcome,
        reason: result.reason,
      });
      if (result.end) {
        run.ended = 'ended_by_verb';
        break;
      }
      if (result.outcome === 'hangup' || signal.aborted) {
        run.ended = options.signal?.aborted && !hungUp.signal.aborted ? 'stopped' : 'hangup';
        break;
      }
      if (next) {
        queue = next;
        round += 1;
        index = 0;
      } else {
        index += 1;
      }
    }
  } finally {
    off();
  }
  return run;
}
