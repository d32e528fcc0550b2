/**
 * The acceptance test bed: a real Asterisk from the kit (its own home, conf folder and free ports),
 * a TCP proxy in front of its HTTP port, the engine as a real process (`node --import tsx
 * src/main.ts`, as `npm start` runs it) connected through that proxy, a local HTTP server as the
 * CRM (route lookups and signed webhooks), and the public API over HTTP.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { apiRequest, type ApiAnswer, type ApiRequestOptions } from '../../support/api.ts';
import { EngineProcess, MAIN, TSX_LOADER } from '../../support/engine-process.ts';
import { TEST_API_KEY } from '../../support/engine.ts';
import { FakeCrm, type ReceivedWebhook } from '../../support/fake-crm.ts';
import { until } from '../../support/until.ts';
import {
  KIT_PORT_BLOCK,
  KitAsterisk,
  layOutPorts,
  onProcessExit,
  writeReferenceConf,
  type KitPorts,
} from './kit.ts';
import { freePortBlock } from './ports.ts';
import { TcpProxy } from './proxy.ts';
import { stopAllSipp } from './sipp.ts';

/** The kit's reference ARI user (conf/ari.conf). */
export const KIT_ARI = { user: 'crm', password: 'crm-secret' };

/** The stored or live call as GET /v1/calls/{id} answers it. */
export interface CallRecord {
  id: string;
  direction: 'in' | 'out';
  state: string;
  from: string;
  to: string;
  answeredBy?: string;
  disposition?: string;
  hangupBy?: string;
  endReason?: string;
  waitSec: number;
  talkSec: number;
  recording?: { status: string; bytes?: number; url?: string };
  legs: Array<{ channelId: string; role: string; extension?: string; outcome?: string }>;
}

/** Start an engine process with `env` and wait until its Stasis app is registered in Asterisk. */
export async function startEngineProcess(
  asterisk: KitAsterisk,
  env: Record<string, string>,
): Promise<{ engine: EngineProcess; httpUrl: string }> {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN], {
    cwd: env.DATA_DIR,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const engine = new EngineProcess(child);
  const forget = onProcessExit(() => child.kill('SIGKILL'));
  child.once('exit', forget);
  const started = await engine.waitForLine((l) => l.message === 'ari-crm started', 60_000);
  // The API listens before ARI connects and refuses call commands (503) until the gateway is
  // connected: its event filter set, after Asterisk already lists the application.
  await engine.waitForLine((l) => l.message === 'ARI connected', 60_000);
  await until(
    async () => (await asterisk.ari(`/applications/${env.ARI_APP ?? 'crm-app'}`)).status === 200,
    'the engine to register its Stasis application',
    20_000,
  );
  return { engine, httpUrl: String(started.httpUrl) };
}

/** Real Asterisk + proxy + engine process + fake CRM. */
export class AcceptanceBed {
  engine: EngineProcess | undefined;
  httpUrl = '';

  private constructor(
    readonly asterisk: KitAsterisk,
    readonly proxy: TcpProxy,
    readonly crm: FakeCrm,
    readonly dataDir: string,
  ) {}

  get ports(): KitPorts {
    return this.asterisk.ports;
  }

  /** Start Asterisk with the kit's reference configuration on free ports, the proxy and the CRM. */
  static async start(): Promise<AcceptanceBed> {
    const ports = layOutPorts(await freePortBlock(KIT_PORT_BLOCK));
    const conf = await writeReferenceConf(ports);
    const asterisk = await KitAsterisk.start(conf, ports, KIT_ARI);
    try {
      const proxy = await TcpProxy.start(ports.http);
      const crm = await FakeCrm.start();
      const dataDir = await mkdtemp(join(tmpdir(), 'ari-crm-accept-data-'));
      onProcessExit(() => rmSync(dataDir, { recursive: true, force: true }));
      return new AcceptanceBed(asterisk, proxy, crm, dataDir);
    } catch (error) {
      await asterisk.stop();
      throw error;
    }
  }

