/** Configuration of call recordings: what is recorded, where it is kept, signed links. */
import { z } from 'zod';
import { bool, httpUrl } from './fields.ts';

/** RECORD_CALLS, RECORDINGS_DIR, RECORDING_*, and PUBLIC_URL (the base of links). */
export const recordingFields = {
  RECORD_CALLS: z
    .enum(['none', 'all', 'inbound', 'outbound'])
    .default('none')
    .describe(
      'Which bridged calls are recorded (docs/recordings.md): none | all | inbound | outbound. A CRM route answer ("record": true/false) or a click-to-call request ("record") overrides it per call.',
    ),
  RECORDINGS_DIR: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Directory where recordings are kept (<YYYY>/<MM>/<DD>/<callId>.wav). Unset: <DATA_DIR>/recordings.',
    ),
  RECORDING_LINK_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters')
    .optional()
    .describe(
      'HMAC-SHA256 key of signed recording links (?expires=&sig=), at least 32 characters, e.g. openssl rand -hex 32. Required in production when RECORD_CALLS is not none; unset in development: a random key per run (links die on restart). Never logged.',
    ),
  RECORDING_LINK_TTL_SEC: z.coerce
    .number()
    .int()
    .min(60)
    .max(31_536_000)
    .default(604_800)
    .describe(
      'How long a signed recording link works after it was issued, in seconds (default 7 days). GET /v1/calls/{id} gives a fresh one.',
    ),
  PUBLIC_URL: httpUrl
    .optional()
    .describe(
      'Base URL the CRM and its users reach this engine at, e.g. https://pbx-engine.example.com: recording links start with it, and the retailCRM and Bitrix24 connectors register it. Unset: links start with the HTTP listen address (http://HTTP_HOST:HTTP_PORT); when that is a wildcard or loopback address (0.0.0.0, ::, 127.0.0.1), production refuses to start if calls are recorded or CRM_CONNECTOR is retailcrm or bitrix24 (with BITRIX24_URL), and other setups log a warning at start. On another address (e.g. 10.0.0.5) links are plain http:// to it, which a CRM reaching the engine through a reverse proxy with TLS or a NAT cannot use: production logs a warning at start naming PUBLIC_URL. Behind a proxy or NAT, set it to the address the CRM uses.',
    ),
  RECORDING_DOWNLOAD_ATTEMPTS: z.coerce
    .number()
    .int()
    .min(1)
    .max(20)
    .default(5)
    .describe(
      'Tries to download a finished recording from Asterisk, verify and store it before it is reported failed.',
    ),
  RECORDING_RETRY_DELAY_MS: z.coerce
    .number()
    .int()
    .min(1)
    .max(600_000)
    .default(2000)
    .describe(
      'Delay before the second download try, in milliseconds; doubled before each further try (at most 60000).',
    ),
  RECORDING_DELETE_FROM_ASTERISK: bool
    .default(true)
    .describe(
      'Delete a recording from Asterisk (DELETE /recordings/stored/{name}) once the engine stored it (true/false).',
    ),
};
