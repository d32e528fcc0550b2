/**
 * Reading calls: `GET /v1/calls` (the stored calls, filtered, newest first, cursor-paginated),
 * `GET /v1/calls/{id}` (the live call, else the stored one with its recording links) and the
 * current call of an operator (`GET /v1/operators/{extension}/current-call`,
 * `GET /v1/operators/me/current-call`). Registered by `createCallRoutes` (src/calls/routes.ts).
 */
import type { Router } from 'express';
import { HttpError } from '../http/errors.ts';
import type { StoredCallView } from '../http/history-schemas.ts';
import { storeNotConfigured, validateQuery, withCursor } from '../http/query.ts';
import { validate } from '../http/validation.ts';
import { InvalidNumberError, parseCustomerNumber, type CountryCode } from '../numbers/phone.ts';
import { operatorOf, requireOwnExtension } from '../security/operator-tokens.ts';
import { canonicalIp } from '../security/ip.ts';
import type { CallRecord } from '../store/index.ts';
import { callListQuerySchema, extensionSchema } from './route-schemas.ts';
import type { CallRoutesDeps } from './routes.ts';

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

/** Register the call reads (`GET /calls`, `GET /calls/:id`, the operators' current call). */
export function registerCallQueryRoutes(router: Router, deps: CallRoutesDeps): void {
  const { control, region, workstations } = deps;
  const stored = deps.calls;

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
}
