/**
 * Types of the CRM route lookup: the route an inbound call takes,
 * the lookup request, and the decision the route client returns. Pure data, no telephony.
 * Contract: docs/crm-routing.md.
 */
import type { ScriptVerb } from '../calls/verbs/schema.ts';

/** Ring operator extensions. */
export interface DialAction {
  type: 'dial';
  /**
   * `ringall`: all extensions ring at once, the first to answer gets the call.
   * `sequential`: one extension after another, in the given order.
   */
  strategy: 'ringall' | 'sequential';
  /** Operator extensions (2-10 digits each), in order of preference; at least one. */
  extensions: string[];
  /**
   * Ring time in seconds (1-600): for `ringall` the whole group rings this long; for
   * `sequential` each extension rings this long before the next one is tried.
   */
  ringTimeoutSec: number;
}

/** Hang the caller up (e.g. a blacklisted number). */
export interface HangupAction {
  type: 'hangup';
}

/**
 * Run a call script on the caller's channel (the CRM answered `{"verbs": [...]}`): a menu, a
 * message, operators rung by a `dial` verb… Format and behaviour: docs/verbs.md; what an inbound
 * call does with it: docs/crm-routing.md.
 */
export interface VerbsAction {
  type: 'verbs';
  /** The validated script (1-100 verbs). */
  verbs: ScriptVerb[];
}

/** Where an inbound call goes, and what happens before. */
export interface Route {
  /**
   * The customer the CRM recognised. `name` is shown on the operator's phone as
   * CALLERID(name) behind OPERATOR_CALLERID_PREFIX; `id` travels in `call.started`; `link`
   * (the customer's page in the CRM, an http(s) URL) in `call.started` and `call.ringing` (the
   * card of the live stream).
   */
  customer?: { id?: string; name?: string; link?: string };
  /**
   * Media played to the caller before dialling, in order: Asterisk media URIs such as
   * `sound:hello-world`, `recording:welcome`, `digits:123`.
   */
  greeting?: { media: string[] };
  /** Record the bridged conversation. Absent: the engine's default. */
  record?: boolean;
  action: DialAction | HangupAction | VerbsAction;
}

/** What the engine sends: `POST <CRM_ROUTE_URL>` with this JSON body. */
export interface RouteLookupRequest {
  /** Engine call id (UUID); the same id appears in the call's webhooks. */
  callId: string;
  /** Caller number (CALLERID(num)) as Asterisk delivered it. */
  from: string;
  /** The DID the customer dialled. */
  did: string;
}

/** Why a lookup ended in the fallback route. */
export type RouteFailureReason =
  'timeout' | 'connection' | 'http_status' | 'invalid_body' | 'not_configured';

/** The route an inbound call takes, and where it came from. */
export interface RouteDecision {
  /** The route to execute (a fresh copy; the caller may change it). */
  route: Route;
  /** `crm`: the CRM answered now; `cache`: a recent CRM answer; `fallback`: FALLBACK_ROUTE. */
  source: 'crm' | 'cache' | 'fallback';
  /** Set when `source` is `fallback`: the reason and a short, log-safe detail. */
  failure?: { reason: RouteFailureReason; detail: string };
  /** Time the lookup took, in milliseconds. */
  durationMs: number;
}

/** Asks the CRM for routes. */
export interface RouteClient {
  /**
   * The route of an inbound call. Never throws and never takes longer than `timeoutMs` (plus
   * a few ms of scheduling): any failure yields the fallback route with `failure` set.
   */
  lookup(request: RouteLookupRequest): Promise<RouteDecision>;
  /** Forget all cached answers (e.g. after the CRM's data changed). */
  clearCache(): void;
}
