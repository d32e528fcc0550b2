/**
 * OpenAPI paths of the notification calls routes (src/autocalls/routes.ts): notification calls
 * (jobs) and campaigns.
 */
import { campaignJobsQuerySchema, MAX_JOBS_PER_REQUEST } from '../../autocalls/schemas.ts';
import {
  authErrors,
  errorResponse,
  idempotencyKeyParameter,
  json,
  payloadTooLarge,
  queryParameters,
  retryAfterHeader,
  TAG,
  type JsonObject,
} from './common.ts';

/** The `{id}` of the notification call routes. */
const autocallIdParameter: JsonObject = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Notification call (job) id; also the asterisk.fcgi AutoCallID.',
  schema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
};

/** The `{id}` of the campaign routes. */
const campaignIdParameter: JsonObject = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Campaign id.',
  schema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
};

/** `/v1/autocalls…` and `/v1/campaigns…`, the campaign actions (pause, resume, cancel) last. */
export function autocallPaths(): Record<string, JsonObject> {
  return {
    '/v1/autocalls': {
      post: {
        operationId: 'createAutocall',
        tags: [TAG.autocalls],
        summary: 'Create a notification call',
        description:
          'Queues a notification call: once due it is dialled on the trunk chosen by the number’s prefix (TRUNKS); when answered (and, with `confirm`, after the confirm digit) the files (or verbs) play. Busy or unanswered attempts are retried up to `tries` times, `triesPeriodSec` apart. Every job ends in one final status: delivered, busy, no_answer, failed, canceled (machine with answering-machine detection). `autocall.attempt` and `autocall.finished` webhooks follow. Safe to retry with `Idempotency-Key`. See docs/autocalls.md.',
        parameters: [idempotencyKeyParameter],
        requestBody: { required: true, content: json('AutocallRequest') },
        responses: {
          '202': {
            description:
              'Queued; `Location: /v1/autocalls/{id}`. A replay of an `Idempotency-Key` answers the first job with `Idempotent-Replayed: true`.',
            content: json('AutocallJob'),
          },
          '400': errorResponse(
            '`invalid_request` (field named), `invalid_number` (field `to`), `invalid_json`.',
          ),
          ...authErrors,
          '403': errorResponse(
            '`destination_not_allowed` (DESTINATION_ALLOWLIST), `destination_type_not_allowed` (DESTINATION_DENIED_TYPES, with `numberType`); `forbidden`, `ip_not_allowed`.',
          ),
          '404': errorResponse('`campaign_not_found` (field `campaignId`).'),
          '409': errorResponse(
            '`campaign_canceled`; `idempotency_conflict` (the key was used for another request), `idempotency_in_progress`.',
          ),
          '413': payloadTooLarge,
          '415': errorResponse('`unsupported_media_type`.'),
          '422': errorResponse('`no_trunk`: TRUNKS has no trunk for the number.'),
          '429': {
            description:
              '`rate_limited`: too many calls for this API key (CALLS_RATE_LIMIT_PER_MIN), with `Retry-After` seconds.',
            headers: retryAfterHeader,
            content: json('Error'),
          },
          '503': errorResponse(
            '`autocalls_unavailable`: this engine has no notification-call dialer; `shutting_down`; `api_keys_not_configured`.',
          ),
        },
      },
    },
    '/v1/autocalls/{id}': {
      get: {
        operationId: 'getAutocall',
        tags: [TAG.autocalls],
        summary: 'A notification call with its attempts',
        parameters: [autocallIdParameter],
        responses: {
          '200': { description: 'The job, with every attempt.', content: json('AutocallJob') },
          '400': errorResponse('`invalid_request`: the id is not a positive integer.'),
          ...authErrors,
          '404': errorResponse('`autocall_not_found`.'),
        },
      },
    },
    '/v1/autocalls/{id}/cancel': {
      post: {
        operationId: 'cancelAutocall',
        tags: [TAG.autocalls],
        summary: 'Cancel a notification call',
        description:
          'A queued job ends `canceled` at once; an attempt in progress is stopped and the job ends `canceled` unless its message was already delivered. A job already final is left as it is.',
        parameters: [autocallIdParameter],
        responses: {
          '200': { description: 'The job.', content: json('AutocallJob') },
          '400': errorResponse('`invalid_request`: the id is not a positive integer.'),
          ...authErrors,
          '404': errorResponse('`autocall_not_found`.'),
          '413': payloadTooLarge,
        },
      },
    },
    '/v1/campaigns': {
      post: {
        operationId: 'createCampaign',
        tags: [TAG.autocalls],
        summary: 'Create a campaign',
        description:
          'A campaign groups notification calls under common limits: at most `maxConcurrent` calls in progress (across engines sharing the store), `callsPerSecond` new calls per second, only inside its calling `window`; its `defaults` apply to its jobs. It starts `active`.',
        requestBody: { required: true, content: json('CampaignRequest') },
        responses: {
          '201': {
            description: 'Created; `Location: /v1/campaigns/{id}`.',
            content: json('Campaign'),
          },
          '400': errorResponse('`invalid_request` (field named), `invalid_json`.'),
          ...authErrors,
          '413': payloadTooLarge,
          '415': errorResponse('`unsupported_media_type`.'),
        },
      },
    },
    '/v1/campaigns/{id}': {
      get: {
        operationId: 'getCampaign',
        tags: [TAG.autocalls],
        summary: 'A campaign with its job counts per status',
        parameters: [campaignIdParameter],
        responses: {
          '200': { description: 'The campaign and `counts`.', content: json('Campaign') },
          '400': errorResponse('`invalid_request`: the id is not a positive integer.'),
          ...authErrors,
          '404': errorResponse('`campaign_not_found`.'),
        },
      },
    },
    '/v1/campaigns/{id}/jobs': {
      post: {
        operationId: 'addCampaignJobs',
        tags: [TAG.autocalls],
        summary: 'Add jobs to a campaign',
        description: `Up to ${MAX_JOBS_PER_REQUEST} jobs (body up to 8 MiB), each checked like \`POST /v1/autocalls\` (destination policy, trunk); all are stored in one transaction or none (a refusal names the job, e.g. \`jobs.17.to\`).`,
        parameters: [campaignIdParameter],
        requestBody: { required: true, content: json('CampaignJobsRequest') },
        responses: {
          '202': { description: 'Stored and queued.', content: json('CampaignJobsAccepted') },
          '400': errorResponse(
            '`invalid_request` (field named), `invalid_number` (field `jobs.<n>.to`), `invalid_json`.',
          ),
          ...authErrors,
          '403': errorResponse(
            '`destination_not_allowed`, `destination_type_not_allowed` (field `jobs.<n>.to`); `forbidden`, `ip_not_allowed`.',
          ),
          '404': errorResponse('`campaign_not_found`.'),
          '409': errorResponse('`campaign_canceled`.'),
          '413': errorResponse(
            `\`too_many_jobs\`: more than ${MAX_JOBS_PER_REQUEST} jobs; \`payload_too_large\`: a body over 8 MiB.`,
          ),
          '415': errorResponse('`unsupported_media_type`.'),
          '422': errorResponse('`no_trunk` (field `jobs.<n>.to`).'),
          '503': errorResponse(
            '`autocalls_unavailable`: this engine has no notification-call dialer; `shutting_down`; `api_keys_not_configured`.',
          ),
        },
      },
      get: {
        operationId: 'listCampaignJobs',
        tags: [TAG.autocalls],
        summary: 'A campaign’s jobs',
        description: 'In creation order, optionally of one status, in cursor pages.',
        parameters: [campaignIdParameter, ...queryParameters(campaignJobsQuerySchema)],
        responses: {
          '200': { description: 'A page of jobs.', content: json('AutocallJobPage') },
          '400': errorResponse(
            '`invalid_query` (field named: unknown parameter, status, limit), `invalid_cursor`, `invalid_request` (id).',
          ),
          ...authErrors,
          '404': errorResponse('`campaign_not_found`.'),
        },
      },
    },
    ...Object.fromEntries(
      (
        [
          [
            'pause',
            'pauseCampaign',
            'Pause a campaign',
            'No new call starts; calls in progress finish.',
          ],
          ['resume', 'resumeCampaign', 'Resume a campaign', 'The campaign places calls again.'],
          [
            'cancel',
            'cancelCampaign',
            'Cancel a campaign',
            'Its queued jobs end `canceled` at once; calls in progress are stopped and end `canceled` unless delivered. Final: a canceled campaign cannot be resumed.',
          ],
        ] as const
      ).map(([action, operationId, summary, description]) => [
        `/v1/campaigns/{id}/${action}`,
        {
          post: {
            operationId,
            tags: [TAG.autocalls],
            summary,
            description,
            parameters: [campaignIdParameter],
            responses: {
              '200': { description: 'The campaign with its counts.', content: json('Campaign') },
              '400': errorResponse('`invalid_request`: the id is not a positive integer.'),
              ...authErrors,
              '404': errorResponse('`campaign_not_found`.'),
              ...(action === 'cancel' ? {} : { '409': errorResponse('`campaign_canceled`.') }),
              '413': payloadTooLarge,
            },
          },
        },
      ]),
    ),
  };
}
