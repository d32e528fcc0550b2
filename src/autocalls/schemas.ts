/**
 * Request schemas of the notification-call API (zod; the OpenAPI document is generated from
 * them). Validation errors name the field's path, e.g. `jobs.17.to` or `confirm.digit`.
 */
import { z } from 'zod';
import { cursorParam, limitParam } from '../http/query.ts';
import {
  AMD_STATUSES,
  ATTEMPT_RESULTS,
  AUTOCALL_STATUSES,
  DIAL_STATUSES,
  isKnownTimezone,
  MAX_AUTOCALL_ID,
  WEEKDAYS,
} from './model.ts';
import { MAX_JOBS_PAGE } from './store.ts';
import { verbListSchema } from '../calls/verbs/schema.ts';

/** Most jobs in one `POST /v1/campaigns/{id}/jobs`. */
export const MAX_JOBS_PER_REQUEST = 10_000;

/** Default attempts of a job that sets none (and whose campaign sets none). */
export const DEFAULT_AUTOCALL_TRIES = 3;

/** Default seconds between attempts of a job that sets none (and whose campaign sets none). */
export const DEFAULT_AUTOCALL_TRIES_PERIOD_SEC = 300;

const SOUND = /^(sound:)?[A-Za-z0-9_][A-Za-z0-9_\-/.]{0,254}$/;
const URL_MEDIA = /^(sound:)?https?:\/\/[^\s]{1,2040}$/;

/** One sound: `sound:NAME`, a bare Asterisk sound name, or an `http(s)://` WAV. */
export const soundSchema = z
  .string()
  .refine(
    (v) => (SOUND.test(v) && !v.includes('..')) || URL_MEDIA.test(v),
    'must be an Asterisk sound name (hello-world, sound:hello-world, custom/notice) or an http(s):// WAV URL',
  )
  .describe('An Asterisk sound (`hello-world`, `sound:custom/notice`) or an http(s):// WAV URL.');

const files = z
  .array(soundSchema)
  .min(1, 'must list 1-10 sounds')
  .max(10, 'must list 1-10 sounds')
  .describe('1-10 sounds played in order once the customer answers (and confirms).');

const confirm = z
  .strictObject({
    digit: z
      .string()
      .regex(/^[0-9*#]$/, 'must be one DTMF key: 0-9, * or #')
      .default('1')
      .describe('The key to press; default 1.'),
    prompt: z
      .array(soundSchema)
      .min(1, 'must list 1-10 sounds')
      .max(10, 'must list 1-10 sounds')
      .describe('The prompt, e.g. "Notification from company X. Press 1 to hear the message".'),
    timeoutSec: z
      .int('must be an integer')
      .min(1)
      .max(60)
      .default(5)
      .describe('Seconds to wait for the key after each prompt; default 5.'),
    repeats: z
      .int('must be an integer')
      .min(1)
      .max(5)
      .default(2)
      .describe('Times the prompt is played in all; default 2.'),
  })
  .describe('Play the files only after the customer pressed `digit`; without it: not delivered.');

const amdMs = (what: string, min: number, max: number) =>
  z
    .int('must be an integer')
    .min(min)
    .max(max)
    .optional()
    .describe(`${what} (${min}-${max} ms); default amd.conf's.`);

/** Answering-machine detection of a job (Asterisk's AMD() in the `[crm-amd]` context). */
export const amdSchema = z
  .strictObject({
    enabled: z.boolean().describe('Run answering-machine detection once the customer answers.'),
    onMachine: z
      .enum(['hangup', 'message'])
      .default('hangup')
      .describe(
        'A machine answered: `hangup` (default; nothing plays) or `message` (the message plays at once, without the confirm prompt). Either way the job ends `machine`, not retried.',
      ),
    initialSilenceMs: amdMs('Silence before the greeting after which it is a machine', 100, 10_000),
    greetingMs: amdMs('A greeting longer than this is a machine', 100, 10_000),
    afterGreetingSilenceMs: amdMs(
      'Silence after the greeting after which it is a person',
      100,
      10_000,
    ),
    totalAnalysisTimeMs: amdMs('Longest time AMD listens before it answers NOTSURE', 500, 30_000),
    maximumNumberOfWords: z
      .int('must be an integer')
      .min(1)
      .max(20)
      .optional()
      .describe("More words than this in the greeting is a machine (1-20); default amd.conf's."),
  })
  .describe(
    'Answering-machine detection (off by default): MACHINE ends the job `machine`; HUMAN and NOTSURE go on with the confirm prompt and the message.',
  );

/** Verbs a notification call cannot run: it has no operator to ring or transfer to. */
const OPERATOR_VERBS: ReadonlySet<string> = new Set(['dial', 'transfer']);

const verbs = verbListSchema
  .superRefine((list, ctx) => {
    list.forEach((verb, index) => {
      if (OPERATOR_VERBS.has(verb.verb))
        ctx.addIssue({
          code: 'custom',
          path: [index, 'verb'],
          message: `${verb.verb} is not available in notification calls (no operator takes part)`,
        });
    });
  })
  .describe(
    'A call script (docs/verbs.md) run once the customer answers, instead of `files`; `dial` and `transfer` are not available.',
  );

const variables = z
  .record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'names are 1-64 of letters, digits, _ . -'),
    z.union([z.string().max(1024), z.number(), z.boolean()]),
  )
  .refine((v) => Object.keys(v).length <= 50, 'at most 50 variables')
  .describe('CRM variables that travel with the job and its webhooks; values become strings.');

