/**
 * The gateway's REST executor: runs ARI operations over plain `node:http(s)` with a keep-alive
 * connection pool, from the Swagger 1.1 operation definitions ari-client loaded from
 * `/ari/api-docs/*.json`.
 *
 * Why not ari-client's own operations: swagger-client 2.0 rebuilds every request from the spec
 * (parameter scans, regular expressions, authorizations, shred's header mixins, Bluebird) and
 * ari-client re-parses and wraps every answer; that cost ~1.25 ms of CPU per request, the largest
 * share of the engine's CPU under load (bench: `npm run bench -- --profile DIR`). This executor
 * compiles each operation once and sends the same request swagger-client would:
 *
 * - URL: `<ARI base URL>/ari<path>` with path parameters percent-encoded
 *   (`encodeURIComponent`); a missing or empty path parameter is refused before anything is sent
 *   (`"<name> is a required path param."`, as swagger-client throws it); query parameters in
 *   declaration order, every one whose value is not `undefined`, `encodeURIComponent(String(v))`
 *   (arrays become `a,b`).
 * - Body: the operation's `body` parameter (ARI `variables`, `fields`) as JSON, wrapped in
 *   `{"variables": …}` / `{"fields": …}` like ari-client does (`lib/utils.js parseBodyParams`),
 *   with `Content-Type: application/json`; no body when it is absent or empty.
 * - Headers: `Accept: application/json`, `Authorization: Basic …` (the credentials are never
 *   logged: errors carry only the operation, the status and Asterisk's message).
 * - Answer: 2xx → the parsed JSON body (`undefined` when empty or for `void` operations), the raw
 *   bytes for `binary` operations (a stored recording file); a 2xx body that is not JSON rejects
 *   with an {@link AriError} "invalid ARI response". Non-2xx → rejects with an
 *   {@link AriHttpFailure} (status + body) that `classifyAriError` turns into a typed error.
 *   Socket errors reject with the Node.js error (`code: 'ECONNREFUSED'`…).
 *
 * Connections are reused (HTTP/1.1 keep-alive, Asterisk's `http.conf session_keep_alive` defaults
 * to 15 s); an idle connection is closed after 4 s, before either side's keep-alive timeout. A
 * request that fails on a reused connection before any answer (the server closed it while idle:
 * ECONNRESET/EPIPE) is sent once more on a fresh connection, as Node.js documents
 * (`request.reusedSocket`): the server never saw it.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { AriConnectionError, AriError } from './errors.ts';

/** A non-2xx answer of Asterisk: its status and raw body (`{"message": …}` or `{"error": …}`). */
export class AriHttpFailure {
  constructor(
    /** HTTP status. */
    readonly status: number,
    /** The body as received. */
    readonly data: Buffer,
  ) {}
}

/** One ARI operation compiled from its Swagger 1.1 declaration. */
export interface AriRestOperation {
  /** `<resource>.<nickname>`, e.g. `channels.dial`. */
  readonly name: string;
  /** HTTP method, upper case. */
  readonly method: string;
  /** Path below `/ari`, e.g. `/channels/{channelId}/dial`. */
  readonly path: string;
  /** Literal path pieces around the path parameters: `pieces[0] p0 pieces[1] p1 …`. */
  readonly pieces: readonly string[];
  /** Path parameter names, in path order. */
  readonly pathParams: readonly string[];
  /** Query parameter names, in declaration order. */
  readonly queryParams: readonly string[];
  /** The body parameter's name (ARI: `variables` or `fields`), if the operation has one. */
  readonly bodyParam: string | undefined;
  /** What a 2xx answer holds: JSON, raw bytes, or nothing (`void`). */
  readonly response: 'json' | 'binary' | 'void';
}

interface SwaggerParameterLike {
  name?: unknown;
  paramType?: unknown;
}

interface SwaggerOperationLike {
  nickname?: unknown;
  path?: unknown;
  method?: unknown;
  type?: unknown;
  parameters?: unknown;
}

const RETRY_ON_REUSED_SOCKET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * Compile one operation. `path` may contain `{name}` placeholders (and swagger's `{format}`,
 * replaced by `json`); `type` is the Swagger response class (`Channel`, `List[Bridge]`, `binary`,
 * `void` or null). Throws TypeError on a declaration without a method or path.
 */
