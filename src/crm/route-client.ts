/**
 * CRM route lookup:
 * an inbound call asks the CRM who is calling and where the call goes. The CRM may be slow,
 * down or answer garbage; the call must still go somewhere, so every failure becomes the
 * configured fallback route, logged at warn and counted. Contract: docs/crm-routing.md.
 * Requests go through the engine's outbound client (`src/http/outbound.ts`: undici keep-alive
 * pool, not `fetch`, for CPU); redirects are never followed.
 */
import { createRequire } from 'node:module';
import type { Counter, Histogram, Registry } from 'prom-client';
import {
  describeError,
  outboundDeadline,
  postForJson,
  sharedOutboundPost,
  type OutboundPost,
} from '../http/outbound.ts';
import { counter } from '../metrics/registry.ts';
import { crmRequestDuration } from './metrics.ts';
import type { Logger } from '../logging/logger.ts';
import { describeIssues, parseRouteAnswer, routeFromAnswer } from './route-answer.ts';
import type {
  Route,
  RouteClient,
  RouteDecision,
  RouteFailureReason,
  RouteLookupRequest,
} from './types.ts';

/** Options of {@link createRouteClient}; normally filled from the configuration. */
export interface RouteClientOptions {
  /** CRM_ROUTE_URL. Undefined: every lookup returns the fallback with reason `not_configured`. */
  url?: string;
  /** CRM_API_KEY, sent as `Authorization: Bearer <key>`. Never logged. */
  apiKey?: string;
  /** CRM_TIMEOUT_MS: hard total timeout of one lookup (connect + headers + body), ms. Default 1500. */
  timeoutMs: number;
  /** CRM_ROUTE_CACHE_TTL_MS: how long a successful answer is reused, ms; 0 disables the cache. */
  cacheTtlMs: number;
  /** Most cached answers kept; the oldest is evicted first. Default 10 000. */
  cacheMaxEntries?: number;
  /** FALLBACK_ROUTE, parsed with `parseRouteSpec`. */
  fallback: Route;
  /**
   * RING_TIMEOUT_SEC: ring time of a CRM dial answer without `ringTimeoutSec`. Default: the
   * fallback's ring timeout when it dials, else 20.
   */
  defaultRingTimeoutSec?: number;
  logger: Logger;
  /** Registry the `aricrm_crm_*` metrics are registered on (reused if already there). */
  registry: Registry;
  /**
   * How to POST (`src/http/outbound.ts`): the engine passes the `post` of its outbound client;
   * default the process-wide shared client (tests).
   */
  post?: OutboundPost;
  /**
   * Ask this instead of POSTing to `url` (a CRM connector's vendor lookup, src/connectors/):
   * the lookup keeps this client's hard timeout (`signal` aborts at the deadline), cache,
   * fallback and metrics. A throw counts as a `connection` failure.
   */
  source?: RouteSource;
}

/** A route lookup other than the engine's own `POST <CRM_ROUTE_URL>` (see `RouteClientOptions.source`). */
export type RouteSource = (
  request: RouteLookupRequest,
  signal: AbortSignal,
) => Promise<
  | { ok: true; route: Route }
  | { ok: false; reason: 'connection' | 'http_status' | 'invalid_body'; detail: string }
>;

/** Largest answer body read, in bytes; a bigger one is `invalid_body`. */
export const MAX_ROUTE_ANSWER_BYTES = 64 * 1024;

const DEFAULT_TIMEOUT_MS = 1500;
const DEFAULT_CACHE_MAX_ENTRIES = 10_000;
const FAILURE_REASONS: readonly RouteFailureReason[] = [
  'timeout',
  'connection',
  'http_status',
  'invalid_body',
  'not_configured',
];

type AttemptResult =
  | { ok: true; route: Route }
  | { ok: false; reason: Exclude<RouteFailureReason, 'not_configured'>; detail: string };

/**
 * Create the route client. Metrics (on `options.registry`):
 * `aricrm_crm_request_duration_seconds{operation="route",outcome}` (outcome: ok | timeout |
 * connection | http_status | invalid_body), `aricrm_crm_route_fallbacks_total{reason}`,
 * `aricrm_crm_route_cache_hits_total`.
 *
 * Answers are cached per caller number and DID (`from` + `did`: the CRM may route one caller
 * differently per DID); callers without digits in their number (anonymous) are never cached.
 *
 * @throws RangeError when `timeoutMs`, `cacheTtlMs` or `cacheMaxEntries` is not a usable number.
 */