const tries = z
  .int('must be an integer')
  .min(1)
  .max(99)
  .describe(`Attempts in all (1-99) while busy or unanswered; default ${DEFAULT_AUTOCALL_TRIES}.`);
const triesPeriodSec = z
  .int('must be an integer')
  .min(1)
  .max(3600)
  .describe(
    `Seconds from the end of an attempt to the next (1-3600); default ${DEFAULT_AUTOCALL_TRIES_PERIOD_SEC}.`,
  );
const callerId = z
  .string()
  .regex(/^\+?[0-9]{1,32}$/, 'must be a number of 1-32 digits, maybe with +')
  .describe('Caller ID number to present; default COMPANY_CALLER_ID.');
const to = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .describe(
    "The customer's number in any human format; read in DEFAULT_REGION when written without +.",
  );

const jobFields = {
  to,
  files: files.optional(),
  verbs: verbs.optional(),
  confirm: confirm.optional(),
  amd: amdSchema.optional(),
  tries: tries.optional(),
  triesPeriodSec: triesPeriodSec.optional(),
  callerId: callerId.optional(),
  variables: variables.optional(),
};

/** One job of `POST /v1/campaigns/{id}/jobs` (`files` or `verbs` may come from the campaign). */
export const campaignJobSchema = z.strictObject(jobFields);

/** Body of `POST /v1/autocalls`. */
export const autocallBodySchema = z.strictObject({
  ...jobFields,
  campaignId: z
    .int('must be an integer')
    .min(1)
    .optional()
    .describe('The campaign the job belongs to (its limits, window and defaults apply).'),
});

/** Body of `POST /v1/campaigns/{id}/jobs`. */
export const campaignJobsBodySchema = z.strictObject({
  jobs: z
    .array(campaignJobSchema)
    .min(1, `must list 1-${MAX_JOBS_PER_REQUEST} jobs`)
    .describe(`1-${MAX_JOBS_PER_REQUEST} jobs, stored together (all or none).`),
});

const hhmm = z
  .string()
  .regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'must be a time HH:MM (00:00-23:59)');

/** The calling window of a campaign. */
export const windowSchema = z
  .strictObject({
    from: hhmm.describe('Opening time, HH:MM local time.'),
    to: hhmm.describe('Closing time (excluded), HH:MM local time; earlier than from: next day.'),
    timezone: z
      .string()
      .refine(isKnownTimezone, 'must be an IANA time zone, e.g. Europe/Moscow')
      .describe('IANA time zone of from and to, e.g. Europe/Moscow.'),
    days: z
      .array(z.enum(WEEKDAYS))
      .min(1, 'must list at least one day')
      .max(7)
      .optional()
      .describe('Days the window opens (mon … sun); default every day.'),
  })
  .describe('Outside this window the campaign places no new call (calls in progress finish).');

/** Body of `POST /v1/campaigns`. */
export const campaignBodySchema = z.strictObject({
  name: z.string().min(1, 'must not be empty').max(200).describe('A name for people.'),
  maxConcurrent: z
    .int('must be an integer')
    .min(1)
    .max(256)
    .describe('Calls of the campaign in progress at once, at most (1-256).'),
  callsPerSecond: z
    .number()
    .positive('must be more than 0')
    .max(100)
    .default(1)
    .describe('New calls per second, at most (evenly spaced; up to 100); default 1.'),
  window: windowSchema.optional(),
  defaults: z
    .strictObject({
      files: files.optional(),
      verbs: verbs.optional(),
      confirm: confirm.optional(),
      amd: amdSchema.optional(),
      tries: tries.optional(),
      triesPeriodSec: triesPeriodSec.optional(),
      callerId: callerId.optional(),
      variables: variables.optional(),
    })
    .optional()
    .describe('What the campaign’s jobs get unless they set it.'),
});

