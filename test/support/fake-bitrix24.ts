/**
 * A real local HTTP server playing a Bitrix24 portal as its REST documentation describes it:
 * form-encoded methods at `/rest/<method>.json` (a local application: form field `auth` = the
 * current access token, else 401 `{"error": "expired_token"}` / `invalid_token`) or at
 * `/rest/<user>/<secret>/<method>.json` (an inbound webhook), the OAuth server's refresh
 * (`GET /oauth/token/?grant_type=refresh_token…`, a new pair each time, the old refresh token
 * spent), answers `{"result": …}` and errors `{"error", "error_description"}`. Records every
 * request; a test scripts answers per method (400/429/500/503) and the CRM's contacts and users.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeVendor } from './fake-vendor.ts';

/** One request as the portal received it. */
export interface Bitrix24Request {
  /** The REST method (`telephony.externalcall.register`), or `oauth` for the token endpoint. */
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** The form fields (flat, as sent: `values[0]`, `FILTER[ACTIVE]`). */
  form: Record<string, string>;
  query: Record<string, string>;
  /** What the portal answered (status). */
  status?: number;
  at: number;
}

/** A scripted answer. */
export interface Bitrix24Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** A CRM entity of the fake portal. */
export interface FakeEntity {
  type: 'CONTACT' | 'COMPANY' | 'LEAD';
  id: number;
  phones: string[];
  ASSIGNED_BY_ID: number;
  NAME?: string;
  LAST_NAME?: string;
  TITLE?: string;
}

export class FakeBitrix24 extends FakeVendor<Bitrix24Request> {
  readonly clientId = 'local.6667fc928a50a9.70414732';
  readonly clientSecret = 'bitrix24-client-secret-0123456789';
  readonly webhookUser = '1';
  readonly webhookSecret = 'w3bh00ks3cr3tc0d3';
  accessToken = 'access-token-1';
  refreshToken = 'refresh-token-1';
  /** Access tokens that worked once: now `expired_token`. */
  readonly expired = new Set<string>();
  /** Portal users: id → internal number (UF_PHONE_INNER). */
  users = new Map<number, string>();
  entities: FakeEntity[] = [];
  private registered = new Map<string, Record<string, string>>();
  private nextCall = 1;
  private tokenSeq = 1;
  private readonly scripted = new Map<string, Bitrix24Answer[]>();

  private constructor(server: Server) {
    super(server, 'Bitrix24');
  }

