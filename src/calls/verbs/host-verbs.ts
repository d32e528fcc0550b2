/**
 * `dial` and `transfer`: the call's flow does them ({@link VerbHost}); without a host they fail
 * with reason `not_supported` and the script goes on.
 */
import { describeError } from '../../http/outbound.ts';
import type { DialVerb, TransferVerb } from './schema.ts';
import type { HostVerbResult, Verb, VerbContext, VerbResult } from './types.ts';

/**
 * The verb result of a host's answer. A dial that completed while the channel hung up is a
 * `hangup`; a transfer is not (the channel leaving Stasis is what a transfer does).
 */
function fromHost(result: HostVerbResult, signal: AbortSignal, hangupWins: boolean): VerbResult {
  return {
    outcome:
      hangupWins && signal.aborted && result.outcome !== 'failed' ? 'hangup' : result.outcome,
    ...(result.reason !== undefined ? { reason: result.reason } : {}),
    ...(result.detail !== undefined ? { detail: result.detail } : {}),
    host: result,
    ...(result.end ? { end: true } : {}),
  };
}

async function delegate(
  ctx: VerbContext,
  signal: AbortSignal,
  run: () => Promise<HostVerbResult>,
  hangupWins: boolean,
): Promise<VerbResult> {
  if (!ctx.host) {
    return {
      outcome: 'failed',
      reason: 'not_supported',
      detail: 'this call flow does not run dial or transfer verbs',
    };
  }
  if (signal.aborted) return { outcome: 'hangup' };
  try {
    return fromHost(await run(), signal, hangupWins);
  } catch (err) {
    ctx.logger.error('the call flow failed a verb', { callId: ctx.callId, err });
    return { outcome: 'failed', reason: 'host_error', detail: describeError(err) };
  }
}

/** `dial {extensions, strategy, ringTimeoutSec, record?}` through {@link VerbHost.dial}. */
export class Dial implements Verb {
  readonly name = 'dial' as const;
  constructor(private readonly spec: DialVerb) {}
  exec(ctx: VerbContext, signal: AbortSignal): Promise<VerbResult> {
    return delegate(ctx, signal, () => ctx.host!.dial(this.spec, ctx.channel.id, signal), true);
  }
}

/** `transfer {to}` through {@link VerbHost.transfer}; the script ends once it succeeded. */
export class Transfer implements Verb {
  readonly name = 'transfer' as const;
  constructor(private readonly spec: TransferVerb) {}
  async exec(ctx: VerbContext, signal: AbortSignal): Promise<VerbResult> {
    const result = await delegate(
      ctx,
      signal,
      () => ctx.host!.transfer(this.spec, ctx.channel.id, signal),
      false,
    );
    return result.outcome === 'completed' ? { ...result, end: true } : result;
  }
}
