/**
 * The asterisk.fcgi-compatible path, for the daemon's existing clients:
 * `GET <COMPAT_PATH>?makecall=N`, `?get_uniqueid_callerid`, `?transfer=UNIQUEID&dest=N`, answered
 * in the daemon's text format ({@link ./answers.ts}), mapped
 * onto the same {@link CallControl} as `/v1`, the operator taken from OPERATOR_IP_MAP.
 *
 * Authentication: the same API keys, as `Authorization: Bearer <key>` or the query parameter
 * {@link COMPAT_KEY_PARAMETER}. HTTP statuses: 200 for every answer the daemon defines (including
 * `Answer: Error` when no operator sits at the client's address or no call is found); the
 * engine's own refusals keep their status (401/403 auth, 403 `ip_not_allowed` /
 * `destination_not_allowed` / `destination_type_not_allowed`, 429 `rate_limited` with `Retry-After` / `too_many_calls`, 400 bad
 * parameters, 501 `not_implemented` for autocall on an engine without notification calls, 503
 * `autocalls_unavailable` without a dialer) with the body `Answer: Error`. The machine code
 * of every `Answer: Error` is in the `X-Error-Code` header; `makecall` gives the call id in
 * `X-Call-Id`.
 */
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import type { AutocallService } from '../autocalls/service.ts';
import { soundSchema } from '../autocalls/schemas.ts';
import type { CallControl } from '../calls/control.ts';
import type { CallSnapshot } from '../calls/model.ts';
import { CallNotFoundError, CallStateError } from '../calls/control.ts';
import {
  normaliseNumberOrThrow,
  refuseWhileAriDown,
  refuseWhileStoreFails,
  serviceNumberSchema,
} from '../calls/routes.ts';
import { HttpError } from '../http/errors.ts';
import type { WorkstationMap } from '../http/workstations.ts';
import type { Logger } from '../logging/logger.ts';
import type { CountryCode } from '../numbers/phone.ts';
import { apiKeyNameOf } from '../security/api-keys.ts';
import type { CallGuard } from '../security/guard.ts';
import { canonicalIp } from '../security/ip.ts';
import {
  autocallStatusAnswer,
  COMPAT_CONTENT_TYPE,
  formatAnswer,
  makecallOutcome,
  uniqueIdCallerIdAnswer,
  type CompatAnswer,
} from './answers.ts';

/** Query parameter that may carry the API key on the compat path: `?makecall=…&api_key=…`. */
export const COMPAT_KEY_PARAMETER = 'api_key';

/** What the compat router needs. */
export interface CompatRouterDeps {
  /** COMPAT_PATH, e.g. `/asterisk.fcgi`. */
  path: string;
  control: CallControl;
  guard: CallGuard;
  /** The API key check, accepting {@link COMPAT_KEY_PARAMETER}. */
  authenticate: RequestHandler;
  workstations: WorkstationMap;
  /** DEFAULT_REGION. */
  region: CountryCode;
  /**
   * CLICK_TO_CALL_TRIES, CLICK_TO_CALL_TRIES_PERIOD_SEC (the daemon's Make Call Tries
   * Count/Period).
   */
  defaults: { tries: number; triesPeriodSec: number };
  /**
   * Longest a `makecall` waits for its outcome, in milliseconds (longer than every operator try
   * plus the customer's ring time); after it the answer is `Error` (`X-Error-Code: timeout`).
   */
  maxWaitMs: number;
  /**
   * Notification calls, for `autocall` / `autocallstatus` (answered 501 `not_implemented`
   * without): the service and the toll-fraud guard of notification calls.
   */
  autocalls?: { service: AutocallService; guard: CallGuard };
  logger: Logger;
}

function send(
  res: Response,
  answer: CompatAnswer,
  options: { status?: number; code?: string; fields?: Array<[string, string]> } = {},
): void {
  if (options.code) res.set('X-Error-Code', options.code);
  res
    .status(options.status ?? 200)
    .type(COMPAT_CONTENT_TYPE)
    .send(formatAnswer(answer, options.fields));
}

