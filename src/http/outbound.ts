/**
 * Outbound HTTP of the engine: webhook delivery (`src/events/dispatcher.ts`) and CRM route
 * lookups (`src/crm/route-client.ts`) and the CRM requests of call scripts
 * (`src/calls/verbs/crm.ts`, both through {@link postForJson}), over undici's `request` API with
 * one keep-alive `Agent`.
 *
 * Why not the global `fetch`: Node's fetch is built on undici but adds the WHATWG layer (Request,
 * Headers, Response objects, web streams). Measured on the target machine: ~270-330 µs CPU per
 * POST with fetch versus ~60 µs with undici's `request` over a keep-alive `Agent`. Every call
 * makes about 5 webhook POSTs and 1 route lookup, so under load (the benchmark: ≥ 300
 * calls/s) fetch was the largest single CPU cost of the engine.
 *
 * Behaviour, as the callers relied on with fetch (`redirect: 'manual'`): a POST is never
 * redirected (a 3xx is answered as is), the caller's `AbortSignal` aborts the request and the
 * body, errors are undici's (`code` such as `UND_ERR_SOCKET`, `ECONNREFUSED`; see
 * {@link describeError}). Every response body must be consumed: read with
 * {@link OutboundResponse.text} or dropped with {@link OutboundResponse.discard}, else its socket
 * stays busy until the signal aborts it (or undici's 300 s body timeout).
 */
import { Agent, Client, Pool, request, type Dispatcher } from 'undici';

/** Options of {@link OutboundResponse.text}. */
export interface OutboundTextOptions {
  /**
   * What a body larger than `maxBytes` gives: `reject` (default) rejects with
   * {@link BodyTooLargeError}; `truncate` resolves with the first `maxBytes` bytes (for log
   * snippets). Either way the rest of the body is not read (the connection is closed).
   */
  overflow?: 'reject' | 'truncate';
}

/** The answer of one {@link OutboundPost}: status and headers at once, the body on demand. */
export interface OutboundResponse {
  /** HTTP status code, e.g. 200, 302, 503 (a 3xx is never followed). */
  readonly status: number;
  /**
   * A response header by case-insensitive name; repeated headers are joined with `, ` (as
   * fetch's `Headers.get`); undefined when absent.
   */
  header(name: string): string | undefined;
  /**
   * The body decoded as UTF-8, at most `maxBytes` bytes.
   *
   * @throws BodyTooLargeError (the body is destroyed) when the body is larger than `maxBytes`
   *   and `options.overflow` is not `truncate`; the undici or abort error when the body breaks
   *   or the request's signal aborts while reading.
   */
  text(maxBytes: number, options?: OutboundTextOptions): Promise<string>;
  /**
   * Drop the body without returning it. Never throws. A small body is read to its end so the
   * keep-alive connection is reused; a large one (over 64 KiB) closes the connection.
   */
  discard(): void;
}

/** What {@link OutboundPost} sends besides the URL. */
export interface OutboundPostInit {
  /** Request headers, lower- or mixed-case names. */
  headers: Record<string, string>;
  /** Request body, sent as UTF-8. */
  body: string;
  /** Aborts the request (connect, headers and body); the promise rejects with the signal's reason. */
  signal: AbortSignal;
}

/**
 * POST `init.body` to `url`. Never follows redirects (like fetch with `redirect: 'manual'`, a
 * 3xx is returned as is). Resolves once the status and headers arrived.
 *
 * @throws the undici error (connection refused, socket closed, client closed, ...) or the
 *   signal's abort reason; describe it with {@link describeError}.
 */
export type OutboundPost = (url: string, init: OutboundPostInit) => Promise<OutboundResponse>;

/** Options of {@link createOutboundClient}. */
export interface OutboundClientOptions {
  /** Most sockets per origin (scheme + host + port). Default: unlimited (as fetch's global pool). */
  connectionsPerOrigin?: number;
  /**
   * How long an idle keep-alive socket is kept, ms. Default 4000 (undici's); a shorter
   * `Keep-Alive: timeout=` hint of the server wins.
   */
  keepAliveTimeoutMs?: number;
  /**
   * How long {@link OutboundClient.close} waits for requests in flight before it cuts them, ms.
   * Default 2000.
   */
  closeTimeoutMs?: number;
}

/** An outbound HTTP client: one keep-alive connection pool. */
export interface OutboundClient {
  post: OutboundPost;
  /**
   * Close the pool: waits for requests in flight (and bodies being discarded) up to
   * `closeTimeoutMs`, then cuts those left (they reject with undici `ClientDestroyedError`) and
   * closes the sockets. A later `post` rejects (undici `ClientClosedError` or
   * `ClientDestroyedError`). Never rejects; idempotent (later calls return the same promise).
   */
  close(): Promise<void>;
}