export function createRouteClient(options: RouteClientOptions): RouteClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new RangeError(`timeoutMs must be > 0, got ${timeoutMs}`);
  if (!Number.isFinite(options.cacheTtlMs) || options.cacheTtlMs < 0) {
    throw new RangeError(`cacheTtlMs must be >= 0, got ${options.cacheTtlMs}`);
  }
  const maxEntries = options.cacheMaxEntries ?? DEFAULT_CACHE_MAX_ENTRIES;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`cacheMaxEntries must be a positive integer, got ${maxEntries}`);
  }
  const fallback = structuredClone(options.fallback);
  const defaultRingTimeoutSec =
    options.defaultRingTimeoutSec ??
    (fallback.action.type === 'dial' ? fallback.action.ringTimeoutSec : 20);
  const post = options.post ?? sharedOutboundPost();
  const logger = options.logger;
  const cache = new RouteCache(options.cacheTtlMs, maxEntries);
  const metrics = routeMetrics(options.registry);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    'user-agent': `ari-crm/${PACKAGE_VERSION}`,
  };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;

  const fallbackDecision = (
    reason: RouteFailureReason,
    detail: string,
    startedAt: number,
  ): RouteDecision => {
    metrics.fallbacks.inc({ reason });
    return {
      route: structuredClone(fallback),
      source: 'fallback',
      failure: { reason, detail },
      durationMs: since(startedAt),
    };
  };

  async function attempt(
    url: string,
    request: RouteLookupRequest,
    signal: AbortSignal,
  ): Promise<AttemptResult> {
    if (options.source) {
      try {
        return await options.source(request, signal);
      } catch (err) {
        return { ok: false, reason: 'connection', detail: describeError(err) };
      }
    }
    const answer = await postForJson(
      post,
      url,
      {
        headers,
        body: JSON.stringify({ callId: request.callId, from: request.from, did: request.did }),
        signal,
      },
      { maxBytes: MAX_ROUTE_ANSWER_BYTES, rejectBlank: true },
    );
    if (!answer.ok) return answer;
    const parsed = parseRouteAnswer(answer.json);
    if (!parsed.success)
      return { ok: false, reason: 'invalid_body', detail: describeIssues(parsed.error) };
    return { ok: true, route: routeFromAnswer(parsed.data, fallback, defaultRingTimeoutSec) };
  }

  /** One request under a hard deadline: the race settles at the deadline even if `post` ignores the signal. */
  async function requestWithDeadline(
    url: string,
    request: RouteLookupRequest,
  ): Promise<AttemptResult> {
    const controller = new AbortController();
    const deadline = outboundDeadline(timeoutMs, controller);
    let settled = false;
    const work = attempt(url, request, controller.signal).finally(() => (settled = true));
    try {
      return await Promise.race([work, deadline.promise]);
    } finally {
      deadline.clear();
      // A settled attempt has read or discarded its answer: nothing to cancel. (An abort costs a
      // DOMException with its stack trace, ~1 % of the engine's time at capacity.)
      if (!settled) controller.abort();
    }
  }

  async function lookup(request: RouteLookupRequest): Promise<RouteDecision> {
    const startedAt = performance.now();
    try {
      const url = options.url ?? (options.source ? 'connector' : undefined);
      if (!url) {
        logger.debug('CRM_ROUTE_URL not set, using the fallback route', { callId: request.callId });
        return fallbackDecision('not_configured', 'CRM_ROUTE_URL is not set', startedAt);
      }
      const key = cacheKey(request);
      const cached = key === undefined ? undefined : cache.get(key);
      if (cached) {
        metrics.cacheHits.inc();
        return { route: structuredClone(cached), source: 'cache', durationMs: since(startedAt) };
      }
      const result = await requestWithDeadline(url, request);
      const durationMs = since(startedAt);
      metrics.duration.observe(
        { operation: 'route', outcome: result.ok ? 'ok' : result.reason },
        durationMs / 1000,
      );
      if (result.ok) {
        if (key !== undefined) cache.set(key, result.route);
        return { route: structuredClone(result.route), source: 'crm', durationMs };
      }
      logger.warn('CRM route lookup failed; using the fallback route', {
        callId: request.callId,
        reason: result.reason,
        detail: result.detail,
        durationMs,
      });
      return fallbackDecision(result.reason, result.detail, startedAt);
    } catch (err) {
      // Only reachable through a bug (e.g. a throwing logger): the call must still be routed.
      const detail = `internal error: ${describeError(err)}`;
      try {
        logger.error('CRM route lookup crashed, using the fallback route', {
          callId: request.callId,
          err,
        });
      } catch {
        // the logger itself failed; nothing left to report to
      }
      return fallbackDecision('connection', detail, startedAt);
    }
  }

  return {
    lookup,
    clearCache: () => cache.clear(),
  };

  function cacheKey(request: RouteLookupRequest): string | undefined {
    if (options.cacheTtlMs === 0 || !/\d/.test(request.from)) return undefined;
    return `${request.from}\u0000${request.did}`;
  }
}

/** Bounded TTL cache; Map insertion order makes the first key the oldest entry. */
class RouteCache {
  private readonly entries = new Map<string, { route: Route; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get(key: string): Route | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.route;
  }

  set(key: string, route: Route): void {
    if (this.ttlMs === 0) return;
    this.entries.delete(key);
    this.entries.set(key, { route, expiresAt: Date.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

interface RouteMetrics {
  duration: Histogram<'operation' | 'outcome'>;
  fallbacks: Counter<'reason'>;
  cacheHits: Counter;
}

function routeMetrics(registry: Registry): RouteMetrics {
  const duration = crmRequestDuration(registry);
  const fallbacks = counter(registry, {
    name: 'aricrm_crm_route_fallbacks_total',
    help: 'Inbound calls that took the fallback route, by reason.',
    labelNames: ['reason'] as const,
  });
  for (const reason of FAILURE_REASONS) fallbacks.inc({ reason }, 0);
  const cacheHits = counter(registry, {
    name: 'aricrm_crm_route_cache_hits_total',
    help: 'Route lookups answered from the cache.',
  });
  return { duration, fallbacks, cacheHits };
}

function since(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 10) / 10;
}

const PACKAGE_VERSION = ((): string => {
  try {
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
