/**
 * A real local HTTP server playing the CRM: answers route lookups (POST /route) and call
 * scripts' requests (POST /verbs…) as a test says, and receives lifecycle webhooks (POST /hooks), checking each X-Signature independently of the
 * engine's own code (HMAC-SHA256 over "<t>.<raw body>").
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A webhook as the CRM received it. */
export interface ReceivedWebhook {
  headers: IncomingMessage['headers'];
  rawBody: string;
  body: {
    id: string;
    type: string;
    occurredAt: string;
    callId: string;
    sequence: number;
    data: Record<string, unknown>;
  };
  signatureValid: boolean;
  receivedAt: number;
}

/** A route lookup as the CRM received it. */
export interface ReceivedRouteRequest {
  body: { callId: string; from: string; did: string };
  headers: IncomingMessage['headers'];
}

/** A call script's request (`gather.actionUrl`, `redirect.url` pointing at `/verbs…`). */
export interface ReceivedVerbsRequest {
  /** The path with its query, e.g. `/verbs?menu=main`. */
  url: string;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
  signatureValid: boolean;
}

/** How the fake CRM answers a route lookup. */
export interface RouteAnswer {
  status?: number;
  /** JSON answer; ignored when `raw` is given. */
  body?: unknown;
  /** Raw text answer (e.g. broken JSON). */
  raw?: string;
  /** Answer only after this long (timeouts). */
  delayMs?: number;
  /** Answer only once this settles (after `delayMs`, if both are given). */
  hold?: Promise<unknown>;
}

export class FakeCrm extends EventEmitter {
  readonly webhooks: ReceivedWebhook[] = [];
  readonly routeRequests: ReceivedRouteRequest[] = [];
  /** Call scripts' requests to `/verbs…` (see {@link verbsUrl}). */
  readonly verbsRequests: ReceivedVerbsRequest[] = [];
  /** Status the webhook endpoint answers (tests of retries set e.g. 500). */
  webhookStatus = 200;
  private routeAnswer: (req: ReceivedRouteRequest['body']) => RouteAnswer = () => ({
    body: { action: 'dial', strategy: 'ringall', extensions: ['101'], ringTimeoutSec: 20 },
  });
  private verbsAnswer: (req: ReceivedVerbsRequest) => RouteAnswer = () => ({
    body: { verbs: [] },
  });
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly secret: string,
  ) {
    super();
  }

  /** Start on 127.0.0.1, on `port` (default any free port). */
  static async start(secret = 'test-webhook-secret-0123456789', port = 0): Promise<FakeCrm> {
    const holder: { crm?: FakeCrm } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => holder.crm!.handle(req, Buffer.concat(chunks).toString('utf8'), res));
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const bound = (server.address() as AddressInfo).port;
    holder.crm = new FakeCrm(server, `http://127.0.0.1:${bound}`, secret);
    return holder.crm;
  }

  get routeUrl(): string {
    return `${this.url}/route`;
  }
  get webhookUrl(): string {
    return `${this.url}/hooks`;
  }

  /** Where a script's `actionUrl` or `redirect` may point: `<url>/verbs<suffix>`. */
  verbsUrl(suffix = ''): string {
    return `${this.url}/verbs${suffix}`;
  }

  /** Decide how call scripts' requests to {@link verbsUrl} are answered (default `{verbs: []}`). */
  onVerbs(answer: (req: ReceivedVerbsRequest) => RouteAnswer): void {
    this.verbsAnswer = answer;
  }

  /** Decide how route lookups are answered. */
  onRoute(answer: (req: ReceivedRouteRequest['body']) => RouteAnswer): void {
    this.routeAnswer = answer;
  }

  /** Webhooks of one call, in arrival order. */
  eventsOf(callId: string): ReceivedWebhook[] {
    return this.webhooks.filter((w) => w.body.callId === callId);
  }

  /** Resolve with the first webhook (already received or future) matching `predicate`. */
  waitForWebhook(
    predicate: (w: ReceivedWebhook) => boolean,
    timeoutMs = 5000,
  ): Promise<ReceivedWebhook> {
    const found = this.webhooks.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('webhook', listener);
        reject(
          new Error(
            `no matching webhook within ${timeoutMs} ms; got ${this.webhooks.map((w) => w.body.type).join(', ')}`,
          ),
        );
      }, timeoutMs);
      const listener = (w: ReceivedWebhook): void => {
        if (!predicate(w)) return;
        clearTimeout(timer);
        this.off('webhook', listener);
        resolve(w);
      };
      this.on('webhook', listener);
    });
  }

  /** Wait for `call.ended` of the first call started after `since` (default: any). */
  waitForEnded(callId?: string, timeoutMs = 5000): Promise<ReceivedWebhook> {
    return this.waitForWebhook(
      (w) => w.body.type === 'call.ended' && (!callId || w.body.callId === callId),
      timeoutMs,
    );
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, raw: string, res: import('node:http').ServerResponse): void {
    const isRoute = req.method === 'POST' && req.url === '/route';
    const isVerbs = req.method === 'POST' && (req.url ?? '').startsWith('/verbs');
    if (isRoute || isVerbs) {
      let answer: RouteAnswer;
      if (isRoute) {
        const body = JSON.parse(raw) as ReceivedRouteRequest['body'];
        this.routeRequests.push({ body, headers: req.headers });
        answer = this.routeAnswer(body);
      } else {
        const request: ReceivedVerbsRequest = {
          url: req.url ?? '',
          body: JSON.parse(raw) as Record<string, unknown>,
          headers: req.headers,
          signatureValid: verify(this.secret, String(req.headers['x-signature'] ?? ''), raw),
        };
        this.verbsRequests.push(request);
        answer = this.verbsAnswer(request);
      }
      const send = (): void => {
        if (res.destroyed) return;
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
        res.end(answer.raw ?? JSON.stringify(answer.body ?? {}));
      };
      const delayed = (): void => {
        if (answer.delayMs) {
          const t = setTimeout(send, answer.delayMs);
          this.timers.add(t);
        } else send();
      };
      if (answer.hold) void answer.hold.then(delayed, delayed);
      else delayed();
      return;
    }
    if (req.method === 'POST' && req.url === '/hooks') {
      const webhook: ReceivedWebhook = {
        headers: req.headers,
        rawBody: raw,
        body: JSON.parse(raw) as ReceivedWebhook['body'],
        signatureValid: verify(this.secret, String(req.headers['x-signature'] ?? ''), raw),
        receivedAt: Date.now(),
      };
      res.writeHead(this.webhookStatus).end();
      this.emit('attempt', webhook, this.webhookStatus);
      if (this.webhookStatus >= 200 && this.webhookStatus < 300) {
        this.webhooks.push(webhook);
        this.emit('webhook', webhook);
      }
      return;
    }
    res.writeHead(404).end();
  }
}

function verify(secret: string, header: string, raw: string): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  if (!parts.t || !parts.v1) return false;
  if (Math.abs(Date.now() / 1000 - Number(parts.t)) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${parts.t}.${raw}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
