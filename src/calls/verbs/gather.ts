/**
 * `gather {numDigits?, finishOnKey?, timeoutSec, prompts, actionUrl?}`: collect DTMF digits
 * (`ChannelDtmfReceived {digit, duration_ms}`; a channel in a two-party native bridge sends
 * none, so gather runs on a channel that is not bridged).
 *
 * - The prompts play in order while digits are already listened for (barge-in): the first digit
 *   stops the prompt playing (`DELETE /playbacks/{id}`), skips the prompts left, and counts.
 * - It ends with reason `numDigits` when `numDigits` digits were pressed (default and most:
 *   {@link MAX_GATHER_DIGITS}), `finishOnKey` when that key was pressed (not part of `digits`),
 *   `timeout` when `timeoutSec` passed after the prompts ended without a digit, or after the last
 *   digit without another (the same `timeoutSec` is the wait for the first digit and between
 *   digits), `hangup` when the channel hung up.
 * - With `actionUrl` the result is POSTed to the CRM (`{callId, channelId, verb: "gather",
 *   digits, reason}`, also when no digit was pressed) and its `{"verbs": [...]}` replaces the
 *   rest of the script; a failing CRM fails the verb with `crm_failed` and the script goes on.
 */
import { askCrm } from './ask-crm.ts';
import { playList } from './playback.ts';
import { MAX_GATHER_DIGITS, type GatherVerb } from './schema.ts';
import type {
  GatherDetails,
  GatherEndReason,
  PlayDetails,
  Verb,
  VerbContext,
  VerbResult,
} from './types.ts';

export class Gather implements Verb {
  readonly name = 'gather' as const;

  constructor(private readonly spec: GatherVerb) {}

  async exec(ctx: VerbContext, signal: AbortSignal): Promise<VerbResult> {
    const { spec } = this;
    const maxDigits = spec.numDigits ?? MAX_GATHER_DIGITS;
    const bargeIn = new AbortController();
    const promptStop = AbortSignal.any([signal, bargeIn.signal]);
    let digits = '';
    let reason: GatherEndReason | undefined;
    let timer: NodeJS.Timeout | undefined;
    let promptsDone = false;
    let resolveEnded: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => (resolveEnded = resolve));

    const end = (why: GatherEndReason): void => {
      if (reason) return;
      reason = why;
      clearTimeout(timer);
      bargeIn.abort();
      resolveEnded();
    };
    const armTimer = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => end('timeout'), spec.timeoutSec * 1000);
    };
    const off = ctx.channel.onEvent((event) => {
      if (event.type !== 'ChannelDtmfReceived' || reason) return;
      bargeIn.abort();
      if (spec.finishOnKey !== undefined && event.digit === spec.finishOnKey) {
        end('finishOnKey');
        return;
      }
      digits += event.digit;
      if (digits.length >= maxDigits) end('numDigits');
      else if (promptsDone) armTimer();
    });
    const onAbort = (): void => end('hangup');
    if (signal.aborted) end('hangup');
    else signal.addEventListener('abort', onAbort, { once: true });

    const prompts: PlayDetails = { playedItems: 0, playedMs: 0, failedMedia: [] };
    try {
      for (const prompt of spec.prompts) {
        if (promptStop.aborted) break;
        const played = await playList(ctx.channel, prompt.media, prompt.loop ?? 1, promptStop);
        prompts.playedItems += played.playedItems;
        prompts.playedMs += played.playedMs;
        prompts.failedMedia.push(...played.failedMedia);
        if (played.stopped) break;
      }
      promptsDone = true;
      if (!reason) armTimer();
      await ended;
    } finally {
      off();
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
    const why = reason ?? 'hangup';
    const gather: GatherDetails = { digits, reason: why };
    const details = { gather, ...(spec.prompts.length > 0 ? { play: prompts } : {}) };
    if (why === 'hangup' || signal.aborted) return { outcome: 'hangup', ...details };
    if (spec.actionUrl === undefined) return { outcome: 'completed', ...details };
    const asked = await askCrm(
      ctx,
      spec.actionUrl,
      { verb: 'gather', digits, reason: why },
      signal,
    );
    return { ...asked, ...details };
  }
}
