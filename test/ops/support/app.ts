/**
 * An HTTP app of the engine (createHttpApp) on a local port, for tests of the operations surface
 * and of the server.
 */
import express from 'express';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createHttpApp, type HttpAppOptions } from '../../../src/http/app.ts';
import { HttpError } from '../../../src/http/errors.ts';
import { createHttpServer } from '../../../src/http/server.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';

/** An app served on a local port. */
export interface TestApp {
  url: string;
  registry: Registry;
  app: express.Express;
  server: Server;
  close(): Promise<void>;
}

/**
 * The app with a `/v1` router (`/items/:id`, `POST /echo` answering the parsed body), a compat-like router and `options` on top, served by
 * `makeServer` (default: the engine's `createHttpServer`).
 */
export async function startApp(
  options: Partial<HttpAppOptions> = {},
  makeServer: (app: express.Express) => Server = createHttpServer,
): Promise<TestApp> {
  const registry = new Registry();
  const v1 = express.Router();
  v1.get('/items/:id', (req, res) => {
    if (req.params.id === 'missing') throw new HttpError(404, 'item_not_found', 'no such item');
    res.json({ id: req.params.id });
  });
  v1.post('/items', (_req, res) => {
    res.status(201).json({ created: true });
  });
  v1.post('/echo', (req, res) => {
    res.json({ body: req.body as unknown });
  });
  const compat = express.Router();
  compat.get('/asterisk.fcgi', (_req, res) => {
    res.type('text/plain').send('OK');
  });
  const app = createHttpApp({
    logger: createSilentLogger(),
    registry,
    readiness: {},
    apiRouters: { '/v1': v1 },
    authenticate: (_req, _res, next) => next(),
    selfAuthenticatingRouters: [compat],
    openApiDocument: { openapi: '3.1.0' },
    ...options,
  });
  const server = makeServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    registry,
    app,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
