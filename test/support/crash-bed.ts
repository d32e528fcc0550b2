/**
 * The set-up of the crash tests (test/e2e/*-crash.test.ts, test/e2e/journal-log.test.ts): the PBX
 * simulator and a fake CRM run in the test process, so the calls outlive an engine process that
 * is killed (SIGKILL); the engines (processes, and the next start in the test process) share one
 * DATA_DIR and the same configuration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import {
  startSimulator,
  type PbxSimulator,
  type SimulatorOptions,
} from '../../src/simulator/index.ts';
import { apiRequest } from './api.ts';
import { collectingLogger, TEST_API_KEY } from './engine.ts';
import { EngineProcess } from './engine-process.ts';
import { FakeCrm } from './fake-crm.ts';
import { until } from './until.ts';

/** Simulator + fake CRM + DATA_DIR, and every engine started on them until {@link close}. */
export class CrashBed {
  /** Every JSON log line (info and up) of the engines started by {@link restart}. */
  readonly logs: Array<Record<string, unknown>> = [];
  private readonly processes: EngineProcess[] = [];
  private readonly engines: Engine[] = [];

  private constructor(
    readonly sim: PbxSimulator,
    readonly crm: FakeCrm,
    readonly dataDir: string,
    /**
     * The engines' environment: HTTP on 127.0.0.1 (a free port), API_KEYS with TEST_API_KEY,
     * ARI on the simulator, the CRM's route and webhook URLs and secret, DATA_DIR.
     */
    readonly env: Record<string, string>,
  ) {}

  /**
   * Start the simulator with `simOptions` and the fake CRM in a fresh DATA_DIR; `extraEnv` adds
   * to (or overrides) {@link env}.
   */
  static async start(
    simOptions: SimulatorOptions,
    extraEnv: Record<string, string> = {},
  ): Promise<CrashBed> {
    const sim = await startSimulator(simOptions);
    const crm = await FakeCrm.start().catch(async (error: unknown) => {
      await sim.close();
      throw error;
    });
    const dataDir = mkdtempSync(join(tmpdir(), 'ari-crm-crash-'));
    return new CrashBed(sim, crm, dataDir, {
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      API_KEYS: `test:${TEST_API_KEY}`,
      DATA_DIR: dataDir,
      ARI_URL: sim.url,
      ARI_USERNAME: sim.username,
      ARI_PASSWORD: sim.password,
      CRM_ROUTE_URL: crm.routeUrl,
      CRM_WEBHOOK_URL: crm.webhookUrl,
      WEBHOOK_SECRET: crm.secret,
      ...extraEnv,
    });
  }

  /**
   * An engine process on the bed (see {@link EngineProcess.spawn}), once it has logged
   * `ari-crm started` and `/readyz` answers 200 (ARI connected).
   *
   * @throws Error when it does not start within START_TIMEOUT_MS or is not ready 30 s later
   */
  async startProcess(): Promise<{ engine: EngineProcess; httpUrl: string }> {
    const engine = EngineProcess.spawn(this.env);
    this.processes.push(engine);
    const httpUrl = String((await engine.started()).httpUrl);
    await until(
      async () => (await apiRequest(httpUrl, '/readyz', { key: null })).status === 200,
      'the engine ready',
      30_000,
    );
    return { engine, httpUrl };
  }

  /**
   * The next start after a crash, in the test process (NODE_ENV=test, the same {@link env}, the
   * simulator passed in); its log lines go to {@link logs}.
   */
  async restart(): Promise<Engine> {
    const { logger } = collectingLogger('info', this.logs);
    const engine = await startEngine(loadConfig({ NODE_ENV: 'test', ...this.env }), {
      logger,
      simulator: this.sim,
    });
    this.engines.push(engine);
    return engine;
  }

  /** Kill the engine processes, stop the other engines, the simulator and the CRM; remove DATA_DIR. */
  async close(): Promise<void> {
    for (const engine of this.processes.splice(0)) await engine.kill();
    for (const engine of this.engines.splice(0)) await engine.stop();
    await this.sim.close();
    await this.crm.close();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
