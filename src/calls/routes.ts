/**
 * The `/v1` call routes (click-to-call, hang-up, transfer, current call, history), over the
 * {@link CallControl} contract. Mounted behind the API key check; request bodies are validated
 * with the zod schemas below (also the OpenAPI request schemas).
 *
 * - `POST /v1/calls` → 202 {@link AcceptedCall} + `Location`; `Idempotency-Key` aware
 * - `GET /v1/calls` → 200 {@link CallPageView}: stored calls, filtered, newest
 *   first, cursor-paginated | 400 `invalid_query` / `invalid_cursor`
 * - `GET /v1/calls/{id}` → 200 CallSnapshot while live, else the stored call (legs with times,
 *   recording) | 404 `call_not_found`
 * - `POST /v1/calls/{id}/hangup` → 200 CallSnapshot | 404 | 409 `call_ended`
 * - `POST /v1/calls/{id}/transfer` → 200 CallSnapshot (service) | 202 CallSnapshot with
 *   `transfer` (extension: the target rings) | 404 | 409 (`call_ended`, `call_not_bridged`,
 *   `transfer_in_progress`, `transfer_failed`, `transfer_to_self`)
 *
 * The call service holds a call in memory while it is live and, once ended, until the call
 * journal has committed its end (src/calls/journal.ts); after that only the store knows it. So
 * `GET /v1/calls/{id}` reads memory, then the store, and hang-up / transfer of a call the service
 * no longer holds ask the store whether it is an ended call (409) or an unknown id (404).
 * - `GET /v1/operators/{extension}/current-call` → 200 CurrentCall | 404 `no_active_call`
 * - `GET /v1/operators/me/current-call` → same, extension from OPERATOR_IP_MAP | 404
 *   `unknown_workstation`
 *
 * With an operator token (src/security/operator-tokens.ts) instead of an API key: `POST /v1/calls`
 * only from the token's extension (403 `extension_not_allowed`), `GET /v1/calls` only that
 * extension's calls, `GET /v1/calls/{id}` only its calls (checked before the routes run).
 */
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import { HttpError } from '../http/errors.ts';
import { beginIdempotentCreation, type IdempotencyStore } from '../http/idempotency.ts';
import type { ScriptRecordingView, StoredCallView } from '../http/history-schemas.ts';
import {
  cursorParam,
  isoTimeParam,
  limitParam,
  storeNotConfigured,
  validateQuery,
  withCursor,
} from '../http/query.ts';
import { validate } from '../http/validation.ts';
import type { WorkstationMap } from '../http/workstations.ts';
import type { Logger } from '../logging/logger.ts';
import {
  InvalidNumberError,
  parseCustomerNumber,
  type CountryCode,
  type NumberForms,
} from '../numbers/phone.ts';
import { apiKeyNameOf } from '../security/api-keys.ts';
import { operatorOf, requireOwnExtension } from '../security/operator-tokens.ts';
import type { CallGuard } from '../security/guard.ts';
import { canonicalIp } from '../security/ip.ts';
import { MAX_CALLS_PAGE, type CallRecord, type CallRepository } from '../store/index.ts';
import {
  CallNotFoundError,
  CallStateError,
  type CallControl,
  type ClickToCallRequest,
} from './control.ts';
import type { CallSnapshot, Disposition } from './model.ts';

