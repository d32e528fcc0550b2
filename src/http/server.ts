/**
 * The API's HTTP server: Node's `http.Server` creating request and response objects that are born
 * with the Express app's prototypes (`app.request`, `app.response`).
 *
 * Why: Express gives every request its app's prototypes with `Object.setPrototypeOf(req,
 * app.request)` (and the same for `res`, Express 5 `app.handle`). Changing the prototype of a live
 * object makes V8 build that object a hidden class (map) of its own, and every property Express,
 * the router and the handlers then add builds another: ~10 new maps per request, allocated in
 * the old generation, which keeps the request's objects alive through young-generation
 * collections (V8 `--log-maps`: 40,862 map transitions for 4,000 requests, against 4,682 with
 * these classes). Under `POST /v1/calls` at 500 requests/s (bench/api.ts) the engine's
 * scavenges took 8-11 ms each and its old generation grew by ~20 KB per request until a full
 * collection. Objects created by a class whose prototype already *is* `app.request` make that
 * `Object.setPrototypeOf` a no-op (V8 returns early when the prototype is unchanged), so all
 * requests share the same maps. The fix Express's maintainers discuss in
 * expressjs/express#5998; Node's `http.createServer({IncomingMessage, ServerResponse})` option.
 */
import {
  createServer,
  IncomingMessage,
  ServerResponse,
  STATUS_CODES,
  type Server,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { httpClientErrors, type HttpClientErrorCode } from '../metrics/http.ts';

/**
 * Give `app` request and response classes: `app.request` and `app.response` become the
 * prototypes of two subclasses of `http.IncomingMessage` / `http.ServerResponse` that carry
 * Express's request and response methods and the app's own properties (`req.app`). Requests
 * served by a server from {@link createHttpServer} are instances of them; requests reaching the
 * app from any other server still get the same prototypes from Express.
 *
 * @throws TypeError when `app` already has its classes
 */
export function bindRequestClasses(app: Express): void {
  // A class's prototype holds its own `constructor`; Express's prototypes inherit theirs.
  if (Object.hasOwn(app.request, 'constructor'))
    throw new TypeError('bindRequestClasses: the app already has its classes');
  class AppRequest extends IncomingMessage {}
  class AppResponse extends ServerResponse {}
  adopt(AppRequest.prototype, app.request);
  adopt(AppResponse.prototype, app.response);
  app.request = AppRequest.prototype as Express['request'];
  app.response = AppResponse.prototype as Express['response'];
}

/** Make `prototype` stand in for Express's `original`: same parent, same own properties. */
function adopt(prototype: object, original: object): void {
  Object.setPrototypeOf(prototype, Object.getPrototypeOf(original) as object | null);
  const { constructor: _ignored, ...own } = Object.getOwnPropertyDescriptors(original);
  Object.defineProperties(prototype, own);
}

/**
 * How long a client may take and how many may connect (HTTP_* settings of the configuration).
 * Durations in milliseconds.
 */
export interface HttpServerLimits {
  /** Time to receive a request's headers; then 408 and the connection is closed. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, headers and body; then 408 and the connection is closed. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /**
   * HTTP connections open at once; more are closed as soon as they are accepted. Live stream
   * sockets are not counted once upgraded ({@link exemptFromConnectionLimit}).
   */
  maxConnections: number;
}

/** Defaults of {@link HttpServerLimits} (HTTP_HEADERS_TIMEOUT_MS etc.). */
export const DEFAULT_HTTP_SERVER_LIMITS: HttpServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1024,
};

/**
 * An HTTP server for `app` (not listening yet) whose requests and responses are instances of the
 * classes of `app.request` and `app.response`: those of {@link bindRequestClasses}, or Node's own
 * for an app without them (a plain `http.createServer(app)`).
 *
 * Slow clients are cut off (Node's `headersTimeout`, `requestTimeout`, `keepAliveTimeout`,
 * `maxConnections`, checked every quarter of the shorter timeout, at most every second), and what
 * Node's HTTP parser refuses before the app sees a request is answered in the API's error model
 * ({@link answerClientError}, {@link answerExpectationFailed}).
 */
