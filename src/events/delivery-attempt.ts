/**
 * One delivery attempt of a queued event, for the webhook dispatcher (src/events/dispatcher.ts):
 * the signed JSON POST (or a connector's own transport) with its timeout, and what the answer
 * means: 2xx delivered; a 4xx other than 408/429 rejected (permanent); anything else, a
 * connection error or the timeout a retry, at least `Retry-After` later when the CRM sends one.
 * Also the delivery-log row of a finished attempt.
 */
import { createRequire } from 'node:module';
import { describeError, type OutboundPost, type OutboundResponse } from '../http/outbound.ts';
import type { AttemptInfo, QueuedEvent } from './queue.ts';
import { signWebhook } from './signature.ts';
import type { DeliveryResult, WebhookDispatcherOptions } from './dispatcher.ts';

/** Most bytes of an error answer read (for the log). */
const MAX_ERROR_BODY_BYTES = 1024;

/** What an attempt came to: a {@link DeliveryResult}, or `aborted` (the dispatcher stopped). */
export type AttemptOutcome = DeliveryResult | { kind: 'aborted' };

/** One attempt to deliver `entry` to `target`; `controller` aborts it. */
export type Attempt = (
  target: string,
  entry: QueuedEvent,
  controller: AbortController,
) => Promise<AttemptOutcome>;

/** What {@link createAttempt} needs. */
export interface AttemptOptions {
  /** The connector's transport ({@link WebhookDispatcherOptions.send}); unset: the signed POST. */
  send?: WebhookDispatcherOptions['send'];
  /** How to POST (the outbound client). */
  post: OutboundPost;
  /** WEBHOOK_SECRET(s), non-empty; each attempt is signed anew. Never logged. */
  secrets: string[];
  /** WEBHOOK_TIMEOUT_MS: timeout of one attempt (connect + answer), ms. */
  timeoutMs: number;
  /** True once the dispatcher stopped: a failure then is `aborted`, not a retry. */
  isStopped: () => boolean;
}

/**
 * The attempt function of a dispatcher: with `send`, that transport (a throw is a retry);
 * otherwise `POST target` with the event's JSON, `X-Signature`, `X-Event-Id`, `X-Event-Type` and
 * `User-Agent: ari-crm/<version>`. Both end in a retry after `timeoutMs`.
 */
export function createAttempt(options: AttemptOptions): Attempt {
  const { send, post, secrets, timeoutMs, isStopped } = options;
  const userAgent = `ari-crm/${PACKAGE_VERSION}`;

  async function attempt(
    target: string,
    entry: QueuedEvent,
    controller: AbortController,
  ): Promise<AttemptOutcome> {
    let timer: NodeJS.Timeout | undefined;
    if (send) {
      const deadline = new Promise<AttemptOutcome>((resolve) => {
        timer = setTimeout(() => {
          resolve({ kind: 'retry', detail: `timeout after ${timeoutMs} ms` });
          controller.abort();
        }, timeoutMs);
      });
      const work = async (): Promise<AttemptOutcome> => {
        try {
          return await send(entry, controller.signal);
        } catch (err) {
          if (isStopped()) return { kind: 'aborted' };
          return { kind: 'retry', detail: describeError(err) };
        }
      };
      try {
        return await Promise.race([work(), deadline]);
      } finally {
        clearTimeout(timer);
      }
    }
    const headers = {
      'content-type': 'application/json',
      'user-agent': userAgent,
      'x-event-id': entry.event.id,
      'x-event-type': entry.event.type,
      // Signed per attempt, so a retry hours later still passes the receiver's replay window.
      'x-signature': signWebhook(secrets, entry.body, Date.now() / 1000),
    };
    const deadline = new Promise<AttemptOutcome>((resolve) => {
      timer = setTimeout(() => {
        resolve({ kind: 'retry', detail: `timeout after ${timeoutMs} ms` });
        controller.abort();
      }, timeoutMs);
    });
    const work = async (): Promise<AttemptOutcome> => {
      let response: OutboundResponse;
      try {
        response = await post(target, { headers, body: entry.body, signal: controller.signal });
      } catch (err) {
        if (isStopped()) return { kind: 'aborted' };
        return { kind: 'retry', detail: describeError(err) };
      }
      const status = response.status;
      if (status >= 200 && status <= 299) {
        response.discard();
        return { kind: 'delivered', status };
      }
      const snippet = await readSnippet(response, MAX_ERROR_BODY_BYTES);
      const detail = snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}`;
      if (status >= 400 && status <= 499 && status !== 408 && status !== 429) {
        return { kind: 'rejected', status, detail };
      }
      const retryAfterMs = parseRetryAfter(response.header('retry-after'), Date.now());
      return retryAfterMs === undefined
        ? { kind: 'retry', detail, status }
        : { kind: 'retry', detail, retryAfterMs, status };
    };
    try {
      return await Promise.race([work(), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  return attempt;
}

/** The delivery-log row of one finished attempt. */
export function attemptInfo(
  outcome: Exclude<AttemptOutcome, { kind: 'aborted' }>,
  at: number,
  durationMs: number,
): AttemptInfo {
  const ms = Math.round(durationMs);
  const target = outcome.url === undefined ? {} : { url: outcome.url };
  switch (outcome.kind) {
    case 'delivered':
      return { at, outcome: 'delivered', statusCode: outcome.status, durationMs: ms, ...target };
    case 'rejected':
      return {
        at,
        outcome: 'rejected',
        statusCode: outcome.status,
        error: outcome.detail,
        durationMs: ms,
        ...target,
      };
    case 'retry':
      return {
        at,
        outcome: 'failed',
        ...(outcome.status === undefined ? {} : { statusCode: outcome.status }),
        error: outcome.detail,
        durationMs: ms,
        ...target,
      };
  }
}

/** Retry-After as delay in ms: delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs: number,
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * Up to `maxBytes` of a body as text for logs (whitespace collapsed, at most 200 characters); a
 * larger body is cut, a broken one gives ''. Never throws.
 */
async function readSnippet(response: OutboundResponse, maxBytes: number): Promise<string> {
  try {
    const text = await response.text(maxBytes, { overflow: 'truncate' });
    return text.replace(/\s+/g, ' ').trim().slice(0, 200);
  } catch {
    return ''; // a broken body only loses the log snippet
  }
}

const PACKAGE_VERSION = ((): string => {
  try {
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
