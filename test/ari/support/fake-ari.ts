/**
 * A scriptable stand-in for Asterisk's ARI HTTP server, for the gateway's own tests: it serves
 * Swagger 1.1 API docs (./api-docs.ts, `basePath` taken from the Host header as Asterisk
 * does), requires basic auth (API docs included, as Asterisk 22 does: fixtures fact 12), answers REST calls with a handler the test
 * sets, and accepts the event WebSocket at `/ari/events?app=…&api_key=user:pass`.
 * (The PBX simulator in src/simulator is the faithful one; this one lets a test script exact
 * statuses, bodies and socket behaviour.)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { apiDeclaration, resourceListing } from './api-docs.ts';

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: string;
  authorization: string | undefined;
}

export interface FakeResponse {
  status: number;
  body?: unknown;
  /** Raw body (sent as is). */
  raw?: Buffer | string;
  contentType?: string;
}

export type FakeHandler = (req: FakeRequest) => FakeResponse | Promise<FakeResponse>;

export interface FakeAriOptions {
  username?: string;
  password?: string;
  port?: number;
  /** Don't answer the WebSocket upgrade at all (simulates a hung peer at handshake). */
  refuseWebSocket?: boolean;
  /** Answer WebSocket pings (default true); false simulates a dead peer. */
  autoPong?: boolean;
}

export class FakeAri {
  readonly requests: FakeRequest[] = [];
  readonly sockets = new Set<WebSocket>();
  /** Apps of the WebSocket connections accepted, in order. */
  readonly wsConnections: Array<{
    app: string | null;
    apiKey: string | null;
    subscribeAll: string | null;
  }> = [];
  /** Close every WebSocket right after accepting it (a flapping server). */
  dropImmediately = false;
  /** WebSocket pings received from clients. */
  pingsReceived = 0;
  handler: FakeHandler = () => ({ status: 404, body: { message: 'Not found' } });
  private readonly rawSockets = new Set<Socket>();
  private readonly wss: WebSocketServer;
  private connectionWaiters: Array<() => void> = [];

  private constructor(
    private readonly server: Server,
    readonly username: string,
    readonly password: string,
    autoPong: boolean,
  ) {
    this.wss = new WebSocketServer({ noServer: true, autoPong });
  }

  static async start(options: FakeAriOptions = {}): Promise<FakeAri> {
    const username = options.username ?? 'asterisk';
    const password = options.password ?? 's3cr3t:p@ss';
    const server = createServer();
    const fake = new FakeAri(server, username, password, options.autoPong ?? true);
    server.on('request', (req, res) => void fake.onRequest(req, res));
    server.on('connection', (socket: Socket) => {
      fake.rawSockets.add(socket);
      socket.on('close', () => fake.rawSockets.delete(socket));
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (options.refuseWebSocket) return; // leave it hanging
      const url = new URL(req.url ?? '/', 'http://x');
      const apiKey = url.searchParams.get('api_key');
      if (url.pathname !== '/ari/events' || apiKey !== `${username}:${password}`) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      fake.wss.handleUpgrade(req, socket, head, (ws) => {
        fake.sockets.add(ws);
        ws.on('ping', () => {
          fake.pingsReceived += 1;
        });
        fake.wsConnections.push({
          app: url.searchParams.get('app'),
          apiKey,
          subscribeAll: url.searchParams.get('subscribeAll'),
        });
        ws.on('close', () => fake.sockets.delete(ws));
        if (fake.dropImmediately) ws.close(1011, 'flapping');
        const waiters = fake.connectionWaiters;
        fake.connectionWaiters = [];
        for (const w of waiters) w();
      });
    });
    await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** REST requests other than the API docs. */
  get restRequests(): FakeRequest[] {
    return this.requests.filter((r) => !r.path.startsWith('/ari/api-docs'));
  }

  /** Resolves when the next WebSocket connection is accepted (or now if `count` reached). */
  waitForConnections(count: number): Promise<void> {
    if (this.wsConnections.length >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.wsConnections.length >= count) resolve();
        else this.connectionWaiters.push(check);
      };
      this.connectionWaiters.push(check);
    });
  }

  /** Send a JSON event (or raw text) on every open WebSocket. */
  send(event: unknown): void {
    const text = typeof event === 'string' ? event : JSON.stringify(event);
    for (const ws of this.sockets) ws.send(text);
  }

  /**
   * Send JSON events as one TCP write on every open WebSocket (the TCP socket corked meanwhile),
   * so the client reads them in one go, as it does a burst from a busy Asterisk.
   */
  sendBurst(events: readonly unknown[]): void {
    for (const ws of this.sockets) {
      // ws keeps its TCP socket in `_socket` (not public API; tests only).
      const tcp = (ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
      tcp.cork();
      for (const event of events) ws.send(JSON.stringify(event));
      tcp.uncork();
    }
  }

  /** Close every WebSocket from the server side. */
  dropWebSockets(): void {
    for (const ws of this.sockets) ws.close(1001, 'going away');
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    for (const s of this.rawSockets) s.destroy();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const request: FakeRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: Buffer.concat(chunks).toString('utf8'),
      authorization: req.headers.authorization,
    };
    this.requests.push(request);
    const expected = `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`;
    if (request.authorization !== expected) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="Asterisk REST Interface"',
      });
      res.end(JSON.stringify({ error: 'Authentication required' }));
      return;
    }
    const docs = /^\/ari\/api-docs\/([A-Za-z]+)\.json$/.exec(request.path);
    if (docs?.[1]) {
      const basePath = `http://${req.headers.host}/ari`;
      const body =
        docs[1] === 'resources' ? resourceListing(basePath) : apiDeclaration(docs[1], basePath);
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return;
    }
    const answer = await this.handler(request);
    if (answer.raw !== undefined) {
      res.writeHead(answer.status, {
        'content-type': answer.contentType ?? 'application/octet-stream',
      });
      res.end(answer.raw);
      return;
    }
    if (answer.body === undefined) {
      res.writeHead(answer.status);
      res.end();
      return;
    }
    res.writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json' });
    res.end(JSON.stringify(answer.body));
  }
}
