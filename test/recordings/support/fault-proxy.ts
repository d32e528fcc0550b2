/**
 * A real HTTP + WebSocket proxy in front of the PBX simulator's ARI that can answer chosen
 * requests with an error instead of forwarding them, the way a real Asterisk answers when a stored
 * recording cannot be read (`403 {"message":"The recording file could not be opened"}`), or cut
 * ARI at a chosen request ({@link AriFaultProxy.cutAt}). The engine talks to it as its ARI_URL;
 * everything else (REST, the events WebSocket) passes through.
 */
import { once } from 'node:events';
import {
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/** A request the proxy saw. */
export interface ProxiedRequest {
  method: string;
  path: string;
  /** Answered by a fault rule instead of the simulator. */
  faulted: boolean;
}

interface FaultRule {
  matches: (method: string, path: string) => boolean;
  remaining: number;
  status: number;
  body: unknown;
  /** Cut ARI instead of answering ({@link AriFaultProxy.cutAt}). */
  cut?: CutRule;
}

/** What {@link AriFaultProxy.cutAt} hands the test. */
export interface AriCut {
  /** Resolves once a matching request came and the events WebSockets were cut. */
  readonly cut: Promise<void>;
  /**
   * Cut the connection of the request held since the cut in the middle of its answer (the status
   * line and the start of a body, then the connection closes): its client gets no usable answer,
   * and cannot take the request for one the server never saw.
   */
  drop(): void;
}

interface CutRule {
  cutDone: () => void;
  held: ServerResponse[];
}

export class AriFaultProxy {
  readonly requests: ProxiedRequest[] = [];
  private readonly rules: FaultRule[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Listen on 127.0.0.1 (any free port) in front of `target` (e.g. the simulator's URL). */
  static async start(target: string): Promise<AriFaultProxy> {
    const upstream = new URL(target);
    const holder: { proxy?: AriFaultProxy } = {};
    const server = createServer((req, res) => {
      const proxy = holder.proxy!;
      const method = req.method ?? 'GET';
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const rule = proxy.rules.find((r) => r.remaining > 0 && r.matches(method, path));
      proxy.requests.push({ method, path, faulted: rule !== undefined });
      if (rule?.cut) {
        rule.remaining--;
        req.resume();
        // Not forwarded: the request waits for an answer that never comes, the WebSockets drop.
        rule.cut.held.push(res);
        for (const socket of proxy.sockets) socket.destroy();
        rule.cut.cutDone();
        return;
      }
      if (rule) {
        rule.remaining--;
        req.resume();
        res.writeHead(rule.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(rule.body));
        return;
      }
      const forwarded = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method,
          path: req.url,
          headers: req.headers,
        },
        (answer: IncomingMessage) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forwarded.on('error', () => res.destroy());
      req.pipe(forwarded);
    });
    server.on('upgrade', (req: IncomingMessage, client: Socket, head: Buffer) => {
      const proxy = holder.proxy!;
      const target = connect(Number(upstream.port), upstream.hostname, () => {
        const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
        for (let i = 0; i < req.rawHeaders.length; i += 2)
          lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        target.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length > 0) target.write(head);
        client.pipe(target).pipe(client);
      });
      for (const socket of [client, target]) {
        proxy.sockets.add(socket);
        socket.on('close', () => proxy.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          target.destroy();
        });
      }
      client.on('close', () => target.destroy());
      target.on('close', () => client.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    holder.proxy = new AriFaultProxy(
      server,
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    );
    return holder.proxy;
  }

  /**
   * Answer the next `times` requests matching `method` and `path` (a RegExp on the path, e.g.
   * `/^\/ari\/recordings\/stored\/[^/]+\/file$/`) with `status` and a JSON `body`.
   */
  fail(method: string, path: RegExp, times: number, status: number, body: unknown): void {
    this.rules.push({
      matches: (m, p) => m === method && path.test(p),
      remaining: times,
      status,
      body,
    });
  }

  /**
   * Cut ARI at the next request matching `method` and `path` (a RegExp on the path): it is not
   * forwarded (Asterisk never sees it) and gets no answer, and the events WebSockets open through
   * the proxy are dropped at once (the client reconnects through the proxy as usual). The held
   * request waits until the test calls `drop()` (its answer is then cut short).
   */
  cutAt(method: string, path: RegExp): AriCut {
    let cutDone!: () => void;
    const cut = new Promise<void>((resolve) => (cutDone = resolve));
    const rule: CutRule = { cutDone, held: [] };
    this.rules.push({
      matches: (m, p) => m === method && path.test(p),
      remaining: 1,
      status: 0,
      body: undefined,
      cut: rule,
    });
    return {
      cut,
      drop: () => {
        for (const res of rule.held.splice(0)) {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '64' });
          res.write('{"', () => res.socket?.destroy());
        }
      },
    };
  }

  /** Requests seen for paths matching `path` (and `method`, when given). */
  seen(path: RegExp, method?: string): ProxiedRequest[] {
    return this.requests.filter((r) => path.test(r.path) && (!method || r.method === method));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
