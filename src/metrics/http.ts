/**
 * `aricrm_http_request_duration_seconds{method,route,status}`: one observation per HTTP request
 * the engine answers. `route` is the Express route template the
 * request matched (`/v1/calls/:id`, `/healthz`), never the concrete path, so a call id or a phone
 * number never becomes a label value; a request that reached no route (404, refused by the API
 * key check or the IP allow-list, `shutting_down`) is labelled {@link UNMATCHED_ROUTE}.
 */
import type { RequestHandler } from 'express';
import type { Counter, Histogram, Registry } from 'prom-client';
import { counter, histogram } from './registry.ts';

/** Metric name of the HTTP request duration histogram. */
export const HTTP_REQUEST_DURATION = 'aricrm_http_request_duration_seconds';

/** `route` label of requests that matched no route. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * `status` label of requests whose client went away before the answer was sent (nginx's
 * convention for "client closed request").
 */
export const CLIENT_CLOSED_STATUS = '499';

/** Buckets in seconds: API answers take milliseconds; the compat path may wait minutes. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Methods Node's HTTP parser accepts beyond these are labelled `OTHER` (bounded label set). */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Metric name of the counter of requests and connections refused before the app saw them. */
export const HTTP_CLIENT_ERRORS = 'aricrm_http_client_errors_total';

/**
 * `code` of {@link HTTP_CLIENT_ERRORS}: the error code answered (`request_timeout`,
 * `headers_too_large`, `bad_request`, `expectation_failed`) or `connection_limit` for a
 * connection closed because HTTP_MAX_CONNECTIONS were open.
 */
export type HttpClientErrorCode =
  | 'request_timeout'
  | 'headers_too_large'
  | 'bad_request'
  | 'expectation_failed'
  | 'connection_limit';

/** The counter of refused requests and connections on `registry` (created on first use). */
export function httpClientErrors(registry: Registry): Counter<'code'> {
  return counter(registry, {
    name: HTTP_CLIENT_ERRORS,
    help: 'HTTP requests and connections refused before reaching the API, by code: request_timeout (408), headers_too_large (431), bad_request (400, not valid HTTP), expectation_failed (417), connection_limit (HTTP_MAX_CONNECTIONS reached).',
    labelNames: ['code'] as const,
  });
}

/** The request duration histogram on `registry` (created on first use). */
export function httpRequestDuration(registry: Registry): Histogram<'method' | 'route' | 'status'> {
  return histogram(registry, {
    name: HTTP_REQUEST_DURATION,
    help: 'Duration of HTTP requests to the engine in seconds, by method, Express route template ("unmatched" when no route matched) and status code (499: the client went away first).',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: BUCKETS,
  });
}

/**
 * Middleware timing every request; mount it first. The route template is captured at the moment
 * Express matches a route (`req.baseUrl` + the route's path), because by the time the answer is
 * sent an error bubbling out of a nested router has already restored `req.baseUrl`: the first
 * request gives its app's request prototype (`app.request`) the accessor of
 * {@link captureRouteTemplates}. (An accessor defined on each request instead would cost V8 a
 * hidden class per request.)
 */
export function httpMetricsMiddleware(registry: Registry): RequestHandler {
  const duration = httpRequestDuration(registry);
  return (req, res, next) => {
    const startNs = process.hrtime.bigint();
    if (!(CAPTURES_TEMPLATES in req)) captureRouteTemplates(Object.getPrototypeOf(req) as object);
    let recorded = false;
    const record = (status: string): void => {
      if (recorded) return;
      recorded = true;
      const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
      const method = KNOWN_METHODS.has(req.method) ? req.method : 'OTHER';
      const route = (req as TemplateHolder)[TEMPLATE] ?? UNMATCHED_ROUTE;
      duration.observe({ method, route, status }, seconds);
    };
    res.once('finish', () => record(String(res.statusCode)));
    res.once('close', () => record(CLIENT_CLOSED_STATUS));
    next();
  };
}

/** Marks a request prototype given the `route` accessor of {@link captureRouteTemplates}. */
const CAPTURES_TEMPLATES = Symbol('aricrm.capturesRouteTemplates');
/** Where that accessor keeps a request's route and its template. */
const ROUTE = Symbol('aricrm.route');
const TEMPLATE = Symbol('aricrm.routeTemplate');

interface TemplateHolder {
  [ROUTE]?: unknown;
  [TEMPLATE]?: string;
  baseUrl: string;
}

/**
 * Define on `requestPrototype` (an Express app's `app.request`) a `route` accessor that
 * remembers, on each request, `req.baseUrl` + the route's path when the router sets `req.route`
 * (the last route matched wins; a route without a string path clears it).
 */
function captureRouteTemplates(requestPrototype: object): void {
  Object.defineProperties(requestPrototype, {
    [CAPTURES_TEMPLATES]: { value: true },
    route: {
      configurable: true,
      enumerable: true,
      get(this: TemplateHolder) {
        return this[ROUTE];
      },
      set(this: TemplateHolder, value: unknown) {
        this[ROUTE] = value;
        const path = (value as { path?: unknown } | undefined)?.path;
        this[TEMPLATE] = typeof path === 'string' ? `${this.baseUrl}${path}` : undefined;
      },
    },
  });
}
