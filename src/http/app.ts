/**
 * The Express application: health and readiness, Prometheus metrics, the OpenAPI document, the
 * domains' routers behind the API key check, and the JSON error model of {@link ./errors.ts}.
 *
 * Order of a request (BRIEF F13): `/healthz` and `/readyz` answer anyone (probes of the
 * orchestrator or load balancer, which reveal nothing); then the optional global IP allow-list;
 * then `/metrics`, `/openapi.json` and the public routers (`/sim` in simulator mode) without a
 * key; then the API routers, each behind the API key check and a JSON body parser; then the
 * routers that authenticate themselves (the seed-003 compat path).
 */
import express, { type RequestHandler, type Router } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { errorHandler, notFoundHandler } from './errors.ts';

/** A readiness check: resolves to an error text when not ready, undefined when fine. */
export type ReadinessCheck = () => Promise<string | undefined> | string | undefined;

/** What the HTTP app serves. */
export interface HttpAppOptions {
  logger: Logger;
  registry: Registry;
  /** Named readiness checks for `GET /readyz`. */
  readiness: Record<string, ReadinessCheck>;
  /** Public routers mounted under their path, e.g. `{'/sim': simulator.controlRouter()}`. */
  routers?: Record<string, Router>;
  /** Routers behind `authenticate`, mounted under their path, e.g. `{'/v1': callRoutes}`. */
  apiRouters?: Record<string, Router>;
  /** Routers mounted at `/` that check credentials themselves (the compat path). */
  selfAuthenticatingRouters?: Router[];
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
 * Build the app. Routes: `GET /healthz` (200 while the process answers), `GET /readyz` (200, or
 * 503 with `{status, checks}` naming the failing check), `GET /metrics` (Prometheus text),
 * `GET /openapi.json`, and the routers of {@link HttpAppOptions}.
 */
export function createHttpApp(options: HttpAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // API answers are live state, never cached
  app.set('trust proxy', options.trustProxy ? 1 : false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    let ready = true;
    for (const [name, check] of Object.entries(options.readiness)) {
      let problem: string | undefined;
      try {
        problem = await check();
      } catch (err) {
        problem = err instanceof Error ? err.message : String(err);
      }
      checks[name] = problem ?? 'ok';
      if (problem) ready = false;
    }
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
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
  const apiRouters = Object.entries(options.apiRouters ?? {});
  if (apiRouters.length > 0 && !options.authenticate)
    throw new TypeError('createHttpApp: apiRouters need an authenticate middleware');
  for (const [path, router] of apiRouters)
    app.use(path, options.authenticate!, express.json({ limit: '256kb' }), router);
  for (const router of options.selfAuthenticatingRouters ?? []) app.use(router);

  app.use(notFoundHandler);
  app.use(errorHandler(options.logger));
  return app;
}
