/**
 * OpenAPI paths of the public routes, without an API key: the probes (`/healthz`, `/readyz`),
 * `/metrics`, the operator console's page and assets (src/console/routes.ts) and this document.
 */
import { errorResponse, TAG, type JsonObject } from './common.ts';

/** The probes, metrics, the console and `/openapi.json`, in the document's order. */
export function publicPaths(): Record<string, JsonObject> {
  const publicGet = (
    operationId: string,
    summary: string,
    description: string,
    content: JsonObject,
    errors: Record<string, JsonObject> = {},
  ): JsonObject => ({
    get: {
      operationId,
      tags: [TAG.operations],
      summary,
      security: [],
      responses: { '200': { description, content }, ...errors },
    },
  });
  // /metrics and /openapi.json are behind the IP allow-list (not /healthz, /readyz).
  const outsideAllowList = {
    '403': errorResponse('`ip_not_allowed`: the client is outside HTTP_ALLOWED_CIDRS.'),
  };
  return {
    '/healthz': publicGet('getHealth', 'Liveness', 'The process answers.', {
      'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' } } } },
    }),
    '/readyz': {
      get: {
        operationId: 'getReadiness',
        tags: [TAG.operations],
        summary: 'Readiness',
        description:
          'Ready when every check passes: `ari` (the ARI WebSocket is open), `store` (store writes succeed), `shutdown` (the engine is not stopping). `checks` lists each as `{status: "ok"}` or `{status: "failed", reason}`. Not subject to HTTP_ALLOWED_CIDRS.',
        security: [],
        responses: {
          '200': { description: 'Ready: `{status: "ready", checks}`.' },
          '503': {
            description: 'Not ready: `{status: "not_ready", checks}` names the failing check.',
          },
        },
      },
    },
    '/metrics': publicGet(
      'getMetrics',
      'Prometheus metrics',
      'Prometheus text format (`aricrm_*`).',
      { 'text/plain': { schema: { type: 'string' } } },
      outsideAllowList,
    ),
    '/console': {
      get: {
        operationId: 'getConsole',
        tags: [TAG.console],
        summary: 'The operator console',
        description:
          'The page an operator opens with a link the CRM builds: `/console?token=<operator token>&expiresAt=<ISO time>` (docs/console.md). The page keeps the token in the tab and removes it from the address bar. Served with a Content-Security-Policy that lets it load and connect to this engine only, `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.',
        security: [],
        responses: {
          '200': {
            description: 'The page.',
            content: { 'text/html': { schema: { type: 'string' } } },
          },
          ...outsideAllowList,
        },
      },
    },
    '/console/assets/console.css': {
      get: {
        operationId: 'getConsoleStyleSheet',
        tags: [TAG.console],
        summary: "The console's style sheet",
        security: [],
        responses: {
          '200': {
            description: 'The style sheet.',
            content: { 'text/css': { schema: { type: 'string' } } },
          },
          ...outsideAllowList,
        },
      },
    },
    '/console/assets/{file}': {
      get: {
        operationId: 'getConsoleScript',
        tags: [TAG.console],
        summary: "A module of the console's browser code",
        security: [],
        parameters: [
          {
            name: 'file',
            in: 'path',
            required: true,
            description: 'A JavaScript module of the console, e.g. console.js.',
            schema: { type: 'string', pattern: '^[a-z][a-z0-9-]*\\.js$' },
          },
        ],
        responses: {
          '200': {
            description: 'The module (an ES module).',
            content: { 'text/javascript': { schema: { type: 'string' } } },
          },
          '404': errorResponse('`not_found`: no such module.'),
          ...outsideAllowList,
        },
      },
    },
    '/openapi.json': publicGet(
      'getOpenApiDocument',
      'This document',
      'OpenAPI 3.1 document.',
      { 'application/json': { schema: { type: 'object' } } },
      outsideAllowList,
    ),
  };
}
