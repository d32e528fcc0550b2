/**
 * A TCP proxy on 127.0.0.1 in front of Asterisk's HTTP port, between the engine and ARI: the
 * engine's REST requests and its ARI WebSocket pass through it, so a test can cut them from
 * outside the engine (as a network failure would) and refuse new connections for a while.
 */
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  /** The open connections carrying the ARI WebSocket (`GET /ari/events`), by their client side. */
  private readonly eventConnections = new Map<Socket, { silent: boolean }>();

  private constructor(private readonly server: Server) {}

  /** Start a proxy to `127.0.0.1:targetPort` on a free port. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const holder: { proxy?: TcpProxy } = {};
    const server = createServer((client) => holder.proxy!.accept(client, targetPort));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    holder.proxy = new TcpProxy(server);
    return holder.proxy;
  }

  /** The proxy's port. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Connections open now. */
  get connections(): number {
    return this.sockets.size / 2;
  }

  /** Destroy every open connection (both sides) and, while `refuse`, every new one at once. */
  cut(refuse: boolean): void {
    this.refusing = refuse;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /**
   * The ARI WebSocket connections open now go silent without closing, as a network that starts
   * dropping packets (a partition, a firewall or NAT forgetting the connection): nothing passes
   * either way any more, Asterisk still counts the app as connected (a call reaching `Stasis()`
   * enters it, its StasisStart is written into the void), and the engine's pings get no answer
   * until its ping timeout drops the connection. REST requests and new connections pass.
   */
  silenceEvents(): void {
    for (const connection of this.eventConnections.values()) connection.silent = true;
  }

  /** Accept connections again after {@link cut}. */
  restore(): void {
    this.refusing = false;
  }

  /** Forget the traps of {@link loseAnswerTo} and {@link loseRequest} not sprung yet. */
  disarm(): void {
    this.trap = undefined;
    this.lost = undefined;
  }

  async close(): Promise<void> {
    this.cut(true);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetPort: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = createConnection(targetPort, '127.0.0.1');
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      this.eventConnections.delete(client);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    let answerLost = false;
    let firstChunk = true;
    const events = { silent: false };
    client.on('data', (chunk: Buffer) => {
      if (firstChunk) {
        firstChunk = false;
        if (chunk.toString('latin1').startsWith('GET /ari/events')) {
          this.eventConnections.set(client, events);
        }
      }
      if (events.silent) return;
      const lost = this.lost;
      if (lost) {
        const text = chunk.toString('latin1');
        const line = text.slice(0, text.indexOf('\r\n'));
        if (lost.line === undefined && lost.request.test(text)) {
          // The request never reaches Asterisk; the engine's connections are cut as it goes out.
          lost.line = line;
          this.cut(false);
          lost.sprung();
          return;
        }
        if (lost.line !== undefined && line === lost.line) {
          // The HTTP client sends it again on a new connection: lost too.
          drop();
          return;
        }
      }
      const trap = this.trap;
      if (trap && trap.request.test(chunk.toString('latin1'))) {
        this.trap = undefined;
        answerLost = true;
        upstream.once('data', () => {
          // Asterisk has done what was asked; its answer never reaches the engine.
          this.cut(false);
          trap.sprung();
        });
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!answerLost && !events.silent) client.write(chunk);
    });
  }

  private trap: { request: RegExp; sprung: () => void } | undefined;
  private lost: { request: RegExp; sprung: () => void; line?: string } | undefined;

  /**
   * Let the next request matching `request` (its first line, e.g. `/^POST \/ari\/bridges\?/`)
   * through to Asterisk, then cut every connection as soon as Asterisk starts answering it: the
   * request took effect, the engine never learns so. Resolves when that happened.
   */
  loseAnswerTo(request: RegExp): Promise<void> {
    return new Promise((resolve) => {
      this.trap = { request, sprung: resolve };
    });
  }

  /**
   * Drop the next request matching `request` (its first line, e.g.
   * `/^POST \/ari\/bridges\/[^/\s]+\/record/`) before it reaches Asterisk, and cut every
   * connection at once, the ARI WebSocket included (new ones are accepted): the engine's request
   * failed with a connection error and had no effect. The same request sent again (the same first
   * line: the engine's HTTP client resends a request once when its kept-alive connection turns out
   * dead) is dropped too, its connection closed, until {@link disarm}; other requests pass.
   * Resolves when the first one was dropped.
   */
  loseRequest(request: RegExp): Promise<void> {
    return new Promise((resolve) => {
      this.lost = { request, sprung: resolve };
    });
  }
}
