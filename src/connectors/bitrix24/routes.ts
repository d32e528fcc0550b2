/**
 * The endpoints Bitrix24 calls, outside the API key check:
 *
 * - `POST /connectors/bitrix24/events`: Bitrix24's outgoing events, form-encoded (`event`,
 *   `data[...]`, `auth[application_token]`, …); each must carry `auth[application_token]` =
 *   BITRIX24_APPLICATION_TOKEN (or the one the install handler received), compared in constant
 *   time, else 403 `invalid_application_token`. `ONEXTERNALCALLSTART` (a user clicked a number
 *   in the CRM; Bitrix24 already registered the call, `data[CALL_ID]`) → a click-to-call from
 *   the extension of `data[USER_ID]` (`UF_PHONE_INNER` or BITRIX24_EXTENSIONS) to
 *   `data[PHONE_NUMBER]` with every rule of `POST /v1/calls` (toll-fraud guard included), which
 *   reuses that CALL_ID: 200 `{"result": true, "callId"}`; 400 `invalid_request` /
 *   `invalid_number` / `unknown_user`; the guard's 403/429; 503. Other events: 200
 *   `{"result": false}` (ignored).
 * - `POST /connectors/bitrix24/install` (the local application's install handler, local
 *   application only): `AUTH_ID` / `REFRESH_ID` (the install page) or `auth[access_token]` /
 *   `auth[refresh_token]` / `auth[application_token]` (the ONAPPINSTALL event); the access token
 *   is checked with the portal (`app.info`) before the tokens are stored: 200 with a page that
 *   finishes the installation; 403 `invalid_token` when the portal refuses the token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import { HttpError } from '../../http/errors.ts';
import { validate } from '../../http/validation.ts';
import type { Logger } from '../../logging/logger.ts';
import { canonicalIp } from '../../security/ip.ts';
import type { ExtensionDirectory } from '../extensions.ts';
import type { ConnectorDeps } from '../types.ts';
import type { Bitrix24Tokens } from './auth.ts';

/** Path of the events endpoint (the ONEXTERNALCALLSTART handler). */
export const EVENTS_PATH = '/connectors/bitrix24/events';
/** Path of the install handler of the local application. */
export const INSTALL_PATH = '/connectors/bitrix24/install';

const scalar = z.union([z.string(), z.number()]).transform((v) => String(v).trim());

/** The fields of `ONEXTERNALCALLSTART` the engine reads. */
export const externalCallStartSchema = z.object({
  event: z.literal('ONEXTERNALCALLSTART'),
  data: z.object({
    PHONE_NUMBER: scalar.pipe(z.string().min(1, 'must not be empty').max(64)),
    PHONE_NUMBER_INTERNATIONAL: scalar.optional(),
    USER_ID: scalar.pipe(z.string().regex(/^\d+$/, 'a Bitrix24 user id')),
    CALL_ID: scalar.pipe(z.string().min(1, 'must not be empty').max(200)),
    CRM_ENTITY_TYPE: scalar.optional(),
    CRM_ENTITY_ID: scalar.optional(),
    LINE_NUMBER: scalar.optional(),
  }),
});

/** What the routes need. */
export interface Bitrix24RoutesDeps {
  /** The expected `auth[application_token]`; undefined: every event is refused. */
  applicationToken: () => string | undefined;
  directory: ExtensionDirectory;
  deps: ConnectorDeps;
  logger: Logger;
  /** Verify and keep installed tokens (local application); absent with a webhook URL. */
  install: ((tokens: Bitrix24Tokens) => Promise<void>) | undefined;
}

