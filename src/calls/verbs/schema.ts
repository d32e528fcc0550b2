/**
 * The call script: a JSON list of verbs run in order on one channel (docs/verbs.md), validated
 * with zod. Every number is bounded, every media item is either a sound of Asterisk's own
 * (`sound:NAME`) or an `http(s)://` WAV that Asterisk fetches itself (played as
 * `sound:http://…`), and every URL is http or https.
 *
 * ```json
 * [{"verb":"play","media":["sound:hello-world","https://crm.example/msg/42.wav"]},
 *  {"verb":"gather","numDigits":1,"timeoutSec":5,"prompts":[{"media":["sound:press-1"]}],
 *   "actionUrl":"https://crm.example/ivr/menu"},
 *  {"verb":"hangup"}]
 * ```
 *
 * Errors name the path of the bad field as the user wrote it: `verbs[2].timeoutSec`
 * ({@link scriptIssues}).
 */
import { z } from 'zod';
import { HttpError } from '../../http/errors.ts';
import { EXTENSION_PATTERN, MAX_RING_TIMEOUT_SEC, MIN_RING_TIMEOUT_SEC } from '../../crm/route.ts';

/** Most verbs one script (or one CRM answer) may hold. */
export const MAX_SCRIPT_VERBS = 100;
/** Most media items of one `play`. */
export const MAX_PLAY_MEDIA = 10;
/** Most times one `play` may repeat its media. */
export const MAX_PLAY_LOOP = 20;
/** Longest `pause`, seconds. */
export const MAX_PAUSE_SEC = 300;
/** Most digits one `gather` collects. */
export const MAX_GATHER_DIGITS = 32;
/** Longest `gather` wait (for the first digit after the prompts, and between digits), seconds. */
export const MAX_GATHER_TIMEOUT_SEC = 60;
/** Most prompts of one `gather`. */
export const MAX_GATHER_PROMPTS = 10;
/** Longest `record`, seconds (1 hour). */
export const MAX_RECORD_SEC = 3600;
/** Longest silence that ends a `record`, seconds. */
export const MAX_RECORD_SILENCE_SEC = 60;
/** Most extensions one `dial` may ring. */
export const MAX_DIAL_EXTENSIONS = 50;
/** Longest URL accepted (media, actionUrl, redirect), characters. */
export const MAX_URL_LENGTH = 2000;

/**
 * A sound name Asterisk can look up safely: letters, digits, `_` and `-`, optionally in
 * sub-folders (`digits/1`, `en/hello-world`); no dots (so no `..` and no extension), no commas
 * (ARI separates media with commas), no spaces, at most 200 characters.
 */
export const SOUND_NAME_PATTERN = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

/** A DTMF key that may end a `gather` or a `record`. */
export const FINISH_KEY_PATTERN = /^[0-9*#]$/;

/** An http(s) URL without spaces, commas or credentials; `what` names it in messages. */
function httpUrl(what: string) {
  return z
    .string()
    .max(MAX_URL_LENGTH, `${what} must be at most ${MAX_URL_LENGTH} characters`)
    .superRefine((value, ctx) => {
      const problem = urlProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: `${what} ${problem}` });
    });
}

function urlProblem(value: string): string | undefined {
  if (/[\s,]/.test(value)) return 'must not contain spaces or commas';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http(s) URL';
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  return undefined;
}

/**
 * One media item: `sound:NAME` ({@link SOUND_NAME_PATTERN}) or an `http(s)://` URL of a WAV file
 * (Asterisk fetches it; see {@link mediaUri}).
 */
export const mediaItemSchema = z
  .string()
  .min(1, 'media item must not be empty')
  .max(MAX_URL_LENGTH)
  .superRefine((value, ctx) => {
    if (value.startsWith('sound:')) {
      const name = value.slice('sound:'.length);
      if (name.length > 200 || !SOUND_NAME_PATTERN.test(name))
        ctx.addIssue({
          code: 'custom',
          message:
            'sound name must be letters, digits, "_" or "-", in optional sub-folders (e.g. sound:hello-world)',
        });
      return;
    }
    if (/^https?:\/\//i.test(value)) {
      const problem = urlProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: `media URL ${problem}` });
      return;
    }
    ctx.addIssue({
      code: 'custom',
      message: 'media item must be sound:NAME or an http(s):// URL of a WAV file',
    });
  });

/**
 * The shortest `sound:http(s)://…` URI the engine asks Asterisk to play, characters after
 * `sound:`. Asterisk 22 plays a URL from its media cache (res_http_media_cache) by copying the
 * cached file's path (`<astcachedir>/bucket-XXXXXX.wav`) into a buffer sized after the URL's
 * own length: when the URL is shorter than that path, the path is cut, and the playback fails
 * with "File http://… does not exist in any format" although the file was fetched. URLs shorter
 * than this are padded with a fragment ({@link mediaUri}), which is never sent to the server, so
 * any cache folder path of up to about 240 characters works.
 */
