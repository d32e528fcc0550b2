/** The CRM request shared by `gather.actionUrl` and `redirect`. */
import type { VerbContext, VerbCrmRequest, VerbResult } from './types.ts';

/**
 * POST to the CRM through `ctx.crm` and turn the answer into a verb result: `next` holds the
 * CRM's verbs on success; otherwise outcome `failed`, reason `crm_failed` (the script goes on
 * with its own rest), or `hangup` when the channel hung up meanwhile. `extra` is merged into
 * the request (digits and reason of a gather).
 */
export async function askCrm(
  ctx: VerbContext,
  url: string,
  extra: Pick<VerbCrmRequest, 'verb' | 'digits' | 'reason'>,
  signal: AbortSignal,
): Promise<VerbResult> {
  const request: VerbCrmRequest = {
    callId: ctx.callId,
    channelId: ctx.channel.id,
    ...extra,
    ...(ctx.call ? { call: ctx.call } : {}),
    ...(ctx.lastRecording ? { recording: ctx.lastRecording } : {}),
  };
  if (!ctx.crm) {
    ctx.logger.warn('a script asked the CRM for verbs but no CRM client is configured', {
      callId: ctx.callId,
      verb: extra.verb,
    });
    return {
      outcome: 'failed',
      reason: 'crm_failed',
      detail: 'no CRM client configured',
      crm: { url, result: 'not_configured', durationMs: 0 },
    };
  }
  const answer = await ctx.crm.fetchVerbs(url, request, signal);
  if (signal.aborted)
    return { outcome: 'hangup', crm: { url, result: 'hangup', durationMs: answer.durationMs } };
  if (!answer.ok) {
    return {
      outcome: 'failed',
      reason: 'crm_failed',
      detail: `${answer.reason}: ${answer.detail}`,
      crm: { url, result: answer.reason, durationMs: answer.durationMs },
    };
  }
  return {
    outcome: 'completed',
    next: answer.verbs,
    crm: { url, result: 'ok', verbs: answer.verbs.length, durationMs: answer.durationMs },
  };
}
