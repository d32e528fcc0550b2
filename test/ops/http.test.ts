/**
 * The operations surface of the HTTP app (metrics and health): /readyz lists every
 * check (async checks, failures, timeouts), request durations are labelled with the Express route
 * template, and a shutting-down app refuses API requests but keeps /healthz and /metrics.
 * Real HTTP against createHttpApp on a local port.
 */
import { expect } from 'chai';
import { HTTP_REQUEST_DURATION } from '../../src/metrics/http.ts';
import { apiRequest } from '../support/api.ts';
import { startApp, type TestApp } from './support/app.ts';
import { parseExposition, valueOf } from './support/exposition.ts';

describe('HTTP operations surface', () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  describe('GET /readyz', () => {
    it('answers 200 with every check ok, sync and async alike', async () => {
      app = await startApp({
        readiness: {
          ari: () => undefined,
          store: async () => {
            await new Promise((resolve) => setImmediate(resolve));
          },
        },
      });
      const res = await apiRequest(app.url, '/readyz', { key: null });
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({
        status: 'ready',
        checks: { ari: { status: 'ok' }, store: { status: 'ok' } },
      });
    });

    it('answers 503 naming each failing check and why: a reason, a rejection, a timeout', async () => {
      app = await startApp({
        readinessTimeoutMs: 50,
        readiness: {
          ari: () => 'ARI WebSocket is not connected',
          store: () =>
            Promise.reject(new Error('SQLITE_READONLY: attempt to write a readonly database')),
          crm: () => new Promise<undefined>(() => undefined),
          clock: () => undefined,
        },
      });
      const res = await apiRequest(app.url, '/readyz', { key: null });
      expect(res.status).to.equal(503);
      expect(res.body).to.deep.equal({
        status: 'not_ready',
        checks: {
          ari: { status: 'failed', reason: 'ARI WebSocket is not connected' },
          store: {
            status: 'failed',
            reason: 'SQLITE_READONLY: attempt to write a readonly database',
          },
          crm: { status: 'failed', reason: 'crm check timed out after 50 ms' },
          clock: { status: 'ok' },
        },
      });
    });

    it('a check that throws synchronously fails only itself', async () => {
      app = await startApp({
        readiness: {
          store: () => {
            throw new Error('database is locked');
          },
          ari: () => undefined,
        },
      });
      const res = await apiRequest(app.url, '/readyz', { key: null });
      expect(res.status).to.equal(503);
      expect(res.body.checks).to.deep.equal({
        store: { status: 'failed', reason: 'database is locked' },
        ari: { status: 'ok' },
      });
    });
  });

  describe('aricrm_http_request_duration_seconds', () => {
    it('labels requests with the route template and status, never the concrete path', async () => {
      app = await startApp();
      expect((await apiRequest(app.url, '/v1/items/79161234567')).status).to.equal(200);
      expect((await apiRequest(app.url, '/v1/items/missing')).status).to.equal(404);
      expect((await apiRequest(app.url, '/v1/items', { body: {} })).status).to.equal(201);
      expect((await apiRequest(app.url, '/v1/nothing-here/42')).status).to.equal(404);
      expect((await apiRequest(app.url, '/asterisk.fcgi')).status).to.equal(200);
      expect((await apiRequest(app.url, '/healthz')).status).to.equal(200);
      const metrics = await apiRequest(app.url, '/metrics');
      const exposition = parseExposition(metrics.text);
      const count = (labels: Record<string, string>): number | undefined =>
        valueOf(exposition, `${HTTP_REQUEST_DURATION}_count`, labels);
      expect(exposition.types.get(HTTP_REQUEST_DURATION)).to.equal('histogram');
      expect(count({ method: 'GET', route: '/v1/items/:id', status: '200' })).to.equal(1);
      expect(count({ method: 'GET', route: '/v1/items/:id', status: '404' })).to.equal(1);
      expect(count({ method: 'POST', route: '/v1/items', status: '201' })).to.equal(1);
      expect(count({ method: 'GET', route: 'unmatched', status: '404' })).to.equal(1);
      expect(count({ method: 'GET', route: '/asterisk.fcgi', status: '200' })).to.equal(1);
      expect(count({ method: 'GET', route: '/healthz', status: '200' })).to.equal(1);
      expect(metrics.text).to.not.include('79161234567');
      expect(metrics.text).to.not.include('nothing-here');
    });
  });

  describe('shutting down', () => {
    it('refuses API and compat requests with 503 shutting_down and Connection: close; keeps probes and metrics', async () => {
      let shuttingDown = false;
      app = await startApp({
        isShuttingDown: () => shuttingDown,
        readiness: { ari: () => undefined },
      });
      const before = await apiRequest(app.url, '/readyz');
      expect(before.status).to.equal(200);
      expect(before.body.checks).to.deep.equal({
        ari: { status: 'ok' },
        shutdown: { status: 'ok' },
      });
      expect((await apiRequest(app.url, '/v1/items/1')).status).to.equal(200);

      shuttingDown = true;
      for (const [method, path] of [
        ['GET', '/v1/items/1'],
        ['POST', '/v1/items'],
        ['GET', '/asterisk.fcgi'],
      ] as const) {
        const res = await apiRequest(app.url, path, {
          method,
          ...(method === 'POST' ? { body: {} } : {}),
        });
        expect(res.status, `${method} ${path}`).to.equal(503);
        expect(res.body.code).to.equal('shutting_down');
        expect(res.body.message).to.be.a('string');
        expect(res.headers.get('connection')).to.equal('close');
      }
      const ready = await apiRequest(app.url, '/readyz');
      expect(ready.status).to.equal(503);
      expect(ready.body).to.deep.equal({
        status: 'not_ready',
        checks: {
          ari: { status: 'ok' },
          shutdown: { status: 'failed', reason: 'the engine is shutting down' },
        },
      });
      expect(ready.headers.get('connection')).to.equal('close');
      expect((await apiRequest(app.url, '/healthz')).status).to.equal(200);
      const metrics = await apiRequest(app.url, '/metrics');
      expect(metrics.status).to.equal(200);
      expect(metrics.text).to.match(
        /aricrm_http_request_duration_seconds_count\{method="GET",route="unmatched",status="503"\} 2/,
      );
      expect((await apiRequest(app.url, '/openapi.json')).status).to.equal(200);
    });
  });
});
