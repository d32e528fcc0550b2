/**
 * Transfers of a bridged call (`POST /v1/calls/{id}/transfer`, seed 003 transfer), whatever the
 * flow that bridged it. Top to bottom:
 *
 * - {@link TransferFlow.transferCall}: the checks (ended, not bridged, a transfer in progress,
 *   transfer to the current operator), then one of:
 * - {@link TransferFlow.toService}: the customer leaves the bridge and continues in the dialplan
 *   at `serviceContext,<to>,1`; the operator leg is hung up; `call.transferred`, `call.ended`;
 * - {@link TransferFlow.toExtension}: blind transfer; the target's operator leg is created with
 *   the customer's caller ID and dialled (`call.ringing`) while the customer stays bridged with
 *   the first operator; then either
 * - {@link TransferFlow.targetAnswered}: the target joins the bridge, then the first operator is
 *   hung up (`call.transferred`, `call.answered`), or
 * - {@link TransferFlow.targetFailed}: busy, rang out or unreachable, the call goes on with the
 *   first operator (`call.transfer_failed`).
 *
 * The runtime (src/calls/runtime.ts) recognises the target's leg (`Call.transfer.channelId`),
 * dials it for the default operator ring time and hands its answer or failure here.
 */
import type { TransferDialStatus } from '../../events/types.ts';
import { type CallSnapshot, type Leg, snapshotCall } from '../model.ts';
import { CallStateError, type TransferRequest } from '../control.ts';
import type { CallContext, TransferTargetHandlers } from '../context.ts';
import { type CallRuntime, isGone } from '../runtime.ts';

/** Transfer to a service number, or blind to an extension. */
export class TransferFlow implements TransferTargetHandlers {
  constructor(private readonly rt: CallRuntime) {
    rt.setTransferHandlers(this);
  }

  /**
   * Transfer a bridged call (F7, seed 003 transfer). `service`: the customer leaves the bridge
   * and continues in the dialplan at `serviceContext,<to>,1`; the operator leg is hung up and the
   * call ends (`endReason: transferred`). `extension`: operator `to` is rung (`call.ringing`)
   * while the customer goes on talking with the first operator; when `to` answers, it joins the
   * customer's bridge and the first operator is hung up (`call.transferred`, `call.answered`;
   * same call id). When `to` is busy, does not answer within `defaultRingTimeoutSec` or cannot be
   * reached, the call goes on with the first operator (`call.transfer_failed`). Resolves once the
   * target's leg exists (the answer's `transfer` says it rings).
   *
   * @throws CallNotFoundError unknown call, or ended and only in the store
   * @throws CallStateError `call_ended`, `call_not_bridged`, `transfer_in_progress` (a blind
   *   transfer still rings its target, be it the same extension or another), `transfer_to_self`
   *   (`to` is the extension of the call's current operator: nothing would change),
   *   `transfer_failed` (the target's leg could not even be created, e.g. an offline extension:
   *   the call goes on with the first operator)
   */
  async transferCall(callId: string, request: TransferRequest): Promise<CallSnapshot> {
    const ctx = this.rt.liveContext(callId);
    let problem: CallStateError | undefined;
    await this.rt.run(ctx, async () => {
      if (ctx.call.phase === 'ended') {
        problem = new CallStateError('call_ended', `call ${callId} has ended`);
      } else if (ctx.transferring || ctx.call.transfer) {
        problem = new CallStateError(
          'transfer_in_progress',
          `call ${callId} is being transferred to ${ctx.call.transfer?.to ?? 'another operator'}`,
        );
      } else if (
        ctx.call.phase !== 'bridged' ||
        !this.rt.customerLeg(ctx) ||
        !this.rt.operatorLeg(ctx)
      ) {
        problem = new CallStateError('call_not_bridged', `call ${callId} is not bridged yet`);
      } else if (request.kind === 'service') {
        await this.toService(ctx, request.to);
      } else if (this.rt.operatorLeg(ctx)!.extension === request.to) {
        problem = new CallStateError(
          'transfer_to_self',
          `extension ${request.to} is already the operator of call ${callId}`,
        );
      } else {
        problem = await this.toExtension(ctx, request.to);
      }
    });
    if (problem) throw problem;
    return snapshotCall(ctx.call, this.rt.now());
  }

