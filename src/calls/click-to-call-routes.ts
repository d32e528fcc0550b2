/**
 * Placing a call: `POST /v1/calls` (click-to-call) → 202 {@link AcceptedCall} + `Location`,
 * `Idempotency-Key` aware. {@link startGuardedClickToCall} holds the rules every click-to-call
 * follows (ARI and the store up, the toll-fraud guard, the wait for the store), also used by the
 * CRM connectors' click-to-call endpoints. Registered by `createCallRoutes` (src/calls/routes.ts).
 */
import type { Router } from 'express';
import { beginIdempotentCreation } from '../http/idempotency.ts';
import { validate } from '../http/validation.ts';
import type { NumberForms } from '../numbers/phone.ts';
import { apiKeyNameOf } from '../security/api-keys.ts';
import { requireOwnExtension } from '../security/operator-tokens.ts';
import { canonicalIp } from '../security/ip.ts';
import type { ClickToCallRequest } from './control.ts';
import type { CallSnapshot } from './model.ts';
import { jsonBody } from '../http/request-body.ts';
import {
  normaliseNumberOrThrow,
  refuseWhileAriDown,
  refuseWhileStoreFails,
} from './route-checks.ts';
import { clickToCallBodySchema, idempotencyKeySchema } from './route-schemas.ts';
import type { CallRoutesDeps } from './routes.ts';

/**
 * Default of {@link CallRoutesDeps.storeWaitMs} (API_STORE_WAIT_MS), ms. A healthy store commits
 * within a few ms; a failing one is refused up front (503 `store_unavailable`).
 */
export const DEFAULT_STORE_WAIT_MS = 2000;

/** The `202` body of `POST /v1/calls`. */
export type AcceptedCall = CallSnapshot & { status: 'accepted' };

/** A remembered `POST /v1/calls` answer. */
export interface StoredCallCreation {
  status: number;
  body: AcceptedCall;
}

function stringifyVariables(
  variables: Record<string, string | number | boolean> | undefined,
): Record<string, string> | undefined {
  if (!variables) return undefined;
  return Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, String(v)]));
}

/**
 * Start a click-to-call with the rules of `POST /v1/calls` after its body was validated: ARI
 * and the store must be up, the toll-fraud guard (destination policy, per-key rate, live-call
 * cap) must admit it; then the call starts and, when `storeWaitMs` > 0, the answer waits (at
 * most that long) until the store holds the call, so an engine crash after it cannot lose it.
 * Also used by the CRM connectors' click-to-call endpoints (src/connectors/).
 *
 * @throws HttpError 503 (`ari_unavailable`, store failing), 403/429 from the guard
 */
export async function startGuardedClickToCall(
  deps: Pick<CallRoutesDeps, 'control' | 'guard' | 'logger' | 'storeWaitMs'>,
  request: ClickToCallRequest,
  number: NumberForms,
  ip: string | undefined,
): Promise<AcceptedCall> {
  const { control, guard, logger } = deps;
  const storeWaitMs = deps.storeWaitMs ?? DEFAULT_STORE_WAIT_MS;
  refuseWhileAriDown(control);
  refuseWhileStoreFails(control);
  await guard.admit({
    keyName: request.requestedBy ?? 'unknown',
    number,
    operator: request.operator,
    ip,
  });
  const { id, ...rest } = control.startClickToCall(request);
  const answer: AcceptedCall = { id, status: 'accepted', ...rest };
  // 202 once the store holds the call: an engine crash after the answer cannot lose it. The
  // operator leg is being originated meanwhile (the commit is one event-loop turn plus a write).
  if (storeWaitMs > 0 && !(await control.whenStored(answer.id, storeWaitMs)))
    logger.warn('click-to-call accepted before the store committed it (store slow)', {
      callId: answer.id,
      waitedMs: storeWaitMs,
    });
  return answer;
}

/** Register `POST /calls` on the router of `createCallRoutes`. */
export function registerClickToCallRoute(router: Router, deps: CallRoutesDeps): void {
  const { control, guard, idempotency, region, defaults, logger } = deps;
  const storeWaitMs = deps.storeWaitMs ?? DEFAULT_STORE_WAIT_MS;

  router.post('/calls', async (req, res) => {
    const body = validate(clickToCallBodySchema, jsonBody(req), 'body');
    // An operator token places calls from its own extension only.
    requireOwnExtension(res, body.operator);
    const headerKey = req.get('idempotency-key');
    const idempotencyKey =
      headerKey === undefined
        ? undefined
        : validate(idempotencyKeySchema, headerKey, 'Idempotency-Key');
    const forms = normaliseNumberOrThrow(body.to, region, 'to');
    const keyName = apiKeyNameOf(res);
    const request: ClickToCallRequest = {
      operator: body.operator,
      to: forms.e164,
      variables: stringifyVariables(body.variables),
      tries: body.tries ?? defaults.tries,
      triesPeriodSec: body.triesPeriodSec ?? defaults.triesPeriodSec,
      ...(body.record === undefined ? {} : { record: body.record }),
      requestedBy: keyName,
    };
    const content = { ...request, requestedBy: undefined };
    if (
      beginIdempotentCreation(
        idempotency,
        keyName,
        idempotencyKey,
        content,
        res,
        (id) => `/v1/calls/${id}`,
      )
    )
      return;
    let answer: AcceptedCall;
    try {
      answer = await startGuardedClickToCall(
        { control, guard, logger, storeWaitMs },
        request,
        forms,
        canonicalIp(req.ip) ?? req.ip,
      );
    } catch (err) {
      if (idempotencyKey) idempotency.abandon(keyName, idempotencyKey);
      throw err;
    }
    if (idempotencyKey)
      idempotency.complete(keyName, idempotencyKey, { status: 202, body: answer });
    res.status(202).location(`/v1/calls/${answer.id}`).json(answer);
  });
}
