/**
 * The outbound flow: an operator dials a customer number from the desk phone and Asterisk runs
 * `Stasis(crm-app,outbound,<number>)`. Top to bottom:
 *
 * 1. {@link OutboundFlow.start}: the call is created with the operator's phone as its caller leg
 *    (the extension read from the channel), `call.started`;
 * 2. the number is checked: not a number → `invalid_number`; the toll-fraud guard
 *    (`OutboundDialGuard`: destination allow-list, denied number types) may refuse it;
 * 3. the operator's phone is rung (ringback) and the customer leg is created through the trunk
 *    chosen by prefix, with the company caller ID (the runtime's `placeCustomerLeg`);
 * 4. the customer's answer is bridged with the operator's phone (the runtime's `connect`);
 * 5. {@link OutboundFlow.legUnanswered}: a customer busy, not answering or unreachable ends the
 *    call with that disposition (`customer_unreachable`); the operator's phone is hung up.
 *
 * Hang-ups, transfers and the end of the call are the runtime's (src/calls/runtime.ts) and the
 * transfer flow's (src/calls/flows/transfer.ts).
 */
import type { AriChannel } from '../../ari/types.ts';
import { type Leg, unansweredDisposition } from '../model.ts';
import { extensionOfChannel } from '../dialstrings.ts';
import type { CallContext, Flow } from '../context.ts';
import type { CallRuntime } from '../runtime.ts';

/** Calls entering Stasis with `outbound,<number>` from an operator's phone. */
export class OutboundFlow implements Flow {
  readonly name = 'outbound';
  readonly stasisRoles = ['outbound'];
  readonly callerChannel = 'operator-phone';

  constructor(private readonly rt: CallRuntime) {}

  /** Outbound: an operator dialled a customer number; dial it through the trunk and bridge. */
  async start(channel: AriChannel, args: string[]): Promise<void> {
    const number = args[1] ?? '';
    const extension = extensionOfChannel(channel);
    const ctx = this.rt.dialplanCall(
      channel,
      'outbound',
      'out',
      extension ?? channel.caller.number,
      number,
    );
    const { call } = ctx;
    call.operatorExtension = extension;
    call.legs.get(channel.id)!.extension = extension;
    ctx.ringTimeoutSec = this.rt.deps.options.outboundRingTimeoutSec;
    ctx.log.info('outbound call', { extension, to: number });
    this.rt.deps.notifier.started(call);
    await this.rt.run(ctx, async () => {
      if (!/^\+?\d{2,20}$/.test(number)) {
        await this.rt.endCall(ctx, {
          disposition: 'failed',
          hangupBy: 'system',
          reason: 'invalid_number',
        });
        return;
      }
      if (await this.refused(ctx)) return;
      if (!(await this.rt.ringCaller(ctx))) return;
      call.phase = 'dialing';
      await this.rt.placeCustomerLeg(ctx);
    });
  }

  /**
   * The toll-fraud guard of operator-dialled numbers (`OutboundDialGuard`,
   * src/calls/context.ts): when it refuses the number, end the call `failed` with its reason
   * (the operator's phone is hung up with cause congestion: the operator hears a fast busy or
   * sees "service unavailable") and say true.
   */
  private async refused(ctx: CallContext): Promise<boolean> {
    const refused = this.rt.deps.outboundGuard?.check({
      number: ctx.call.to,
      extension: ctx.call.operatorExtension,
      callId: ctx.call.id,
    });
    if (!refused) return false;
    await this.rt.endCall(ctx, {
      disposition: 'failed',
      hangupBy: 'system',
      reason: refused.reason,
    });
    return true;
  }

  /** The customer leg failed (busy, no answer, unreachable): hang the operator up with that. */
  async legUnanswered(ctx: CallContext, leg: Leg): Promise<void> {
    await this.rt.endCall(ctx, {
      disposition: unansweredDisposition([leg.outcome ?? 'failed']),
      hangupBy: 'system',
      reason: 'customer_unreachable',
    });
  }

  /** An adopted call still routing (the customer was not dialled yet): dial the customer. */
  async resume(ctx: CallContext): Promise<void> {
    const { call } = ctx;
    await this.rt.run(ctx, async () => {
      if (call.phase !== 'routing') return;
      if (await this.refused(ctx)) return;
      call.phase = 'dialing';
      await this.rt.placeCustomerLeg(ctx);
    });
  }
}
