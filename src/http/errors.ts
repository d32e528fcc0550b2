/**
 * HTTP error model: every error answer is `{"code": "...", "message": "..."}` with a 4xx/5xx
 * status. Handlers throw {@link HttpError}; anything else becomes a 500 without a stack trace.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../logging/logger.ts';

/**
 * An error with an HTTP status and a machine-readable `code`, answered as
 * `{"code", "message", ...details}` with `headers` set (e.g. `Retry-After`).
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/** The JSON body of every error answer. */
export interface ErrorBody {
  /** Machine-readable code, e.g. `invalid_number`. */
  code: string;
  /** Human-readable explanation. */
  message: string;
  /** The request field at fault (validation errors), e.g. `to` or `variables.dealId`. */
  field?: string;
}

/** 404 for unknown routes. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
};

/**
 * Errors of the JSON body parser (body-parser's `type`, with its 4xx status) as `[code, message]`.
 * Any other 4xx it raises is `bad_request`.
 */
const BODY_ERRORS: Record<string, [string, string]> = {
  'entity.parse.failed': ['invalid_json', 'the request body is not valid JSON'],
  'entity.too.large': ['payload_too_large', 'the request body is too large'],
  'charset.unsupported': [
    'unsupported_charset',
    'the request body must be JSON in utf-8 (Content-Type: application/json; charset=utf-8)',
  ],
  'encoding.unsupported': [
    'unsupported_content_encoding',
    'the request body must be sent as is or with Content-Encoding gzip, deflate or br',
  ],
  'request.size.invalid': [
    'bad_request',
    'the request body is shorter or longer than its Content-Length',
  ],
};

/** The final error handler: JSON body, no stack, server errors logged. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (err instanceof HttpError) {
      if (err.headers) res.set(err.headers);
      res.status(err.status).json({ code: err.code, message: err.message, ...err.details });
      return;
    }
    // Already answered (a body cut short past its limit): nothing more to say on this request.
    if (res.headersSent) return;
    const status =
      typeof err === 'object' && err !== null && 'status' in err ? Number(err.status) : 500;
    const type = typeof err === 'object' && err !== null && 'type' in err ? String(err.type) : '';
    if (status >= 400 && status < 500) {
      const [code, message] = BODY_ERRORS[type] ?? ['bad_request', 'bad request'];
      // The rest of an oversized body is not worth reading on this connection.
      if (code === 'payload_too_large') res.set('Connection', 'close');
      res.status(status).json({ code, message });
      return;
    }
    logger.error('HTTP handler failed', { method: req.method, path: req.path, err });
    res.status(500).json({ code: 'internal_error', message: 'internal error' });
  };
}