export const MIN_HTTP_MEDIA_URL_LENGTH = 256;

/**
 * The Asterisk media URI of a media item: `sound:NAME` as is, a URL as `sound:<url>`; a URL
 * shorter than {@link MIN_HTTP_MEDIA_URL_LENGTH} gets a fragment of `_` characters up to that
 * length, ending with the extension of the URL's path (`.wav`), so that Asterisk still finds
 * the file's format from the end of the URL. HTTP clients (Asterisk's libcurl) never send the
 * fragment: the media server sees the URL as given.
 */
export function mediaUri(item: string): string {
  if (item.startsWith('sound:')) return item;
  return `sound:${padMediaUrl(item)}`;
}

function padMediaUrl(url: string): string {
  if (url.length >= MIN_HTTP_MEDIA_URL_LENGTH) return url;
  let extension = '';
  try {
    extension = /\.[A-Za-z0-9]{1,8}$/.exec(new URL(url).pathname)?.[0] ?? '';
  } catch {
    // not a URL: sent as given (the schema refuses such items)
    return url;
  }
  const hash = url.includes('#') ? '' : '#';
  const filler = MIN_HTTP_MEDIA_URL_LENGTH - url.length - hash.length - extension.length;
  return `${url}${hash}${'_'.repeat(Math.max(0, filler))}${extension}`;
}

const playFields = {
  media: z
    .array(mediaItemSchema)
    .min(1, 'media must hold at least one item')
    .max(MAX_PLAY_MEDIA, `media holds at most ${MAX_PLAY_MEDIA} items`),
  /** How many times the media list plays (1 by default). */
  loop: z.number().int().min(1).max(MAX_PLAY_LOOP).optional(),
};

/** `play`: media items played in order, `loop` times. */
export const playVerbSchema = z.object({ verb: z.literal('play'), ...playFields }).strict();

/** A `gather` prompt: a `play` (the `verb` key may be left out). */
export const promptSchema = z
  .object({ verb: z.literal('play').optional(), ...playFields })
  .strict();

/** `pause`: silence for `sec` seconds (0.1 to 300). */
export const pauseVerbSchema = z
  .object({ verb: z.literal('pause'), sec: z.number().min(0.1).max(MAX_PAUSE_SEC) })
  .strict();

/** `gather`: collect DTMF digits (see docs/verbs.md for the timeouts). */
export const gatherVerbSchema = z
  .object({
    verb: z.literal('gather'),
    numDigits: z.number().int().min(1).max(MAX_GATHER_DIGITS).optional(),
    finishOnKey: z
      .string()
      .regex(FINISH_KEY_PATTERN, 'finishOnKey must be one of 0-9, * or #')
      .optional(),
    timeoutSec: z.number().min(1).max(MAX_GATHER_TIMEOUT_SEC),
    prompts: z.array(promptSchema).max(MAX_GATHER_PROMPTS).default([]),
    actionUrl: httpUrl('actionUrl').optional(),
  })
  .strict();

/** `record`: record the caller (see docs/verbs.md). */
export const recordVerbSchema = z
  .object({
    verb: z.literal('record'),
    maxSec: z.number().int().min(1).max(MAX_RECORD_SEC),
    maxSilenceSec: z.number().int().min(1).max(MAX_RECORD_SILENCE_SEC).optional(),
    beep: z.boolean().optional(),
    finishOnKey: z
      .enum(['any', '*', '#'], { message: 'finishOnKey must be "any", "*" or "#"' })
      .optional(),
  })
  .strict();

/** `dial`: ring operator extensions (the call's flow does it, see {@link VerbHost}). */
export const dialVerbSchema = z
  .object({
    verb: z.literal('dial'),
    extensions: z
      .array(z.string().regex(EXTENSION_PATTERN, 'extension must be 2-10 digits'))
      .min(1)
      .max(MAX_DIAL_EXTENSIONS),
    strategy: z.enum(['ringall', 'sequential']).default('ringall'),
    ringTimeoutSec: z.number().int().min(MIN_RING_TIMEOUT_SEC).max(MAX_RING_TIMEOUT_SEC),
    record: z.boolean().optional(),
    noAnswer: z
      .enum(['continue', 'end'])
      .optional()
      .describe(
        'When nobody answers: continue (the next verb runs; the default) or end (the no-answer path of a dial route: NO_ANSWER_DIALPLAN, else hang up).',
      ),
  })
  .strict();

/** `transfer`: `service` (the dialplan's service context) or an extension (blind transfer). */
export const transferVerbSchema = z
  .object({
    verb: z.literal('transfer'),
    to: z.union([
      z.literal('service'),
      z.string().regex(EXTENSION_PATTERN, 'to must be "service" or an extension of 2-10 digits'),
    ]),
  })
  .strict();

