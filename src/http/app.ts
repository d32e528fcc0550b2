/**
 * The Express application: health and readiness, Prometheus metrics, the OpenAPI document, the
 * domains' routers behind the API key check, and the JSON error model of {@link ./errors.ts}.
 *
 * Order of a request: every request is timed
 * (`aricrm_http_request_duration_seconds`); `/healthz` and `/readyz` answer anyone (probes of the
 * orchestrator or load balancer, which reveal nothing); then the optional global IP allow-list;
 * then `/metrics`, `/openapi.json` and the public routers (`/sim` in simulator mode) without a
 * key; then, while the engine shuts down, 503 `shutting_down` for everything else; then the API
 * routers, each behind the API key check and a JSON body parser; then the routers that
 * authenticate themselves (the asterisk.fcgi compatibility path).
 */
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { httpMetricsMiddleware } from '../metrics/http.ts';
import { errorHandler, HttpError, notFoundHandler } from './errors.ts';
import { bindRequestClasses } from './server.ts';

/**
 * A readiness check. Not ready: it returns or resolves to a text saying why, throws, rejects, or
 * does not settle within {@link HttpAppOptions.readinessTimeoutMs}. Ready: it returns or resolves
 * to `undefined` (or nothing, e.g. `() => store.ping()`).
 */
export type ReadinessCheck = () => Promise<string | undefined | void> | string | undefined | void;

/** One check in the `GET /readyz` body. */
export type ReadinessCheckResult = { status: 'ok' } | { status: 'failed'; reason: string };

/** The `GET /readyz` body (200 when `status` is `ready`, else 503). */
export interface ReadinessReport {
  status: 'ready' | 'not_ready';
  /** Every check by name, in the order given, then `shutdown` when the app can shut down. */
  checks: Record<string, ReadinessCheckResult>;
}

/** Default of {@link HttpAppOptions.readinessTimeoutMs}, ms. */
export const DEFAULT_READINESS_TIMEOUT_MS = 2000;

/** What the HTTP app serves. */
export interface HttpAppOptions {
  logger: Logger;
  registry: Registry;
  /** Named readiness checks for `GET /readyz`, run concurrently on every probe. */
  readiness: Record<string, ReadinessCheck>;
  /** A check still pending after this many ms counts as failed. Default 2000. */
  readinessTimeoutMs?: number;
  /**
   * True once the engine is shutting down (SIGTERM): every route except `/healthz`, `/readyz`,
   * `/metrics`, `/openapi.json` and the public routers answers 503 `shutting_down`, `/readyz`
   * answers 503 (check `shutdown` failed) so a load balancer takes the instance out, and every
   * answer carries `Connection: close`. Absent: the app never shuts down.
   */
  isShuttingDown?: () => boolean;
  /** Public routers mounted under their path, e.g. `{'/sim': simulator.controlRouter()}`. */
  routers?: Record<string, Router>;
  /** Routers behind `authenticate`, mounted under their path, e.g. `{'/v1': callRoutes}`. */
  apiRouters?: Record<string, Router>;
  /**
   * Requests to `apiRouters` that may carry a larger JSON body than {@link API_BODY_LIMIT_BYTES}
   * (bulk job uploads): `applies` tells them (method and path below the mount), `limitBytes` is
   * their limit.
   */
  largeBodies?: { applies: (method: string, path: string) => boolean; limitBytes: number };
  /** Routers mounted at `/` that check credentials themselves (the compat path). */
  selfAuthenticatingRouters?: Router[];
  /**
   * Error handlers by path prefix, used instead of the JSON error model for errors raised on
   * that path before its router answers (the compat path's `Answer: Error` text format).
   */
  errorRenderers?: Record<string, ErrorRequestHandler>;
  /** The API key check in front of `apiRouters` (required when there are any). */
  authenticate?: RequestHandler;
  /** Runs before every route except `/healthz` and `/readyz` (the IP allow-list). */
  clientFilter?: RequestHandler;
  /** Served as `GET /openapi.json` (public). */
  openApiDocument?: object;
  /**
   * Trust `X-Forwarded-For` from one reverse proxy: `req.ip` is the address that proxy added
   * (the right-most one), so a client cannot choose its address by sending the header itself.
   */
  trustProxy?: boolean;
}

/**
 * Build the app; serve it with `createHttpServer(app)` (./server.ts), whose requests share hidden
 * classes. Routes: `GET /healthz` (200 `{status: "ok"}` while the process answers),
 * `GET /readyz` (200, or 503, with a {@link ReadinessReport} listing every check),
 * `GET /metrics` (Prometheus text), `GET /openapi.json`, and the routers of
 * {@link HttpAppOptions}.
 *
 * @throws TypeError when `apiRouters` are given without `authenticate`
 */
