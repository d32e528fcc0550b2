/**
 * `npm run connector -- bitrix24 <command>` (see src/connectors/cli.ts), with the engine's
 * configuration and store (the OAuth tokens the engine keeps there, refreshed ones included):
 *
 * - `bind`: `event.bind` `ONEXTERNALCALLSTART` → PUBLIC_URL + `/connectors/bitrix24/events`
 *   (click-to-call from Bitrix24; a local application only);
 * - `extensions`: print the user ↔ extension map (`UF_PHONE_INNER` and BITRIX24_EXTENSIONS).
 *
 * Exit status: 0 done, 1 Bitrix24 refused or could not be reached, 2 bad usage or configuration.
 */
import { ConfigError } from '../../config/load.ts';
import { createLogger } from '../../logging/logger.ts';
import { loadEngineConfig, storeUrl } from '../../engine/config.ts';
import { createConnectorState } from '../../store/connector-state.ts';
import { createStore } from '../../store/index.ts';
import { bitrix24FromConfig } from '../index.ts';

/** The commands of the Bitrix24 connector. */
export const BITRIX24_COMMANDS = ['bind', 'extensions'] as const;

/** Run `command`; resolves with the exit status. */
export async function runBitrix24Command(
  command: string | undefined,
  out: (line: string) => void,
  err: (line: string) => void,
  env: Record<string, string | undefined>,
): Promise<number> {
  if (!(BITRIX24_COMMANDS as readonly string[]).includes(command ?? '')) {
    err(`usage: npm run connector -- bitrix24 ${BITRIX24_COMMANDS.join('|')}`);
    return 2;
  }
  let config;
  try {
    config = loadEngineConfig({ ...env, CRM_CONNECTOR: 'bitrix24' });
  } catch (e) {
    err(e instanceof ConfigError || e instanceof Error ? e.message : String(e));
    return 2;
  }
  const logger = createLogger({ level: 'warn', defaultMeta: { service: 'ari-crm-connector' } });
  const store = createStore({
    url: storeUrl(config),
    logger,
    ...(config.DATABASE_SCHEMA ? { schema: config.DATABASE_SCHEMA } : {}),
  });
  try {
    await store.migrate();
    const connector = bitrix24FromConfig(config, {
      calls: { getCall: () => Promise.resolve(undefined) },
      state: () => createConnectorState(store.db, 'bitrix24'),
      logger,
    });
    if (command === 'extensions') {
      await connector.directory.refresh();
      if (!connector.directory.fromCrm) err('could not read the Bitrix24 users (see the log)');
      for (const entry of connector.directory.entries()) out(`${entry.userId}=${entry.extension}`);
      return connector.directory.fromCrm ? 0 : 1;
    }
    let answer;
    try {
      answer = await connector.bind();
    } catch (e) {
      err(e instanceof Error ? e.message : String(e));
      return 2;
    }
    if (!answer.ok) {
      err(`Bitrix24 refused event.bind: ${answer.detail}`);
      return 1;
    }
    out(
      `bound ONEXTERNALCALLSTART to ${config.PUBLIC_URL!.replace(/\/+$/, '')}/connectors/bitrix24/events`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
