/**
 * CRM integration, route lookup part: route types and the FALLBACK_ROUTE parser,
 * the CRM answer schema and the route client. Contract: docs/crm-routing.md.
 */
export type {
  DialAction,
  HangupAction,
  Route,
  RouteClient,
  RouteDecision,
  RouteFailureReason,
  RouteLookupRequest,
} from './types.ts';
export {
  parseRouteSpec,
  EXTENSION_PATTERN,
  MIN_RING_TIMEOUT_SEC,
  MAX_RING_TIMEOUT_SEC,
} from './route.ts';
export {
  routeAnswerSchema,
  parseRouteAnswer,
  verbsRouteAnswerSchema,
  routeFromAnswer,
  MEDIA_PATTERN,
  MAX_CUSTOMER_NAME_LENGTH,
  MAX_EXTENSIONS,
  MAX_GREETING_MEDIA,
  type RouteAnswer,
} from './route-answer.ts';
export {
  createRouteClient,
  MAX_ROUTE_ANSWER_BYTES,
  type RouteClientOptions,
  type RouteSource,
} from './route-client.ts';
