/** Configuration of notification calls: the live-call cap, leases, ringing, answering machines. */
import { z } from 'zod';

/** AUTOCALL_*. */
export const autocallFields = {
  AUTOCALL_MAX_LIVE_CALLS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(30)
    .describe(
      'Toll-fraud guard of notification calls: notification calls this engine has in progress at once, at most (its own cap, apart from MAX_LIVE_ORIGINATED_CALLS); due jobs wait meanwhile.',
    ),
  AUTOCALL_LEASE_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(3_600_000)
    .default(60_000)
    .describe(
      'Lease of a notification call attempt, ms: the engine placing it renews it every third of this while the call runs; an engine killed mid-attempt loses it after this long, and another engine (or the next start) then records the attempt lost and retries the job.',
    ),
  AUTOCALL_RING_TIMEOUT_SEC: z.coerce
    .number()
    .int()
    .min(5)
    .max(300)
    .default(30)
    .describe(
      'Seconds a notification call rings the customer before giving up (the attempt is then no_answer and retried per the job).',
    ),
  AUTOCALL_AMD_CONTEXT: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,79}$/, 'must be a dialplan context name (letters, digits, _ and -)')
    .default('crm-amd')
    .describe(
      'Dialplan context a notification call with answering-machine detection ("amd": {"enabled": true}) is continued to once answered, at extension s, priority 1: it runs AMD() and returns with Stasis(<app>,amd,${AMDSTATUS},${AMDCAUSE}) (asterisk-conf/extensions.conf ships it).',
    ),
};