/** A single-valued query parameter; undefined when absent; 400 when repeated. */
function param(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    throw new HttpError(400, 'invalid_request', `${name}: must be given once`, { field: name });
  return value;
}

/** Build the router (mount it at `/`; it serves only `GET <path>`). */
export function createCompatRouter(deps: CompatRouterDeps): Router {
  const { control, guard, workstations, region, defaults, logger } = deps;
  const router = express.Router();

  const makecall = async (req: Request, res: Response, number: string): Promise<void> => {
    const forms = normaliseNumberOrThrow(number, region, 'makecall');
    const operator = workstations.extensionOf(req.ip);
    const ip = canonicalIp(req.ip) ?? req.ip;
    if (!operator) {
      logger.info('compat makecall from an unmapped address', { ip });
      send(res, 'Error', { code: 'unknown_workstation' });
      return;
    }
    const keyName = apiKeyNameOf(res);
    refuseWhileAriDown(control);
    refuseWhileStoreFails(control);
    await guard.admit({ keyName, number: forms, operator, ip });
    const call = control.startClickToCall({
      operator,
      to: forms.e164,
      tries: defaults.tries,
      triesPeriodSec: defaults.triesPeriodSec,
      requestedBy: keyName,
    });
    res.set('X-Call-Id', call.id);
    let clientGone = false;
    // The call's latest snapshot: an ended call leaves the service once stored, so the ended
    // snapshot its watcher got is what the error code is read from.
    let last: CallSnapshot = call;
    // Wait for the outcome on the call's own change notifications (no polling).
    const outcome = await new Promise<CompatAnswer | undefined>((resolve) => {
      let unwatch = (): void => undefined;
      const finish = (answer: CompatAnswer | undefined): void => {
        clearTimeout(timer);
        unwatch();
        res.off('close', onClose);
        resolve(answer);
      };
      const onClose = (): void => {
        clientGone = true;
        finish(undefined);
      };
      const timer = setTimeout(() => finish(undefined), deps.maxWaitMs);
      res.once('close', onClose);
      unwatch = control.watchCall(call.id, (snapshot) => {
        last = snapshot;
        const answer = makecallOutcome(snapshot);
        if (answer !== undefined) finish(answer);
      });
      const current = control.getCall(call.id);
      if (current) last = current;
      const now = makecallOutcome(current);
      if (now !== undefined) finish(now);
    });
    if (clientGone) return;
    logger.info('compat makecall answered', {
      callId: call.id,
      keyName,
      operator,
      outcome: outcome ?? 'timeout',
    });
    if (outcome === undefined) send(res, 'Error', { code: 'timeout' });
    else if (outcome === 'OK') send(res, 'OK');
    else send(res, outcome, { code: last.endReason ?? last.disposition ?? 'call_failed' });
  };

  const currentCall = (req: Request, res: Response): void => {
    const operator = workstations.extensionOf(req.ip);
    if (!operator) {
      send(res, 'Error', { code: 'unknown_workstation' });
      return;
    }
    const current = control.currentCallOf(operator);
    const text = uniqueIdCallerIdAnswer(current);
    if (text.startsWith('Answer: Error')) res.set('X-Error-Code', 'no_active_call');
    else res.set('X-Call-Id', current!.callId);
    res.status(200).type(COMPAT_CONTENT_TYPE).send(text);
  };

  const transfer = async (req: Request, res: Response, uniqueId: string): Promise<void> => {
    const dest = param(req, 'dest');
    if (!uniqueId || uniqueId.length > 128)
      throw new HttpError(400, 'invalid_request', 'transfer: must be a channel UniqueID', {
        field: 'transfer',
      });
    if (dest === undefined || !serviceNumberSchema.safeParse(dest).success)
      throw new HttpError(400, 'invalid_request', 'dest: must be a service number', {
        field: 'dest',
      });
    refuseWhileAriDown(control);
    // UniqueID is a channel of the call (the customer's, as get_uniqueid_callerid answers).
    const callId = control.findCallByChannel(uniqueId)?.id;
    if (!callId) {
      send(res, 'Error', { code: 'call_not_found' });
      return;
    }
    try {
      await control.transferCall(callId, { kind: 'service', to: dest });
    } catch (err) {
      if (err instanceof CallNotFoundError || err instanceof CallStateError) {
        send(res, 'Error', { code: err.code });
        return;
      }
      throw err;
    }
    logger.info('compat transfer', { callId, keyName: apiKeyNameOf(res), dest });
    res.set('X-Call-Id', callId);
    send(res, 'OK');
  };

  const autocall = async (req: Request, res: Response, number: string): Promise<void> => {
    const { service, guard: autocallGuard } = deps.autocalls!;
    const files: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const file = param(req, `file${i}`);
      if (file === undefined) continue;
      if (!soundSchema.safeParse(file).success)
        throw new HttpError(400, 'invalid_request', `file${i}: must be an Asterisk sound name`, {
          field: `file${i}`,
        });
      files.push(file);
    }
    if (files.length === 0)
      throw new HttpError(400, 'invalid_request', 'file1: at least one file is required', {
        field: 'file1',
      });
    if (!service.dialling)
      throw new HttpError(503, 'autocalls_unavailable', 'notification calls are not available');
    const keyName = apiKeyNameOf(res);
    const { job, forms } = service.prepare({ to: number, files }, '', { requestedBy: keyName });
    await autocallGuard.admit({
      keyName,
      number: forms,
      operator: 'autocall',
      ip: canonicalIp(req.ip) ?? req.ip,
    });
    const [created] = await service.createJobs([job]);
    logger.info('compat autocall accepted', { jobId: created!.id, keyName });
    send(res, 'OK', { fields: [['AutoCallID', String(created!.id)]] });
  };

  const autocallStatus = async (res: Response, text: string): Promise<void> => {
    const id = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
    if (!(id <= 2 ** 32 - 1))
      throw new HttpError(400, 'invalid_request', 'autocallstatus: must be an AutoCallID', {
        field: 'autocallstatus',
      });
    let status;
    try {
      status = (await deps.autocalls!.service.getJob(id)).status;
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) {
        send(res, 'Error', { code: 'autocall_not_found' });
        return;
      }
      throw err;
    }
    res.set('X-Autocall-Status', status);
    const answer = autocallStatusAnswer(status);
    send(res, answer, answer === 'Error' ? { code: status } : {});
  };

  router.get(deps.path, deps.authenticate, async (req, res) => {
    const makecallNumber = param(req, 'makecall');
    const transferId = param(req, 'transfer');
    if (makecallNumber !== undefined) await makecall(req, res, makecallNumber);
    else if (param(req, 'get_uniqueid_callerid') !== undefined) currentCall(req, res);
    else if (transferId !== undefined) await transfer(req, res, transferId);
    else if (param(req, 'autocall') !== undefined || param(req, 'autocallstatus') !== undefined) {
      if (!deps.autocalls)
        throw new HttpError(501, 'not_implemented', 'autocall is not available on this engine');
      const number = param(req, 'autocall');
      if (number !== undefined) await autocall(req, res, number);
      else await autocallStatus(res, param(req, 'autocallstatus')!);
    } else
      throw new HttpError(
        400,
        'invalid_request',
        'expected one of makecall, get_uniqueid_callerid, transfer',
      );
  });

  router.use(deps.path, compatErrorHandler(logger));
  return router;
}

/**
 * Errors on the compat path in the daemon's text format: the HTTP status of the refusal, the body
 * `Answer: Error`, the machine code in `X-Error-Code` (also for refusals raised before the compat
 * router runs, e.g. 503 `shutting_down` or 403 `ip_not_allowed`: the app mounts this on the path).
 */
export function compatErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    if (err instanceof HttpError) {
      if (err.headers) res.set(err.headers);
      send(res, 'Error', { status: err.status, code: err.code });
      return;
    }
    logger.error('compat request failed', { err });
    send(res, 'Error', { status: 500, code: 'internal_error' });
  };
}