/** An operator extension: 2-10 digits. */
const EXTENSION = /^\d{2,10}$/;
/** A service number: 1-20 of digits, `*`, `#`. */
const SERVICE_NUMBER = /^[0-9*#]{1,20}$/;

/** An operator extension: 2-10 digits (as SIM_EXTENSIONS / OPERATOR_IP_MAP). */
export const extensionSchema = z
  .string()
  .regex(EXTENSION, 'must be an extension of 2-10 digits')
  .describe('Operator extension, e.g. 101.');

/** A service number (dialplan extension in SERVICE_CONTEXT): digits, `*`, `#`. */
export const serviceNumberSchema = z
  .string()
  .regex(SERVICE_NUMBER, 'must be a service number of 1-20 digits, * or #')
  .describe('Service number, e.g. 9999.');

const variableValue = z.union([z.string().max(1024), z.number(), z.boolean()]);

/** Body of `POST /v1/calls`. */
export const clickToCallBodySchema = z.strictObject({
  operator: extensionSchema.describe("The operator's extension; rung first, e.g. 101."),
  to: z
    .string()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .describe(
      "The customer's number in any human format (+7 495 765-43-21, 8 (495) 765-43-21); read in DEFAULT_REGION when written without +.",
    ),
  variables: z
    .record(
      z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'names are 1-64 of letters, digits, _ . -'),
      variableValue,
    )
    .refine((v) => Object.keys(v).length <= 50, 'at most 50 variables')
    .optional()
    .describe(
      'CRM variables (deal id, text…) that travel with the call and its webhooks; numbers and booleans become strings.',
    ),
  tries: z
    .int('must be an integer')
    .min(1)
    .max(3)
    .optional()
    .describe('Operator tries when busy or not answering (1-3); default CLICK_TO_CALL_TRIES.'),
  triesPeriodSec: z
    .int('must be an integer')
    .min(1)
    .max(10)
    .optional()
    .describe('Seconds between operator tries (1-10); default CLICK_TO_CALL_TRIES_PERIOD_SEC.'),
  record: z
    .boolean()
    .optional()
    .describe('Record the conversation (true/false); default RECORD_CALLS for outbound calls.'),
});

/** Body of `POST /v1/calls/{id}/transfer`. */
export const transferBodySchema = z
  .strictObject({
    to: z
      .string()
      .describe('Service number (kind service, e.g. 9999) or operator extension (kind extension).'),
    kind: z
      .enum(['service', 'extension'])
      .default('service')
      .describe(
        'service: the customer continues in the dialplan at SERVICE_CONTEXT,<to>,1 and the operator is hung up; extension: blind transfer to operator <to>, same call id (the first operator stays on the call until <to> answers).',
      ),
  })
  .superRefine((body, ctx) => {
    const check = body.kind === 'extension' ? extensionSchema : serviceNumberSchema;
    const result = check.safeParse(body.to);
    if (!result.success)
      ctx.addIssue({ code: 'custom', path: ['to'], message: result.error.issues[0]!.message });
  })
  // The check above, in the JSON Schema of the OpenAPI document: `to`'s pattern by `kind`.
  .meta({
    if: { properties: { kind: { const: 'extension' } }, required: ['kind'] },
    then: { properties: { to: { pattern: EXTENSION.source } } },
    else: { properties: { to: { pattern: SERVICE_NUMBER.source } } },
  });

/** `Idempotency-Key` header: 1-255 visible ASCII characters. */
export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters')
  .describe(
    'Makes the creation safe to retry: the same key (per API key) within IDEMPOTENCY_TTL_MS returns the first answer instead of dialling again.',
  );

/** Default page size of `GET /v1/calls`. */
export const DEFAULT_CALLS_PAGE = 50;

/**
 * Default of {@link CallRoutesDeps.storeWaitMs} (API_STORE_WAIT_MS), ms. A healthy store commits
 * within a few ms; a failing one is refused up front (503 `store_unavailable`).
 */
export const DEFAULT_STORE_WAIT_MS = 2000;

/**
 * Before a call is placed (`POST /v1/calls`, compat `makecall`): while store writes fail, refuse
 * rather than accept a call that could not be recorded.
 *
 * @throws HttpError 503 `store_unavailable` with `Retry-After: 5`
 */
export function refuseWhileStoreFails(control: Pick<CallControl, 'storeFailing'>): void {
  if (control.storeFailing())
    throw new HttpError(
      503,
      'store_unavailable',
      'the call store is not accepting writes; no call was placed, retry shortly',
      undefined,
      { 'Retry-After': '5' },
    );
}

/** `Retry-After` of a 503 `ari_unavailable`, seconds. */
export const ARI_UNAVAILABLE_RETRY_AFTER_SEC = 5;

