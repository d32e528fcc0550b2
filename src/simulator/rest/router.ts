/**
 * The ARI HTTP front door (`/ari/...`), behaving like Asterisk's res_ari.c: authentication first
 * (basic auth or `api_key=user:pass`, 401 `{"message":"Authentication required"}` otherwise, also
 * for api-docs: fixtures fact 12), 404 "Resource not found" for unknown paths, 405 "Invalid method",
 * `/api-docs/*.json` with `basePath` from the Host header, then the declared operations.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'winston';
import { AriHttpError } from '../errors.ts';
import type { Pbx } from '../pbx.ts';
import { apiDeclaration, resourceListing } from '../swagger/apiDocs.ts';
import { declaredOperations, type DeclaredOperation } from '../swagger/declarations.ts';
import type { RecordedRequest } from '../types.ts';
import { HANDLERS, type HandlerResult } from './handlers.ts';
import { Params, parseParams } from './params.ts';

/** Credentials the simulated ARI accepts. */
export interface AriCredentials {
  username: string;
  password: string;
}

interface Route {
  segments: string[];
  operations: DeclaredOperation[];
}

function buildRoutes(): Route[] {
  const byPath = new Map<string, Route>();
  for (const decl of declaredOperations()) {
    let route = byPath.get(decl.path);
    if (!route) {
      route = { segments: decl.path.split('/').filter(Boolean), operations: [] };
      byPath.set(decl.path, route);
    }
    route.operations.push(decl);
  }
  return [...byPath.values()];
}

const ROUTES = buildRoutes();

/**
 * {@link ROUTES} by segment count, then by literal first segment (`*`: those starting with a
 * `{wildcard}`), each list in declaration order.
 */
const ROUTE_INDEX = ((): Map<number, Map<string, Route[]>> => {
  const index = new Map<number, Map<string, Route[]>>();
  for (const route of ROUTES) {
    const first = route.segments[0] ?? '';
    const key = first.startsWith('{') ? '*' : first;
    let byFirst = index.get(route.segments.length);
    if (!byFirst) index.set(route.segments.length, (byFirst = new Map<string, Route[]>()));
    let list = byFirst.get(key);
    if (!list) byFirst.set(key, (list = []));
    list.push(route);
  }
  return index;
})();

/**
 * Match path segments like Asterisk's handler tree: literal segments win over `{wildcards}`. A
 * route whose first segment matches literally always outscores one with a wildcard there, so
 * those are only tried when none of the former matches.
 */
function matchRoute(
  segments: string[],
): { route: Route; vars: Record<string, string> } | undefined {
  const byFirst = ROUTE_INDEX.get(segments.length);
  if (!byFirst) return undefined;
  return (
    bestRoute(byFirst.get(segments[0] ?? ''), segments) ?? bestRoute(byFirst.get('*'), segments)
  );
}

/** The best scoring of `routes` for `segments` (the first of equals), with its path variables. */
function bestRoute(
  routes: Route[] | undefined,
  segments: string[],
): { route: Route; vars: Record<string, string> } | undefined {
  if (!routes) return undefined;
  let best: Route | undefined;
  let bestScore = -1;
  for (const route of routes) {
    let score = 0;
    let ok = true;
    for (let i = 0; i < segments.length; i++) {
      const pattern = route.segments[i] as string;
      if (pattern.startsWith('{')) continue;
      if (pattern === segments[i]) score += 2 ** (segments.length - i);
      else {
        ok = false;
        break;
      }
    }
    if (ok && score > bestScore) {
      best = route;
      bestScore = score;
    }
  }
  if (!best) return undefined;
  const vars: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const pattern = best.segments[i] as string;
    if (pattern.startsWith('{')) vars[pattern.slice(1, -1)] = segments[i] as string;
  }
  return { route: best, vars };
}

/** Verdicts on `Authorization: Basic` headers seen, by credentials (at most {@link MAX_BASIC_VERDICTS}). */
const basicVerdicts = new WeakMap<AriCredentials, Map<string, boolean>>();
const MAX_BASIC_VERDICTS = 64;

