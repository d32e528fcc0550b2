/**
 * `GET /v1/calls/{id}/recording` (and `GET /v1/calls/{id}/recordings/{name}`, a call script
 * recording): served to the CRM's audio player with HTTP Range, behind a
 * signed expiring link or an API key. Mounted in the `/v1` router behind
 * {@link allowSignedRecordingLinks}, which lets a request carrying a link signature past the API
 * key check so that this route verifies the link instead.
 *
 * Answers: 200 (whole file) or 206 (one byte range) `audio/wav` with `Accept-Ranges: bytes`,
 * `Content-Length`, `ETag`, `Last-Modified`; 304 without a body when `If-None-Match` names the
 * current ETag (weak comparison) or is `*`, or `If-Modified-Since` is not older than the file; 416 `range_not_satisfiable` with
 * `Content-Range: bytes * /<size>`; 403 `link_expired` / `link_invalid`; 404 `call_not_found`,
 * `recording_not_found` (the call was not recorded), `recording_failed`,
 * `recording_file_missing`; 409 `recording_not_ready`. `HEAD` answers the same headers. A call
 * script recording answers the same, with 404 `recording_not_found` when the call has no stored
 * recording of that name.
 * Reference: docs/recordings.md, docs/api.md.
 */
import { pipeline } from 'node:stream/promises';
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import { HttpError } from '../http/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { apiKeyNameOf } from '../security/api-keys.ts';
import type { RecordingLinks } from './links.ts';
import { contentRange, notModified, parseRange, type RangeDecision } from './range.ts';
import type { RecordingService } from './service.ts';
import type { RecordingStorage, StoredObject } from './storage.ts';
import type { VerbRecordings } from './verb-recordings.ts';

/** What the route needs. */
export interface RecordingRoutesDeps {
  service: Pick<RecordingService, 'lookup'>;
  storage: RecordingStorage;
  links: Pick<RecordingLinks, 'verify'>;
  logger: Logger;
  /** Call script recordings (`GET /calls/{id}/recordings/{name}`); absent: that route answers 404. */
  verbs?: Pick<VerbRecordings, 'lookup'>;
}

/** The route's path inside the `/v1` router (also matched by {@link allowSignedRecordingLinks}). */
const RECORDING_PATH = /^\/calls\/[^/]+\/(recording|recordings\/[^/]+)\/?$/;

/** Engine call ids are UUIDs; anything else cannot name a call. */
const CALL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Wrap the API key check of the `/v1` router: a `GET`/`HEAD` of `/calls/{id}/recording` (or
 * `/calls/{id}/recordings/{name}`) that
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
  const { service, storage, links, logger, verbs } = deps;
  const router = express.Router();

  router.get('/calls/:id/recording', async (req, res) => {
    const callId = req.params.id;
    res.set('Accept-Ranges', 'bytes');
    const viaLink = req.query.sig !== undefined;
    authorize(req.query, res, links, callId);
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
    await serveStoredFile(req, res, {
      storage,
      file,
      filename: `${callId}.wav`,
      logger,
      logFields: { callId, via: viaLink ? 'link' : 'api_key' },
    });
  });

  router.get('/calls/:id/recordings/:name', async (req, res) => {
    const { id: callId, name } = req.params;
    res.set('Accept-Ranges', 'bytes');
    const viaLink = req.query.sig !== undefined;
    authorize(req.query, res, links, callId, name);
    if (!CALL_ID.test(callId)) throw new HttpError(404, 'call_not_found', 'no such call');
    const file = verbs ? await verbs.lookup(callId, name) : undefined;
    if (!file)
      throw new HttpError(
        404,
        'recording_not_found',
        `call ${callId} has no stored recording named ${JSON.stringify(name.slice(0, 64))}`,
      );
    await serveStoredFile(req, res, {
      storage,
      file,
      filename: `${name}.wav`,
      logger,
      logFields: { callId, recordingName: name, via: viaLink ? 'link' : 'api_key' },
    });
  });

  return router;
}

/** What {@link serveStoredFile} serves. */
interface ServeOptions {
  storage: RecordingStorage;
  /** The file, as the storage's `stat` found it. */
  file: StoredObject;
  /** `Content-Disposition` file name. */
  filename: string;
  logger: Logger;
  /** Log fields of the download (call id, recording name, how it was authorized). */
  logFields: Record<string, unknown>;
}

/**
 * Answer a `GET`/`HEAD` of a stored WAV file: validators (`ETag`, `Last-Modified`), 304 when the
 * client holds it, 416 for an unsatisfiable range, 206 for one range, else 200; then stream it.
 *
 * @throws HttpError 416 `range_not_satisfiable`
 */
async function serveStoredFile(req: Request, res: Response, options: ServeOptions): Promise<void> {
  const { storage, file, filename, logger, logFields } = options;
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
    'Content-Disposition': `inline; filename="${filename}"`,
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
    ...logFields,
    range: range ? `${range.start}-${range.end}` : 'all',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await stream(res, storage, file.key, range, logger, logFields);
}

/**
 * Check how the request may read the recording (`name`: a call script recording): a signed
 * link to it, or an API key (checked before the route).
 *
 * @throws HttpError 403 `link_expired` / `link_invalid`, 401 `unauthorized`
 */
function authorize(
  query: Request['query'],
  res: Response,
  links: Pick<RecordingLinks, 'verify'>,
  callId: string,
  name?: string,
): void {
  if (query.sig !== undefined) {
    const verdict = links.verify(callId, query.expires, query.sig, name);
    if (verdict === 'expired')
      throw new HttpError(403, 'link_expired', 'this recording link has expired');
    if (verdict === 'invalid')
      throw new HttpError(403, 'link_invalid', 'this recording link is not valid');
  } else if (!apiKeyNameOf(res)) {
    throw new HttpError(401, 'unauthorized', 'an API key or a signed link is required');
  }
}

/** Pipe the file (or range) to the response; a client going away mid-way is not an error. */
async function stream(
  res: Response,
  storage: RecordingStorage,
  key: string,
  range: { start: number; end: number } | undefined,
  logger: Logger,
  logFields: Record<string, unknown>,
): Promise<void> {
  try {
    await pipeline(storage.read(key, range), res);
  } catch (err) {
    if (res.destroyed && (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') {
      logger.debug('recording download aborted by the client', logFields);
      return;
    }
    if (!res.headersSent) throw err;
    logger.error('recording could not be streamed', { ...logFields, key, err });
    res.destroy();
  }
}
