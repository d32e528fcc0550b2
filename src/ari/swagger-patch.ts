/**
 * Loads ari-client and fixes the process-wide traps of the swagger-client 2.0.26 / shred stack it
 * uses to load the API docs (node_modules/swagger-client/lib/swagger.js, node_modules/shred/lib).
 * The gateway runs REST operations itself (`rest.ts`); ari-client's operations are only a
 * fallback for anyone calling them directly, and get the same protections:
 *
 * 1. stdout: swagger.js assigns a GLOBAL `log` that `console.log`s ("This API is using a
 *    deprecated version of Swagger!" on every API load). `globalThis.log` is re-pointed to a sink
 *    (the gateway's `logger.debug`) so the JSON log stream stays JSON.
 * 2. Hanging requests: shred emits socket errors (ECONNREFUSED…) as `request_error`, which
 *    swagger-client never listens to, so the load would never settle. It is forwarded to the
 *    request's error callback (the rejection is the Node.js error with its `code`).
 * 3. Crashes: `SwaggerApi.fail` throws its message inside an HTTP callback (an uncaught exception
 *    on a 401/503 while loading the API), and ari-client's `JSON.parse` of a non-JSON 200 body
 *    throws there too. `fail` no longer throws (it still reports to the failure callback) and
 *    response callbacks are guarded: a throw becomes an error of that request.
 * 4. Global credentials: ari-client registers ONE global basic-auth for all clients; a
 *    host-keyed authorization is added after it so two gateways (or simulators) with different
 *    credentials in one process each send their own.
 *
 * Nothing else in the process uses swagger-client, so patching its prototypes is contained.
 */
import { createRequire } from 'node:module';
import ariClient from 'ari-client';

type Callback = (response: unknown) => unknown;

interface SwaggerHttpRequestObject {
  url?: unknown;
  headers?: Record<string, unknown>;
  on?: Record<string, Callback | undefined>;
}

interface ShredRequestLike {
  emitter?: { on(event: string, listener: (err: unknown) => void): unknown };
}

interface SwaggerAuthorizations {
  add(name: string, auth: { apply(obj: SwaggerHttpRequestObject): boolean }): unknown;
  remove(name: string): unknown;
}

interface SwaggerClientModule {
  ShredHttpClient: { prototype: { execute(obj: SwaggerHttpRequestObject): unknown } };
  SwaggerApi: {
    prototype: { fail(message: unknown): unknown; failure?: (message: unknown) => unknown };
  };
  authorizations: SwaggerAuthorizations;
}

const HOST_AUTH_NAME = 'aricrm-host-basic-auth';
const PATCHED = Symbol.for('aricrm.swaggerPatched');

let logSink: (message: string) => void = () => undefined;
let internalErrorSink: (message: string, err: unknown) => void = () => undefined;
const credentialsByHost = new Map<string, string>();

function loadSwaggerModule(): SwaggerClientModule {
  const requireHere = createRequire(import.meta.url);
  const requireFromAriClient = createRequire(requireHere.resolve('ari-client'));
  const mod: unknown = requireFromAriClient('swagger-client');
  const candidate = mod as Partial<SwaggerClientModule> | null;
  if (
    !candidate ||
    typeof candidate.ShredHttpClient?.prototype?.execute !== 'function' ||
    typeof candidate.SwaggerApi?.prototype?.fail !== 'function' ||
    typeof candidate.authorizations?.add !== 'function'
  ) {
    throw new Error('swagger-client has an unexpected shape; the ARI gateway cannot patch it');
  }
  return candidate as SwaggerClientModule;
}

const swagger = loadSwaggerModule();

function formatLogArgs(args: unknown[]): string {
  return args
    .map((a) => {
      if (typeof a === 'string') return a;
      try {
        return JSON.stringify(a);
      } catch {
        return String(a);
      }
    })
    .join(' ');
}

function install(): void {
  const globals = globalThis as Record<string | symbol, unknown>;
  // (1) the global `log` swagger.js assigned when ari-client was imported above.
  globals.log = (...args: unknown[]): void => logSink(formatLogArgs(args));
  if (globals[PATCHED]) return;
  globals[PATCHED] = true;

  // (3) fail() reports without throwing.
  swagger.SwaggerApi.prototype.fail = function fail(
    this: { failure?: (m: unknown) => unknown },
    message: unknown,
  ) {
    try {
      this.failure?.(message);
    } catch (err) {
      internalErrorSink('swagger failure callback threw', err);
    }
  };

  // (2)(3) request_error forwarding, guarded callbacks.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call(this, obj)
  const originalExecute = swagger.ShredHttpClient.prototype.execute;
  swagger.ShredHttpClient.prototype.execute = function execute(
    this: unknown,
    obj: SwaggerHttpRequestObject,
  ) {
    const on = obj?.on;
    let settled = false;
    const onError = on?.error;
    const fail = (value: unknown): void => {
      if (settled || !onError) return;
      settled = true;
      try {
        onError(value);
      } catch (err) {
        internalErrorSink('swagger error callback threw', err);
      }
    };
    if (on) {
      for (const key of ['error', 'response', 'redirect', '307'] as const) {
        const cb = on[key];
        if (typeof cb !== 'function') continue;
        on[key] = (response: unknown): unknown => {
          const status = (response as { status?: unknown } | null)?.status;
          if (key === 'error') {
            fail(response);
            return undefined;
          }
          if (settled) return undefined;
          try {
            const result = cb(response);
            settled = true;
            return result;
          } catch (err) {
            // e.g. ari-client's JSON.parse of a non-JSON body: make it this call's error.
            fail({
              status,
              data: JSON.stringify({
                message: `invalid ARI response: ${(err as Error)?.message ?? String(err)}`,
              }),
            });
            return undefined;
          }
        };
      }
    }
    const request = originalExecute.call(this, obj) as ShredRequestLike | undefined;
    request?.emitter?.on('request_error', (err: unknown) => fail(err));
    return request;
  };
}

install();

/**
 * Register the credentials for `baseUrl`'s host (`host:port`) and make the host-keyed
 * authorization the last one applied (after ari-client's global `basic-auth`).
 */
export function registerCredentials(baseUrl: string, username: string, password: string): void {
  const host = new URL(baseUrl).host;
  credentialsByHost.set(host, `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
  swagger.authorizations.remove(HOST_AUTH_NAME);
  swagger.authorizations.add(HOST_AUTH_NAME, {
    apply(obj: SwaggerHttpRequestObject): boolean {
      if (typeof obj.url !== 'string' || !obj.headers) return true;
      try {
        const header = credentialsByHost.get(new URL(obj.url).host);
        if (header) obj.headers.Authorization = header;
      } catch {
        // not a URL: leave ari-client's own header
      }
      return true;
    },
  });
}

/** Where swagger-client's global `log(...)` lines go (the gateway passes `logger.debug`). */
export function setSwaggerLogSink(sink: (message: string) => void): void {
  logSink = sink;
  install();
}

/** Where failures inside the patched callbacks are reported (never thrown). */
export function setInternalErrorSink(sink: (message: string, err: unknown) => void): void {
  internalErrorSink = sink;
}

/**
 * ari-client's `connect`: loads the API docs and returns the client whose resources hold the
 * Swagger operations. Rejects (never hangs on a socket error, never throws asynchronously).
 */
export function connectAriClient(
  url: string,
  username: string,
  password: string,
): Promise<ariClient.Client> {
  registerCredentials(url, username, password);
  return Promise.resolve(ariClient.connect(url, username, password)).finally(() => {
    // ari-client re-added its global basic-auth: keep the host-keyed one last.
    registerCredentials(url, username, password);
  });
}
