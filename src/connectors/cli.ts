/**
 * `npm run connector -- <connector> <command>`: one-off commands of the CRM connectors, with
 * the engine's configuration (environment over `./.env`).
 *
 * - `retailcrm register`: register (or update) the engine's telephony module in retailCRM
 *   (`POST /api/v5/integration-modules/{code}/edit`): `makeCallUrl` and `changeUserStatusUrl`
 *   at PUBLIC_URL, incoming/outgoing/hang-up events supported, the extension codes
 *   (`additionalCodes`: those already in the module, RETAILCRM_EXTENSIONS overriding them).
 * - `retailcrm show`: print the module JSON `register` would send, without sending it.
 * - `retailcrm extensions`: print the employee ↔ extension map (the CRM's and the overrides).
 * - `bitrix24 bind` / `bitrix24 extensions`: see ./bitrix24/cli.ts.
 *
 * Exit status: 0 done, 1 the CRM refused or could not be reached, 2 bad usage or configuration.
 */
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../config/load.ts';
import { createLogger } from '../logging/logger.ts';
import { loadEngineConfig } from '../engine/config.ts';
import { runBitrix24Command } from './bitrix24/cli.ts';
import { retailCrmFromConfig } from './index.ts';

const USAGE =
  'usage: npm run connector -- retailcrm register|show|extensions | bitrix24 bind|extensions';

/**
 * Run a command; resolves with the exit status. `out` / `err` receive the output lines.
 *
 * @param env the environment to read the configuration from (default the process's)
 */
export async function runConnectorCommand(
  args: readonly string[],
  out: (line: string) => void,
  err: (line: string) => void,
  env?: Record<string, string | undefined>,
): Promise<number> {
  const [name, command] = args;
  if (name === 'bitrix24') return runBitrix24Command(command, out, err, env ?? process.env);
  if (name !== 'retailcrm' || !['register', 'show', 'extensions'].includes(command ?? '')) {
    err(USAGE);
    return 2;
  }
  let config;
  try {
    config = loadEngineConfig({ ...(env ?? process.env), CRM_CONNECTOR: 'retailcrm' });
  } catch (e) {
    err(e instanceof ConfigError || e instanceof Error ? e.message : String(e));
    return 2;
  }
  const logger = createLogger({ level: 'warn', defaultMeta: { service: 'ari-crm-connector' } });
  const connector = retailCrmFromConfig(config, {
    calls: { getCall: () => Promise.resolve(undefined) },
    logger,
  });
  await connector.directory.refresh();
  if (command === 'extensions') {
    for (const entry of connector.directory.entries()) out(`${entry.userId}=${entry.extension}`);
    return 0;
  }
  let module;
  try {
    module = connector.registration();
  } catch (e) {
    err(e instanceof Error ? e.message : String(e));
    return 2;
  }
  if (command === 'show') {
    out(JSON.stringify(module, null, 2));
    return 0;
  }
  const answer = await connector.register();
  const problem = answer.ok
    ? connector.checkAnswer?.({ method: 'POST', path: 'integration-modules' }, answer.json)
    : answer.detail;
  if (problem !== undefined) {
    err(`retailCRM refused the module registration: ${problem}`);
    return 1;
  }
  out(
    `registered the telephony module "${config.RETAILCRM_MODULE_CODE}" in ${config.RETAILCRM_URL}`,
  );
  out(
    `makeCallUrl: ${(module.integrations as { telephony: { makeCallUrl: string } }).telephony.makeCallUrl}`,
  );
  return 0;
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  runConnectorCommand(
    process.argv.slice(2),
    (line) => process.stdout.write(`${line}\n`),
    (line) => process.stderr.write(`${line}\n`),
  ).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