  /** The engine's environment: ARI through the proxy, the fake CRM, a temp DATA_DIR. */
  engineEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      ARI_URL: `http://127.0.0.1:${this.proxy.port}`,
      ARI_USERNAME: KIT_ARI.user,
      ARI_PASSWORD: KIT_ARI.password,
      ARI_RECONNECT_MAX_DELAY_MS: '500',
      DATA_DIR: this.dataDir,
      API_KEYS: `test:${TEST_API_KEY}`,
      CRM_ROUTE_URL: this.crm.routeUrl,
      CRM_WEBHOOK_URL: this.crm.webhookUrl,
      WEBHOOK_SECRET: this.crm.secret,
      CRM_ROUTE_CACHE_TTL_MS: '0',
      WEBHOOK_RETRY_INITIAL_DELAY_MS: '100',
      OPERATOR_IP_MAP: '127.0.0.1=101',
      DESTINATION_ALLOWLIST: '*',
      CALLS_RATE_LIMIT_PER_MIN: '1000',
      MAX_LIVE_ORIGINATED_CALLS: '100',
      RECORDING_RETRY_DELAY_MS: '200',
      SHUTDOWN_TIMEOUT_MS: '3000',
      NO_ANSWER_DIALPLAN: 'service,9999,1',
      // Presence has its own scenario file (operators.test.ts, its own engine); here one
      // operator takes many calls at once (the load scenario).
      OPERATOR_EXTENSIONS: 'none',
      ...extra,
    };
  }

  /** Start the engine process (after a stop or a kill: the same DATA_DIR, so it adopts calls). */
  async startEngine(extra: Record<string, string> = {}): Promise<void> {
    const { engine, httpUrl } = await startEngineProcess(this.asterisk, this.engineEnv(extra));
    this.engine = engine;
    this.httpUrl = httpUrl;
  }

  /** SIGKILL the engine (a crash) and wait for its exit. */
  async killEngine(): Promise<void> {
    const child = this.engine?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  /** SIGTERM the engine and wait for its exit (SIGKILL after 10 s). */
  async stopEngine(): Promise<void> {
    const child = this.engine?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** One request to the engine's API with the test key. */
  api<T = Record<string, unknown>>(
    path: string,
    options?: ApiRequestOptions,
  ): Promise<ApiAnswer<T>> {
    return apiRequest<T>(this.httpUrl, path, options);
  }

  /** GET /v1/calls/{id}. */
  async call(callId: string): Promise<CallRecord> {
    const answer = await this.api<CallRecord>(`/v1/calls/${callId}`);
    expect(answer.status, answer.text).to.equal(200);
    return answer.body;
  }

  /** The first `call.started` webhook whose call is not in `seen` (a new inbound call). */
  async nextCallStarted(timeoutMs = 20_000): Promise<ReceivedWebhook> {
    const seen = new Set(
      this.crm.webhooks.filter((w) => w.body.type === 'call.started').map((w) => w.body.callId),
    );
    return this.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && !seen.has(w.body.callId),
      timeoutMs,
    );
  }

  /**
   * Wait until Asterisk holds exactly one bridge with both parties in it (the engine emits
   * `call.answered` before it has bridged them).
   */
  async waitBridged(timeoutMs = 15_000): Promise<void> {
    await until(
      async () => {
        const bridges = await this.asterisk.ari<Array<{ channels: string[] }>>('/bridges');
        return bridges.body.length === 1 && bridges.body[0]!.channels.length === 2;
      },
      'caller and operator bridged in Asterisk',
      timeoutMs,
    );
  }

  /** Wait for the `type` webhook of `callId`. */
  waitFor(callId: string, type: string, timeoutMs = 20_000): Promise<ReceivedWebhook> {
    return this.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === type,
      timeoutMs,
    );
  }

  /**
   * The webhook types of `callId` in order, after checking that each carries a valid
   * X-Signature and that their sequence numbers run 1, 2, 3, … without gaps. Webhooks are
   * delivered at least once: a redelivery (same event id, e.g. after an engine crash) must be the
   * same event and is counted once.
   */
  webhookTypes(callId: string): string[] {
    const byId = new Map<string, ReceivedWebhook>();
    for (const event of this.crm.eventsOf(callId)) {
      expect(event.signatureValid, `X-Signature of ${event.body.type}`).to.equal(true);
      const first = byId.get(event.body.id);
      if (first) expect(event.body, 'a redelivered event').to.deep.equal(first.body);
      else byId.set(event.body.id, event);
    }
    const events = [...byId.values()].sort((a, b) => a.body.sequence - b.body.sequence);
    expect(events.map((e) => e.body.sequence)).to.deep.equal(events.map((_, i) => i + 1));
    return events.map((e) => e.body.type);
  }

  /** The `call.ended` data of `callId` (waits for it). */
  async ended(callId: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    return (await this.waitFor(callId, 'call.ended', timeoutMs)).body.data;
  }

  /** The engine's log lines about `callId` (or its last 80 lines), for a failed test's report. */
  engineLog(callId?: string): string {
    const lines = (this.engine?.lines ?? []).filter(
      (l) => !callId || JSON.stringify(l).includes(callId),
    );
    return lines
      .slice(-80)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  /**
   * Between tests: stop every SIPp phone, start the engine again if a test left it stopped, and
   * hang up whatever a failed test left in Asterisk, so that one failure does not cascade.
   */
  async reset(): Promise<void> {
    // Hang up first, while the phones still answer the BYEs: a BYE to a phone already gone is
    // retransmitted for half a minute and would reach the next test's phone on the same port.
    this.proxy.restore();
    this.proxy.disarm();
    const child = this.engine?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) await this.startEngine();
    const channels = await this.asterisk.ari<Array<{ id: string }>>('/channels');
    for (const channel of channels.body)
      await this.asterisk.ari(`/channels/${channel.id}`, 'DELETE');
    const bridges = await this.asterisk.ari<Array<{ id: string }>>('/bridges');
    for (const bridge of bridges.body) await this.asterisk.ari(`/bridges/${bridge.id}`, 'DELETE');
    await this.asterisk.waitIdle();
    await stopAllSipp();
  }

  /** Stop everything this bed started (engine, proxy, CRM, Asterisk) and delete its folders. */
  async stop(): Promise<void> {
    // Each step is timed: a slow stop (Asterisk's `core stop now` can take its time) names the
    // step in the test output instead of only failing the hook's timeout.
    const took: Record<string, number> = {};
    const step = async (name: string, run: () => Promise<unknown>): Promise<void> => {
      const started = Date.now();
      try {
        await run();
      } finally {
        took[name] = Date.now() - started;
      }
    };
    await step('engine', () => this.killEngine());
    await step('proxy', () => this.proxy.close());
    await step('crm', () => this.crm.close());
    await step('asterisk', () => this.asterisk.stop());
    await step('data', () => rm(this.dataDir, { recursive: true, force: true }));
    const totalMs = Object.values(took).reduce((a, b) => a + b, 0);
    if (totalMs > 5000) console.warn(`acceptance bed stop took ${totalMs} ms:`, took);
  }
}

let shared: Promise<AcceptanceBed> | undefined;

/**
 * The bed the scenario files share (one Asterisk and one engine for the whole run: starting the
 * engine process takes seconds), started on first use with the engine's `NO_ANSWER_DIALPLAN`
 * pointing at the kit's service number 9999 (answer, hello-world, hang up).
 */
export function sharedBed(): Promise<AcceptanceBed> {
  shared ??= (async () => {
    const bed = await AcceptanceBed.start();
    try {
      await bed.startEngine();
    } catch (error) {
      await bed.stop();
      throw error;
    }
    return bed;
  })();
  return shared;
}

/**
 * Stop the shared bed (a root `after` hook of each scenario file; idempotent). Allowed a minute:
 * `run.sh stop` alone may take up to 30 s (Asterisk's `core stop now`, then SIGKILL).
 */
export async function stopSharedBed(this: Mocha.Context | void): Promise<void> {
  this?.timeout(60_000);
  const bed = shared;
  shared = undefined;
  if (!bed) return;
  await stopAllSipp();
  await (await bed.catch(() => undefined))?.stop();
}
