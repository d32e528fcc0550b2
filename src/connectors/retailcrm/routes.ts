/**
 * The endpoints retailCRM calls (registered in the telephony module by
 * `npm run connector -- retailcrm register`), outside the API key check: each request proves
 * itself with `clientId` = RETAILCRM_CLIENT_ID (compared in constant time). Parameters are read
 * from the query string, a form body or a JSON body (retailCRM's method is not fixed).
 *
 * - `GET|POST /connectors/retailcrm/make-call` (`makeCallUrl`): `clientId`, `code` (the
 *   manager's extension), `phone`, `userId`, `externalPhone` → a click-to-call from extension
 *   `code` (or the extension of `userId`) to `phone` with every rule of `POST /v1/calls`
 *   (toll-fraud guard included): 200 `{"success": true, "callId"}`; 400 `invalid_request` /
 *   `invalid_number` / `unknown_user`; 403 `invalid_client_id`; the guard's 403/429; 503.
 * - `GET|POST /connectors/retailcrm/user-status` (`changeUserStatusUrl`): `clientId`, `userId`
 *   or `code`, `status` free|busy|dinner|break → the operator's status available|dnd|break:
 *   200 `{"success": true, "extension", "status", "applied"}` (`applied: false` while the engine
 *   has no operator statuses: the change is validated and logged only).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type Request, type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import { EXTENSION_PATTERN } from '../../crm/index.ts';
import { HttpError } from '../../http/errors.ts';
import { validate } from '../../http/validation.ts';
import type { Logger } from '../../logging/logger.ts';
import { canonicalIp } from '../../security/ip.ts';
import type { ExtensionDirectory } from '../extensions.ts';
import type { ConnectorDeps } from '../types.ts';
import { OPERATOR_STATUS, RETAILCRM_USER_STATUSES } from './mapping.ts';

/** Path of the click-to-call endpoint (`makeCallUrl`). */
export const MAKE_CALL_PATH = '/connectors/retailcrm/make-call';
/** Path of the status endpoint (`changeUserStatusUrl`). */
export const USER_STATUS_PATH = '/connectors/retailcrm/user-status';

const scalar = z.union([z.string(), z.number()]).transform((v) => String(v).trim());

/** Parameters of `makeCallUrl`. */
export const makeCallParamsSchema = z.object({
  clientId: z.string().optional(),
  code: scalar
    .pipe(z.string().regex(EXTENSION_PATTERN, 'must be an extension of 2-10 digits'))
    .optional(),
  phone: scalar.pipe(z.string().min(1, 'must not be empty').max(64)),
  userId: scalar.optional(),
  externalPhone: scalar.optional(),
});

/** Parameters of `changeUserStatusUrl`. */
export const userStatusParamsSchema = z.object({
  clientId: z.string().optional(),
  code: scalar
    .pipe(z.string().regex(EXTENSION_PATTERN, 'must be an extension of 2-10 digits'))
    .optional(),
  userId: scalar.optional(),
  status: z.enum(RETAILCRM_USER_STATUSES),
});

/** What the routes need. */
export interface RetailCrmRoutesDeps {
  /** RETAILCRM_CLIENT_ID. */
  clientId: string;
  directory: ExtensionDirectory;
  deps: ConnectorDeps;
  logger: Logger;
}

/** Build the router (mounted at `/`). */
export function createRetailCrmRoutes(options: RetailCrmRoutesDeps): Router {
  const { directory, deps, logger } = options;
  const expected = digest(options.clientId);
  const router = express.Router();
  const parsers = [
    express.urlencoded({ extended: false, limit: '16kb' }),
    express.json({ limit: '16kb' }),
  ];

  /** Query, form and JSON parameters merged (the body wins). */
  const params = (req: Request): Record<string, unknown> => ({
    ...(req.query as Record<string, unknown>),
    ...(typeof req.body === 'object' && req.body !== null
      ? (req.body as Record<string, unknown>)
      : {}),
  });

  const authenticate = (raw: Record<string, unknown>, req: Request): void => {
    const given = typeof raw.clientId === 'string' ? raw.clientId : '';
    if (!timingSafeEqual(digest(given), expected)) {
      logger.warn('retailCRM request with a wrong clientId refused', {
        path: req.path,
        ip: canonicalIp(req.ip) ?? req.ip,
      });
      throw new HttpError(403, 'invalid_client_id', 'clientId does not match RETAILCRM_CLIENT_ID');
    }
  };

  /** The extension: `code`, else the extension of retailCRM user `userId`. */
  const extensionOf = (code: string | undefined, userId: string | undefined): string => {
    if (code) return code;
    const mapped = userId === undefined ? undefined : directory.extensionOf(userId);
    if (mapped) return mapped;
    throw new HttpError(
      400,
      'unknown_user',
      userId === undefined
        ? 'code (the extension) or userId is required'
        : `no extension is known for retailCRM user ${userId} (set it in the module or RETAILCRM_EXTENSIONS)`,
      { field: 'code' },
    );
  };

  const makeCall: RequestHandler = async (req, res) => {
    const raw = params(req);
    authenticate(raw, req);
    const body = validate(makeCallParamsSchema, raw, 'query');
    const operator = extensionOf(body.code, body.userId);
    const { id } = await deps.startClickToCall({
      operator,
      to: body.phone,
      requestedBy: 'retailcrm',
      ip: canonicalIp(req.ip) ?? req.ip,
      ...(body.userId === undefined && body.externalPhone === undefined
        ? {}
        : {
            variables: {
              ...(body.userId === undefined ? {} : { retailcrmUserId: body.userId }),
              ...(body.externalPhone === undefined ? {} : { externalPhone: body.externalPhone }),
            },
          }),
    });
    logger.info('retailCRM click-to-call started', { callId: id, operator });
    res.json({ success: true, callId: id });
  };
  router.get(MAKE_CALL_PATH, makeCall);
  router.post(MAKE_CALL_PATH, ...parsers, makeCall);

  const userStatus: RequestHandler = async (req, res) => {
    const raw = params(req);
    authenticate(raw, req);
    const body = validate(userStatusParamsSchema, raw, 'query');
    const extension = extensionOf(body.code, body.userId);
    const status = OPERATOR_STATUS[body.status];
    let applied = false;
    if (deps.setOperatorStatus) {
      await deps.setOperatorStatus(extension, status);
      applied = true;
    } else {
      logger.info('retailCRM status change received; the engine has no operator statuses to set', {
        extension,
        status,
      });
    }
    res.json({ success: true, extension, status, applied });
  };
  router.get(USER_STATUS_PATH, userStatus);
  router.post(USER_STATUS_PATH, ...parsers, userStatus);

  return router;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