/** Query of `GET /v1/campaigns/{id}/jobs`. */
export const campaignJobsQuerySchema = z.strictObject({
  status: z.enum(AUTOCALL_STATUSES).optional().describe('Only jobs in this status.'),
  limit: limitParam(MAX_JOBS_PAGE, 100),
  cursor: cursorParam.optional(),
});

/** A job or campaign id in a path: a positive integer. */
export const idParamSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/, 'must be a positive integer')
  .transform(Number);

// Answers (the OpenAPI document's response schemas; the types are in ./types.ts).

const isoTime = z.string().describe('ISO 8601 UTC, e.g. 2025-01-31T09:15:02.123Z');

/** One attempt of a job. */
export const autocallAttemptSchema = z.object({
  attempt: z.int().min(1).describe('1-based.'),
  startedAt: isoTime,
  endedAt: isoTime,
  dialStatus: z.enum(DIAL_STATUSES).describe('Asterisk dial status of the customer channel.'),
  cause: z.int().optional().describe('Q.850 hang-up cause, when known.'),
  causeText: z.string().optional(),
  answeredAt: isoTime.optional(),
  digits: z.string().describe('DTMF digits pressed, in order.'),
  playedSec: z.int().min(0).describe('Whole seconds of the message that played.'),
  outcome: z.enum(ATTEMPT_RESULTS).describe('What the attempt achieved (docs/autocalls.md).'),
  callId: z.string().optional().describe('Engine call id of the attempt.'),
  amdStatus: z
    .enum(AMD_STATUSES)
    .optional()
    .describe('Answering-machine detection verdict (AMDSTATUS), when it ran and came back.'),
  amdCause: z
    .string()
    .optional()
    .describe('Its reason (AMDCAUSE), e.g. LONGGREETING-1500-1500 or TOOLONG-4800.'),
});

/** A job as the API answers it. */
export const autocallJobSchema = z.object({
  id: z.int().min(1).max(MAX_AUTOCALL_ID).describe('Job id; also the asterisk.fcgi AutoCallID.'),
  campaignId: z.int().min(1).optional(),
  status: z.enum(AUTOCALL_STATUSES),
  to: z.string().describe('Customer number, E.164.'),
  script: z.object({
    files: files.optional(),
    verbs: verbs.optional(),
    confirm: confirm.optional(),
    amd: amdSchema.optional(),
  }),
  callerId: z.string().optional(),
  variables: z.record(z.string(), z.string()).optional(),
  tries: z.int(),
  triesPeriodSec: z.int(),
  attemptsMade: z.int().min(0),
  nextAttemptAt: isoTime.optional().describe('When the next attempt is due (queued jobs).'),
  createdAt: isoTime,
  updatedAt: isoTime,
  finishedAt: isoTime.optional(),
  attempts: z
    .array(autocallAttemptSchema)
    .optional()
    .describe('Every attempt, oldest first (GET /v1/autocalls/{id}).'),
});

/** A campaign as the API answers it. */
export const campaignSchema = z.object({
  id: z.int().min(1),
  name: z.string(),
  maxConcurrent: z.int(),
  callsPerSecond: z.number(),
  window: windowSchema.optional(),
  defaults: campaignBodySchema.shape.defaults,
  state: z.enum(['active', 'paused', 'canceled']),
  createdAt: isoTime,
  updatedAt: isoTime,
  counts: z
    .object({
      queued: z.int().min(0),
      in_progress: z.int().min(0),
      delivered: z.int().min(0),
      busy: z.int().min(0),
      no_answer: z.int().min(0),
      failed: z.int().min(0),
      canceled: z.int().min(0),
      machine: z.int().min(0),
    })
    .optional()
    .describe('Jobs per status (GET /v1/campaigns/{id}).'),
});

/** A page of a campaign's jobs. */
export const autocallJobPageSchema = z.object({
  items: z.array(autocallJobSchema).describe('Jobs in creation order.'),
  nextCursor: z
    .string()
    .optional()
    .describe('Next page: `cursor=<this>`; absent on the last page.'),
});

/** The answer of `POST /v1/campaigns/{id}/jobs`. */
export const campaignJobsAcceptedSchema = z.object({
  campaignId: z.int().min(1),
  count: z.int().min(1).describe('Jobs stored.'),
  ids: z.array(z.int().min(1)).describe('Their ids, in the order of the request.'),
});