export function compileOperation(
  resource: string,
  spec: {
    nickname: string;
    method: string;
    path: string;
    type?: string | null;
    parameters?: ReadonlyArray<{ name: string; paramType: string }>;
  },
): AriRestOperation {
  if (!spec.method || !spec.path)
    throw new TypeError(`${resource}.${spec.nickname}: no method/path`);
  const path = spec.path.replace('{format}', 'json');
  const params = spec.parameters ?? [];
  const declaredPath = new Set(params.filter((p) => p.paramType === 'path').map((p) => p.name));
  const pieces: string[] = [];
  const pathParams: string[] = [];
  let rest = path;
  for (let m = /\{([^}]+)\}/.exec(rest); m; m = /\{([^}]+)\}/.exec(rest)) {
    const name = m[1]!;
    if (!declaredPath.has(name)) break; // not a declared parameter: left as written
    pieces.push(rest.slice(0, m.index));
    pathParams.push(name);
    rest = rest.slice(m.index + m[0].length);
  }
  pieces.push(rest);
  const type = spec.type ?? null;
  return {
    name: `${resource}.${spec.nickname}`,
    method: spec.method.toUpperCase(),
    path,
    pieces,
    pathParams,
    queryParams: params.filter((p) => p.paramType === 'query').map((p) => p.name),
    bodyParam: params.find((p) => p.paramType === 'body')?.name,
    response: type === 'binary' ? 'binary' : type === null || type === 'void' ? 'void' : 'json',
  };
}

/**
 * The operations of an API ari-client loaded: `apis` is swagger-client's `SwaggerApi.apis`
 * (`{<resource>: {operations: {<nickname>: SwaggerOperation}}}`), keyed `<resource>.<nickname>`.
 * Throws TypeError when it does not have that shape.
 */
export function operationsFromSwagger(apis: unknown): Map<string, AriRestOperation> {
  if (typeof apis !== 'object' || apis === null)
    throw new TypeError('ari-client loaded no API declarations');
  const out = new Map<string, AriRestOperation>();
  for (const [resource, api] of Object.entries(apis as Record<string, unknown>)) {
    const operations = (api as { operations?: unknown } | null)?.operations;
    if (typeof operations !== 'object' || operations === null) continue;
    for (const [nickname, raw] of Object.entries(operations as Record<string, unknown>)) {
      const op = raw as SwaggerOperationLike;
      if (typeof op?.path !== 'string' || typeof op.method !== 'string') continue;
      const parameters = (Array.isArray(op.parameters) ? op.parameters : [])
        .map((p: SwaggerParameterLike) => ({ name: p?.name, paramType: p?.paramType }))
        .filter(
          (p): p is { name: string; paramType: string } =>
            typeof p.name === 'string' && typeof p.paramType === 'string',
        );
      const compiled = compileOperation(resource, {
        nickname,
        method: op.method,
        path: op.path,
        type: typeof op.type === 'string' ? op.type : null,
        parameters,
      });
      out.set(compiled.name, compiled);
    }
  }
  if (out.size === 0) throw new TypeError('ari-client loaded no ARI operations');
  return out;
}

/**
 * The request line path (with query) and body of `op` for `params`; throws the string
 * `"<name> is a required path param."` (swagger-client's wording) when a path parameter is
 * missing or empty.
 */
export function buildRequest(
  op: AriRestOperation,
  params: Readonly<Record<string, unknown>> | undefined,
): { path: string; body: string | undefined } {
  let path = op.pieces[0]!;
  for (let i = 0; i < op.pathParams.length; i++) {
    const name = op.pathParams[i]!;
    const value = params?.[name];
    // A string, as swagger-client throws it (src/ari/classify.ts reads it).
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    if (!value) throw `${name} is a required path param.`;
    path += encodeURIComponent(String(value)) + op.pieces[i + 1]!;
  }
  let query = '';
  if (params) {
    for (const name of op.queryParams) {
      const value = params[name];
      if (value === undefined) continue;
      query += `${query ? '&' : '?'}${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`;
    }
  }
  let body: string | undefined;
  const bodyValue = op.bodyParam === undefined ? undefined : params?.[op.bodyParam];
  if (bodyValue) {
    const name = op.bodyParam!;
    const wrap =
      (name === 'variables' || name === 'fields') && !(bodyValue as Record<string, unknown>)[name];
    body = JSON.stringify(wrap ? { [name]: bodyValue } : bodyValue);
  }
  return { path: path + query, body };
}

