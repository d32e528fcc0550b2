/**
 * What the API's HTTP server does with clients that misbehave, over raw TCP sockets: slow clients
 * are answered 408 and disconnected (small configured timeouts keep the test fast), connections
 * past the cap are refused, an oversized body is refused without being read, and whatever Node's
 * HTTP parser refuses is answered in the API's error model (JSON `{code, message}`).
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { createHttpServer, type HttpServerLimits } from '../../src/http/server.ts';
import { startApp, type TestApp } from '../ops/support/app.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { until } from '../support/until.ts';

/** `aricrm_http_client_errors_total` by code. */
async function refusals(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('aricrm_http_client_errors_total')?.get();
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.code), v.value]));
}

const LIMITS: HttpServerLimits = {
  headersTimeoutMs: 300,
  requestTimeoutMs: 600,
  keepAliveTimeoutMs: 300,
  maxConnections: 5,
};

/** A raw connection: what the server sent, and whether (and when) it closed the connection. */
interface RawConnection {
  socket: Socket;
  received(): string;
  /** Resolves with the ms from connect to the server closing (end or reset). */
  closed: Promise<number>;
}

async function open(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  const startedAt = Date.now();
  let text = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => {
    text += chunk;
  });
  socket.on('error', () => undefined); // a reset is a close too
  const closed = new Promise<number>((resolve) => {
    socket.once('close', () => resolve(Date.now() - startedAt));
  });
  return { socket, received: () => text, closed };
}

/** Status line, headers (lower-case names) and parsed JSON body of one raw HTTP answer. */
function parseAnswer(raw: string): {
  status: number;
  headers: Record<string, string>;
  body: unknown;
} {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => {
      const i = line.indexOf(':');
      return [line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()];
    }),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) as unknown };
}

/** Send `raw` on a new connection; the answer once the server has closed it. */
async function exchange(url: string, raw: string): Promise<ReturnType<typeof parseAnswer>> {
  const conn = await open(url);
  conn.socket.write(raw);
  await conn.closed;
  return parseAnswer(conn.received());
}

