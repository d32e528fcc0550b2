/**
 * The customer channel of a notification call, placed (a part of the notification-call flow,
 * src/calls/flows/notification.ts): once the store holds the call, `POST /channels` (originate)
 * through the job's trunk endpoint with the job's caller ID, its variables (and the
 * answering-machine settings), a client-generated id and Stasis args
 * `notify,<jobId>,<callId>`. An originate refused leaves the attempt with no channel: the
 * call ends through the runtime (`legNotCreated`, then the flow's `legUnanswered`).
 */
import { AriConnectionError, AriServerError } from '../../ari/errors.ts';
import type { CallContext } from '../context.ts';
import type { CallRuntime } from '../runtime.ts';
import type { Attempt } from './notification-attempt.ts';
import { amdVariables } from './notification-amd.ts';

/** The Stasis role of notification-call channels: `Stasis(crm-app,notify,<jobId>,<callId>)`. */
export const NOTIFICATION_STASIS_ROLE = 'notify';

/**
 * Longest wait, ms, for the store to hold a new notification call before its channel is
 * originated; past it (the store is failing) the call is placed all the same.
 */
export const NOTIFICATION_STORE_WAIT_MS = 5000;

/**
 * `POST /channels` (originate): the customer channel of attempt `attemptNo` through the job's
 * trunk, ringing `ringTimeoutSec` seconds, once the store holds the call ({@link stored}).
 * Never rejects: a failed originate is recorded on the attempt (`originateError`) and the call
 * ends.
 */
export async function originateCustomer(
  rt: CallRuntime,
  attempt: Attempt,
  attemptNo: number,
  ringTimeoutSec: number,
): Promise<void> {
  const { ctx, leg, job } = attempt;
  if (ctx.call.phase !== 'dialing') return; // canceled before the originate went out
  if (!(await stored(rt, ctx)))
    ctx.log.warn('notification call placed before the store holds it (store slow)', {
      waitedMs: NOTIFICATION_STORE_WAIT_MS,
    });
  if (ctx.call.phase !== 'dialing') return;
  const variables: Record<string, string> = {
    ...job.variables,
    AUTOCALL_ID: String(job.id),
    AUTOCALL_ATTEMPT: String(attemptNo),
    ...amdVariables(job.script.amd),
  };
  try {
    await rt.deps.gateway.channels.originate({
      endpoint: job.endpoint,
      channelId: leg.channelId,
      appArgs: [NOTIFICATION_STASIS_ROLE, String(job.id), ctx.call.id],
      callerId: ctx.call.from,
      timeoutSec: ringTimeoutSec,
      variables,
    });
    leg.created = true;
    ctx.log.info('notification channel originated', { legChannelId: leg.channelId });
    // Canceled while the originate was on its way: the channel rings, hang it up.
    if (callEnded(ctx)) await rt.hangupLeg(ctx, leg);
  } catch (err) {
    attempt.originateError = err instanceof Error ? err.message : String(err);
    attempt.originateTransient = err instanceof AriConnectionError || err instanceof AriServerError;
    rt.legNotCreated(ctx, leg, err);
    await rt.afterUnansweredLeg(ctx, leg);
    rt.maybeForget(ctx);
  }
}

/**
 * Resolves true once the store holds the call with its customer leg (the call journal's
 * `whenWritten`: committed, or in the journal log), false after
 * {@link NOTIFICATION_STORE_WAIT_MS}. Waited for before the originate: an engine killed
 * once the channel exists leaves a call the next engine adopts (it takes the attempt over, or
 * hangs up), never a channel no engine knows of, left up with the customer on it while the job's
 * lease expires and the job is dialled again.
 */
function stored(rt: CallRuntime, ctx: CallContext): Promise<boolean> {
  const whenWritten = rt.deps.journal?.whenWritten?.bind(rt.deps.journal);
  if (!whenWritten) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), NOTIFICATION_STORE_WAIT_MS);
    whenWritten(ctx.call.id, () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** The call ended (read afresh: an `await` may have changed it). */
function callEnded(ctx: CallContext): boolean {
  return ctx.call.phase === 'ended';
}