/** Whether a request carries valid credentials (basic auth, else `api_key`). */
export function authenticate(
  headers: IncomingMessage['headers'],
  fields: URLSearchParams,
  creds: AriCredentials,
): boolean {
  const auth = headers.authorization;
  if (auth && /^basic /i.test(auth)) {
    // A client sends the same header with every request: its verdict is remembered.
    let verdicts = basicVerdicts.get(creds);
    const known = verdicts?.get(auth);
    if (known !== undefined) return known;
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const ok =
      colon >= 0 &&
      decoded.slice(0, colon) === creds.username &&
      decoded.slice(colon + 1) === creds.password;
    if (!verdicts) basicVerdicts.set(creds, (verdicts = new Map<string, boolean>()));
    if (verdicts.size >= MAX_BASIC_VERDICTS) verdicts.clear();
    verdicts.set(auth, ok);
    return ok;
  }
  const apiKey = fields.get('api_key');
  if (apiKey === null) return false;
  const colon = apiKey.indexOf(':');
  return (
    colon >= 0 &&
    apiKey.slice(0, colon) === creds.username &&
    apiKey.slice(colon + 1) === creds.password
  );
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function summary(
  contentType: string,
  data: Buffer,
): { contentType: string; bytes: number; head: string } {
  return { contentType, bytes: data.length, head: data.subarray(0, 12).toString('hex') };
}

/** Options of {@link createAriHandler}. */
export interface AriHandlerDeps {
  pbx: Pbx;
  creds: AriCredentials;
  /** Keeps each request served (not api-docs); none when the request log is off. */
  record: ((request: RecordedRequest) => void) | undefined;
  log: Logger | undefined;
  /**
   * Resolves when the answer to `method path` may be written; undefined: at once (see
   * `PbxSimulator.holdResponses`).
   */
  hold?: (method: string, path: string) => Promise<void> | undefined;
}

/** A node `request` listener serving everything under `/ari` (anything else: 404). */
export function createAriHandler(
  deps: AriHandlerDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void handle(deps, req, res).catch((err: unknown) => {
      deps.log?.error('sim ARI handler failed', { err });
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ message: 'Internal Server Error' }));
      }
    });
  };
}

/** Path characters `new URL` leaves as they are (no `\\`, no `#`, nothing it escapes). */
const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9_\-.~:@!$&'()*+,;=%/]*$/;
/** A `.`/`..` path segment, possibly escaped (`new URL` resolves those). */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e)+(?:\/|$)/i;
/** Query characters `new URL` leaves as they are or escapes only for its decoding to undo. */
const PLAIN_QUERY = /^(?:\?[\x21-\x22\x24-\x7e]*)?$/;

/**
 * The path and query parameters of a request target, as `new URL(target, base)` gives them.
 * The usual target (`/ari/channels/1764.12?x=y`: plain characters, no dot segment) is split
 * directly, which costs a fraction of building a URL; anything else goes through `new URL`.
 */
function requestTarget(target: string): { pathname: string; searchParams: URLSearchParams } {
  const q = target.indexOf('?');
  const pathname = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q); // with its `?` (URLSearchParams drops one)
  if (PLAIN_PATH.test(pathname) && !DOT_SEGMENT.test(pathname) && PLAIN_QUERY.test(query))
    return { pathname, searchParams: new URLSearchParams(query) };
  return new URL(target, 'http://sim.invalid');
}