/** A body larger than the caller's limit (see {@link OutboundResponse.text}). */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  /** The limit that was exceeded, bytes. */
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super(`answer larger than ${limitBytes} bytes`);
    this.limitBytes = limitBytes;
  }
}

/** Most bytes {@link OutboundResponse.discard} reads to keep a connection; a bigger body closes it. */
const DISCARD_LIMIT_BYTES = 64 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 2000;

/**
 * Create an outbound client with one keep-alive undici `Agent`. The engine creates one in its
 * composition root (`src/main.ts`), passes its `post` to the webhook dispatcher and the route
 * client, and closes it at stop after the webhooks are drained.
 *
 * @throws RangeError when an option is not a positive integer.
 */
export function createOutboundClient(options: OutboundClientOptions = {}): OutboundClient {
  const { connectionsPerOrigin, keepAliveTimeoutMs } = options;
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  const checked = { connectionsPerOrigin, keepAliveTimeoutMs, closeTimeoutMs };
  for (const [name, value] of Object.entries(checked)) {
    if (value !== undefined && (!Number.isInteger(value) || value <= 0))
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  // The per-origin pools, kept so that close() can cut them: Agent.close() forgets its pools at
  // once, so a later Agent.destroy() would not reach requests still in flight.
  const pools = new Set<Dispatcher>();
  const agent = new Agent({
    ...(connectionsPerOrigin === undefined ? {} : { connections: connectionsPerOrigin }),
    ...(keepAliveTimeoutMs === undefined ? {} : { keepAliveTimeout: keepAliveTimeoutMs }),
    // undici's default factory, recording each pool (those already destroyed are dropped).
    factory: (origin, opts) => {
      for (const pool of pools) if ((pool as Pool).destroyed) pools.delete(pool);
      const pool =
        (opts as Pool.Options).connections === 1
          ? new Client(origin, opts)
          : new Pool(origin, opts);
      pools.add(pool);
      return pool;
    },
  });
  let closing: Promise<void> | undefined;
  return {
    post: async (url, init) => {
      const answer = await request(url, {
        dispatcher: agent,
        method: 'POST',
        headers: init.headers,
        body: init.body,
        signal: init.signal,
      });
      return new UndiciResponse(answer);
    },
    close: () => (closing ??= closeAgent(agent, pools, closeTimeoutMs)),
  };
}

/**
 * `agent.close()` (waits for requests in flight); after `timeoutMs` the pools are destroyed,
 * which fails the requests left and lets the close finish.
 */
async function closeAgent(agent: Agent, pools: Set<Dispatcher>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<true>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  const graceful = agent.close().then(
    () => false as const,
    () => false as const, // only when already destroyed
  );
  try {
    if (await Promise.race([graceful, expired])) {
      await Promise.all([...pools].map((pool) => pool.destroy().catch(() => undefined)));
      await graceful;
    }
  } finally {
    clearTimeout(timer);
    pools.clear();
  }
}

const noop = (): void => undefined;

let shared: OutboundClient | undefined;

/**
 * The `post` of a process-wide client created on first use and never closed, for modules
 * created without a `post` (tests, embedding) — the counterpart of fetch's global dispatcher.
 * Its idle sockets are unref'd by undici, so they do not keep the process alive.
 */
export function sharedOutboundPost(): OutboundPost {
  shared ??= createOutboundClient();
  return shared.post;
}

/**
 * `code: message` of an error's root cause (the end of its `cause` chain), e.g.
 * `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9` or `UND_ERR_SOCKET: other side closed`;
 * only the message when the root has no string `code`; `String(err)` for a non-Error.
 */
export function describeError(err: unknown): string {
  let root: unknown = err;
  while (root instanceof Error && root.cause !== undefined) root = root.cause;
  if (root instanceof Error) {
    // Node's happy-eyeballs connect fails with an AggregateError without a message.
    if (root.message === '' && root instanceof AggregateError && root.errors.length > 0)
      return describeError(root.errors[0]);
    const code = (root as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${root.message}` : root.message;
  }
  return String(root);
}

type UndiciBody = Dispatcher.ResponseData['body'];

class UndiciResponse implements OutboundResponse {
  readonly status: number;
  private readonly headers: Dispatcher.ResponseData['headers'];
  private readonly body: UndiciBody;

  constructor(answer: Dispatcher.ResponseData) {
    this.status = answer.statusCode;
    this.headers = answer.headers;
    this.body = answer.body;
  }

  header(name: string): string | undefined {
    const value = this.headers[name.toLowerCase()];
    return Array.isArray(value) ? value.join(', ') : value;
  }

  async text(maxBytes: number, options?: OutboundTextOptions): Promise<string> {
    const truncate = options?.overflow === 'truncate';
    // Destroying the body early makes undici emit an AbortError; the caller already got its answer.
    this.body.on('error', noop);
    const declared = Number(this.header('content-length'));
    if (!truncate && Number.isFinite(declared) && declared > maxBytes) {
      this.body.destroy();
      throw new BodyTooLargeError(maxBytes);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // Leaving the loop early (break, throw) destroys the body, closing its connection.
    for await (const chunk of this.body as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      chunks.push(chunk);
      if (size > maxBytes) {
        if (!truncate) throw new BodyTooLargeError(maxBytes);
        break;
      }
    }
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    return (size > maxBytes ? all.subarray(0, maxBytes) : all).toString('utf8');
  }

  discard(): void {
    this.body.dump({ limit: DISCARD_LIMIT_BYTES }).catch(() => undefined);
  }
}

/** Why a {@link postForJson} got no JSON answer. */
export type JsonAnswerFailureReason = 'connection' | 'http_status' | 'invalid_body';

/** What {@link postForJson} resolves with: the parsed JSON, or why there is none. */
export type JsonAnswer =
  { ok: true; json: unknown } | { ok: false; reason: JsonAnswerFailureReason; detail: string };

/** Options of {@link postForJson}. */
export interface PostForJsonOptions {
  /** Largest answer body read, bytes; a bigger one is `invalid_body`. */
  maxBytes: number;
  /** A blank answer (empty or white space only) is `invalid_body` "empty body" rather than "not JSON". */
  rejectBlank?: boolean;
}

/**
 * POST with `post` and read a 2xx JSON answer (the CRM route lookup, the CRM requests of call
 * scripts). Never throws: the failure is returned with a human `detail` —
 * `connection` (the request failed, or reading the answer did: `describeError` of the cause),
 * `http_status` (a non-2xx status, `HTTP 503`; the body is discarded), `invalid_body` (over
 * `maxBytes`, blank when `rejectBlank`, or not JSON). No deadline of its own: abort `init.signal`
 * for one.
 */
export async function postForJson(
  post: OutboundPost,
  url: string,
  init: OutboundPostInit,
  options: PostForJsonOptions,
): Promise<JsonAnswer> {
  let response: OutboundResponse;
  try {
    response = await post(url, init);
  } catch (err) {
    return { ok: false, reason: 'connection', detail: describeError(err) };
  }
  if (response.status < 200 || response.status > 299) {
    response.discard();
    return { ok: false, reason: 'http_status', detail: `HTTP ${response.status}` };
  }
  let text: string;
  try {
    text = await response.text(options.maxBytes);
  } catch (err) {
    if (err instanceof BodyTooLargeError)
      return { ok: false, reason: 'invalid_body', detail: err.message };
    return {
      ok: false,
      reason: 'connection',
      detail: `reading the answer failed: ${describeError(err)}`,
    };
  }
  if (options.rejectBlank && text.trim() === '')
    return { ok: false, reason: 'invalid_body', detail: 'empty body' };
  try {
    return { ok: true, json: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, reason: 'invalid_body', detail: `not JSON (${text.length} characters)` };
  }
}

/** The failure an {@link outboundDeadline} resolves with. */
export interface DeadlineFailure {
  ok: false;
  reason: 'timeout';
  /** `no complete answer within <timeoutMs> ms`. */
  detail: string;
}

/**
 * A hard deadline for one outbound request (connect + headers + body): `promise` resolves after
 * `timeoutMs` milliseconds with a {@link DeadlineFailure} and aborts `controller` then. Race it
 * with the request, so the race settles at the deadline even when the request ignores its signal;
 * call `clear()` once the race settled (the timer is stopped, `controller` is left alone).
 */
export function outboundDeadline(
  timeoutMs: number,
  controller: AbortController,
): { promise: Promise<DeadlineFailure>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<DeadlineFailure>((resolve) => {
    timer = setTimeout(() => {
      resolve({
        ok: false,
        reason: 'timeout',
        detail: `no complete answer within ${timeoutMs} ms`,
      });
      controller.abort();
    }, timeoutMs);
  });
  return { promise, clear: () => clearTimeout(timer) };
}
