/**
 * The engine's configuration: the schema (src/config/) plus every start-up check that needs the
 * domains (security, connectors, recordings, public links, the fallback route). Used by the
 * engine (src/main.ts) and by the command-line tools that open the engine's store.
 */
import { join } from 'node:path';
import { loadConfig, type ConfigCheck } from '../config/load.ts';
import { publicUrlConfigCheck } from '../config/public-url.ts';
import type { Config } from '../config/schema.ts';
import { connectorConfigCheck } from '../connectors/index.ts';
import { parseRouteSpec } from '../crm/index.ts';
import { recordingsConfigCheck } from '../recordings/config.ts';
import { securityConfigCheck } from '../security/index.ts';

/** DATABASE_URL, or the SQLite file in DATA_DIR. */
export function storeUrl(config: Config): string {
  return config.DATABASE_URL ?? `sqlite:${join(config.DATA_DIR, 'ari-crm.sqlite')}`;
}

/**
 * Every check of the configuration the engine makes before it starts, beyond the schema: the
 * security settings (API_KEYS in production, destination patterns), the recordings settings
 * (RECORDING_LINK_SECRET in production), PUBLIC_URL (in production, when links would name a
 * wildcard or loopback listen address) and FALLBACK_ROUTE. `npm start` and `node dist/main.js`
 * run them all; so does the test that checks docker/compose.yaml with docker/env.example.
 */
export const ENGINE_CONFIG_CHECKS: readonly ConfigCheck[] = [
  securityConfigCheck,
  connectorConfigCheck,
  recordingsConfigCheck,
  publicUrlConfigCheck,
  (c) => {
    try {
      parseRouteSpec(c.FALLBACK_ROUTE, c.RING_TIMEOUT_SEC);
      return [];
    } catch (err) {
      return [`FALLBACK_ROUTE: ${err instanceof Error ? err.message : String(err)}`];
    }
  },
];

/**
 * The engine's configuration from `env` (default: the process environment over `./.env`), with
 * every start-up check of {@link ENGINE_CONFIG_CHECKS}.
 *
 * @throws ConfigError naming each bad or missing variable
 */
export function loadEngineConfig(env?: Record<string, string | undefined>): Config {
  return loadConfig(env, [...ENGINE_CONFIG_CHECKS]);
}