export function createHttpServer(
  app: Express,
  limits: HttpServerLimits = DEFAULT_HTTP_SERVER_LIMITS,
  registry?: Registry,
): Server {
  const requestTimeout = limits.requestTimeoutMs;
  // Node refuses a headers timeout longer than the request timeout.
  const headersTimeout = Math.min(limits.headersTimeoutMs, requestTimeout);
  const server = createServer(
    {
      IncomingMessage: app.request.constructor as typeof IncomingMessage,
      // Node types the option as generic over the request class; ours is fixed to IncomingMessage.
      ServerResponse: app.response.constructor as typeof ServerResponse,
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the two timeouts every 30 s by default: a slow client got up to 30 s more.
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    app,
  );
  server.maxConnections = limits.maxConnections;
  const refused = registry ? httpClientErrors(registry) : undefined;
  const count = (code: HttpClientErrorCode | undefined): void => {
    if (code) refused?.inc({ code });
  };
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) =>
    count(answerClientError(err, socket)),
  );
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    answerExpectationFailed(req, res);
    count('expectation_failed');
  });
  server.on('drop', () => count('connection_limit'));
  return server;
}

/**
 * Stop counting `socket`, a connection of `server` taken over by a protocol upgrade (the live
 * stream's WebSockets, which have their own cap, STREAM_MAX_SOCKETS), against the server's
 * connection limit (HTTP_MAX_CONNECTIONS) for as long as it stays open.
 *
 * Node's `net.Server` counts every socket it accepted, upgraded or not, and drops new ones once
 * that count reaches `server.maxConnections` (its `drop` event, counted as `connection_limit`).
 * The limit is therefore raised by one while `socket` is open and lowered again when it closes
 * (Node lowers its count before the socket's `close` event), so only HTTP connections use it up.
 * Nothing happens when the server has no limit or the socket is already closed.
 */
export function exemptFromConnectionLimit(server: Server, socket: Duplex): void {
  const limit = server.maxConnections;
  if (limit === undefined || !Number.isFinite(limit) || socket.destroyed) return;
  server.maxConnections = limit + 1;
  socket.once('close', () => {
    server.maxConnections -= 1;
  });
}

/** `{code, message}` and status of an error of Node's HTTP parser or of a timeout. */
function clientErrorAnswer(err: NodeJS.ErrnoException): {
  status: number;
  code: Exclude<HttpClientErrorCode, 'expectation_failed' | 'connection_limit'>;
  message: string;
} {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        code: 'request_timeout',
        message: 'the request was not received in time',
      };
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'headers_too_large',
        message: 'the request headers are too large',
      };
    case 'HPE_INVALID_METHOD':
      return {
        status: 400,
        code: 'bad_request',
        message: 'the request method is not valid HTTP',
      };
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
      return {
        status: 400,
        code: 'bad_request',
        message: 'a request header is not valid HTTP',
      };
    default:
      return { status: 400, code: 'bad_request', message: 'the request is not valid HTTP' };
  }
}

/**
 * Node's `clientError`: the HTTP parser refused a request (a bad method, a NUL or a bare CR in a
 * header, headers over `--max-http-header-size`, …) or a client was too slow (408 from
 * `headersTimeout`/`requestTimeout`). Answers the error model's JSON `{code, message}` with the
 * status Node would use and `Connection: close`, then closes the connection; a connection reset
 * by the client, or whose answer has started, is just closed (Node's own rules).
 *
 * @returns the code answered, undefined when the connection was just closed
 */
export function answerClientError(
  err: NodeJS.ErrnoException,
  socket: Socket,
): HttpClientErrorCode | undefined {
  const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inProgress?.headersSent) {
    socket.destroy();
    return undefined;
  }
  const { status, code, message } = clientErrorAnswer(err);
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  // A client that does not read its answer must not hold the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
  return code;
}

/**
 * Node's `checkExpectation`: an `Expect` header other than `100-continue` answers 417
 * `expectation_failed` in the error model (Node's default is an empty 417).
 */
export function answerExpectationFailed(_req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify({
    code: 'expectation_failed',
    message: 'the Expect header is not supported (only 100-continue)',
  });
  res.writeHead(417, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
}
