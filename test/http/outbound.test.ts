import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BodyTooLargeError,
  createOutboundClient,
  describeError,
  type OutboundClient,
  type OutboundPostInit,
} from '../../src/http/outbound.ts';
import { closedPort } from '../crm/helpers.ts';
import { until } from '../support/until.ts';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

interface LocalServer {
  url: string;
  /** TCP connections accepted so far. */
  connections: number;
  /** Request bodies received, in order. */
  bodies: string[];
  close(): Promise<void>;
}

async function startServer(handler: Handler): Promise<LocalServer> {
  const state = { connections: 0, bodies: [] as string[] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      state.bodies.push(body);
      handler(req, body, res);
    });
  });
  server.on('connection', () => state.connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    get connections() {
      return state.connections;
    },
    bodies: state.bodies,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const init = (body = '{"n":1}', signal = new AbortController().signal): OutboundPostInit => ({
  headers: { 'content-type': 'application/json', 'x-event-id': 'e1' },
  body,
  signal,
});

describe('outbound HTTP client (undici)', () => {
  let server: LocalServer | undefined;
  let client: OutboundClient;

  beforeEach(() => {
    client = createOutboundClient();
  });

  afterEach(async () => {
    await client.close();
    await server?.close();
    server = undefined;
  });

  it('POSTs headers and body and reads a 200 answer with its headers', async () => {
    let seen: IncomingMessage | undefined;
    server = await startServer((req, _body, res) => {
      seen = req;
      res.writeHead(200, { 'content-type': 'text/plain', 'x-multi': ['a', 'b'] }).end('hello');
    });
    const response = await client.post(server.url, init('{"n":1}'));
    expect(response.status).to.equal(200);
    expect(response.header('Content-Type')).to.equal('text/plain');
    expect(response.header('x-multi')).to.equal('a, b');
    expect(response.header('x-absent')).to.equal(undefined);
    expect(await response.text(1024)).to.equal('hello');
    expect(seen!.method).to.equal('POST');
    expect(seen!.headers['content-type']).to.equal('application/json');
    expect(seen!.headers['x-event-id']).to.equal('e1');
    expect(server.bodies).to.deep.equal(['{"n":1}']);
  });

  it('returns a 3xx as is and does not follow it', async () => {
    server = await startServer((_req, _body, res) => {
      res.writeHead(302, { location: '/elsewhere' }).end();
    });
    const response = await client.post(server.url, init());
    expect(response.status).to.equal(302);
    expect(response.header('location')).to.equal('/elsewhere');
    response.discard();
    expect(server.bodies).to.have.length(1);
  });

  it('text rejects with BodyTooLargeError past maxBytes, with and without Content-Length', async () => {
    const big = 'x'.repeat(10_000);
    server = await startServer((req, _body, res) => {
      if (req.headers['x-event-id'] === 'chunked') {
        res.writeHead(200);
        res.write(big.slice(0, 5000));
        res.end(big.slice(5000));
      } else {
        res.writeHead(200, { 'content-length': String(big.length) }).end(big);
      }
    });
    const declared = await client.post(server.url, init());
    const err1 = await declared.text(1000).catch((e: unknown) => e);
    expect(err1).to.be.instanceOf(BodyTooLargeError);
    expect((err1 as Error).message).to.equal('answer larger than 1000 bytes');

    const chunked = await client.post(server.url, {
      ...init(),
      headers: { 'x-event-id': 'chunked' },
    });
    const err2 = await chunked.text(1000).catch((e: unknown) => e);
    expect(err2).to.be.instanceOf(BodyTooLargeError);

    // A body exactly at the limit is fine; `truncate` gives the first maxBytes bytes.
    expect(await (await client.post(server.url, init())).text(10_000)).to.equal(big);
    const cut = await (await client.post(server.url, init())).text(100, { overflow: 'truncate' });
    expect(cut).to.equal('x'.repeat(100));
  });

  it('rejects with the abort reason when the signal aborts before the answer', async () => {
    server = await startServer(() => {
      /* never answer */
    });
    const controller = new AbortController();
    const pending = client.post(server.url, init('{}', controller.signal));
    await until(() => server!.bodies.length === 1, 'the request at the server');
    controller.abort();
    const err = await pending.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).name).to.equal('AbortError');
  });

  it('aborting the signal while the body is read rejects text', async () => {
    server = await startServer((_req, _body, res) => {
      res.writeHead(200);
      res.write('{"partial":'); // and never end
    });
    const controller = new AbortController();
    const response = await client.post(server.url, init('{}', controller.signal));
    const reading = response.text(1024);
    controller.abort();
    const err = await reading.catch((e: unknown) => e);
    expect((err as Error).name).to.equal('AbortError');
  });

  it('a refused connection rejects with an error describeError shows as ECONNREFUSED', async () => {
    const port = await closedPort();
    const err = await client.post(`http://127.0.0.1:${port}/hook`, init()).catch((e: unknown) => e);
    expect(describeError(err)).to.match(/^ECONNREFUSED: /);
  });

  it('discard frees the connection: with one socket per origin the next request gets through on it', async () => {
    server = await startServer((_req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(`{"echo":${body}}`);
    });
    const single = createOutboundClient({ connectionsPerOrigin: 1 });
    try {
      const first = await single.post(server.url, init('1'));
      first.discard();
      const second = await single.post(server.url, init('2'));
      expect(await second.text(1024)).to.equal('{"echo":2}');
      const third = await single.post(server.url, init('3'));
      third.discard();
      (await single.post(server.url, init('4'))).discard();
      expect(server.bodies).to.deep.equal(['1', '2', '3', '4']);
      expect(server.connections).to.equal(1);
    } finally {
      await single.close();
    }
  });

  it('discard of a large body closes that connection instead of holding it', async () => {
    const big = 'x'.repeat(1024 * 1024);
    server = await startServer((_req, body, res) => {
      if (body === 'big') res.writeHead(200).end(big);
      else res.writeHead(204).end();
    });
    const single = createOutboundClient({ connectionsPerOrigin: 1 });
    try {
      (await single.post(server.url, init('big'))).discard();
      const next = await single.post(server.url, init('small'));
      expect(next.status).to.equal(204);
      expect(server.connections).to.equal(2);
    } finally {
      await single.close();
    }
  });

  it('after close() a post rejects, and close() is idempotent', async () => {
    server = await startServer((_req, _body, res) => res.writeHead(204).end());
    (await client.post(server.url, init())).discard();
    await client.close();
    await client.close();
    const err = await client.post(server.url, init()).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect(describeError(err)).to.match(/^UND_ERR_(CLOSED|DESTROYED): /);
  });

  it('close() cuts a request still in flight after closeTimeoutMs', async () => {
    server = await startServer(() => {
      /* never answer */
    });
    const short = createOutboundClient({ closeTimeoutMs: 50 });
    const pending = short.post(server.url, init()).catch((e: unknown) => e);
    await until(() => server!.bodies.length === 1, 'the request at the server');
    const started = performance.now();
    await short.close();
    expect(performance.now() - started).to.be.below(1000);
    expect(describeError(await pending)).to.match(/^UND_ERR_DESTROYED: /);
  });

  it('rejects unusable options', () => {
    expect(() => createOutboundClient({ connectionsPerOrigin: 0 })).to.throw(RangeError);
    expect(() => createOutboundClient({ keepAliveTimeoutMs: 1.5 })).to.throw(RangeError);
  });

  describe('describeError', () => {
    it('gives code: message of the root cause', () => {
      const root = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
      expect(describeError(new TypeError('fetch failed', { cause: root }))).to.equal(
        'UND_ERR_SOCKET: other side closed',
      );
      expect(describeError(new Error('plain'))).to.equal('plain');
      expect(describeError('a string')).to.equal('a string');
      const aggregate = Object.assign(
        new AggregateError(
          [Object.assign(new Error('connect ECONNREFUSED ::1:9'), { code: 'ECONNREFUSED' })],
          '',
        ),
        { code: 'ECONNREFUSED' },
      );
      expect(describeError(aggregate)).to.equal('ECONNREFUSED: connect ECONNREFUSED ::1:9');
    });
  });
});
