/**
 * The operators API, mounted at `/v1` behind the API key check (reference: docs/operators.md):
 *
 * - `GET /v1/operators` → `{items: [operator]}`, every configured operator
 * - `GET /v1/operators/{extension}` → the operator | 404 `operator_not_found`
 * - `PUT /v1/operators/{extension}/status` `{status}` → 200 the operator | 400 | 404
 *
 * Who may do what is asked of {@link OperatorRoutesDeps.authorize} before each handler acts (an
 * API key may do everything; a principal scoped to one extension may be limited to it).
 */
import express, { type Request, type Router } from 'express';
import { HttpError } from '../http/errors.ts';
import { validate } from '../http/validation.ts';
import { extensionSchema, operatorStatusBodySchema } from './schemas.ts';
import { OperatorNotFoundError, type PresenceService } from './service.ts';
import { jsonBody } from '../http/request-body.ts';

/** What a request wants to do: list every operator, read one, set one's status. */
export type OperatorAction = 'list' | 'read' | 'set_status';

/**
 * May the request's principal do `action` on `extension` (undefined for `list`)? Throws an
 * HttpError (403 `forbidden`, …) when not; returns when it may.
 */
export type OperatorAuthorizer = (
  req: Request,
  action: OperatorAction,
  extension: string | undefined,
) => void;

/** What {@link createOperatorRoutes} needs. */
export interface OperatorRoutesDeps {
  presence: PresenceService;
  /** Default: everything is allowed (the `/v1` API key check already ran). */
  authorize?: OperatorAuthorizer;
}

/** The `/v1/operators` routes. */
export function createOperatorRoutes(deps: OperatorRoutesDeps): Router {
  const { presence } = deps;
  const authorize: OperatorAuthorizer = deps.authorize ?? (() => undefined);
  const router = express.Router();

  /** The `{extension}` path parameter, validated (400) and authorised. */
  const extensionOf = (req: Request, action: OperatorAction): string => {
    const extension = validate(extensionSchema, req.params.extension, 'extension');
    authorize(req, action, extension);
    return extension;
  };

  router.get('/operators', (req, res) => {
    authorize(req, 'list', undefined);
    res.json({ items: presence.list() });
  });

  router.get('/operators/:extension', (req, res) => {
    const extension = extensionOf(req, 'read');
    res.json(found(() => presence.get(extension)));
  });

  router.put('/operators/:extension/status', async (req, res) => {
    const extension = extensionOf(req, 'set_status');
    found(() => presence.get(extension));
    const body = validate(operatorStatusBodySchema, jsonBody(req), 'body');
    res.json(await presence.setStatus(extension, body.status));
  });

  return router;
}

/** Run `fn`; an unknown extension becomes 404 `operator_not_found`. */
function found<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof OperatorNotFoundError)
      throw new HttpError(404, 'operator_not_found', err.message, { extension: err.extension });
    throw err;
  }
}