/**
 * Before a call command (`POST /v1/calls`, hang-up, transfer, compat `makecall`/`transfer`):
 * while the engine is not connected to Asterisk (starting with Asterisk down, or an outage), refuse
 * rather than accept a command that cannot be carried out.
 *
 * @throws HttpError 503 `ari_unavailable` with `Retry-After` ({@link ARI_UNAVAILABLE_RETRY_AFTER_SEC})
 */
export function refuseWhileAriDown(control: Pick<CallControl, 'ariConnected'>): void {
  if (!control.ariConnected())
    throw new HttpError(
      503,
      'ari_unavailable',
      'the engine is not connected to Asterisk; nothing was done, retry shortly',
      undefined,
      { 'Retry-After': String(ARI_UNAVAILABLE_RETRY_AFTER_SEC) },
    );
}

const DISPOSITIONS = ['answered', 'busy', 'no_answer', 'canceled', 'failed'] as const;
/** Compile-time assertion. */
type Assert<T extends true> = T;
// Fails to compile when a disposition is added to the model but not to the filter.
type _EveryDisposition = Assert<
  [Disposition] extends [(typeof DISPOSITIONS)[number]] ? true : false
>;
const dispositionList = new RegExp(`^(${DISPOSITIONS.join('|')})(,(${DISPOSITIONS.join('|')}))*$`);

/** Query of `GET /v1/calls` (filters; every given condition must hold). */
export const callListQuerySchema = z
  .strictObject({
    since: isoTimeParam
      .optional()
      .describe(
        'Calls that started at or after this instant: an RFC 3339 date-time with seconds and Z or an offset (2025-01-31T09:15:00Z, 2025-01-31T12:15:00+03:00), or a date (2025-01-31: midnight UTC).',
      ),
    until: isoTimeParam
      .optional()
      .describe('Calls that started strictly before this instant (same formats as since).'),
    number: z
      .string()
      .regex(/\d/, 'must contain digits')
      .max(64, 'must be at most 64 characters')
      .optional()
      .describe(
        'A phone number on either side (caller or called), in any format: +7 495 765-43-21, 84957654321 and 74957654321 find the same calls; short numbers (DIDs, extensions) match exactly.',
      ),
    extension: extensionSchema
      .optional()
      .describe('Calls an operator answered, placed or was rung for, e.g. 101.'),
    direction: z.enum(['in', 'out']).optional().describe('in (inbound) or out (outbound).'),
    disposition: z
      .string()
      .regex(dispositionList, `must be one or more of ${DISPOSITIONS.join(', ')}, comma-separated`)
      .transform((text) => [...new Set(text.split(','))] as Disposition[])
      .optional()
      .describe(
        `Final outcome, one or several comma-separated: ${DISPOSITIONS.join(', ')} (calls still in progress have none).`,
      ),
    limit: limitParam(MAX_CALLS_PAGE, DEFAULT_CALLS_PAGE),
    cursor: cursorParam.optional().describe('nextCursor of the previous page (same filters).'),
  })
  .superRefine((query, ctx) => {
    if (query.since && query.until && query.until.getTime() <= query.since.getTime())
      ctx.addIssue({ code: 'custom', path: ['until'], message: 'must be after since' });
  });

/** The `200` body of `GET /v1/calls`. */
export interface CallPageView {
  /** Newest first. */
  items: StoredCallView[];
  /** Absent on the last page. */
  nextCursor?: string;
}

/**
 * The stored forms one customer number may have, for the `number` filter: Asterisk gives
 * caller numbers as the trunk sent them (`79161234567`, `89161234567`, `+79161234567`) and
 * click-to-call stores E.164. A number that does not parse (a DID, an extension) matches as
 * written, without spaces and punctuation.
 */
export function numberCandidates(input: string, region: CountryCode): string[] {
  const trimmed = input.trim();
  const compact = trimmed.replace(/[\s().-]/g, '');
  const out = new Set([trimmed, compact]);
  try {
    const forms = parseCustomerNumber(trimmed, region);
    for (const form of [forms.e164, forms.digits, forms.nationalPrefixed, forms.national])
      out.add(form);
  } catch (err) {
    if (!(err instanceof InvalidNumberError)) throw err;
  }
  return [...out].filter((n) => n.length > 0);
}

