/**
 * The endpoint an amoCRM widget (or the account's own backend) calls for click-to-call, behind
 * the engine's API key (`Authorization: Bearer <key>`, API_KEYS) or an operator token of the user's
 * own extension (`POST /v1/operators/{extension}/tokens`, for a widget in the operator's browser):
 *
 * `POST /connectors/amocrm/click-to-call` (JSON or form body): `user_id` (the amoCRM user who
 * clicked; `userId` is accepted too) and `phone` → a click-to-call from that user's extension
 * (AMOCRM_USERS) to `phone` with every rule of `POST /v1/calls` (number normalisation,
 * toll-fraud guard with the key's rate limit, live-call cap): the operator's phone rings first,
 * then the customer is dialled. Answers 202 `{"id", "status": "accepted", "operator"}`; 400
 * `invalid_request` / `invalid_number` / `unknown_user`; 401/403 (key or token; 403
 * `extension_not_allowed` for another user's extension); the guard's 403/429; 503.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import { HttpError } from '../../http/errors.ts';
import { validate } from '../../http/validation.ts';
import type { Logger } from '../../logging/logger.ts';
import { apiKeyNameOf } from '../../security/api-keys.ts';
import { canonicalIp } from '../../security/ip.ts';
import { requireOwnExtension } from '../../security/operator-tokens.ts';
import type { ExtensionDirectory } from '../extensions.ts';
import type { ConnectorDeps } from '../types.ts';

/** Path of the click-to-call endpoint. */
export const CLICK_TO_CALL_PATH = '/connectors/amocrm/click-to-call';

const scalar = z.union([z.string(), z.number()]).transform((v) => String(v).trim());

/** Body of the click-to-call endpoint. */
export const amoCrmClickToCallSchema = z
  .object({
    user_id: scalar.pipe(z.string().regex(/^\d{1,20}$/, 'must be an amoCRM user id')).optional(),
    userId: scalar.pipe(z.string().regex(/^\d{1,20}$/, 'must be an amoCRM user id')).optional(),
    phone: scalar.pipe(z.string().min(1, 'must not be empty').max(64)),
  })
  .refine((b) => b.user_id !== undefined || b.userId !== undefined, {
    message: 'user_id is required',
    path: ['user_id'],
  });

/** What the routes need. */
export interface AmoCrmRoutesDeps {
  directory: ExtensionDirectory;
  deps: ConnectorDeps;
  logger: Logger;
}

/** Build the router (mounted at `/`). */
export function createAmoCrmRoutes(options: AmoCrmRoutesDeps): Router {
  const { directory, deps, logger } = options;
  const router = express.Router();
  const refuseAll: express.RequestHandler = (_req, _res, next) =>
    next(new HttpError(503, 'not_configured', 'the engine has no API key check for this endpoint'));

  router.post(
    CLICK_TO_CALL_PATH,
    deps.authenticate ?? refuseAll,
    express.urlencoded({ extended: false, limit: '16kb' }),
    express.json({ limit: '16kb' }),
    async (req, res) => {
      const body = validate(amoCrmClickToCallSchema, req.body ?? {}, 'body');
      const userId = (body.user_id ?? body.userId)!;
      const operator = directory.extensionOf(userId);
      if (operator === undefined)
        throw new HttpError(
          400,
          'unknown_user',
          `no extension is known for amoCRM user ${userId} (set it in AMOCRM_USERS)`,
          { field: 'user_id' },
        );
      // An operator token (a widget in the operator's browser) calls only from its own phone.
      requireOwnExtension(res, operator);
      const { id } = await deps.startClickToCall({
        operator,
        to: body.phone,
        requestedBy: apiKeyNameOf(res) || 'amocrm',
        ip: canonicalIp(req.ip) ?? req.ip,
        variables: { amocrmUserId: userId },
      });
      logger.info('amoCRM click-to-call started', { callId: id, operator, userId });
      res.status(202).location(`/v1/calls/${id}`).json({ id, status: 'accepted', operator });
    },
  );

  return router;
}
