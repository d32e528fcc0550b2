/**
 * A real local HTTP server playing retailCRM API v5 as its documentation describes it: the
 * `X-API-KEY` header (403 `{"success": false, "errorMsg": "Wrong \"apiKey\" value."}` without
 * the right one), form-encoded POSTs whose fields hold JSON (`event`, `calls`,
 * `integrationModule`), `{"success": true, ...}` answers. Records every request with its parsed
 * form; a test scripts answers per path (429, 500, validation errors) and the
 * `telephony/manager` answer.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeVendor } from './fake-vendor.ts';

/** One request as retailCRM received it. */
export interface RetailCrmRequest {
  method: string;
  /** Path without the query, e.g. `/api/v5/telephony/call/event`. */
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
  /** The form fields of a form-encoded body. */
  form: Record<string, string>;
  /** The JSON of form field `event` / `calls` / `integrationModule`, parsed. */
  event?: Record<string, unknown>;
  calls?: Array<Record<string, unknown>>;
  integrationModule?: Record<string, unknown>;
  /** When it arrived, epoch ms. */
  at: number;
}

/** A scripted answer. */
export interface RetailCrmAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export class FakeRetailCrm extends FakeVendor<RetailCrmRequest> {
  readonly apiKey = 'retailcrm-test-key-0123456789';
  /** The `telephony/manager` answer for a phone (default: nobody known). */
  manager: (phone: string) => RetailCrmAnswer = () => ({ status: 200, body: { success: true } });
  /** The module's `additionalCodes` (`GET /api/v5/integration-modules/{code}`); undefined: 404. */
  additionalCodes: Array<{ userId: number; code: string }> | undefined;
  /** When set, every request is answered with this (the CRM is down). */
  down: RetailCrmAnswer | undefined;
  private readonly scripted = new Map<string, RetailCrmAnswer[]>();

  private constructor(server: Server) {
    super(server, 'retailCRM');
  }

  static async start(): Promise<FakeRetailCrm> {
    const server = createServer();
    const crm = new FakeRetailCrm(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const raw = Buffer.concat(chunks).toString('utf8');
        const form = req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')
          ? Object.fromEntries(new URLSearchParams(raw))
          : {};
        const request: RetailCrmRequest = {
          method: req.method ?? 'GET',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          form,
          at: Date.now(),
        };
        for (const field of ['event', 'calls', 'integrationModule'] as const)
          if (form[field] !== undefined) {
            try {
              (request as unknown as Record<string, unknown>)[field] = JSON.parse(form[field]);
            } catch {
              // kept as form text only
            }
          }
        crm.requests.push(request);
        const answer = crm.answer(request);
        res.writeHead(answer.status, {
          'content-type': 'application/json; charset=utf-8',
          ...answer.headers,
        });
        res.end(JSON.stringify(answer.body));
        crm.emit('request', request);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return crm;
  }

  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Answer the next requests to `path` with these answers, in order, then normally. */
  script(path: string, ...answers: RetailCrmAnswer[]): void {
    this.scripted.set(path, [...(this.scripted.get(path) ?? []), ...answers]);
  }

  /** Requests to `path` (optionally of one call: `callExternalId` / `externalId`). */
  to(path: string, callId?: string): RetailCrmRequest[] {
    return this.requests.filter(
      (r) =>
        r.path === path &&
        (callId === undefined ||
          r.event?.callExternalId === callId ||
          r.calls?.some((c) => c.externalId === callId)),
    );
  }

  private answer(request: RetailCrmRequest): RetailCrmAnswer {
    if (request.headers['x-api-key'] !== this.apiKey)
      return { status: 403, body: { success: false, errorMsg: 'Wrong "apiKey" value.' } };
    if (this.down) return this.down;
    const queued = this.scripted.get(request.path);
    if (queued && queued.length > 0) return queued.shift()!;
    const p = request.path;
    if (p === '/api/v5/telephony/manager' && request.method === 'GET')
      return this.manager(request.query.phone ?? '');
    if (p === '/api/v5/telephony/call/event' && request.method === 'POST') {
      if (!request.event) return validationError('event', 'Parameter event is missing');
      return { status: 200, body: { success: true, notExistCodes: [], notExistUsers: [] } };
    }
    if (p === '/api/v5/telephony/calls/upload' && request.method === 'POST') {
      if (!request.calls) return validationError('calls', 'Parameter calls is missing');
      return {
        status: 200,
        body: { success: true, processedCallsCount: request.calls.length, duplicateCalls: [] },
      };
    }
    const module = /^\/api\/v5\/integration-modules\/([^/]+)(\/edit)?$/.exec(p);
    if (module && !module[2] && request.method === 'GET') {
      if (!this.additionalCodes)
        return { status: 404, body: { success: false, errorMsg: 'Not found' } };
      return {
        status: 200,
        body: {
          success: true,
          integrationModule: {
            code: module[1],
            integrations: { telephony: { additionalCodes: this.additionalCodes } },
          },
        },
      };
    }
    if (module && module[2] && request.method === 'POST') {
      if (!request.integrationModule)
        return validationError('integrationModule', 'Parameter integrationModule is missing');
      return { status: 201, body: { success: true } };
    }
    return { status: 404, body: { success: false, errorMsg: 'API method not found' } };
  }
}

/** retailCRM's answer to a request that fails validation. */
export function validationError(field: string, message: string): RetailCrmAnswer {
  return {
    status: 400,
    body: {
      success: false,
      errorMsg: 'Errors in the input parameters',
      errors: { [field]: message },
    },
  };
}