  /** Transfer to a service number: the customer continues in the dialplan; the call ends. */
  private async toService(ctx: CallContext, to: string): Promise<void> {
    const { call } = ctx;
    const customer = this.rt.customerLeg(ctx)!;
    const context = this.rt.deps.options.serviceContext ?? 'service';
    ctx.released.add(customer.channelId);
    await this.rt.deps.gateway.bridges.removeChannel(call.bridgeId!, [customer.channelId]);
    await this.rt.deps.gateway.channels.continueInDialplan(customer.channelId, {
      context,
      extension: to,
      priority: 1,
    });
    ctx.log.info('call transferred to a service number', {
      context,
      to,
      customerChannelId: customer.channelId,
    });
    this.rt.deps.notifier.transferred(call, { to, kind: 'service' });
    await this.rt.endCall(ctx, {
      disposition: 'answered',
      hangupBy: 'system',
      reason: 'transferred',
    });
  }

  /**
   * Blind transfer to an extension, first step: ring the target while the customer goes on
   * talking with the first operator in the bridge (the call stays `bridged`). The target's
   * answer finishes it ({@link targetAnswered}), its failure calls it off
   * ({@link targetFailed}). Returns `transfer_failed` when the target's leg could not even be
   * created (Asterisk refused the channel: an offline extension).
   */
  private async toExtension(
    ctx: CallContext,
    extension: string,
  ): Promise<CallStateError | undefined> {
    const { call } = ctx;
    const operator = this.rt.operatorLeg(ctx)!;
    ctx.log.info('blind transfer: ringing the target', { from: operator.extension, to: extension });
    const leg = await this.rt.placeOperatorLeg(ctx, extension, (target) => {
      call.transfer = {
        kind: 'extension',
        to: extension,
        channelId: target.channelId,
        fromChannelId: operator.channelId,
        startedAt: this.rt.now(),
      };
    });
    if (!leg.created && leg.ended)
      return new CallStateError(
        'transfer_failed',
        `extension ${extension} cannot be reached (${leg.outcome ?? 'failed'}); the call goes on with ${operator.extension ? `operator ${operator.extension}` : 'the first operator'}`,
      );
    return undefined;
  }

  /**
   * The transfer target answered: put it in the customer's bridge, then hang the first operator
   * up (in that order, so the customer is never left alone); the target is from now on the
   * operator of the call (`answeredBy`). `call.transferred`, then `call.answered` for it.
   */
  async targetAnswered(ctx: CallContext, leg: Leg): Promise<void> {
    const { call } = ctx;
    const transfer = call.transfer!;
    const customer = this.rt.customerLeg(ctx);
    if (!customer || call.bridgeId === undefined) {
      // Nobody left to transfer (the customer's hang-up is queued behind this step).
      await this.rt.hangupLeg(ctx, leg);
      return;
    }
    try {
      await this.rt.deps.gateway.bridges.addChannel(call.bridgeId, [leg.channelId]);
    } catch (err) {
      // The target hung up as it answered: its ChannelDestroyed calls the transfer off.
      if (isGone(err)) return;
      throw err;
    }
    call.transfer = undefined;
    leg.outcome = 'answered';
    const previous = call.legs.get(transfer.fromChannelId);
    call.answeredBy = leg.extension;
    if (this.rt.flowOf(ctx).callerChannel !== 'customer') {
      // The first operator's channel (click-to-call operator leg, outbound caller) goes away:
      // the customer is what stays from now on.
      ctx.anchorChannelId = customer.channelId;
    }
    ctx.log.info('blind transfer answered; the target replaces the first operator', {
      from: previous?.extension,
      to: transfer.to,
      legChannelId: leg.channelId,
    });
    this.rt.deps.notifier.transferred(call, { to: transfer.to, kind: 'extension' });
    this.rt.deps.notifier.answered(call, transfer.to);
    if (previous) await this.rt.hangupLeg(ctx, previous);
  }

  /**
   * The transfer target did not answer (busy, rang out, unreachable, refused): call the
   * transfer off; the customer goes on talking with the first operator
   * (`call.transfer_failed` with the target leg's outcome).
   */
  async targetFailed(ctx: CallContext, leg: Leg): Promise<void> {
    const { call } = ctx;
    const transfer = call.transfer!;
    call.transfer = undefined;
    const dialStatus: TransferDialStatus =
      leg.outcome === 'busy' || leg.outcome === 'no_answer' || leg.outcome === 'unavailable'
        ? leg.outcome
        : 'failed';
    ctx.log.info('blind transfer failed; the call goes on with the first operator', {
      to: transfer.to,
      dialStatus,
      cause: leg.cause,
    });
    this.rt.deps.notifier.transferFailed(call, {
      to: transfer.to,
      kind: 'extension',
      dialStatus,
      ...(leg.cause === undefined ? {} : { cause: leg.cause }),
      ...(leg.causeText === undefined ? {} : { causeText: leg.causeText }),
    });
  }
}