/** `redirect`: fetch new verbs from the CRM; they replace the rest of the script. */
export const redirectVerbSchema = z
  .object({ verb: z.literal('redirect'), url: httpUrl('url') })
  .strict();

/** `hangup`: hang the channel up; the script ends. */
export const hangupVerbSchema = z.object({ verb: z.literal('hangup') }).strict();

/** Any verb, told apart by `verb`. */
export const verbSchema = z.discriminatedUnion('verb', [
  playVerbSchema,
  pauseVerbSchema,
  gatherVerbSchema,
  recordVerbSchema,
  dialVerbSchema,
  transferVerbSchema,
  redirectVerbSchema,
  hangupVerbSchema,
]);

/** A call script: 1 to {@link MAX_SCRIPT_VERBS} verbs. */
export const verbListSchema = z
  .array(verbSchema)
  .min(1, 'a script holds at least one verb')
  .max(MAX_SCRIPT_VERBS, `a script holds at most ${MAX_SCRIPT_VERBS} verbs`);

/**
 * The CRM's answer to an `actionUrl` or `redirect` request: `{"verbs": [...]}`. An empty list
 * ends the script. Other fields are ignored.
 */
export const verbsAnswerSchema = z.object({
  verbs: z
    .array(verbSchema)
    .max(MAX_SCRIPT_VERBS, `a script holds at most ${MAX_SCRIPT_VERBS} verbs`),
});

export type PlayVerb = z.output<typeof playVerbSchema>;
export type Prompt = z.output<typeof promptSchema>;
export type PauseVerb = z.output<typeof pauseVerbSchema>;
export type GatherVerb = z.output<typeof gatherVerbSchema>;
export type RecordVerb = z.output<typeof recordVerbSchema>;
export type DialVerb = z.output<typeof dialVerbSchema>;
export type TransferVerb = z.output<typeof transferVerbSchema>;
export type RedirectVerb = z.output<typeof redirectVerbSchema>;
export type HangupVerb = z.output<typeof hangupVerbSchema>;
/** A validated verb. */
export type ScriptVerb = z.output<typeof verbSchema>;
/** A verb's name: `play`, `pause`, `gather`, `record`, `dial`, `transfer`, `redirect`, `hangup`. */
export type VerbName = ScriptVerb['verb'];
/** A verb as the CRM writes it (before defaults such as `strategy: ringall`). */
export type ScriptVerbInput = z.input<typeof verbSchema>;

/** One problem of a script: the path of the bad field (`verbs[2].timeoutSec`) and a message. */
export interface ScriptIssue {
  path: string;
  message: string;
}

/**
 * `verbs[2].prompts[0].media[1]` from a zod path; `prefix` is the name of the root (`verbs`
 * for a bare list).
 */
export function formatIssuePath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

/** The issues of a failed parse, paths under `prefix`, at most `limit` (10). */
export function scriptIssues(error: z.ZodError, prefix = 'verbs', limit = 10): ScriptIssue[] {
  return error.issues.slice(0, limit).map((issue) => {
    // An unknown field is named by its own path (`verbs[1].colour`), as the API's validation does.
    if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
      return {
        path: formatIssuePath([...issue.path, ...issue.keys.slice(0, 1)], prefix),
        message: 'is not a known field',
      };
    }
    return { path: formatIssuePath(issue.path, prefix), message: issue.message };
  });
}

/**
 * Validate a call script for an HTTP API: the verbs, or an `HttpError` 400 `invalid_script`
 * whose message names the first bad field (`verbs[2].timeoutSec: Too small…`), with `field`
 * (that path) and `issues` (up to 10 `{path, message}`) in the body.
 *
 * @param root the name of the list in the request body (`verbs`)
 * @throws HttpError 400 `invalid_script`
 */
export function parseScriptOrThrow(input: unknown, root = 'verbs'): ScriptVerb[] {
  const parsed = verbListSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = scriptIssues(parsed.error, root);
  const first = issues[0]!;
  throw new HttpError(400, 'invalid_script', `${first.path}: ${first.message}`, {
    field: first.path,
    issues,
  });
}

/** The result of {@link parseScript}. */
export type ScriptParseResult =
  { ok: true; verbs: ScriptVerb[] } | { ok: false; issues: ScriptIssue[] };

/**
 * Validate a call script given as a bare JSON list of verbs. Never throws: a bad script gives
 * `ok: false` with the issues, each naming its path (`verbs[2].timeoutSec`) for a 400/422 answer.
 */
export function parseScript(input: unknown): ScriptParseResult {
  const parsed = verbListSchema.safeParse(input);
  if (parsed.success) return { ok: true, verbs: parsed.data };
  return { ok: false, issues: scriptIssues(parsed.error) };
}

/** `verbs[2].timeoutSec: Too small…; …`: a short, log-safe summary of issues (at most 3). */
export function describeScriptIssues(issues: readonly ScriptIssue[]): string {
  return issues
    .slice(0, 3)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
}