/** Build the router (mounted at `/`). */
export function createBitrix24Routes(options: Bitrix24RoutesDeps): Router {
  const { directory, deps, logger } = options;
  const router = express.Router();
  // Bitrix24 sends PHP-style nested fields (data[PHONE_NUMBER]): the extended parser.
  const form = express.urlencoded({ extended: true, limit: '32kb' });

  const body = (req: Request): Record<string, unknown> =>
    typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {};

  router.post(EVENTS_PATH, form, async (req, res) => {
    const raw = body(req);
    const auth = raw.auth as Record<string, unknown> | undefined;
    const given = typeof auth?.application_token === 'string' ? auth.application_token : '';
    const expected = options.applicationToken();
    if (!expected || !timingSafeEqual(digest(given), digest(expected))) {
      logger.warn('Bitrix24 event with a wrong application token refused', {
        event: typeof raw.event === 'string' ? raw.event.slice(0, 64) : undefined,
        ip: canonicalIp(req.ip) ?? req.ip,
      });
      throw new HttpError(
        403,
        'invalid_application_token',
        expected
          ? 'auth[application_token] does not match BITRIX24_APPLICATION_TOKEN'
          : 'BITRIX24_APPLICATION_TOKEN is not set and the application was not installed',
      );
    }
    if (raw.event !== 'ONEXTERNALCALLSTART') {
      logger.debug('Bitrix24 event ignored', {
        event: typeof raw.event === 'string' ? raw.event.slice(0, 64) : undefined,
      });
      res.json({ result: false });
      return;
    }
    const { data } = validate(externalCallStartSchema, raw, 'body');
    const operator = directory.extensionOf(data.USER_ID);
    if (!operator)
      throw new HttpError(
        400,
        'unknown_user',
        `no extension is known for Bitrix24 user ${data.USER_ID} (set UF_PHONE_INNER or BITRIX24_EXTENSIONS)`,
        { field: 'data[USER_ID]' },
      );
    const { id } = await deps.startClickToCall({
      operator,
      to: data.PHONE_NUMBER_INTERNATIONAL || data.PHONE_NUMBER,
      requestedBy: 'bitrix24',
      ip: canonicalIp(req.ip) ?? req.ip,
      variables: {
        bitrix24CallId: data.CALL_ID,
        bitrix24UserId: data.USER_ID,
        ...(data.CRM_ENTITY_TYPE ? { bitrix24EntityType: data.CRM_ENTITY_TYPE } : {}),
        ...(data.CRM_ENTITY_ID ? { bitrix24EntityId: data.CRM_ENTITY_ID } : {}),
      },
    });
    logger.info('Bitrix24 click-to-call started', { callId: id, operator });
    res.json({ result: true, callId: id });
  });

  router.post(INSTALL_PATH, form, async (req, res) => {
    if (!options.install)
      throw new HttpError(
        404,
        'not_found',
        'the install handler is for the local application (BITRIX24_URL), not a webhook URL',
      );
    const raw = body(req);
    const auth = (raw.auth ?? {}) as Record<string, unknown>;
    const text = (v: unknown): string | undefined =>
      typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
    const accessToken = text(raw.AUTH_ID) ?? text(auth.access_token);
    const refreshToken = text(raw.REFRESH_ID) ?? text(auth.refresh_token);
    const applicationToken = text(auth.application_token);
    const expiresIn = Number(raw.AUTH_EXPIRES ?? auth.expires_in);
    if (!accessToken || !refreshToken)
      throw new HttpError(
        400,
        'invalid_request',
        'AUTH_ID and REFRESH_ID (or auth[access_token] and auth[refresh_token]) are required',
      );
    try {
      await options.install({
        accessToken,
        refreshToken,
        ...(Number.isFinite(expiresIn) && expiresIn > 0
          ? { expiresAt: new Date(Date.now() + expiresIn * 1000).toISOString() }
          : {}),
        ...(applicationToken ? { applicationToken } : {}),
      });
    } catch (err) {
      logger.warn('Bitrix24 install refused', {
        reason: err instanceof Error ? err.message : String(err),
        ip: canonicalIp(req.ip) ?? req.ip,
      });
      throw new HttpError(403, 'invalid_token', 'the portal did not accept these tokens');
    }
    res
      .type('html')
      .send(
        '<!doctype html><html><head><meta charset="utf-8"><script src="//api.bitrix24.com/api/v1/"></script></head>' +
          '<body><p>ari-crm is connected.</p><script>if (window.BX24) BX24.init(function () { BX24.installFinish(); });</script></body></html>',
      );
  });

  return router;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
