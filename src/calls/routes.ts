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
 *
 * The parts: `route-schemas.ts` (request bodies, query, headers; also the OpenAPI schemas),
 * `route-checks.ts` (refusals while Asterisk or the store is down, numbers, JSON bodies, the
 * contract's errors as HTTP), `click-to-call-routes.ts` (placing a call), `call-query-routes.ts`
 * (reading calls and an operator's current call), `call-command-routes.ts` (hang-up, transfer).
 * Their exported names are exported here too.
 */
import express, { type Router } from 'express';
import type { IdempotencyStore } from '../http/idempotency.ts';
import type { ScriptRecordingView } from '../http/history-schemas.ts';
import type { WorkstationMap } from '../http/workstations.ts';
import type { Logger } from '../logging/logger.ts';
import type { CountryCode } from '../numbers/phone.ts';
import type { CallGuard } from '../security/guard.ts';
import type { CallRepository } from '../store/index.ts';
import { registerCallCommandRoutes } from './call-command-routes.ts';
import { registerCallQueryRoutes } from './call-query-routes.ts';
import { registerClickToCallRoute, type StoredCallCreation } from './click-to-call-routes.ts';
import type { CallControl } from './control.ts';

export {
  callListQuerySchema,
  clickToCallBodySchema,
  DEFAULT_CALLS_PAGE,
  extensionSchema,
  idempotencyKeySchema,
  serviceNumberSchema,
  transferBodySchema,
} from './route-schemas.ts';
export {
  ARI_UNAVAILABLE_RETRY_AFTER_SEC,
  controlErrorToHttp,
  normaliseNumberOrThrow,
  refuseWhileAriDown,
  refuseWhileStoreFails,
} from './route-checks.ts';
export {
  DEFAULT_STORE_WAIT_MS,
  startGuardedClickToCall,
  type AcceptedCall,
  type StoredCallCreation,
} from './click-to-call-routes.ts';
export { numberCandidates, type CallPageView } from './call-query-routes.ts';

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

/** Build the router; mount it at `/v1` behind the API key check and a JSON body parser. */
export function createCallRoutes(deps: CallRoutesDeps): Router {
  const router = express.Router();
  registerCallQueryRoutes(router, deps);
  registerClickToCallRoute(router, deps);
  registerCallCommandRoutes(router, deps);
  return router;
}