describe('the API HTTP server against misbehaving clients', function () {
  this.timeout(20_000);
  let app: TestApp | undefined;
  let registry = new Registry();
  const timers: NodeJS.Timeout[] = [];
  beforeEach(() => {
    registry = new Registry();
  });
  afterEach(async () => {
    for (const timer of timers.splice(0)) clearInterval(timer);
    await app?.close();
    app = undefined;
  });

  /** Write `chunks` one every `everyMs` until the server closes the connection. */
  function trickle(conn: RawConnection, chunks: () => string, everyMs: number): void {
    const timer = setInterval(() => {
      if (!conn.socket.destroyed && conn.socket.writable) conn.socket.write(chunks());
    }, everyMs);
    timers.push(timer);
    void conn.closed.then(() => clearInterval(timer));
  }

  describe('slow clients', () => {
    beforeEach(async () => {
      app = await startApp({}, (a) => createHttpServer(a, LIMITS, registry));
    });

    it('answers 408 request_timeout and closes a connection that sends a header line every 100 ms', async () => {
      const conn = await open(app!.url);
      conn.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      let n = 0;
      trickle(conn, () => `X-Slow-${n++}: 1\r\n`, 100);
      const closedAfterMs = await conn.closed;
      expect(closedAfterMs).to.be.below(3000);
      const answer = parseAnswer(conn.received());
      expect(answer.status).to.equal(408);
      expect(answer.headers.connection).to.equal('close');
      expect(answer.body).to.deep.equal({
        code: 'request_timeout',
        message: 'the request was not received in time',
      });
      expect(await refusals(registry)).to.deep.equal({ request_timeout: 1 });
    });

    it('answers 408 and closes a connection whose body comes one byte every 100 ms', async () => {
      const conn = await open(app!.url);
      conn.socket.write(
        'POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
      );
      trickle(conn, () => ' ', 100);
      const closedAfterMs = await conn.closed;
      expect(closedAfterMs).to.be.below(3000);
      expect(parseAnswer(conn.received())).to.deep.include({ status: 408 });
    });

    it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
      const conn = await open(app!.url);
      conn.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      const closedAfterMs = await conn.closed;
      expect(conn.received()).to.match(/^HTTP\/1.1 200 /);
      expect(closedAfterMs).to.be.below(3000);
    });

    it('refuses connections beyond the cap while the others are open', async () => {
      const held = await Promise.all(
        Array.from({ length: LIMITS.maxConnections }, () => open(app!.url)),
      );
      const connections = (): Promise<number> =>
        new Promise((resolve, reject) => {
          app!.server.getConnections((err, count) => (err ? reject(err) : resolve(count)));
        });
      await until(
        async () => (await connections()) === LIMITS.maxConnections,
        'the server to accept the connections up to the cap',
      );
      const extra = await open(app!.url);
      extra.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      await extra.closed;
      expect(extra.received()).to.equal('');
      expect(await refusals(registry)).to.deep.equal({ connection_limit: 1 });
      for (const conn of held) conn.socket.destroy();
    });
  });

  describe('oversized bodies', () => {
    it('answers 413 payload_too_large and closes the connection without reading a 100 MB body', async () => {
      app = await startApp({}, (a) => createHttpServer(a, LIMITS, registry));
      const conn = await open(app.url);
      conn.socket.write(
        'POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{"a":"',
      );
      // Keep sending (fast) as a client uploading 100 MB would; the server must not wait for it.
      const chunk = 'x'.repeat(64 * 1024);
      trickle(conn, () => chunk, 1);
      await conn.closed;
      const answer = parseAnswer(conn.received());
      expect(answer.status).to.equal(413);
      expect(answer.headers.connection).to.equal('close');
      expect(answer.body).to.deep.include({ code: 'payload_too_large' });
      expect(conn.socket.bytesWritten).to.be.below(20 * 1024 * 1024);
    });

    it('answers 413 and closes the connection as soon as a chunked body passes the limit, without reading the rest', async () => {
      app = await startApp({}, (a) => createHttpServer(a, LIMITS, registry));
      const conn = await open(app.url);
      conn.socket.write(
        'POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      );
      // An endless chunked upload: without the guard the JSON parser reads it all before answering.
      const chunk = 'x'.repeat(64 * 1024);
      trickle(conn, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`, 1);
      await conn.closed;
      const answer = parseAnswer(conn.received());
      expect(answer.status).to.equal(413);
      expect(answer.headers.connection).to.equal('close');
      expect(answer.body).to.deep.equal({
        code: 'payload_too_large',
        message: 'the request body is too large',
      });
      expect(conn.socket.bytesWritten).to.be.below(20 * 1024 * 1024);
    });

    it('still parses a chunked JSON body under the limit', async () => {
      app = await startApp({}, (a) => createHttpServer(a, LIMITS, registry));
      const json = JSON.stringify({ to: '79161234567', note: 'y'.repeat(100_000) });
      const parts = [json.slice(0, 50_000), json.slice(50_000)];
      const answer = await exchange(
        app.url,
        'POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
          parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') +
          '0\r\n\r\n',
      );
      expect(answer.status).to.equal(200);
      expect(answer.body).to.deep.equal({ body: JSON.parse(json) as unknown });
    });
  });

  describe('the engine', () => {
    let bed: TestBed | undefined;
    afterEach(async () => {
      await bed?.stop();
      bed = undefined;
    });

    it('applies HTTP_HEADERS_TIMEOUT_MS and HTTP_MAX_CONNECTIONS from its configuration', async () => {
      bed = await startTestBed({
        HTTP_HEADERS_TIMEOUT_MS: '300',
        HTTP_REQUEST_TIMEOUT_MS: '600',
        HTTP_MAX_CONNECTIONS: '7',
      });
      expect(bed.engine.server.maxConnections).to.equal(7);
      const conn = await open(bed.engine.httpUrl);
      conn.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      let n = 0;
      trickle(conn, () => `X-Slow-${n++}: 1\r\n`, 100);
      expect(await conn.closed).to.be.below(3000);
      expect(parseAnswer(conn.received())).to.deep.include({ status: 408 });
    });
  });

  describe("requests Node's HTTP parser refuses", () => {
    beforeEach(async () => {
      app = await startApp({}, (a) => createHttpServer(a, LIMITS, registry));
    });

    it('answers a bad method with JSON 400 bad_request and Connection: close', async () => {
      const answer = await exchange(app!.url, 'G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(answer.status).to.equal(400);
      expect(answer.headers['content-type']).to.match(/^application\/json/);
      expect(answer.headers.connection).to.equal('close');
      expect(answer.body).to.deep.include({ code: 'bad_request' });
    });

    it('answers a NUL in a header with JSON 400 bad_request', async () => {
      const answer = await exchange(
        app!.url,
        'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n',
      );
      expect(answer.status).to.equal(400);
      expect(answer.body).to.deep.include({ code: 'bad_request' });
    });

    it('answers huge headers with JSON 431 headers_too_large', async () => {
      const answer = await exchange(
        app!.url,
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      );
      expect(answer.status).to.equal(431);
      expect(answer.body).to.deep.equal({
        code: 'headers_too_large',
        message: 'the request headers are too large',
      });
      expect(await refusals(registry)).to.deep.equal({ headers_too_large: 1 });
    });

    it('answers an unsupported Expect with JSON 417 expectation_failed', async () => {
      const answer = await exchange(
        app!.url,
        'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n',
      );
      expect(answer.status).to.equal(417);
      expect(answer.headers.connection).to.equal('close');
      expect(answer.body).to.deep.include({ code: 'expectation_failed' });
      expect(await refusals(registry)).to.deep.equal({ expectation_failed: 1 });
    });
  });
});
