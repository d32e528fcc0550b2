/**
 * Shared pieces of the OpenAPI document (src/http/openapi/index.ts): JSON Schema generation from
 * the routes' zod schemas, `$ref` and error-answer helpers, the parameters and answers several
 * domains reuse, and the tags grouping the operations.
 */
import { z } from 'zod';
import { idempotencyKeySchema } from '../../calls/routes.ts';

/** A JSON object (the document and its parts). */
export type JsonObject = { [key: string]: unknown };

type SchemaMap = Record<string, z.ZodType>;

/**
 * The `components.schemas` entries of zod schemas, keyed by id: JSON Schema 2020-12 of their
 * `input` (request bodies) or `output` (answers) side; references between them are `$ref`s to
 * `#/components/schemas/<id>`.
 */
export function componentSchemas(
  schemas: SchemaMap,
  io: 'input' | 'output',
): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const generated = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  });
  const out: Record<string, JsonObject> = {};
  for (const [id, schema] of Object.entries(generated.schemas)) {
    const { $schema: _schema, $id: _id, ...rest } = schema as JsonObject;
    out[id] = rest;
  }
  return out;
}

/** An inline JSON Schema of a parameter. */
export function inline(schema: z.ZodType): JsonObject {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
  }) as JsonObject;
  return rest;
}

/** The query parameters of a route, from the zod object its query is validated with. */
export function queryParameters(schema: z.ZodObject): JsonObject[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const { description, ...rest } = inline(field as z.ZodType);
    return { name, in: 'query', required: false, description, schema: rest };
  });
}

/** A `$ref` to the component schema `id`. */
export const ref = (id: string): JsonObject => ({ $ref: `#/components/schemas/${id}` });
/** An `application/json` content of the component schema `id`. */
export const json = (id: string): JsonObject => ({ 'application/json': { schema: ref(id) } });

/** An error answer (`{code, message}`) with its description (the codes it carries). */
export const errorResponse = (description: string): JsonObject => ({
  description,
  content: json('Error'),
});

/** The `Retry-After` header of a 429 or 503 answer. */
export const retryAfterHeader: JsonObject = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
};

/**
 * 503 of a call command (create, hang up, transfer): `ari_unavailable` while the engine is not
 * connected to Asterisk, with the other 503 codes of an authenticated route.
 */
export const commandUnavailable = (extra = ''): JsonObject => ({
  description: `\`ari_unavailable\`: the engine is not connected to Asterisk (starting up, or Asterisk is unreachable), nothing was done (\`Retry-After\` seconds); ${extra}\`shutting_down\`; \`api_keys_not_configured\`.`,
  headers: retryAfterHeader,
  content: json('Error'),
});

/** The common error answers of an authenticated route. */
export const authErrors: Record<string, JsonObject> = {
  '401': {
    description:
      '`unauthorized`: no credentials, or a malformed Authorization header (with `WWW-Authenticate: Bearer`).',
    content: json('Error'),
  },
  '403': errorResponse(
    '`forbidden`: the API key is not valid; `ip_not_allowed`: the client is outside HTTP_ALLOWED_CIDRS.',
  ),
  '503': errorResponse(
    '`api_keys_not_configured`: API_KEYS is empty (development), every API route refuses; `shutting_down`: the engine is stopping (SIGTERM), retry on another instance (`Connection: close`).',
  ),
};

/** The optional `Idempotency-Key` header of the creating POSTs (calls, notification calls). */
export const idempotencyKeyParameter: JsonObject = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: idempotencyKeySchema.description,
  schema: inline(idempotencyKeySchema),
};

/** The `{id}` of the calls routes. */
export const callIdParameter: JsonObject = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Engine call id (UUID).',
  schema: { type: 'string' },
};

/** The tags grouping the operations. */
export const TAG = {
  calls: 'Calls',
  recordings: 'Recordings',
  events: 'Events',
  operators: 'Operators',
  stream: 'Live stream',
  autocalls: 'Notification calls',
  compat: 'asterisk.fcgi compatibility',
  connectors: 'CRM connectors',
  webhooks: 'Webhooks',
  operations: 'Operations',
  console: 'Operator console',
} as const;

/** 413 of a route with a JSON body (express.json's limit, src/http/app.ts). */
export const payloadTooLarge: JsonObject = errorResponse(
  '`payload_too_large`: the request body is larger than 256 KiB.',
);

/** A HEAD operation from a GET one: the same parameters, statuses and headers, no bodies. */
export function headOf(get: JsonObject, texts: JsonObject): JsonObject {
  const responses = Object.fromEntries(
    Object.entries(get.responses as Record<string, JsonObject>).map(([status, response]) => {
      const { content: _content, ...rest } = response;
      return [status, rest];
    }),
  );
  const { summary: _s, description: _d, operationId: _o, ...rest } = get;
  return { ...rest, ...texts, responses };
}

/**
 * The routes a browser console reaches with an operator token (src/security/operator-tokens.ts):
 * adds the `operatorToken` scheme (before the anonymous `{}` of a signed link) and says what the
 * token is allowed. Changes `operation` in place.
 */
export function acceptOperatorToken(operation: JsonObject): void {
  const tokenNote =
    ' With an operator token instead of an API key: only calls of its own extension (others: 404 `call_not_found`; click-to-call from another extension: 403 `extension_not_allowed`; expired token: 401 `token_expired`).';
  const security = (operation.security as JsonObject[] | undefined) ?? [{ bearerAuth: [] }];
  operation.security = [
    ...security.filter((s) => Object.keys(s).length > 0),
    { operatorToken: [] },
    ...security.filter((s) => Object.keys(s).length === 0),
  ];
  operation.description = `${String(operation.description ?? operation.summary)}${tokenNote}`;
}