/** Options of {@link AriRestClient}. */
export interface AriRestClientOptions {
  /** `http(s)://host:port[/prefix]` in front of `/ari`, without a trailing slash. */
  baseUrl: string;
  username: string;
  /** Never logged. */
  password: string;
  /** Most connections open to Asterisk at once (64); more requests wait for a free one. */
  maxSockets?: number;
  /** An idle kept-alive connection is closed after this long (4000 ms). */
  idleTimeoutMs?: number;
}

/** Sends compiled ARI operations (see the module comment). */
export class AriRestClient {
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;
  private readonly hostname: string;
  private readonly port: number;
  private readonly prefix: string;
  private readonly headers: Readonly<Record<string, string>>;

  constructor(options: AriRestClientOptions) {
    const url = new URL(options.baseUrl);
    const https = url.protocol === 'https:';
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets ?? 64,
      maxFreeSockets: options.maxSockets ?? 64,
      timeout: options.idleTimeoutMs ?? 4000,
      scheduling: 'lifo' as const,
    };
    this.agent = https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.send = https ? httpsRequest : httpRequest;
    this.hostname = url.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(url.port || (https ? 443 : 80));
    this.prefix = `${url.pathname.replace(/\/+$/, '')}/ari`;
    this.headers = {
      accept: 'application/json',
      authorization: `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`,
    };
  }

  /**
   * Run `op` with `params` (ARI parameter names; `undefined` values are left out). Resolves with
   * the answer (see the module comment); rejects with the path-parameter string, an
   * {@link AriHttpFailure}, a Node.js socket error, an {@link AriError} for a non-JSON 2xx body,
   * or an {@link AriConnectionError} after `options.timeoutMs` without an answer (the request is
   * then aborted). Errors built here name `options.operation` (default `op.name`).
   */
  execute(
    op: AriRestOperation,
    params: Readonly<Record<string, unknown>> | undefined,
    options: { timeoutMs: number; operation?: string },
  ): Promise<unknown> {
    const { timeoutMs } = options;
    const operation = options.operation ?? op.name;
    let built: { path: string; body: string | undefined };
    try {
      built = buildRequest(op, params);
    } catch (err) {
      // buildRequest's string, rejected as swagger-client rejects it (src/ari/classify.ts reads it).
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(err);
    }
    const headers: Record<string, string | number> = { ...this.headers };
    if (built.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(built.body);
    }
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      let current: ReturnType<typeof httpRequest> | undefined;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const timer = setTimeout(() => {
        finish(() =>
          reject(
            new AriConnectionError(operation, `no answer from Asterisk within ${timeoutMs} ms`),
          ),
        );
        current?.destroy();
      }, timeoutMs);
      timer.unref();

      const attempt = (retried: boolean): void => {
        let answered = false;
        const req = this.send({
          agent: this.agent,
          hostname: this.hostname,
          port: this.port,
          method: op.method,
          path: this.prefix + built.path,
          headers,
        });
        current = req;
        req.on('response', (res: IncomingMessage) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (err) => finish(() => reject(err)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
            finish(() => {
              // Not an Error: status and body, as swagger-client rejects (src/ari/classify.ts).
              // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
              if (status < 200 || status > 299) reject(new AriHttpFailure(status, data));
              else if (op.response === 'binary') resolve(data);
              else if (op.response === 'void' || data.length === 0) resolve(undefined);
              else {
                try {
                  resolve(JSON.parse(data.toString('utf8')));
                } catch (err) {
                  reject(
                    new AriError(
                      'unknown',
                      status,
                      operation,
                      `invalid ARI response: ${(err as Error).message}`,
                    ),
                  );
                }
              }
            });
          });
        });
        req.on('error', (err: NodeJS.ErrnoException) => {
          if (settled) return;
          if (
            !answered &&
            !retried &&
            req.reusedSocket &&
            RETRY_ON_REUSED_SOCKET.has(err.code ?? '')
          ) {
            attempt(true);
            return;
          }
          finish(() => reject(err));
        });
        req.end(built.body);
      };
      attempt(false);
    });
  }

  /** Close every pooled connection (the client stays usable: new ones are opened on demand). */
  closeConnections(): void {
    this.agent.destroy();
  }
}
