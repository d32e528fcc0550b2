/**
 * What the scenario files on the real Asterisk share: the suite around them (skipped without the
 * kit, the shared bed started before and reset after each test, the engine log printed when one
 * fails), the CRM route answer, an inbound call answered by operator 101, and the hang-up through
 * the API.
 */
import { expect } from 'chai';
import { sharedBed, stopSharedBed, type AcceptanceBed } from './bed.ts';
import { kitAvailable } from './kit.ts';
import { Sipp } from './sipp.ts';

/** The DID the kit's pstn-in callers dial. */
export const DID = '74951234567';
/** The caller number the kit's pstn-in callers send. */
export const CALLER = '79161234567';

/**
 * A mocha `describe` of scenarios on the real Asterisk (the kit): declared only when the kit is
 * available (`kitAvailable()`), each test allowed 90 s (`fn` may call `this.timeout()` for more),
 * the shared bed stopped by a root `after` hook. `fn` is the suite body, called with the suite as
 * `this`; it gets the bed through {@link useAcceptanceBed}.
 */
export function describeOnAsterisk(title: string, fn: (this: Mocha.Suite) => void): void {
  if (!kitAvailable()) return;
  after(stopSharedBed);
  describe(title, function () {
    this.timeout(90_000);
    fn.call(this);
  });
}

/**
 * Registers the hooks of a suite on the shared bed: `before` starts it (or awaits the one already
 * started, up to 180 s) and hands it to `set`; `afterEach` prints the engine log when the test
 * failed and resets the bed (the engine restarted if a test killed it, Asterisk's channels and bridges
 * hung up, SIPp phones stopped). The CRM's route answer and received webhooks are kept: each test
 * sets its own answer and filters webhooks by its call id.
 */
export function useAcceptanceBed(set: (bed: AcceptanceBed) => void): void {
  let bed: AcceptanceBed | undefined;
  before(async function () {
    this.timeout(180_000);
    bed = await sharedBed();
    set(bed);
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && bed) console.log(bed.engineLog());
    await bed?.reset();
  });
}

/**
 * Answer every CRM route lookup with a dial of `extensions` (`strategy` ringall by default,
 * `ringTimeoutSec` 20 by default, `record` only when given).
 */
export function routeTo(
  bed: AcceptanceBed,
  extensions: string[],
  opts: { strategy?: 'ringall' | 'sequential'; ringTimeoutSec?: number; record?: boolean } = {},
): void {
  const { strategy = 'ringall', ringTimeoutSec = 20, record } = opts;
  bed.crm.onRoute(() => ({
    body: {
      action: 'dial',
      strategy,
      extensions,
      ringTimeoutSec,
      ...(record === undefined ? {} : { record }),
    },
  }));
}

/**
 * An inbound caller: a SIPp `caller` running `scenario` (uac.xml, uac_cancel.xml,
 * uac_wait_bye.xml) from the pstn-in port, dialling {@link DID} as {@link CALLER}, with `pauseMs`
 * its talk or ring time (see `Sipp.caller`). Resolves with the phone and the call id of the next
 * `call.started` webhook.
 */
export async function callIn(
  bed: AcceptanceBed,
  scenario: string,
  pauseMs?: number,
): Promise<{ caller: Sipp; callId: string }> {
  const caller = Sipp.caller('caller', scenario, bed.ports, {
    did: DID,
    caller: CALLER,
    ...(pauseMs === undefined ? {} : { pauseMs }),
  });
  const { callId } = (await bed.nextCallStarted()).body;
  return { caller, callId };
}

/**
 * An inbound call routed to 101, who answers after 0.5 s: resolves once `call.answered` came.
 * By default the caller stays until a BYE (`uac_wait_bye.xml`); with `callerHangsUpAfterMs` it
 * hangs up that long after the answer (`uac.xml`). `record`: the route answer asks for it.
 */
export async function callAnsweredBy101(
  bed: AcceptanceBed,
  options: { callerHangsUpAfterMs?: number; record?: boolean } = {},
): Promise<{ callId: string; operator: Sipp; caller: Sipp }> {
  const { ports } = bed;
  routeTo(bed, ['101'], options.record === undefined ? {} : { record: options.record });
  const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
    pauseMs: 500,
  });
  const { caller, callId } =
    options.callerHangsUpAfterMs === undefined
      ? await callIn(bed, 'uac_wait_bye.xml')
      : await callIn(bed, 'uac.xml', options.callerHangsUpAfterMs);
  await bed.waitFor(callId, 'call.answered');
  return { callId, operator, caller };
}

/**
 * POST /v1/calls/{callId}/hangup (expects 200) and resolve with the data of the call's
 * `call.ended` webhook.
 */
export async function hangUpByApi(
  bed: AcceptanceBed,
  callId: string,
): Promise<Record<string, unknown>> {
  const hangup = await bed.api(`/v1/calls/${callId}/hangup`, { method: 'POST' });
  expect(hangup.status, hangup.text).to.equal(200);
  return bed.ended(callId);
}
