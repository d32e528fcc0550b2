/**
 * The CRM requests of scripts (`gather.actionUrl`, `redirect.url`): `POST` a JSON
 * {@link VerbCrmRequest}, signed like the webhooks (`X-Signature: t=…,v1=…`,
 * src/events/signature.ts) when a secret is given and carrying `Authorization: Bearer
 * <CRM_API_KEY>` when a key is given, through the engine's outbound client
 * (src/http/outbound.ts: undici keep-alive pool, redirects never followed), under a hard
 * timeout like the route lookup (src/crm/route-client.ts). The answer must be 2xx JSON
 * `{"verbs": [...]}` valid for the script schema. Every failure is logged at warn, counted and
 * returned (never thrown), so the script goes on with its own rest. Contract: docs/verbs.md.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { signWebhook, type WebhookSecret } from '../../events/signature.ts';
import {
  describeError,
  outboundDeadline,
  postForJson,
  sharedOutboundPost,
  type OutboundPost,
} from '../../http/outbound.ts';
import { crmRequestDuration } from '../../crm/metrics.ts';
import type { Logger } from '../../logging/logger.ts';
import { counter } from '../../metrics/registry.ts';
import {
  describeScriptIssues,
  scriptIssues,
  verbsAnswerSchema,
  type ScriptVerb,
} from './schema.ts';
import type { VerbCrm, VerbCrmAnswer, VerbCrmFailureReason, VerbCrmRequest } from './types.ts';

/** Largest answer body read, bytes; a bigger one is `invalid_body`. */
export const MAX_VERBS_ANSWER_BYTES = 256 * 1024;

/** Options of {@link createVerbCrm}. */
export interface VerbCrmOptions {
  /** Hard total timeout of one request (connect + headers + body), ms (CRM_TIMEOUT_MS). */
  timeoutMs: number;
  /** Sent as `Authorization: Bearer <key>` (CRM_API_KEY). Never logged. */
  apiKey?: string;
  /** Signs the body like the webhooks (WEBHOOK_SECRET; several during a rotation). Never logged. */
  secret?: WebhookSecret;
  /** How to POST; default the process-wide shared client. */
  post?: OutboundPost;
  logger: Logger;
  /** Where `aricrm_crm_request_duration_seconds{operation="verbs"}` and the failures go. */
  registry: Registry;
}

const FAILURES: readonly Exclude<VerbCrmFailureReason, 'not_configured'>[] = [
  'timeout',
  'connection',
  'http_status',
  'invalid_body',
];

type Attempt =
  | { ok: true; verbs: ScriptVerb[] }
  | { ok: false; reason: Exclude<VerbCrmFailureReason, 'not_configured'>; detail: string };

/**
 * Create the CRM client of scripts. Metrics: `aricrm_crm_request_duration_seconds{operation=
 * "verbs", outcome}` (ok | timeout | connection | http_status | invalid_body) and
 * `aricrm_verb_crm_failures_total{reason}`.
 *
 * @throws RangeError when `timeoutMs` is not a positive number.
 */
export function createVerbCrm(options: VerbCrmOptions): VerbCrm {
  const { timeoutMs, logger } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new RangeError(`timeoutMs must be > 0, got ${timeoutMs}`);
  const post = options.post ?? sharedOutboundPost();
  const metrics = verbCrmMetrics(options.registry);

  async function attempt(url: string, body: string, signal: AbortSignal): Promise<Attempt> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    if (options.secret !== undefined) headers['x-signature'] = signWebhook(options.secret, body);
    const answer = await postForJson(
      post,
      url,
      { headers, body, signal },
      { maxBytes: MAX_VERBS_ANSWER_BYTES },
    );
    if (!answer.ok) return answer;
    const parsed = verbsAnswerSchema.safeParse(answer.json);
    if (!parsed.success) {
      const issues = scriptIssues(parsed.error, '');
      return { ok: false, reason: 'invalid_body', detail: describeScriptIssues(issues) };
    }
    return { ok: true, verbs: parsed.data.verbs };
  }

  async function fetchVerbs(
    url: string,
    request: VerbCrmRequest,
    signal: AbortSignal,
  ): Promise<VerbCrmAnswer> {
    const startedAt = performance.now();
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const deadline = outboundDeadline(timeoutMs, controller);
    let result: Attempt;
    try {
      result = signal.aborted
        ? { ok: false, reason: 'connection', detail: 'the channel hung up' }
        : await Promise.race([
            attempt(url, JSON.stringify(request), controller.signal),
            deadline.promise,
          ]);
    } catch (err) {
      result = { ok: false, reason: 'connection', detail: `internal error: ${describeError(err)}` };
    } finally {
      deadline.clear();
      signal.removeEventListener('abort', onAbort);
      controller.abort();
    }
    const durationMs = Math.round((performance.now() - startedAt) * 10) / 10;
    metrics.duration.observe(
      { operation: 'verbs', outcome: result.ok ? 'ok' : result.reason },
      durationMs / 1000,
    );
    if (result.ok) return { ok: true, verbs: result.verbs, durationMs };
    if (!signal.aborted) {
      metrics.failures.inc({ reason: result.reason });
      logger.warn('CRM verbs request failed; the script goes on with its own rest', {
        callId: request.callId,
        verb: request.verb,
        reason: result.reason,
        detail: result.detail,
        durationMs,
      });
    }
    return { ok: false, reason: result.reason, detail: result.detail, durationMs };
  }

  return { fetchVerbs };
}

interface VerbCrmMetrics {
  duration: Histogram<'operation' | 'outcome'>;
  failures: Counter<'reason'>;
}

function verbCrmMetrics(registry: Registry): VerbCrmMetrics {
  const duration = crmRequestDuration(registry);
  const failures = counter(registry, {
    name: 'aricrm_verb_crm_failures_total',
    help: 'Call-script requests to the CRM (gather actionUrl, redirect) that gave no verbs, by reason.',
    labelNames: ['reason'] as const,
  });
  for (const reason of FAILURES) failures.inc({ reason }, 0);
  return { duration, failures };
}