/** The `202` body of `POST /v1/calls`. */
export type AcceptedCall = CallSnapshot & { status: 'accepted' };

/** A remembered `POST /v1/calls` answer. */
export interface StoredCallCreation {
  status: number;
  body: AcceptedCall;
}

/** What the routes need. */
export interface CallRoutesDeps {
  control: CallControl;
  guard: CallGuard;
  idempotency: IdempotencyStore<StoredCallCreation>;
  /** DEFAULT_REGION: numbers without `+` are read in it. */
  region: CountryCode;
  /** CLICK_TO_CALL_TRIES and CLICK_TO_CALL_TRIES_PERIOD_SEC. */
  defaults: { tries: number; triesPeriodSec: number };
  workstations: WorkstationMap;
  logger: Logger;
  /**
   * API_STORE_WAIT_MS: longest `POST /v1/calls` waits for the store to commit the new call
   * before answering 202 anyway (with a warning), ms; 0 = answer without waiting. Default
   * {@link DEFAULT_STORE_WAIT_MS}.
   */
  storeWaitMs?: number;
  /**
   * Stored calls: `GET /v1/calls`, `GET /v1/calls/{id}` of calls no longer live, and
   * 409 `call_ended` (not 404) for commands on them. Without it `GET /v1/calls` answers 503
   * `store_not_configured` and only calls the service holds are found.
   */
  calls?: Pick<CallRepository, 'getCall' | 'listCalls'>;
  /**
   * Download link of a call's recording: asked for every stored call that has
   * recording fields; undefined when there is nothing to download. Its answer becomes
   * `recording.url`.
   */
  recordingUrl?: (callId: string) => string | undefined;
  /**
   * The call script recordings (`record` verb) stored for a call, with fresh signed links:
   * `scriptRecordings` of `GET /v1/calls/{id}` for a stored call (omitted when none).
   */
  scriptRecordings?: (callId: string) => Promise<ScriptRecordingView[]>;
}

/**
 * Normalise a customer number for the API.
 *
 * @throws HttpError 400 `invalid_number` naming `field`
 */
export function normaliseNumberOrThrow(
  input: string,
  region: CountryCode,
  field: string,
): NumberForms {
  try {
    return parseCustomerNumber(input, region);
  } catch (err) {
    if (!(err instanceof InvalidNumberError)) throw err;
    const shown = input.length > 40 ? `${input.slice(0, 40)}…` : input;
    throw new HttpError(400, 'invalid_number', `${field}: "${shown}" ${err.message}`, { field });
  }
}

/** Map the contract's errors to HTTP: 404 `call_not_found`, 409 with the state error's code. */
export function controlErrorToHttp(err: unknown): unknown {
  if (err instanceof CallNotFoundError) return new HttpError(404, err.code, err.message);
  if (err instanceof CallStateError) return new HttpError(409, err.code, err.message);
  return err;
}

/**
 * The parsed JSON body; undefined when the request has none (validation then names `body`).
 *
 * @throws HttpError 415 `unsupported_media_type` for a body that is not JSON
 */
function jsonBody(req: Request): unknown {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (!hasBody) return undefined;
  if (!req.is('application/json'))
    throw new HttpError(
      415,
      'unsupported_media_type',
      'the body must be JSON (Content-Type: application/json)',
    );
  return req.body;
}

function stringifyVariables(
  variables: Record<string, string | number | boolean> | undefined,
): Record<string, string> | undefined {
  if (!variables) return undefined;
  return Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, String(v)]));
}

/**
 * Start a click-to-call with the rules of `POST /v1/calls` after its body was validated: ARI
 * and the store must be up, the toll-fraud guard (destination policy, per-key rate, live-call
 * cap) must admit it; then the call starts and, when `storeWaitMs` > 0, the answer waits (at
 * most that long) until the store holds the call, so an engine crash after it cannot lose it.
 * Also used by the CRM connectors' click-to-call endpoints (src/connectors/).
 *
 * @throws HttpError 503 (`ari_unavailable`, store failing), 403/429 from the guard
 */