async function handle(
  deps: AriHandlerDeps,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = requestTarget(req.url ?? '/');
  const method = (req.method ?? 'GET').toUpperCase();
  if (url.pathname !== '/ari' && !url.pathname.startsWith('/ari/')) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('Not Found');
    return;
  }
  const path = url.pathname.slice('/ari'.length) || '/';
  const raw = await readBody(req);
  const contentType = (req.headers['content-type'] ?? '').toLowerCase();
  const fields = new URLSearchParams();
  let jsonBody: unknown;
  let recordedBody: unknown;
  let result: HandlerResult;
  try {
    if (raw.length > 0 && contentType.startsWith('application/x-www-form-urlencoded')) {
      const form = new URLSearchParams(raw.toString('utf8'));
      for (const [k, v] of form) fields.append(k, v);
      recordedBody = Object.fromEntries(form);
    }
    for (const [k, v] of url.searchParams) {
      fields.delete(k);
      fields.append(k, v);
    }
    if (raw.length > 0 && contentType.startsWith('application/json')) {
      try {
        jsonBody = JSON.parse(raw.toString('utf8'));
        recordedBody = jsonBody;
      } catch {
        throw new AriHttpError(400, { message: 'Error parsing request body' });
      }
    }
    result = await dispatch(deps, req, method, path, fields, jsonBody);
  } catch (err) {
    if (err instanceof AriHttpError) result = { status: err.status, body: err.body };
    else {
      deps.log?.error('sim ARI operation failed', { err, method, path });
      result = { status: 500, body: { message: 'Internal Server Error' } };
    }
  }
  if (result.beforeResponse) await result.beforeResponse();
  const held = deps.hold?.(method, path);
  if (held) await held;
  // The client gave up, or the connection was cut, while the answer was held: nothing to write.
  if (res.destroyed || req.socket.destroyed) return;
  const headers: Record<string, string> = {};
  if (result.location) headers.Location = result.location;
  if (result.status === 401) headers['WWW-Authenticate'] = 'Basic realm="Asterisk REST Interface"';
  let response: unknown;
  if (result.file) {
    headers['Content-Type'] = result.file.contentType;
    headers['Content-Length'] = String(result.file.data.length);
    res.writeHead(result.status, headers);
    res.end(result.file.data);
    response = summary(result.file.contentType, result.file.data);
  } else if (result.body === undefined) {
    res.writeHead(result.status, headers);
    res.end();
    response = summary('', Buffer.alloc(0));
  } else {
    const text = JSON.stringify(result.body);
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(text));
    res.writeHead(result.status, headers);
    res.end(text);
    response = result.body;
  }
  if (result.afterResponse) {
    const after = result.afterResponse;
    res.once('finish', () => after());
  }
  if ((deps.record || deps.log) && !path.startsWith('/api-docs/')) {
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    deps.record?.({
      method,
      path,
      query,
      body: recordedBody,
      status: result.status,
      response,
      at: Date.now(),
    });
    deps.log?.debug('sim ARI request', { method, path, query, status: result.status });
  }
}

async function dispatch(
  deps: AriHandlerDeps,
  req: IncomingMessage,
  method: string,
  path: string,
  fields: URLSearchParams,
  jsonBody: unknown,
): Promise<HandlerResult> {
  if (!authenticate(req.headers, fields, deps.creds)) {
    return { status: 401, body: { message: 'Authentication required' } };
  }
  if (path.length > 1 && path.endsWith('/')) {
    return {
      status: 404,
      body: { message: `ARI URLs do not end with a slash. Try /ari${path.slice(0, -1)}` },
    };
  }
  if (path.startsWith('/api-docs/')) {
    if (method !== 'GET') return { status: 405, body: { message: 'Unsupported method' } };
    const file = path.slice('/api-docs/'.length);
    const host = req.headers.host;
    const doc =
      file === 'resources.json'
        ? resourceListing(host)
        : file.endsWith('.json')
          ? apiDeclaration(file.slice(0, -5), host)
          : undefined;
    if (!doc) return { status: 404, body: { message: 'Resource not found' } };
    return { status: 200, body: doc };
  }
  let segments: string[];
  try {
    segments = path
      .split('/')
      .filter(Boolean)
      .map((s) => decodeURIComponent(s));
  } catch {
    return { status: 404, body: { message: 'Resource not found' } };
  }
  const match = matchRoute(segments);
  if (!match) return { status: 404, body: { message: 'Resource not found' } };
  const decl = match.route.operations.find((o) => o.operation.httpMethod === method);
  if (!decl) return { status: 405, body: { message: 'Invalid method' } };
  if (decl.operation.upgrade === 'websocket')
    return { status: 426, body: { message: 'Upgrade Required' } };
  const handler = HANDLERS[`${decl.resource}.${decl.operation.nickname}`];
  if (!handler) return { status: 501, body: { message: 'Method not implemented' } };
  const params = new Params(parseParams(decl.operation.parameters, match.vars, fields, jsonBody));
  return handler(params, deps.pbx);
}
