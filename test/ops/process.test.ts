/**
 * The real process: `node --import tsx src/main.ts` on the built-in PBX
 * simulator, a call in progress, a CRM that fails its webhooks, then SIGTERM: while webhooks are
 * still pending the process refuses new API requests (503 shutting_down) and /readyz, keeps
 * /healthz; once the CRM recovers it delivers them, logs `stopped` as its last line and exits 0.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiRequest } from '../support/api.ts';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { EngineProcess, MAIN, TSX_LOADER } from '../support/engine-process.ts';
import { TEST_API_KEY } from '../support/engine.ts';
import { until } from '../support/until.ts';

describe('the engine process (e2e)', function () {
  this.timeout(60_000);
  let engine: EngineProcess | undefined;
  let dataDir: string | undefined;
  let crm: Server | undefined;
  let sim: PbxSimulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
    const child = engine?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (crm) {
      crm.closeAllConnections();
      await new Promise<void>((resolve) => crm!.close(() => resolve()));
    }
    crm = undefined;
    engine = undefined;
    dataDir = undefined;
  });

  it('on SIGTERM refuses new API requests, delivers pending webhooks, logs "stopped" and exits 0', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ari-crm-process-'));
    // The CRM's webhook endpoint: down (503) until the test says it recovered.
    let crmUp = false;
    const delivered: string[] = [];
    crm = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (!crmUp) return void res.writeHead(503).end();
        delivered.push(
          (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string }).type,
        );
        res.writeHead(204).end();
      });
    });
    crm.listen(0, '127.0.0.1');
    await once(crm, 'listening');
    const crmPort = (crm.address() as AddressInfo).port;
    const child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN], {
      // A clean environment in an empty directory: no .env, no ARI_URL (the simulator runs).
      cwd: dataDir,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
        API_KEYS: `test:${TEST_API_KEY}`,
        OPERATOR_EXTENSIONS: 'none',
        DATA_DIR: dataDir,
        SIM_TIME_SCALE: '0.05',
        SHUTDOWN_TIMEOUT_MS: '20000',
        CRM_WEBHOOK_URL: `http://127.0.0.1:${crmPort}/hooks`,
        WEBHOOK_SECRET: 'process-test-webhook-secret-0123456789',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    engine = new EngineProcess(child);
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

    const started = await engine.started();
    const httpUrl = String(started.httpUrl);
    expect(httpUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    // The API listens before ARI connects: ready once the simulator's ARI is connected.
    await until(
      async () => (await apiRequest(httpUrl, '/readyz', { key: null })).status === 200,
      '/readyz 200',
    );

    // A call in progress: the customer calls the DID, an operator answers.
    const injected = await apiRequest(httpUrl, '/sim/calls', {
      key: null,
      body: { from: '79161234567', to: '74951234567' },
    });
    expect(injected.status).to.be.within(200, 299);
    await engine.waitForLine((l) => l.message === 'call answered and bridged');

    child.kill('SIGTERM');
    await engine.waitForLine((l) => l.message === 'signal received' && l.signal === 'SIGTERM');
    const stopping = await engine.waitForLine((l) => l.message.startsWith('stopping'));
    expect(stopping.pendingWebhooks).to.be.greaterThan(0);

    // Still delivering: new API requests are refused, the load balancer is told to go away.
    const create = await apiRequest(httpUrl, '/v1/calls', {
      body: { operator: '101', to: '+74957654321' },
    });
    expect(create.status).to.equal(503);
    expect(create.body).to.include({ code: 'shutting_down' });
    expect((await apiRequest(httpUrl, '/readyz', { key: null })).status).to.equal(503);
    expect((await apiRequest(httpUrl, '/healthz', { key: null })).status).to.equal(200);
    expect(child.exitCode).to.equal(null);

    crmUp = true;
    const [code, signal] = await exited;
    // Every event of the call so far; no call.ended: the call was still up when we left.
    expect(delivered[0]).to.equal('call.started');
    expect(delivered).to.include('call.answered');
    expect(delivered).to.not.include('call.ended');
    expect(engine.stderr).to.equal('');
    expect({ code, signal }).to.deep.equal({ code: 0, signal: null });
    const messages = engine.lines.map((l) => l.message);
    expect(messages.at(-1)).to.equal('stopped');
    expect(messages.indexOf('signal received')).to.be.lessThan(
      messages.findIndex((m) => m.startsWith('stopping')),
    );
    // Calls in progress are left to Asterisk: the engine hung up nobody on its way out.
    expect(messages.slice(messages.indexOf('signal received'))).to.not.include('call ended');
    expect(messages).to.not.include('pending webhooks were not all delivered before shutdown');
    expect(engine.lines.filter((l) => l.level === 'error')).to.deep.equal([]);
  });

  it('serves health, readiness, metrics and the store while Asterisk is unreachable, refuses call commands with 503 ari_unavailable, and connects once Asterisk is up', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ari-crm-process-'));
    // A port nothing listens on (yet): Asterisk is down when the engine starts.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const ariPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
        API_KEYS: `test:${TEST_API_KEY}`,
        OPERATOR_EXTENSIONS: 'none',
        DATA_DIR: dataDir,
        ARI_URL: `http://127.0.0.1:${ariPort}`,
        ARI_USERNAME: 'crm',
        ARI_PASSWORD: 'process-test-ari-password',
        ARI_RECONNECT_MAX_DELAY_MS: '200',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    engine = new EngineProcess(child);
    const started = await engine.started();
    const httpUrl = String(started.httpUrl);
    expect(started.ari).to.equal('connecting');

    expect((await apiRequest(httpUrl, '/healthz', { key: null })).status).to.equal(200);
    const notReady = await apiRequest<{ checks: Record<string, unknown> }>(httpUrl, '/readyz', {
      key: null,
    });
    expect(notReady.status).to.equal(503);
    expect(notReady.body.checks.ari).to.deep.equal({
      status: 'failed',
      reason: 'ARI WebSocket is not connected',
    });
    expect(notReady.body.checks.store).to.deep.equal({ status: 'ok' });
    const metrics = await apiRequest(httpUrl, '/metrics', { key: null });
    expect(metrics.status).to.equal(200);
    expect(metrics.text).to.match(/^aricrm_ari_connected 0$/m);

    // Call commands need Asterisk: refused, nothing done, with a hint when to retry.
    const create = await apiRequest(httpUrl, '/v1/calls', {
      body: { operator: '101', to: '+74957654321' },
    });
    expect(create.status).to.equal(503);
    expect(create.body).to.deep.equal({
      code: 'ari_unavailable',
      message: 'the engine is not connected to Asterisk; nothing was done, retry shortly',
    });
    expect(create.headers.get('retry-after')).to.equal('5');
    const hangup = await apiRequest(
      httpUrl,
      '/v1/calls/3f0c2a4e-8b1d-4c6e-9a7f-0123456789ab/hangup',
      {
        method: 'POST',
      },
    );
    expect(hangup.status).to.equal(503);
    expect(hangup.body).to.include({ code: 'ari_unavailable' });
    // What the store holds is still served.
    expect((await apiRequest(httpUrl, '/v1/calls')).status).to.equal(200);
    expect((await apiRequest(httpUrl, '/v1/events')).status).to.equal(200);
    expect((await apiRequest(httpUrl, '/v1/webhooks/deliveries')).status).to.equal(200);

    // Asterisk comes up on that port: the engine connects by itself and is ready.
    sim = await startSimulator({
      port: ariPort,
      username: 'crm',
      password: 'process-test-ari-password',
      timeScale: 0.05,
    });
    await engine.waitForLine((l) => l.message === 'ARI connected');
    await until(
      async () => (await apiRequest(httpUrl, '/readyz', { key: null })).status === 200,
      '/readyz 200 once ARI is connected',
    );
    const accepted = await apiRequest(httpUrl, '/v1/calls', {
      body: { operator: '101', to: '+74957654321' },
    });
    expect(accepted.status).to.equal(202);
    expect(engine.stderr).to.equal('');
    expect(engine.lines.filter((l) => l.level === 'error')).to.deep.equal([]);
  });
});
