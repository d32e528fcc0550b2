/**
 * The gateway's REST executor (src/ari/rest.ts): requests built from Swagger 1.1 operation
 * definitions exactly as swagger-client / ari-client built them, answers decoded, and the
 * connection handling that makes it cheap (keep-alive, one retry on a connection the server
 * closed while idle, timeouts that free the connection).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'chai';
import { AriConnectionError, AriError } from '../../src/ari/errors.ts';
import {
  AriHttpFailure,
  AriRestClient,
  buildRequest,
  compileOperation,
  operationsFromSwagger,
} from '../../src/ari/rest.ts';

const dial = compileOperation('channels', {
  nickname: 'dial',
  method: 'post',
  path: '/channels/{channelId}/dial',
  type: null,
  parameters: [
    { name: 'channelId', paramType: 'path' },
    { name: 'caller', paramType: 'query' },
    { name: 'timeout', paramType: 'query' },
  ],
});
const create = compileOperation('channels', {
  nickname: 'create',
  method: 'POST',
  path: '/channels/create',
  type: 'Channel',
  parameters: [
    { name: 'endpoint', paramType: 'query' },
    { name: 'app', paramType: 'query' },
    { name: 'variables', paramType: 'body' },
  ],
});
const getFile = compileOperation('recordings', {
  nickname: 'getStoredFile',
  method: 'GET',
  path: '/recordings/stored/{recordingName}/file',
  type: 'binary',
  parameters: [{ name: 'recordingName', paramType: 'path' }],
});
const getChannel = compileOperation('channels', {
  nickname: 'get',
  method: 'GET',
  path: '/channels/{channelId}',
  type: 'Channel',
  parameters: [{ name: 'channelId', paramType: 'path' }],
});

describe('ARI REST executor: building requests', () => {
  it('fills path parameters percent-encoded and query parameters in declaration order', () => {
    expect(buildRequest(dial, { timeout: 30, channelId: 'op 1/ä', caller: 'in-1' })).to.deep.equal({
      path: '/channels/op%201%2F%C3%A4/dial?caller=in-1&timeout=30',
      body: undefined,
    });
    expect(buildRequest(dial, { channelId: 'op-1', caller: undefined })).to.deep.equal({
      path: '/channels/op-1/dial',
      body: undefined,
    });
    const play = compileOperation('channels', {
      nickname: 'play',
      method: 'POST',
      path: '/channels/{channelId}/play',
      parameters: [
        { name: 'channelId', paramType: 'path' },
        { name: 'media', paramType: 'query' },
        { name: 'beep', paramType: 'query' },
      ],
    });
    expect(
      buildRequest(play, { channelId: 'c', media: ['sound:a', 'sound:b'], beep: false }).path,
    ).to.equal('/channels/c/play?media=sound%3Aa%2Csound%3Ab&beep=false');
  });

  it('refuses a missing or empty path parameter with swagger-client’s message', () => {
    expect(() => buildRequest(dial, { channelId: '' })).to.throw(
      'channelId is a required path param.',
    );
    expect(() => buildRequest(dial, undefined)).to.throw('channelId is a required path param.');
  });

  it('sends the variables body wrapped like ari-client, and none when it is absent', () => {
    expect(
      buildRequest(create, { endpoint: 'PJSIP/101', variables: { 'CALLERID(num)': '7916' } }),
    ).to.deep.equal({
      path: '/channels/create?endpoint=PJSIP%2F101',
      body: '{"variables":{"CALLERID(num)":"7916"}}',
    });
    expect(buildRequest(create, { variables: { variables: { A: '1' } } }).body).to.equal(
      '{"variables":{"A":"1"}}',
    );
    expect(buildRequest(create, { endpoint: 'PJSIP/101' }).body).to.equal(undefined);
  });

  it('compiles the operations ari-client loaded, keyed resource.nickname', () => {
    const ops = operationsFromSwagger({
      channels: {
        operations: {
          dial: {
            nickname: 'dial',
            path: '/channels/{channelId}/dial',
            method: 'post',
            type: null,
            parameters: [{ name: 'channelId', paramType: 'path' }],
          },
        },
      },
      recordings: {
        operations: {
          getStoredFile: {
            path: '/recordings/stored/{recordingName}/file',
            method: 'get',
            type: 'binary',
            parameters: [{ name: 'recordingName', paramType: 'path' }],
          },
        },
      },
    });
    expect([...ops.keys()]).to.deep.equal(['channels.dial', 'recordings.getStoredFile']);
    expect(ops.get('channels.dial')).to.include({ method: 'POST', response: 'void' });
    expect(ops.get('recordings.getStoredFile')?.response).to.equal('binary');
    expect(() => operationsFromSwagger(undefined)).to.throw(TypeError);
    expect(() => operationsFromSwagger({})).to.throw(TypeError);
  });
});

describe('ARI REST executor: talking to Asterisk', function () {
  this.timeout(10_000);
  let server: Server;
  let client: AriRestClient;
  let connections: number;
  let requests: Array<{
    method: string;
    url: string;
    body: string;
    headers: IncomingMessage['headers'];
  }>;
  let answer: (req: IncomingMessage, res: ServerResponse, body: string) => void;
  const sockets = new Set<Socket>();

  beforeEach(async () => {
    connections = 0;
    requests = [];
    answer = (_req, res) => res.writeHead(204).end();
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        requests.push({ method: req.method ?? '', url: req.url ?? '', body, headers: req.headers });
        answer(req, res, body);
      });
    });
    server.on('connection', (socket: Socket) => {
      connections++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    client = new AriRestClient({
      baseUrl: `http://127.0.0.1:${port}`,
      username: 'asterisk',
      password: 's3cr3t:p@ss',
    });
  });

  afterEach(async () => {
    client.closeConnections();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('sends method, path under /ari, body and basic auth, and reuses one connection', async () => {
    answer = (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"c-1"}');
    for (let i = 0; i < 5; i++) {
      const channel = await client.execute(
        create,
        { endpoint: 'PJSIP/101', variables: { A: '1' } },
        { timeoutMs: 2000 },
      );
      expect(channel).to.deep.equal({ id: 'c-1' });
    }
    expect(requests).to.have.length(5);
    expect(requests[0]).to.deep.include({
      method: 'POST',
      url: '/ari/channels/create?endpoint=PJSIP%2F101',
      body: '{"variables":{"A":"1"}}',
    });
    expect(requests[0]!.headers).to.include({
      authorization: `Basic ${Buffer.from('asterisk:s3cr3t:p@ss').toString('base64')}`,
      'content-type': 'application/json',
      accept: 'application/json',
    });
    expect(connections, 'HTTP keep-alive').to.equal(1);
  });

  it('answers nothing for void operations and the exact bytes for binary ones', async () => {
    expect(await client.execute(dial, { channelId: 'c-1' }, { timeoutMs: 2000 })).to.equal(
      undefined,
    );
    const bytes = Buffer.from([0x52, 0x49, 0x46, 0x46, 0x00, 0xff, 0x0a]);
    answer = (_req, res) => res.writeHead(200, { 'content-type': 'audio/x-wav' }).end(bytes);
    const file = await client.execute(getFile, { recordingName: 'a b' }, { timeoutMs: 2000 });
    expect(Buffer.isBuffer(file) && file.equals(bytes)).to.equal(true);
    expect(requests[1]!.url).to.equal('/ari/recordings/stored/a%20b/file');
  });

  it('rejects a non-2xx answer with its status and body, and a non-JSON 2xx body with an AriError', async () => {
    answer = (_req, res) =>
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"message":"Channel not found"}');
    const failure = await client.execute(getChannel, { channelId: 'x' }, { timeoutMs: 2000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).to.be.instanceOf(AriHttpFailure);
    expect((failure as AriHttpFailure).status).to.equal(404);
    expect((failure as AriHttpFailure).data.toString()).to.equal('{"message":"Channel not found"}');

    answer = (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
    const invalid = await client
      .execute(getChannel, { channelId: 'x' }, { timeoutMs: 2000, operation: 'channels.get' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(invalid).to.be.instanceOf(AriError);
    expect((invalid as AriError).operation).to.equal('channels.get');
    expect((invalid as AriError).asteriskMessage).to.match(/^invalid ARI response/);
  });

  it('sends a request again on a fresh connection when the kept-alive one was closed by the server', async () => {
    // The server drops every connection when a second request arrives on it, without answering:
    // what a client sees when Asterisk closed an idle keep-alive connection.
    const served = new WeakMap<Socket, number>();
    answer = (req, res) => {
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      if (n > 1) req.socket.destroy();
      else res.writeHead(204).end();
    };
    await client.execute(dial, { channelId: 'c-1' }, { timeoutMs: 2000 });
    await client.execute(dial, { channelId: 'c-1' }, { timeoutMs: 2000 });
    expect(connections).to.equal(2);
    expect(requests.map((r) => r.url)).to.deep.equal([
      '/ari/channels/c-1/dial',
      '/ari/channels/c-1/dial',
      '/ari/channels/c-1/dial',
    ]);
  });

  it('fails after timeoutMs without an answer, naming the operation, and frees the connection', async () => {
    answer = () => undefined; // never answers
    const t0 = Date.now();
    const err = await client
      .execute(dial, { channelId: 'c-1' }, { timeoutMs: 100, operation: 'channels.dial' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(AriConnectionError);
    expect((err as AriError).operation).to.equal('channels.dial');
    expect((err as AriError).asteriskMessage).to.equal('no answer from Asterisk within 100 ms');
    expect(Date.now() - t0).to.be.below(1000);
    const deadline = Date.now() + 2000;
    while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(sockets.size, 'the timed-out connection is closed').to.equal(0);
  });

  it('rejects with the socket error when nothing listens, without the credentials in it', async () => {
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.destroy();
    const err = await client.execute(dial, { channelId: 'c-1' }, { timeoutMs: 2000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
    expect(JSON.stringify(err) + String(err)).not.to.include('s3cr3t');
    server = createServer().listen(port, '127.0.0.1'); // for afterEach
  });
});
