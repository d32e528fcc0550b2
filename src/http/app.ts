/**
 * The Express application: JSON in and out, health and readiness, Prometheus metrics, the
 * domains' routers, and the JSON error model of {@link ./errors.ts}.
 */
import express, { type Router } from 'express';
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
  /** Routers mounted under their path, e.g. `{'/sim': simulator.controlRouter()}`. */
  routers?: Record<string, Router>;
  trustProxy?: boolean;
}

/**
 * Build the app. Routes: `GET /healthz` (200 while the process answers), `GET /readyz` (200, or
 * 503 with `{status, checks}` naming the failing check), `GET /metrics` (Prometheus text).
 */
export function createHttpApp(options: HttpAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', options.trustProxy ?? false);
  app.use(express.json({ limit: '256kb' }));

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
  app.get('/metrics', async (_req, res) => {
    res.type(options.registry.contentType).send(await options.registry.metrics());
  });
  for (const [path, router] of Object.entries(options.routers ?? {})) app.use(path, router);

  app.use(notFoundHandler);
  app.use(errorHandler(options.logger));
  return app;
}
