/**
 * The vendor HTTP client of CRM connectors: form-encoded or JSON requests over undici, the
 * vendor's rate limits (rate-limiter-flexible's queue: a request waits for a token instead of
 * failing), and answers classified for the delivery outbox (see {@link VendorResponse}).
 * Credentials travel in headers given by the connector and are never logged; the URL reported
 * to the delivery log has no query string (retailCRM also accepts `apiKey` there).
 */
import { RateLimiterMemory, RateLimiterQueue } from 'rate-limiter-flexible';
import { request as undiciRequest, type Dispatcher } from 'undici';
import { parseRetryAfter } from '../events/dispatcher.ts';
import { describeError } from '../http/outbound.ts';
import type { VendorHttpClient, VendorRequest, VendorResponse } from './types.ts';

/** Largest vendor answer read, bytes. */
export const MAX_VENDOR_ANSWER_BYTES = 1024 * 1024;

/** Options of {@link createVendorHttpClient}. */
export interface VendorHttpClientOptions {
  /** The vendor's base URL, e.g. `https://shop.retailcrm.ru` (no trailing path needed). */
  baseUrl: string;
  /** Headers of every request (e.g. `X-API-KEY`); a function is read per request (refreshed tokens). */
  headers: Record<string, string> | (() => Record<string, string>);
  /**
   * Requests per second: `default` for requests without a bucket, one entry per named bucket
   * (retailCRM: `{default: 10, telephony: 40}`).
   */
  ratePerSec: Record<string, number>;
  /** Timeout of one request (connect + answer), ms. */
  timeoutMs: number;
  /**
   * Called on a 401 before the answer is returned as `retry` (vendors with refresh tokens);
   * its failure is part of the answer's detail.
   */
  onUnauthorized?: () => Promise<void>;
  /**
   * Read the vendor's error message out of an error answer's JSON (retailCRM `errorMsg` and
   * `errors`); default: the body text, cut.
   */
  errorMessage?: (json: unknown) => string | undefined;
  /**
   * Classify an error answer (non-2xx) by its JSON before its status does, for vendors that
   * name the problem in the body (Bitrix24 `{"error": "expired_token"}`, `QUERY_LIMIT_EXCEEDED`):
   * `unauthorized` is handled like a 401 (credentials refreshed, then a retry), `retry` is
   * retried with backoff, `rejected` settles the event; undefined: the status decides.
   */
  classifyError?: (
    status: number,
    json: unknown,
  ) => 'unauthorized' | 'retry' | 'rejected' | undefined;
  /** undici dispatcher (tests, a shared pool); default undici's global one. */
  dispatcher?: Dispatcher;
}

/** Create the client (see the module comment). */
export function createVendorHttpClient(options: VendorHttpClientOptions): VendorHttpClient {
  const base = new URL(options.baseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const queues = new Map<string, RateLimiterQueue>();
  for (const [bucket, perSec] of Object.entries(options.ratePerSec)) {
    if (!Number.isFinite(perSec) || perSec <= 0)
      throw new RangeError(`rate of bucket ${bucket} must be > 0, got ${perSec}`);
    const limiter = new RateLimiterMemory({ points: perSec, duration: 1 });
    queues.set(bucket, new RateLimiterQueue(limiter, { maxQueueSize: 100_000 }));
  }

  async function request(req: VendorRequest, signal?: AbortSignal): Promise<VendorResponse> {
    const url = new URL(base.origin + basePath + req.path);
    const logUrl = url.toString();
    for (const [name, value] of Object.entries(req.query ?? {})) url.searchParams.set(name, value);
    const queue = queues.get(req.bucket ?? 'default') ?? queues.get('default');
    try {
      await queue?.removeTokens(1);
    } catch (err) {
      return {
        ok: false,
        kind: 'retry',
        detail: `rate limiter: ${describeError(err)}`,
        url: logUrl,
      };
    }
    if (signal?.aborted) return { ok: false, kind: 'retry', detail: 'aborted', url: logUrl };
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(typeof options.headers === 'function' ? options.headers() : options.headers),
    };
    let body: string | undefined;
    if (req.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(req.form).toString();
    } else if (req.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.json);
    }
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(), options.timeoutMs);
    let status: number;
    let text: string;
    let retryAfter: string | undefined;
    try {
      const answer = await undiciRequest(url, {
        method: req.method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: controller.signal,
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      });
      status = answer.statusCode;
      const header = answer.headers['retry-after'];
      retryAfter = Array.isArray(header) ? header[0] : header;
      text = await readText(answer.body, MAX_VENDOR_ANSWER_BYTES);
    } catch (err) {
      const detail = controller.signal.aborted
        ? signal?.aborted
          ? 'aborted'
          : `timeout after ${options.timeoutMs} ms`
        : describeError(err);
      return { ok: false, kind: 'retry', detail, url: logUrl };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    const json = parseJson(text);
    if (status >= 200 && status <= 299) return { ok: true, status, json, url: logUrl };
    const message =
      (json === undefined ? undefined : options.errorMessage?.(json)) ??
      text.replace(/\s+/g, ' ').trim().slice(0, 300);
    const detail = message ? `HTTP ${status}: ${message}` : `HTTP ${status}`;
    const retryAfterMs = parseRetryAfter(retryAfter, Date.now());
    const retry = (extra: string = ''): VendorResponse => ({
      ok: false,
      kind: 'retry',
      status,
      detail: detail + extra,
      url: logUrl,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
    const kind = json === undefined ? undefined : options.classifyError?.(status, json);
    if (kind === 'retry') return retry();
    if (kind === 'rejected') return { ok: false, kind: 'rejected', status, detail, url: logUrl };
    if (status === 401 || kind === 'unauthorized') {
      if (!options.onUnauthorized) return retry();
      try {
        await options.onUnauthorized();
        return { ...retry(' (credentials refreshed)'), retryAfterMs: 0 } as VendorResponse;
      } catch (err) {
        return retry(`; refreshing the credentials failed: ${describeError(err)}`);
      }
    }
    // 403: the key lacks the method (a configuration fix, then the event goes through).
    if (status === 403 || status === 408 || status === 429 || status >= 500) return retry();
    if (status >= 400 && status <= 499)
      return { ok: false, kind: 'rejected', status, detail, url: logUrl };
    return retry(); // 1xx/3xx: redirects are not followed
  }

  return { request };
}

async function readText(body: AsyncIterable<Buffer | string>, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > maxBytes) break;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