  static async start(): Promise<FakeBitrix24> {
    const server = createServer();
    const portal = new FakeBitrix24(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const raw = Buffer.concat(chunks).toString('utf8');
        const form = req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')
          ? Object.fromEntries(new URLSearchParams(raw))
          : {};
        const rest = /^\/rest\/(?:(\d+)\/([^/]+)\/)?([A-Za-z0-9_.]+)\.json$/.exec(url.pathname);
        const request: Bitrix24Request = {
          method: url.pathname.startsWith('/oauth/token') ? 'oauth' : (rest?.[3] ?? url.pathname),
          path: url.pathname,
          headers: req.headers,
          form,
          query: Object.fromEntries(url.searchParams),
          at: Date.now(),
        };
        const answer = portal.answer(request, rest);
        request.status = answer.status;
        portal.requests.push(request);
        res.writeHead(answer.status, {
          'content-type': 'application/json; charset=utf-8',
          ...answer.headers,
        });
        res.end(JSON.stringify(answer.body));
        portal.emit('request', request);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return portal;
  }

  /** The portal URL, e.g. `http://127.0.0.1:40123`. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** The inbound webhook URL. */
  get webhookUrl(): string {
    return `${this.url}/rest/${this.webhookUser}/${this.webhookSecret}/`;
  }

  /** The OAuth token endpoint. */
  get oauthUrl(): string {
    return `${this.url}/oauth/token/`;
  }

  /** Answer the next calls of `method` with these answers, in order, then normally. */
  script(method: string, ...answers: Bitrix24Answer[]): void {
    this.scripted.set(method, [...(this.scripted.get(method) ?? []), ...answers]);
  }

  /** Make the current access token expire (the next request with it gets `expired_token`). */
  expireAccessToken(): void {
    this.expired.add(this.accessToken);
    this.accessToken = `access-token-expired-${this.tokenSeq}-replaced`;
  }

  /** Requests of one REST method, optionally of one Bitrix24 CALL_ID, answered 2xx. */
  calls(method: string, callId?: string): Bitrix24Request[] {
    return this.requests.filter(
      (r) =>
        r.method === method &&
        (r.status ?? 0) < 300 &&
        (callId === undefined || r.form.CALL_ID === callId),
    );
  }

  /** The CALL_ID the portal gave the call with EXTERNAL_CALL_ID `externalId`. */
  callIdOf(externalId: string): string | undefined {
    for (const [id, params] of this.registered)
      if (params.EXTERNAL_CALL_ID === externalId) return id;
    return undefined;
  }

  /** Register a call as Bitrix24 does when a user clicks a number (ONEXTERNALCALLSTART). */
  registerClick(params: Record<string, string>): string {
    const id = `externalCall.${(this.nextCall++).toString(16).padStart(8, '0')}.click`;
    this.registered.set(id, params);
    return id;
  }

  private answer(request: Bitrix24Request, rest: RegExpExecArray | null): Bitrix24Answer {
    if (request.method === 'oauth') return this.oauth(request.query);
    if (!rest) return error(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
    if (rest[1] !== undefined) {
      if (rest[1] !== this.webhookUser || rest[2] !== this.webhookSecret)
        return error(401, 'INVALID_CREDENTIALS', 'Invalid request credentials');
    } else {
      const token = request.form.auth;
      if (!token) return error(401, 'NO_AUTH_FOUND', 'Wrong authorization data');
      if (this.expired.has(token))
        return error(401, 'expired_token', 'The access token provided has expired.');
      if (token !== this.accessToken)
        return error(401, 'invalid_token', 'The access token provided is invalid.');
    }
    const queued = this.scripted.get(request.method);
    if (queued && queued.length > 0) return queued.shift()!;
    return this.method(request.method, request.form);
  }

  private oauth(query: Record<string, string>): Bitrix24Answer {
    if (query.grant_type !== 'refresh_token')
      return { status: 400, body: { error: 'invalid_request', error_description: 'grant_type' } };
    if (query.client_id !== this.clientId || query.client_secret !== this.clientSecret)
      return {
        status: 401,
        body: { error: 'invalid_client', error_description: 'Invalid client' },
      };
    if (query.refresh_token !== this.refreshToken)
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid grant' } };
    this.tokenSeq++;
    this.expired.add(this.accessToken);
    this.accessToken = `access-token-${this.tokenSeq}`;
    this.refreshToken = `refresh-token-${this.tokenSeq}`;
    return {
      status: 200,
      body: {
        access_token: this.accessToken,
        expires: Math.floor(Date.now() / 1000) + 3600,
        expires_in: 3600,
        scope: 'app',
        domain: 'oauth.bitrix.info',
        server_endpoint: 'https://oauth.bitrix.info/rest/',
        status: 'L',
        client_endpoint: `${this.url}/rest/`,
        member_id: '00168f0dd11ff00b4aeb8ce5befaa139',
        user_id: 1,
        refresh_token: this.refreshToken,
      },
    };
  }

  private method(method: string, form: Record<string, string>): Bitrix24Answer {
    switch (method) {
      case 'telephony.externalcall.register': {
        if (!form.USER_ID && !form.USER_PHONE_INNER)
          return error(400, 'ERROR_ARGUMENT', 'USER_ID or USER_PHONE_INNER should be set');
        if (!form.PHONE_NUMBER) return error(400, 'ERROR_ARGUMENT', 'PHONE_NUMBER is empty');
        if (form.TYPE !== '1' && form.TYPE !== '2')
          return error(400, 'ERROR_ARGUMENT', 'Unknown call type');
        const id = `externalCall.${(this.nextCall++).toString(16).padStart(8, '0')}.1733473800`;
        this.registered.set(id, form);
        return {
          status: 200,
          body: {
            result: {
              CALL_ID: id,
              CRM_CREATED_LEAD: null,
              CRM_ENTITY_TYPE: form.CRM_ENTITY_TYPE ?? 'LEAD',
              CRM_ENTITY_ID: Number(form.CRM_ENTITY_ID ?? 77),
              CRM_CREATED_ENTITIES: [],
            },
          },
        };
      }
      case 'telephony.externalcall.show':
      case 'telephony.externalcall.hide':
      case 'telephony.externalcall.finish':
      case 'telephony.externalcall.attachRecord': {
        if (!form.CALL_ID || !this.registered.has(form.CALL_ID))
          return error(400, 'ERROR_CALL_NOT_FOUND', 'Call is not found');
        if (method.endsWith('.finish'))
          return {
            status: 200,
            body: {
              result: {
                CALL_ID: form.CALL_ID,
                CALL_DURATION: Number(form.DURATION),
                CALL_FAILED_CODE: form.STATUS_CODE,
              },
            },
          };
        if (method.endsWith('.attachRecord'))
          return { status: 200, body: { result: { FILE_ID: 1 } } };
        return { status: 200, body: { result: true } };
      }
      case 'user.get': {
        const start = Number(form.start ?? 0);
        const all = [...this.users].map(([id, inner]) => ({
          ID: String(id),
          ACTIVE: true,
          NAME: `User ${id}`,
          UF_PHONE_INNER: inner,
        }));
        const page = all.slice(start, start + 50);
        return {
          status: 200,
          body: {
            result: page,
            total: all.length,
            ...(start + 50 < all.length ? { next: start + 50 } : {}),
          },
        };
      }
      case 'crm.duplicate.findbycomm': {
        if (form.type !== 'PHONE') return error(400, 'ERROR_ARGUMENT', 'type');
        const values = Object.entries(form)
          .filter(([k]) => k.startsWith('values['))
          .map(([, v]) => v.replace(/\D/g, ''));
        const result: Record<string, number[]> = {};
        for (const entity of this.entities)
          if (entity.phones.some((p) => values.includes(p.replace(/\D/g, ''))))
            (result[entity.type] ??= []).push(entity.id);
        return { status: 200, body: { result: Object.keys(result).length ? result : [] } };
      }
      case 'crm.contact.get':
      case 'crm.company.get':
      case 'crm.lead.get': {
        const type = method.split('.')[1]!.toUpperCase();
        const entity = this.entities.find((e) => e.type === type && String(e.id) === form.id);
        if (!entity) return error(400, 'ERROR_NOT_FOUND', 'Not found');
        const { phones, ...fields } = entity;
        return {
          status: 200,
          body: {
            result: {
              ...fields,
              ID: String(entity.id),
              ASSIGNED_BY_ID: String(entity.ASSIGNED_BY_ID),
              PHONE: phones.map((p) => ({ VALUE: p, VALUE_TYPE: 'WORK' })),
            },
          },
        };
      }
      case 'event.bind':
        if (!form.event || !form.handler) return error(400, 'ERROR_ARGUMENT', 'event, handler');
        return { status: 200, body: { result: true } };
      case 'app.info':
        return { status: 200, body: { result: { ID: 5, CODE: this.clientId, STATUS: 'L' } } };
      default:
        return error(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
    }
  }
}

/** Bitrix24's error answer. */
export function error(status: number, code: string, description: string): Bitrix24Answer {
  return { status, body: { error: code, error_description: description } };
}
