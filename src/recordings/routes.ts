/**
 * `GET /v1/calls/{id}/recording`: served to the CRM's audio player with HTTP Range, behind a
 * signed expiring link or an API key. Mounted in the `/v1` router behind
 * {@link allowSignedRecordingLinks}, which lets a request carrying a link signature past the API
 * key check so that this route verifies the link instead.
 *
 * Answers: 200 (whole file) or 206 (one byte range) `audio/wav` with `Accept-Ranges: bytes`,
 * `Content-Length`, `ETag`, `Last-Modified`; 304 without a body when `If-None-Match` names the
 * current ETag (weak comparison) or is `*`, or `If-Modified-Since` is not older than the file; 416 `range_not_satisfiable` with
 * `Content-Range: bytes * /<size>`; 403 `link_expired` / `link_invalid`; 404 `call_not_found`,
 * `recording_not_found` (the call was not recorded), `recording_failed`,
 * `recording_file_missing`; 409 `recording_not_ready`. `HEAD` answers the same headers.
 * Reference: docs/recordings.md, docs/api.md.
 */
import { pipeline } from 'node:stream/promises';
import express, { type RequestHandler, type Response, type Router } from 'express';
import { HttpError } from '../http/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { apiKeyNameOf } from '../security/api-keys.ts';
import type { RecordingLinks } from './links.ts';
import { contentRange, notModified, parseRange, type RangeDecision } from './range.ts';
import type { RecordingService } from './service.ts';
import type { RecordingStorage } from './storage.ts';

/** What the route needs. */
export interface RecordingRoutesDeps {
  service: Pick<RecordingService, 'lookup'>;
  storage: RecordingStorage;
  links: Pick<RecordingLinks, 'verify'>;
  logger: Logger;
}

/** The route's path inside the `/v1` router (also matched by {@link allowSignedRecordingLinks}). */
const RECORDING_PATH = /^\/calls\/[^/]+\/recording\/?$/;

/** Engine call ids are UUIDs; anything else cannot name a call. */
const CALL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Wrap the API key check of the `/v1` router: a `GET`/`HEAD` of `/calls/{id}/recording` that
 * carries a `sig` query parameter skips it (the route then verifies the link and answers 403
 * when it is not valid); every other request goes through `keyCheck`.
 */
export function allowSignedRecordingLinks(keyCheck: RequestHandler): RequestHandler {
  return (req, res, next) => {
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      RECORDING_PATH.test(req.path) &&
      req.query.sig !== undefined
    ) {
      next();
      return;
    }
    return keyCheck(req, res, next);
  };
}

/** Build the router (mount it in the `/v1` router, see the module comment). */
export function createRecordingRoutes(deps: RecordingRoutesDeps): Router {
  const { service, storage, links, logger } = deps;
  const router = express.Router();

  router.get('/calls/:id/recording', async (req, res) => {
    const callId = req.params.id;
    res.set('Accept-Ranges', 'bytes');
    const viaLink = req.query.sig !== undefined;
    if (viaLink) {
      const verdict = links.verify(callId, req.query.expires, req.query.sig);
      if (verdict === 'expired')
        throw new HttpError(403, 'link_expired', 'this recording link has expired');
      if (verdict === 'invalid')
        throw new HttpError(403, 'link_invalid', 'this recording link is not valid');
    } else if (!apiKeyNameOf(res)) {
      throw new HttpError(401, 'unauthorized', 'an API key or a signed link is required');
    }
    if (!CALL_ID.test(callId)) throw new HttpError(404, 'call_not_found', 'no such call');
    const found = await service.lookup(callId);
    switch (found.state) {
      case 'unknown_call':
        throw new HttpError(404, 'call_not_found', `call ${callId} not found`);
      case 'not_recorded':
        throw new HttpError(404, 'recording_not_found', `call ${callId} was not recorded`);
      case 'failed':
        throw new HttpError(
          404,
          'recording_failed',
          `the recording of call ${callId} could not be stored`,
        );
      case 'pending':
        throw new HttpError(
          409,
          'recording_not_ready',
          `the recording of call ${callId} is not stored yet; retry after the recording.ready event`,
        );
      case 'stored':
        break;
    }
    const file = await storage.stat(found.key);
    if (!file) {
      logger.error('stored recording file is missing', { callId, key: found.key });
      throw new HttpError(
        404,
        'recording_file_missing',
        `the recording file of call ${callId} is missing from the storage`,
      );
    }
    const etag = `"${file.bytes.toString(16)}-${file.modifiedAt.getTime().toString(16)}"`;
    const lastModified = file.modifiedAt.toUTCString();
    res.set({ ETag: etag, 'Last-Modified': lastModified, 'Cache-Control': 'private' });
    // The player already holds this file: 304 with the validators and no body, checked before
    // Range (RFC 9110 §13.2.2).
    const conditions = {
      ifNoneMatch: req.get('if-none-match'),
      ifModifiedSince: req.get('if-modified-since'),
    };
    if (notModified(conditions, { etag, lastModified: file.modifiedAt })) {
      res.status(304).end();
      return;
    }
    let decision: RangeDecision = parseRange(req.get('range'), file.bytes);
    const ifRange = req.get('if-range');
    if (ifRange !== undefined && ifRange !== etag && ifRange !== lastModified)
      decision = { kind: 'full' }; // the client's copy is outdated: send it all
    if (decision.kind === 'unsatisfiable') {
      throw new HttpError(
        416,
        'range_not_satisfiable',
        `the range is outside the recording (${file.bytes} bytes)`,
        undefined,
        { 'Content-Range': contentRange(decision, file.bytes)!, 'Accept-Ranges': 'bytes' },
      );
    }
    res.set({
      'Content-Type': 'audio/wav',
      'Content-Disposition': `inline; filename="${callId}.wav"`,
      'X-Content-Type-Options': 'nosniff',
    });
    const range = decision.kind === 'partial' ? decision : undefined;
    if (range) {
      res.status(206).set('Content-Range', contentRange(decision, file.bytes));
      res.set('Content-Length', String(range.end - range.start + 1));
    } else {
      res.status(200).set('Content-Length', String(file.bytes));
    }
    logger.debug('serving a recording', {
      callId,
      via: viaLink ? 'link' : 'api_key',
      range: range ? `${range.start}-${range.end}` : 'all',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await stream(res, storage, found.key, range, logger, callId);
  });

  return router;
}

/** Pipe the file (or range) to the response; a client going away mid-way is not an error. */
async function stream(
  res: Response,
  storage: RecordingStorage,
  key: string,
  range: { start: number; end: number } | undefined,
  logger: Logger,
  callId: string,
): Promise<void> {
  try {
    await pipeline(storage.read(key, range), res);
  } catch (err) {
    if (res.destroyed && (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') {
      logger.debug('recording download aborted by the client', { callId });
      return;
    }
    if (!res.headersSent) throw err;
    logger.error('recording could not be streamed', { callId, key, err });
    res.destroy();
  }
}
