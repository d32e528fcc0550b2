/**
 * The HTTP app as the engine builds it (createSecurity + createApi + createHttpApp), over a fake
 * CallControl, on a real local port. Configuration comes from environment-style strings, as in
 * production.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { loadConfig } from '../../../src/config/load.ts';
import { createApi } from '../../../src/http/api.ts';
import { createHttpApp } from '../../../src/http/app.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { createSecurity } from '../../../src/security/index.ts';
import { TEST_API_KEY } from '../../support/engine.ts';
import { FakeCallControl } from './fake-control.ts';

export interface ApiTestApp {
  url: string;
  control: FakeCallControl;
  registry: Registry;
  /** Every JSON log line. */
  logs: Array<Record<string, unknown>>;
  /** Every raw log line (to check that no key is ever written). */
  rawLogs: string[];
  close(): Promise<void>;
}

/** Start the API on 127.0.0.1 with `env` over `API_KEYS=test:<TEST_API_KEY>`. */
export async function startApiApp(
  env: Record<string, string | undefined> = {},
  control = new FakeCallControl(),
): Promise<ApiTestApp> {
  const logs: Array<Record<string, unknown>> = [];
  const rawLogs: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      rawLogs.push(line);
      logs.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  const logger = createLogger({ level: 'debug', stream });
  const config = loadConfig({ NODE_ENV: 'test', API_KEYS: `test:${TEST_API_KEY}`, ...env });
  const registry = new Registry();
  const app = createHttpApp({
    logger,
    registry,
    readiness: {},
    trustProxy: config.TRUST_PROXY,
    ...createApi({
      config,
      control,
      registry,
      logger,
      security: createSecurity({ config, logger, registry }),
    }),
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    control,
    registry,
    logs,
    rawLogs,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