export function createHttpApp(options: HttpAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // API answers are live state, never cached
  app.set('trust proxy', options.trustProxy ? 1 : false);
  // Serve it with createHttpServer (src/http/server.ts): requests are born with these prototypes.
  bindRequestClasses(app);
  const isShuttingDown = options.isShuttingDown;
  const readinessTimeoutMs = options.readinessTimeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;

  app.use(httpMetricsMiddleware(options.registry));
  if (isShuttingDown) {
    // Clients (and keep-alive connections of load balancers) go elsewhere once we stop.
    app.use((_req, res, next) => {
      if (isShuttingDown()) res.set('Connection', 'close');
      next();
    });
  }

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = Object.entries(options.readiness);
    const results = await Promise.all(
      checks.map(([name, check]) => runCheck(name, check, readinessTimeoutMs)),
    );
    const report: ReadinessReport = {
      status: 'ready',
      checks: Object.fromEntries(checks.map(([name], i) => [name, results[i]!])),
    };
    if (isShuttingDown)
      report.checks.shutdown = isShuttingDown()
        ? { status: 'failed', reason: 'the engine is shutting down' }
        : { status: 'ok' };
    if (Object.values(report.checks).some((check) => check.status === 'failed'))
      report.status = 'not_ready';
    res.status(report.status === 'ready' ? 200 : 503).json(report);
  });
  if (options.clientFilter) app.use(options.clientFilter);
  app.get('/metrics', async (_req, res) => {
    res.type(options.registry.contentType).send(await options.registry.metrics());
  });
  const openApi = options.openApiDocument;
  if (openApi) {
    app.get('/openapi.json', (_req, res) => {
      res.json(openApi);
    });
  }
  for (const [path, router] of Object.entries(options.routers ?? {})) app.use(path, router);
  if (isShuttingDown) {
    app.use((_req, _res, next) => {
      next(
        isShuttingDown()
          ? new HttpError(
              503,
              'shutting_down',
              'the engine is shutting down and takes no new requests; retry on another instance',
            )
          : undefined,
      );
    });
  }
  const apiRouters = Object.entries(options.apiRouters ?? {});
  if (apiRouters.length > 0 && !options.authenticate)
    throw new TypeError('createHttpApp: apiRouters need an authenticate middleware');
  const large = options.largeBodies;
  const isLarge = (req: express.Request): boolean =>
    large !== undefined && large.applies(req.method, req.path);
  const smallParser = jsonBody(API_BODY_LIMIT_BYTES);
  const largeParser = large ? jsonBody(large.limitBytes) : smallParser;
  const refuseSmall = refuseDeclaredOversize(API_BODY_LIMIT_BYTES);
  const refuseLarge = large ? refuseDeclaredOversize(large.limitBytes) : refuseSmall;
  for (const [path, router] of apiRouters)
    app.use(
      path,
      (req, res, next) => (isLarge(req) ? refuseLarge : refuseSmall)(req, res, next),
      options.authenticate!,
      (req, res, next) => (isLarge(req) ? largeParser : smallParser)(req, res, next),
      router,
    );
  for (const router of options.selfAuthenticatingRouters ?? []) app.use(router);

  app.use(notFoundHandler);
  for (const [path, handler] of Object.entries(options.errorRenderers ?? {}))
    app.use(path, handler);
  app.use(errorHandler(options.logger));
  return app;
}

/** Largest JSON body of an API request, bytes (256 KiB). */
export const API_BODY_LIMIT_BYTES = 256 * 1024;

/**
 * 413 `payload_too_large` at once for a body whose `Content-Length` is over `limitBytes`, with
 * `Connection: close`: the connection is closed once the answer is sent instead of reading (and
 * discarding) the body to its end, as the JSON parser does before it answers. A chunked body
 * over the limit is cut short by {@link jsonBody}.
 */
function refuseDeclaredOversize(limitBytes: number): RequestHandler {
  return (req, _res, next) => {
    const declared = Number(req.headers['content-length']);
    next(
      declared > limitBytes
        ? new HttpError(413, 'payload_too_large', 'the request body is too large', undefined, {
            Connection: 'close',
          })
        : undefined,
    );
  };
}

/**
 * The JSON body parser (`express.json`, limit `limitBytes`) behind a guard for bodies sent without
 * a `Content-Length` (chunked): the parser, on going over its limit, reads and discards the rest of
 * the body before it answers, so a client could make the engine swallow any amount of data. The
 * guard counts the bytes as they arrive (beside the parser, on the same stream) and, past the
 * limit, answers 413 `payload_too_large` with `Connection: close` at once and closes the connection
 * once the answer is sent. (A declared oversize body never gets here: {@link refuseDeclaredOversize}.)
 */
function jsonBody(limitBytes: number): RequestHandler {
  const parse = express.json({ limit: limitBytes });
  return (req, res, next) => {
    if (
      req.headers['transfer-encoding'] !== undefined &&
      req.headers['content-length'] === undefined
    ) {
      let received = 0;
      const count = (chunk: Buffer): void => {
        received += chunk.length;
        if (received <= limitBytes) return;
        req.off('data', count);
        req.pause(); // read no more of it; Node closes the connection once the 413 is sent
        if (!res.headersSent)
          res
            .status(413)
            .set('Connection', 'close')
            .json({ code: 'payload_too_large', message: 'the request body is too large' });
      };
      // Attached in the same turn as the parser's own listener (the parser attaches it
      // synchronously below), so both see every chunk.
      req.on('data', count);
    }
    parse(req, res, next);
  };
}

/** Run one readiness check: its own failure text, its error message, or a timeout. */
async function runCheck(
  name: string,
  check: ReadinessCheck,
  timeoutMs: number,
): Promise<ReadinessCheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`${name} check timed out after ${timeoutMs} ms`), timeoutMs);
  });
  try {
    const problem = await Promise.race([Promise.resolve().then(check), timeout]);
    return problem ? { status: 'failed', reason: problem } : { status: 'ok' };
  } catch (err) {
    return { status: 'failed', reason: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}
