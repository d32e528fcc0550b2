/**
 * A live stream client for tests: a real WebSocket to `GET /v1/stream` that keeps every message
 * and lets a test await the next one matching a predicate, or the close code.
 */
import WebSocket from 'ws';

/** One message of the stream (events carry `cursor`, `id`, `callId`, `data`). */
export interface StreamMessage {
  type: string;
  cursor?: string;
  id?: string;
  callId?: string;
  data?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Options of {@link StreamClient.open}. */
export interface StreamClientOptions {
  token?: string;
  after?: string;
  headers?: Record<string, string>;
  origin?: string;
}

export class StreamClient {
  readonly messages: StreamMessage[] = [];
  /** Resolves with the close code (and reason) once the socket closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')) as StreamMessage);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code: number, reason: Buffer) => {
        resolve({ code, reason: reason.toString('utf8') });
        for (const wake of this.waiters.splice(0)) wake();
      }),
    );
  }

  /** Open a stream at `baseUrl` (http://…); resolves once the socket is open. */
  static async open(baseUrl: string, options: StreamClientOptions = {}): Promise<StreamClient> {
    const url = new URL('/v1/stream', baseUrl.replace(/^http/, 'ws'));
    if (options.token !== undefined) url.searchParams.set('token', options.token);
    if (options.after !== undefined) url.searchParams.set('after', options.after);
    const ws = new WebSocket(url, {
      headers: options.headers ?? {},
      ...(options.origin ? { origin: options.origin } : {}),
    });
    const client = new StreamClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        res.on('end', () =>
          reject(
            Object.assign(new Error(`HTTP ${res.statusCode}`), {
              status: res.statusCode,
              headers: res.headers,
              body,
            }),
          ),
        );
      });
    });
    return client;
  }

  /** Messages that are events (they carry a cursor and an envelope id). */
  events(): StreamMessage[] {
    return this.messages.filter((m) => m.id !== undefined && m.cursor !== undefined);
  }

  /** The first message (from `from` on) matching `predicate`, waiting up to `timeoutMs`. */
  async next(
    predicate: (m: StreamMessage) => boolean,
    what: string,
    timeoutMs = 10_000,
    from = 0,
  ): Promise<StreamMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(predicate);
      if (found) return found;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`closed before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The event of `type` for call `callId`. */
  event(type: string, callId: string, timeoutMs = 10_000): Promise<StreamMessage> {
    return this.next(
      (m) => m.type === type && m.callId === callId,
      `${type} of ${callId}`,
      timeoutMs,
    );
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  close(): void {
    this.ws.close();
  }
}
