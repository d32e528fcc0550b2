/** Reading a request's JSON body in the API's route handlers (after the app's JSON parser). */
import type { Request } from 'express';
import { HttpError } from './errors.ts';

/**
 * The parsed JSON body; undefined when the request has none (validation then names `body`).
 *
 * @throws HttpError 415 `unsupported_media_type` for a body that is not JSON
 */
export function jsonBody(req: Request): unknown {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (!hasBody) return undefined;
  if (!req.is('application/json'))
    throw new HttpError(
      415,
      'unsupported_media_type',
      'the body must be JSON (Content-Type: application/json)',
    );
  return req.body;
}
