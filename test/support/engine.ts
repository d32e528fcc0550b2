/**
 * Start the whole engine in-process against the PBX simulator and a fake CRM, as a user would run
 * it (real ari-client, real HTTP), with simulated time sped up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger, type Logger, type LogLevel } from '../../src/logging/logger.ts';
import { startEngine, type Engine, type EngineOverrides } from '../../src/main.ts';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { FakeCrm } from './fake-crm.ts';

export interface TestBed {
  engine: Engine;
  sim: PbxSimulator;
  crm: FakeCrm;
  /** Every JSON log line the engine wrote. */
  logs: Array<Record<string, unknown>>;
  /** The engine's DATA_DIR (a fresh temporary directory unless `env` set one). */
  dataDir: string;
  stop(): Promise<void>;
}

/** The API key every test bed accepts (`API_KEYS=test:<this>`); see test/support/api.ts. */
export const TEST_API_KEY = 'test-api-key-0123456789abcdef';

/** Simulated time runs this much faster than real time in e2e tests. */
export const TIME_SCALE = 0.02;

/** `ms` of simulated time in real milliseconds. */
export const scaled = (ms: number): number => ms * TIME_SCALE;

/**
 * A logger writing at `level` and up whose JSON lines are pushed, parsed, to `logs` (a new array
 * unless given), in order.
 */
export function collectingLogger(
  level: LogLevel,
  logs: Array<Record<string, unknown>> = [],
): { logger: Logger; logs: Array<Record<string, unknown>> } {
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n'))
      if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { logger: createLogger({ level, stream }), logs };
}

/**
 * Start simulator + fake CRM + engine. `env` overrides configuration variables (strings, as in
 * the environment); CRM_ROUTE_URL / CRM_WEBHOOK_URL point at the fake CRM and API_KEYS holds
 * {@link TEST_API_KEY} unless overridden.
 */
export async function startTestBed(
  env: Record<string, string | undefined> = {},
  /** Engine hooks beyond the test bed's own (e.g. a notification dialer). */
  overrides: Pick<EngineOverrides, 'notificationDialer' | 'setOperatorStatus'> = {},
  /** `timeScale` of the simulator (default {@link TIME_SCALE}). */
  options: { timeScale?: number } = {},
): Promise<TestBed> {
  const ownDataDir = env.DATA_DIR === undefined;
  const dataDir = env.DATA_DIR ?? mkdtempSync(join(tmpdir(), 'ari-crm-test-'));
  const crm = await FakeCrm.start();
  const sim = await startSimulator({ timeScale: options.timeScale ?? TIME_SCALE });
  const { logger, logs } = collectingLogger('debug');
  const config = loadConfig({
    NODE_ENV: 'test',
    HTTP_PORT: '0',
    CRM_ROUTE_URL: crm.routeUrl,
    CRM_WEBHOOK_URL: crm.webhookUrl,
    WEBHOOK_SECRET: crm.secret,
    CRM_ROUTE_CACHE_TTL_MS: '0',
    API_KEYS: `test:${TEST_API_KEY}`,
    DATA_DIR: dataDir,
    // Presence off unless a test asks for it: its operator.state events would mix with the call
    // events the tests count, and its routing would skip an operator already on a call.
    OPERATOR_EXTENSIONS: 'none',
    ...env,
  });
  const engine = await startEngine(config, { ...overrides, logger, simulator: sim });
  return {
    engine,
    sim,
    crm,
    logs,
    dataDir,
    async stop() {
      await engine.stop();
      await sim.close();
      await crm.close();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
