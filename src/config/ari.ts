/** Configuration of the connection to Asterisk (ARI), and of the simulator standing in for it. */
import { z } from 'zod';
import { extensionList, httpUrl, port } from './fields.ts';

/** ARI_URL, ARI_USERNAME, ARI_PASSWORD, ARI_APP, ARI_RECONNECT_MAX_DELAY_MS. */
export const ariFields = {
  ARI_URL: httpUrl
    .optional()
    .describe(
      'Asterisk HTTP base URL, e.g. http://127.0.0.1:8088 (no /ari). Unset: the built-in PBX simulator is used (not allowed in production).',
    ),
  ARI_USERNAME: z.string().min(1).default('asterisk').describe('ARI user (ari.conf).'),
  ARI_PASSWORD: z
    .string()
    .min(1)
    .default('asterisk')
    .describe('ARI password (ari.conf). The default is refused in production. Never logged.'),
  ARI_APP: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('crm-app')
    .describe('Stasis application name used in the dialplan: Stasis(crm-app,inbound,${EXTEN}).'),
  ARI_RECONNECT_MAX_DELAY_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(10_000)
    .describe('Upper bound of the ARI reconnect backoff, in milliseconds.'),
};

/** SIM_*: the built-in PBX simulator (development and tests only). */
export const simulatorFields = {
  SIM_EXTENSIONS: extensionList
    .default(['101', '102', '103'])
    .describe('Simulator only: operator extensions the simulated PBX has.'),
  SIM_TIME_SCALE: z.coerce
    .number()
    .positive()
    .max(100)
    .default(1)
    .describe('Simulator only: 1 = real time; 0.1 makes every simulated delay 10x shorter.'),
  SIM_ANSWER_STAGGER_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(700)
    .describe(
      'Simulator only: each operator phone answers this much later than the one before it in SIM_EXTENSIONS, in simulated milliseconds (101 after 1000, 102 after 1700, 103 after 2400 by default), so on a ring-all call one operator answers first and the other phones stop ringing, as with real people. 0: every phone answers after 1000 ms.',
    ),
  SIM_ARI_PORT: port
    .default(0)
    .describe('Simulator only: port of its ARI server (0 = any free port).'),
};
