/** `hangup`: `DELETE /channels/{id}`; the script ends. A channel already gone is not a failure. */
import { describeError } from '../../http/outbound.ts';
import type { Verb, VerbContext, VerbResult } from './types.ts';

export class Hangup implements Verb {
  readonly name = 'hangup' as const;

  async exec(ctx: VerbContext, signal: AbortSignal): Promise<VerbResult> {
    if (signal.aborted) return { outcome: 'hangup', end: true };
    try {
      await ctx.channel.hangup();
      return { outcome: 'completed', end: true };
    } catch (err) {
      if (signal.aborted) return { outcome: 'hangup', end: true };
      return { outcome: 'failed', reason: 'ari_error', detail: describeError(err), end: true };
    }
  }
}
