/**
 * The console's stream client (src/console/web/stream.ts, browser code) on its own: its
 * reconnection delays, with a stand-in WebSocket and the browser's globals stubbed.
 */
import { expect } from 'chai';
import sinon from 'sinon';

/** What the test uses of src/console/web/stream.ts (browser code, typed against the DOM). */
type StreamStatus = { kind: string; retryInMs?: number };
interface StreamClientLike {
  start(): void;
}
type StreamClientClass = new (options: {
  url: string;
  token(): string;
  cursor(): string | undefined;
  onMessage(message: unknown): void;
  onStatus(status: StreamStatus): void;
}) => StreamClientLike;

// Imported by a path the type checker does not follow: the module's DOM types are checked by the
// console's own tsconfig (src/console/web), not the server's, which has no DOM.
const CLIENT_MODULE = '../../src/console/web/stream.ts';
const { StreamClient } = (await import(CLIENT_MODULE)) as { StreamClient: StreamClientClass };

/** A WebSocket the test drives: it records what is sent and lets the test play the engine. */
class FakeSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly all: FakeSocket[] = [];
  readyState = FakeSocket.CONNECTING;
  readonly sent: string[] = [];
  private readonly listeners = new Map<string, ((event: unknown) => void)[]>();
  constructor(readonly url: URL) {
    FakeSocket.all.push(this);
  }
  addEventListener(type: string, listener: (event: unknown) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  send(text: string): void {
    this.sent.push(text);
  }
  close(): void {
    this.readyState = 3;
  }
  private emit(type: string, event: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
  open(): void {
    this.readyState = FakeSocket.OPEN;
    this.emit('open', {});
  }
  message(body: Record<string, unknown>): void {
    this.emit('message', { data: JSON.stringify(body) });
  }
  closed(code: number): void {
    this.readyState = 3;
    this.emit('close', { code, reason: '' });
  }
}

describe('console stream client: reconnection back-off', () => {
  let clock: sinon.SinonFakeTimers;
  const saved = new Map<string, PropertyDescriptor | undefined>();
  const stubGlobal = (name: string, value: unknown): void => {
    saved.set(name, Object.getOwnPropertyDescriptor(globalThis, name));
    Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  };

  beforeEach(() => {
    clock = sinon.useFakeTimers();
    FakeSocket.all.length = 0;
    stubGlobal('WebSocket', FakeSocket);
    stubGlobal('navigator', { onLine: true });
    stubGlobal('window', {
      addEventListener: () => undefined,
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimeout: (id: number) => clearTimeout(id),
    });
    // No jitter: each delay is its full base.
    sinon.stub(Math, 'random').returns(1);
  });
  afterEach(() => {
    sinon.restore();
    clock.restore();
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete (globalThis as Record<string, unknown>)[name];
    }
    saved.clear();
  });

  function startClient(): { waits: number[] } {
    const waits: number[] = [];
    const client = new StreamClient({
      url: 'ws://engine.test/v1/stream',
      token: () => 'op-token',
      cursor: () => undefined,
      onMessage: () => undefined,
      onStatus: (status: StreamStatus) => {
        if (status.kind === 'waiting') waits.push(status.retryInMs!);
      },
    });
    client.start();
    return { waits };
  }

  /** The engine accepts the latest socket's token, then closes it with `code`. */
  function welcomeThenClose(code: number, synced: boolean): void {
    const socket = FakeSocket.all.at(-1)!;
    socket.open();
    expect(JSON.parse(socket.sent[0]!)).to.deep.equal({ type: 'auth', token: 'op-token' });
    socket.message({ type: 'stream.welcome', extension: '101', expiresAt: '2030-01-01T00:00:00Z' });
    if (synced) socket.message({ type: 'stream.synced', cursor: 'c1' });
    socket.closed(code);
  }

  it('keeps backing off while the engine welcomes but cannot sync (1013 during a store outage)', () => {
    const { waits } = startClient();
    for (let i = 0; i < 4; i++) {
      welcomeThenClose(1013, false);
      clock.tick(waits.at(-1)!);
    }
    // Welcomed every time, never caught up: the delays grow.
    expect(waits).to.deep.equal([500, 1000, 2000, 4000]);
    expect(FakeSocket.all).to.have.length(5);
  });

  it('starts the delays over once a connection caught up (stream.synced)', () => {
    const { waits } = startClient();
    welcomeThenClose(1013, false);
    clock.tick(waits.at(-1)!);
    welcomeThenClose(1013, false);
    clock.tick(waits.at(-1)!);
    // This one worked (synced), then the network dropped: the next try comes soon.
    welcomeThenClose(1006, true);
    expect(waits).to.deep.equal([500, 1000, 500]);
  });
});
