/**
 * A real local HTTP server playing amoCRM / Kommo for the amoCRM connector's tests: it checks
 * the bearer token (401 problem JSON otherwise), records every request (method, path, query,
 * JSON body), answers the methods the connector uses as amoCRM documents them, and lets a test
 * script failures:
 *
 * - `GET /api/v4/contacts?query=` → 200 `{"_embedded": {"contacts": [...]}}` with the contacts
 *   whose phone contains the query (see {@link FakeAmoCrm.contacts}), or 204 when none;
 * - `POST /api/v2/events` → 202 `{}`;
 * - `POST /api/v4/calls` (JSON array) → 200 `{"_total_items", "_embedded": {"calls": [...]}}`,
 *   a call without `direction`, `duration`, `source` or `phone` → 400 with `validation-errors`.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeVendor } from './fake-vendor.ts';

/** A request as amoCRM received it. */
export interface AmoCrmRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
  /** The parsed JSON body; undefined when there was none. */
  body: unknown;
  /** The answer's status. */
  status: number;
  at: number;
}

/** A scripted answer. */
export interface AmoCrmAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A contact of the fake account. */
export interface FakeContact {
  id: number;
  name: string;
  responsible_user_id: number;
  /** Its phone, digits (matched by the query's digits). */
  phone: string;
}

export class FakeAmoCrm extends FakeVendor<AmoCrmRequest> {
  /** The token amoCRM accepts (a test revokes it by changing this). */
  token: string;
  /** The account's contacts. */
  readonly contacts: FakeContact[] = [];
  /** Answers to give before the normal ones, per `METHOD /path`, in order. */
  private readonly scripted = new Map<string, AmoCrmAnswer[]>();

  private constructor(
    server: Server,
    readonly url: string,
    token: string,
  ) {
    super(server, 'amoCRM');
    this.token = token;
  }

  /** Start on 127.0.0.1 on a free port. */
  static async start(token: string): Promise<FakeAmoCrm> {
    const holder: { fake?: FakeAmoCrm } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = text;
        }
        const answer = holder.fake!.answer(req, body);
        const url = new URL(req.url ?? '/', 'http://localhost');
        const recorded: AmoCrmRequest = {
          method: req.method ?? 'GET',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          body,
          status: answer.status,
          at: Date.now(),
        };
        holder.fake!.requests.push(recorded);
        const payload = answer.body === undefined ? '' : JSON.stringify(answer.body);
        res.writeHead(answer.status, {
          ...(payload ? { 'content-type': 'application/hal+json' } : {}),
          ...answer.headers,
        });
        res.end(payload);
        holder.fake!.emit('request', recorded);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const fake = new FakeAmoCrm(server, `http://127.0.0.1:${port}`, token);
    holder.fake = fake;
    return fake;
  }

  /** Answer the next `count` requests to `METHOD /path` with `answer` (then normally). */
  failNext(route: string, answer: AmoCrmAnswer, count = 1): void {
    const list = this.scripted.get(route) ?? [];
    for (let i = 0; i < count; i++) list.push(answer);
    this.scripted.set(route, list);
  }

  /** Requests to `METHOD /path`, oldest first. */
  requestsTo(route: string): AmoCrmRequest[] {
    return this.requests.filter((r) => `${r.method} ${r.path}` === route);
  }

  /** The `POST /api/v4/calls` call with `uniq` = `callId`, once amoCRM accepted it. */
  async waitForCall(callId: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const request = await this.waitFor(
      (r) =>
        r.path === '/api/v4/calls' &&
        r.status === 200 &&
        Array.isArray(r.body) &&
        (r.body as Array<{ uniq?: string }>).some((c) => c.uniq === callId),
      timeoutMs,
      `the call ${callId} in POST /api/v4/calls`,
    );
    return (request.body as Array<Record<string, unknown>>).find((c) => c.uniq === callId)!;
  }

  private answer(req: IncomingMessage, body: unknown): AmoCrmAnswer {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return {
        status: 401,
        body: {
          title: 'Unauthorized',
          type: 'https://httpstatus.es/401',
          status: 401,
          detail: 'Unauthorized',
        },
      };
    const scripted = this.scripted.get(route);
    if (scripted && scripted.length > 0) return scripted.shift()!;
    switch (route) {
      case 'GET /api/v4/contacts': {
        const query = (url.searchParams.get('query') ?? '').replace(/\D+/g, '');
        const found = this.contacts.filter((c) => query !== '' && c.phone.includes(query));
        if (found.length === 0) return { status: 204 };
        const limit = Number(url.searchParams.get('limit') ?? 50);
        return {
          status: 200,
          body: {
            _page: 1,
            _embedded: {
              contacts: found.slice(0, limit).map((c) => ({
                id: c.id,
                name: c.name,
                responsible_user_id: c.responsible_user_id,
                custom_fields_values: [
                  { field_code: 'PHONE', values: [{ value: `+${c.phone}`, enum_code: 'WORK' }] },
                ],
              })),
            },
          },
        };
      }
      case 'POST /api/v2/events':
        return { status: 202, body: {} };
      case 'POST /api/v4/calls': {
        const calls = Array.isArray(body) ? (body as Array<Record<string, unknown>>) : [];
        const invalid = calls.flatMap((call, i) =>
          ['direction', 'duration', 'source', 'phone']
            .filter((field) => call[field] === undefined)
            .map((field) => ({ i, field })),
        );
        if (!Array.isArray(body) || invalid.length > 0)
          return {
            status: 400,
            body: {
              'validation-errors': invalid.map(({ i, field }) => ({
                request_id: String(i),
                errors: [{ code: 'NotBlank', path: field, detail: 'This field is missing.' }],
              })),
              title: 'Bad Request',
              type: 'https://httpstatus.es/400',
              status: 400,
              detail: 'Request validation failed',
            },
          };
        return {
          status: 200,
          body: {
            _total_items: calls.length,
            _embedded: {
              calls: calls.map((_c, i) => ({
                id: 1000 + this.requests.length + i,
                entity_id: 1,
                entity_type: 'contact',
                account_id: 1,
                request_id: String(i),
              })),
            },
          },
        };
      }
      default:
        return { status: 404, body: { title: 'Not Found', status: 404, detail: route } };
    }
  }
}
