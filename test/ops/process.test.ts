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
import { EngineProcess, MAIN, TSX_LOADER } from '../support/engine-process.ts';
import { TEST_API_KEY } from '../support/engine.ts';

describe('the engine process (e2e)', function () {
  this.timeout(60_000);
  let engine: EngineProcess | undefined;
  let dataDir: string | undefined;
  let crm: Server | undefined;
  afterEach(async () => {
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

    const started = await engine.waitForLine((l) => l.message === 'ari-crm started');
    const httpUrl = String(started.httpUrl);
    expect(httpUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await apiRequest(httpUrl, '/readyz', { key: null })).status).to.equal(200);

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
});
