/**
 * The OpenAPI 3.1 document served at `GET /openapi.json`: every public route, with an
 * `operationId` and tags,
 * request schemas generated from the same zod schemas the routes validate with
 * (`z.toJSONSchema`), responses, the `{code, message}` error model, the security schemes, and
 * the webhook payloads (OAS 3.1 `webhooks`). A test compares its paths with Express's routes.
 *
 * Each domain's paths are built in its own module of this folder (calls, recordings, events,
 * operators, stream, autocalls, compat, connectors, the public routes); common.ts holds the
 * shared helpers. Path order is the document's order, kept stable.
 */
import { readFileSync } from 'node:fs';
import { clickToCallBodySchema, transferBodySchema } from '../../calls/routes.ts';
import {
  autocallBodySchema,
  autocallJobPageSchema,
  autocallJobSchema,
  campaignBodySchema,
  campaignJobsAcceptedSchema,
  campaignJobsBodySchema,
  campaignSchema,
} from '../../autocalls/schemas.ts';
import { COMPAT_KEY_PARAMETER } from '../../compat/router.ts';
import { tokenRequestSchema } from '../../stream/routes.ts';
import {
  operatorListSchema,
  operatorSchema,
  operatorStatusBodySchema,
} from '../../operators/schemas.ts';
import { historyResponseSchemas } from '../history-schemas.ts';
import {
  acceptedCallSchema,
  callSnapshotSchema,
  currentCallSchema,
  errorSchema,
  webhookSchemas,
} from '../schemas.ts';
import { autocallPaths } from './autocalls.ts';
import { callPaths } from './calls.ts';
import { componentSchemas, TAG, type JsonObject } from './common.ts';
import { compatPaths } from './compat.ts';
import { connectorPaths } from './connectors.ts';
import { eventPaths, WEBHOOK_SCHEMA_IDS, webhookOperations } from './events.ts';
import { operatorPaths } from './operators.ts';
import { publicPaths } from './public.ts';
import { recordingPaths } from './recordings.ts';
import { streamPaths } from './stream.ts';

export type { JsonObject } from './common.ts';

/** What varies between deployments. */
export interface OpenApiOptions {
  /** COMPAT_PATH, e.g. `/asterisk.fcgi`. */
  compatPath: string;
  /** CRM_CONNECTOR: the endpoints its CRM calls are documented (retailcrm, bitrix24, amocrm). */
  connector?: string;
}

/** The engine's version, from package.json (`0.0.0` when it has none). */
function readVersion(): string {
  const url = new URL('../../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

/**
 * Build the document. Paths use OpenAPI templates (`/v1/calls/{id}`); the compat path is the
 * configured one.
 */
export function buildOpenApiDocument(options: OpenApiOptions): JsonObject {
  const requestSchemas = componentSchemas(
    {
      ClickToCallRequest: clickToCallBodySchema,
      TransferRequest: transferBodySchema,
      AutocallRequest: autocallBodySchema,
      CampaignRequest: campaignBodySchema,
      CampaignJobsRequest: campaignJobsBodySchema,
      OperatorTokenRequest: tokenRequestSchema,
      OperatorStatusRequest: operatorStatusBodySchema,
    },
    'input',
  );
  const responseSchemas = componentSchemas(
    {
      Call: callSnapshotSchema,
      AcceptedCall: acceptedCallSchema,
      CurrentCall: currentCallSchema,
      Operator: operatorSchema,
      OperatorList: operatorListSchema,
      Error: errorSchema,
      AutocallJob: autocallJobSchema,
      AutocallJobPage: autocallJobPageSchema,
      Campaign: campaignSchema,
      CampaignJobsAccepted: campaignJobsAcceptedSchema,
      ...historyResponseSchemas,
      ...Object.fromEntries(
        Object.entries(webhookSchemas).map(([type, schema]) => [WEBHOOK_SCHEMA_IDS[type]!, schema]),
      ),
    },
    'output',
  );

  const recordings = recordingPaths();
  const paths: Record<string, JsonObject> = {
    ...streamPaths(),
    ...publicPaths(),
    ...callPaths(recordings.recording),
    ...eventPaths(),
    ...operatorPaths(),
    ...autocallPaths(),
    ...compatPaths(options.compatPath),
    ...connectorPaths(options.connector),
    '/v1/calls/{id}/recordings/{name}': recordings.scriptRecording,
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'ari-crm',
      version: readVersion(),
      description:
        'Call-control engine for Asterisk: click-to-call, transfer, current call, lifecycle webhooks. Every error is `{"code", "message"}` (validation errors add `field`). See docs/api.md.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    // Relative: the engine that serves this document (behind a proxy, the proxy's address).
    servers: [{ url: '/', description: 'The engine serving this document' }],
    tags: [
      { name: TAG.calls, description: 'Click-to-call, call state, hang-up, transfer, history.' },
      { name: TAG.recordings, description: 'Recorded conversations (docs/recordings.md).' },
      { name: TAG.events, description: 'The event feed and the webhook delivery log.' },
      {
        name: TAG.operators,
        description: "Operator presence and status, an operator's current call (screen pop).",
      },
      {
        name: TAG.stream,
        description: "Operator tokens and the live stream to operators' browsers (docs/stream.md).",
      },
      {
        name: TAG.autocalls,
        description: 'Notification calls and campaigns (docs/autocalls.md).',
      },
      {
        name: TAG.compat,
        description: "The asterisk.fcgi daemon's protocol, for software written against it.",
      },
      ...(options.connector && options.connector !== 'webhook'
        ? [
            {
              name: TAG.connectors,
              description:
                'Endpoints the CRM of CRM_CONNECTOR calls; they authenticate with its own secret (docs/connectors.md).',
            },
          ]
        : []),
      { name: TAG.webhooks, description: 'Events POSTed to CRM_WEBHOOK_URL (docs/webhooks.md).' },
      { name: TAG.operations, description: 'Probes, metrics and this document; no API key.' },
      {
        name: TAG.console,
        description:
          "The operator console's page and assets (docs/console.md): public, no API key; opened with an operator token link.",
      },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    webhooks: webhookOperations(),
    components: {
      schemas: { ...requestSchemas, ...responseSchemas },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API key of API_KEYS: `Authorization: Bearer <key>`.',
        },
        operatorToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An operator token (POST /v1/operators/{extension}/tokens): `Authorization: Bearer <token>`, on the routes that say so, for its own extension only.',
        },
        streamToken: {
          type: 'apiKey',
          in: 'query',
          name: 'token',
          description: 'An operator token as a query parameter; the live stream only.',
        },
        compatKey: {
          type: 'apiKey',
          in: 'query',
          name: COMPAT_KEY_PARAMETER,
          description: 'The same API key as a query parameter; the compat path only.',
        },
      },
    },
  };
}
