/**
 * Commands on a live call: `POST /v1/calls/{id}/hangup` → 200 CallSnapshot and
 * `POST /v1/calls/{id}/transfer` → 200 CallSnapshot (service number) | 202 CallSnapshot with
 * `transfer` (extension: the target rings). A call the service no longer holds is 409
 * `call_ended` when the store has it ended, else 404 `call_not_found`. Registered by
 * `createCallRoutes` (src/calls/routes.ts).
 */
import type { Router } from 'express';
import { HttpError } from '../http/errors.ts';
import { validate } from '../http/validation.ts';
import { apiKeyNameOf } from '../security/api-keys.ts';
import { CallNotFoundError } from './control.ts';
import { jsonBody } from '../http/request-body.ts';
import { controlErrorToHttp, refuseWhileAriDown } from './route-checks.ts';
import { transferBodySchema } from './route-schemas.ts';
import type { CallRoutesDeps } from './routes.ts';

/** Register the commands on a call (`POST /calls/:id/hangup`, `POST /calls/:id/transfer`). */
export function registerCallCommandRoutes(router: Router, deps: CallRoutesDeps): void {
  const { control, logger } = deps;
  const stored = deps.calls;

  /**
   * The HTTP error for a refused hang-up or transfer. A call the service does not hold may have
   * ended and be only in the store: 409 `call_ended` then, 404 `call_not_found` for an id the
   * store does not know either (or holds unfinished: not a call the engine controls).
   */
  const refusal = async (err: unknown, id: string): Promise<unknown> => {
    if (err instanceof CallNotFoundError && stored) {
      const record = await stored.getCall(id);
      if (record?.state === 'ended')
        return new HttpError(409, 'call_ended', `call ${id} has ended`);
    }
    return controlErrorToHttp(err);
  };
  router.post('/calls/:id/hangup', async (req, res) => {
    refuseWhileAriDown(control);
    try {
      res.json(await control.hangupCall(req.params.id));
    } catch (err) {
      throw await refusal(err, req.params.id);
    }
  });

  router.post('/calls/:id/transfer', async (req, res) => {
    const body = validate(transferBodySchema, jsonBody(req), 'body');
    refuseWhileAriDown(control);
    try {
      const call = await control.transferCall(req.params.id, { kind: body.kind, to: body.to });
      logger.info('call transfer requested', {
        callId: req.params.id,
        keyName: apiKeyNameOf(res),
        kind: body.kind,
        to: body.to,
      });
      // A blind transfer to an extension is under way while its target rings (202); a transfer
      // to a service number is done (200, the call ended).
      res.status(body.kind === 'extension' ? 202 : 200).json(call);
    } catch (err) {
      throw await refusal(err, req.params.id);
    }
  });
}