export async function startGuardedClickToCall(
  deps: Pick<CallRoutesDeps, 'control' | 'guard' | 'logger' | 'storeWaitMs'>,
  request: ClickToCallRequest,
  number: NumberForms,
  ip: string | undefined,
): Promise<AcceptedCall> {
  const { control, guard, logger } = deps;
  const storeWaitMs = deps.storeWaitMs ?? DEFAULT_STORE_WAIT_MS;
  refuseWhileAriDown(control);
  refuseWhileStoreFails(control);
  await guard.admit({
    keyName: request.requestedBy ?? 'unknown',
    number,
    operator: request.operator,
    ip,
  });
  const { id, ...rest } = control.startClickToCall(request);
  const answer: AcceptedCall = { id, status: 'accepted', ...rest };
  // 202 once the store holds the call: an engine crash after the answer cannot lose it. The
  // operator leg is being originated meanwhile (the commit is one event-loop turn plus a write).
  if (storeWaitMs > 0 && !(await control.whenStored(answer.id, storeWaitMs)))
    logger.warn('click-to-call accepted before the store committed it (store slow)', {
      callId: answer.id,
      waitedMs: storeWaitMs,
    });
  return answer;
}

/** Build the router; mount it at `/v1` behind the API key check and a JSON body parser. */
export function createCallRoutes(deps: CallRoutesDeps): Router {
  const { control, guard, idempotency, region, defaults, workstations, logger } = deps;
  const storeWaitMs = deps.storeWaitMs ?? DEFAULT_STORE_WAIT_MS;
  const stored = deps.calls;
  const router = express.Router();

  /** A stored call as the API shows it: `recording.url` added when there is one. */
  const present = (record: CallRecord): StoredCallView => {
    if (!record.recording || !deps.recordingUrl) return record;
    const url = deps.recordingUrl(record.id);
    return url === undefined ? record : { ...record, recording: { ...record.recording, url } };
  };

  router.get('/calls', async (req, res) => {
    // `disposition=busy&disposition=no_answer` means the same as `disposition=busy,no_answer`.
    const raw: Record<string, unknown> = { ...req.query };
    if (Array.isArray(raw.disposition)) raw.disposition = raw.disposition.join(',');
    const query = validateQuery(callListQuerySchema, raw, ['cursor']);
    // An operator token sees its own extension's calls only.
    const operator = operatorOf(res);
    if (operator) {
      if (query.extension !== undefined) requireOwnExtension(res, query.extension);
      query.extension = operator.extension;
    }
    if (!stored) throw storeNotConfigured();
    const page = await withCursor('cursor', () =>
      stored.listCalls({
        from: query.since,
        to: query.until,
        number: query.number === undefined ? undefined : numberCandidates(query.number, region),
        extension: query.extension,
        direction: query.direction,
        disposition: query.disposition,
        limit: query.limit,
        cursor: query.cursor,
      }),
    );
    const body: CallPageView = { items: page.items.map(present) };
    if (page.nextCursor !== undefined) body.nextCursor = page.nextCursor;
    res.json(body);
  });

  router.post('/calls', async (req, res) => {
    const body = validate(clickToCallBodySchema, jsonBody(req), 'body');
    // An operator token places calls from its own extension only.
    requireOwnExtension(res, body.operator);
    const headerKey = req.get('idempotency-key');
    const idempotencyKey =
      headerKey === undefined
        ? undefined
        : validate(idempotencyKeySchema, headerKey, 'Idempotency-Key');
    const forms = normaliseNumberOrThrow(body.to, region, 'to');
    const keyName = apiKeyNameOf(res);
    const request: ClickToCallRequest = {
      operator: body.operator,
      to: forms.e164,
      variables: stringifyVariables(body.variables),
      tries: body.tries ?? defaults.tries,
      triesPeriodSec: body.triesPeriodSec ?? defaults.triesPeriodSec,
      ...(body.record === undefined ? {} : { record: body.record }),
      requestedBy: keyName,
    };
    const content = { ...request, requestedBy: undefined };
    if (
      beginIdempotentCreation(
        idempotency,
        keyName,
        idempotencyKey,
        content,
        res,
        (id) => `/v1/calls/${id}`,
      )
    )
      return;
    let answer: AcceptedCall;
    try {
      answer = await startGuardedClickToCall(
        { control, guard, logger, storeWaitMs },
        request,
        forms,
        canonicalIp(req.ip) ?? req.ip,
      );
    } catch (err) {
      if (idempotencyKey) idempotency.abandon(keyName, idempotencyKey);
      throw err;
    }
    if (idempotencyKey)
      idempotency.complete(keyName, idempotencyKey, { status: 202, body: answer });
    res.status(202).location(`/v1/calls/${answer.id}`).json(answer);
  });

  /**
   * The HTTP error for a refused hang-up or transfer. A call the service does not hold may have
   * ended and be only in the store: 409 `call_ended` then, 404 `call_not_found` for an id the
   * store does not know either (or holds unfinished: not a call the engine controls).
   */
  const refusal = async (err: unknown, id: string): Promise<unknown> => {
    if (err instanceof CallNotFoundError && stored) {
      const record = await stored.getCall(id);
      if (record?.state === 'ended')
        return new HttpError(409, 'call_ended', `call ${id} has ended`);
    }
    return controlErrorToHttp(err);
  };

  router.get('/calls/:id', async (req, res) => {
    const id = req.params.id;
    const live = control.getCall(id);
    if (live && live.state !== 'ended') {
      res.json(live);
      return;
    }
    const record = stored ? await stored.getCall(id) : undefined;
    // The service holds an ended call until the journal has committed its end: while the store
    // still shows it live (or not at all), it is answered from memory.
    if (record && (record.state === 'ended' || !live)) {
      const scripts = deps.scriptRecordings ? await deps.scriptRecordings(record.id) : [];
      const view = present(record);
      res.json(scripts.length > 0 ? { ...view, scriptRecordings: scripts } : view);
      return;
    }
    if (live) {
      res.json(live);
      return;
    }
    throw new HttpError(404, 'call_not_found', `call ${id} not found`);
  });

  router.post('/calls/:id/hangup', async (req, res) => {
    refuseWhileAriDown(control);
    try {
      res.json(await control.hangupCall(req.params.id));
    } catch (err) {
      throw await refusal(err, req.params.id);
    }
  });

  router.post('/calls/:id/transfer', async (req, res) => {
    const body = validate(transferBodySchema, jsonBody(req), 'body');
    refuseWhileAriDown(control);
    try {
      const call = await control.transferCall(req.params.id, { kind: body.kind, to: body.to });
      logger.info('call transfer requested', {
        callId: req.params.id,
        keyName: apiKeyNameOf(res),
        kind: body.kind,
        to: body.to,
      });
      // A blind transfer to an extension is under way while its target rings (202); a transfer
      // to a service number is done (200, the call ended).
      res.status(body.kind === 'extension' ? 202 : 200).json(call);
    } catch (err) {
      throw await refusal(err, req.params.id);
    }
  });

  router.get('/operators/me/current-call', (req, res) => {
    const extension = workstations.extensionOf(req.ip);
    if (!extension)
      throw new HttpError(
        404,
        'unknown_workstation',
        `no operator is mapped to ${canonicalIp(req.ip) ?? 'this address'} (OPERATOR_IP_MAP)`,
      );
    const current = control.currentCallOf(extension);
    if (!current)
      throw new HttpError(404, 'no_active_call', `operator ${extension} is not on a call`);
    res.json(current);
  });

  router.get('/operators/:extension/current-call', (req, res) => {
    const extension = validate(extensionSchema, req.params.extension, 'extension');
    const current = control.currentCallOf(extension);
    if (!current)
      throw new HttpError(404, 'no_active_call', `operator ${extension} is not on a call`);
    res.json(current);
  });

  return router;
}
