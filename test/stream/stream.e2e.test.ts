/**
 * The live stream end to end: the engine on the simulator, a fake CRM, real HTTP and real
 * WebSockets to `GET /v1/stream`. Each test follows what an operator's browser would see.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import sinon from 'sinon';
import { startEngine, type Engine } from '../../src/main.ts';
import { OperatorTokens } from '../../src/security/operator-tokens.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, TEST_API_KEY, type TestBed } from '../support/engine.ts';
import { StreamClient } from '../support/stream-client.ts';
import { until } from '../support/until.ts';

const SECRET = 'stream-test-secret-0123456789abcdef0123456789';
const DID = '74951234567';
let caller = 79260000000;
const nextCaller = (): string => String(++caller);

/** An HTTP/1.1 keep-alive connection of its own (not pooled) to the engine at `baseUrl`. */
interface RawHttp {
  socket: Socket;
  /** Send `GET path`; resolves with the status and body, or undefined when the engine closed the connection instead. */
  get(path: string): Promise<{ status: number; body: string } | undefined>;
}

async function rawHttp(baseUrl: string): Promise<RawHttp> {
  const { hostname, port } = new URL(baseUrl);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined); // a reset is a refusal too
  await once(socket, 'connect');
  let text = '';
  let wake: (() => void) | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    text += chunk;
    wake?.();
  });
  socket.on('close', () => wake?.());
  return {
    socket,
    async get(path) {
      text = '';
      socket.write(`GET ${path} HTTP/1.1\r\nHost: engine\r\n\r\n`);
      for (;;) {
        const head = text.indexOf('\r\n\r\n');
        const length = /content-length: *(\d+)/i.exec(text)?.[1];
        if (head >= 0 && length !== undefined && text.length >= head + 4 + Number(length))
          return {
            status: Number(text.split(' ')[1]),
            body: text.slice(head + 4, head + 4 + Number(length)),
          };
        if (socket.destroyed) return undefined;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/** The value of a metric sample in the Prometheus text `metrics`, undefined when absent. */
function sample(metrics: string, name: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('live stream (e2e: GET /v1/stream over WebSocket)', function () {
  this.timeout(30_000);
  let bed: TestBed;
  /** The engine started again on the same data (a restart test), when there is one. */
  let restarted: Engine | undefined;
  const clients: StreamClient[] = [];
  /** The engine serving now: the restarted one, or the test bed's. */
  const engineUrl = (): string => (restarted ?? bed.engine).httpUrl;

  async function start(env: Record<string, string> = {}): Promise<TestBed> {
    bed = await startTestBed({
      OPERATOR_TOKEN_SECRET: SECRET,
      OPERATOR_EXTENSIONS: '101,102,103',
      ...env,
    });
    return bed;
  }

  async function tokenFor(extension: string, ttlSec = 600): Promise<string> {
    const answer = await apiRequest<{ token: string; expiresAt: string }>(
      engineUrl(),
      `/v1/operators/${extension}/tokens`,
      { body: { ttlSec } },
    );
    expect(answer.status, answer.text).to.equal(201);
    expect(Date.parse(answer.body.expiresAt) - Date.now()).to.be.within(
      (ttlSec - 5) * 1000,
      (ttlSec + 1) * 1000,
    );
    return answer.body.token;
  }

  async function open(
    options: Parameters<typeof StreamClient.open>[1] = {},
  ): Promise<StreamClient> {
    const client = await StreamClient.open(engineUrl(), options);
    clients.push(client);
    return client;
  }

  /** An operator's stream, once it is synced (live from now on). */
  async function operatorStream(extension: string, after?: string): Promise<StreamClient> {
    const client = await open({
      token: await tokenFor(extension),
      ...(after === undefined ? {} : { after }),
    });
    await client.next((m) => m.type === 'stream.synced', 'stream.synced');
    return client;
  }

  /** Route every call to `extensions`, ringing for a long time (10 s of real time). */
  function routeTo(extensions: string[]): void {
    bed.crm.onRoute(() => ({
      body: {
        customer: { id: 'c-42', name: 'Ivan Petrov', link: 'https://crm.example.com/customers/42' },
        action: 'dial',
        strategy: 'ringall',
        extensions,
        ringTimeoutSec: 500,
      },
    }));
  }

  async function ringingCall(
    extension: string,
  ): Promise<{ callId: string; channelId: string; from: string }> {
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const ringing = await bed.crm.waitForWebhook(
      (w) =>
        w.body.type === 'call.ringing' &&
        w.body.data.from === from &&
        w.body.data.extension === extension,
      10_000,
    );
    return { callId: ringing.body.callId, channelId, from };
  }

  afterEach(async () => {
    for (const client of clients.splice(0)) client.ws.terminate();
    await restarted?.stop();
    restarted = undefined;
    await bed?.stop();
  });

  it("pops the customer card on the ringing operator's stream only, and hides it on hang-up", async () => {
    await start();
    routeTo(['101']);
    bed.sim.phones.set('101', { mode: 'ring' });
    bed.sim.phones.set('102', { mode: 'ring' });
    const s101 = await operatorStream('101');
    const s102 = await operatorStream('102');

    const { callId, channelId, from } = await ringingCall('101');
    const ringing = await s101.event('call.ringing', callId);
    expect(ringing.data).to.include({ extension: '101', from, to: DID });
    expect(ringing.data!.customer).to.deep.equal({
      id: 'c-42',
      name: 'Ivan Petrov',
      link: 'https://crm.example.com/customers/42',
    });
    expect(ringing.cursor).to.be.a('string');
    expect(ringing.sequence).to.equal(2);

    bed.sim.hangup(channelId);
    const ended = await s101.event('call.ended', callId);
    expect(ended.data).to.include({ disposition: 'canceled' });

    // 102's stream is live (it gets its own call) and never saw 101's.
    routeTo(['102']);
    const second = await ringingCall('102');
    await s102.event('call.ringing', second.callId);
    expect(s102.events().filter((m) => m.callId === callId)).to.deep.equal([]);
    expect(s101.events().filter((m) => m.callId === second.callId)).to.deep.equal([]);
    // The messages are the stored events with their feed cursors, as GET /v1/events gives them.
    const feed = await apiRequest<{ items: Array<{ cursor: string; event: { id: string } }> }>(
      bed.engine.httpUrl,
      '/v1/events?limit=1000',
    );
    const stored = feed.body.items.find((item) => item.event.id === ringing.id);
    expect(stored?.cursor).to.equal(ringing.cursor);
  });

  it('a call answered by a colleague still ends on the stream of every operator it rang', async () => {
    await start();
    routeTo(['101', '102']);
    bed.sim.phones.set('101', { mode: 'ring' });
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 20_000 });
    const s101 = await operatorStream('101');
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const ringing = await s101.next(
      (m) => m.type === 'call.ringing' && m.data?.from === from,
      'ringing of 101',
    );
    const callId = ringing.callId!;
    const answered = await s101.event('call.answered', callId);
    expect(answered.data).to.include({ extension: '102' });
    bed.sim.hangup(channelId);
    const ended = await s101.event('call.ended', callId);
    expect(ended.data).to.include({ answeredBy: '102' });
  });

  it('a reconnect with ?after= gets what it missed exactly once, then live events', async () => {
    await start();
    routeTo(['101']);
    // 101 answers after 2 s of real time: the socket is away meanwhile.
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 100_000 });
    const first = await operatorStream('101');
    const from = nextCaller();
    const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
    const ringing = await first.next(
      (m) => m.type === 'call.ringing' && m.data?.from === from,
      'ringing',
    );
    const callId = ringing.callId!;
    first.ws.terminate(); // the network drops

    await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.answered' && w.body.callId === callId,
      10_000,
    );
    const again = await operatorStream('101', ringing.cursor);
    const missed = await again.event('call.answered', callId);
    const synced = again.messages.findIndex((m) => m.type === 'stream.synced');
    expect(again.messages.indexOf(missed), 'replayed before stream.synced').to.be.below(synced);
    bed.sim.hangup(channelId);
    await again.event('call.ended', callId);
    const ofCall = again.events().filter((m) => m.callId === callId);
    expect(ofCall.map((m) => m.type)).to.deep.equal(['call.answered', 'call.ended']);
    expect(new Set(ofCall.map((m) => m.id)).size).to.equal(ofCall.length);
  });

  it('a socket opened while the phone rings shows the ringing call (browser refresh)', async () => {
    await start();
    routeTo(['101']);
    bed.sim.phones.set('101', { mode: 'ring' });
    const { callId, channelId } = await ringingCall('101');
    const fresh = await operatorStream('101');
    const ringing = fresh.events().find((m) => m.type === 'call.ringing' && m.callId === callId);
    expect(ringing, 'the snapshot holds the ringing call').to.not.equal(undefined);
    expect(ringing!.data!.customer).to.include({ name: 'Ivan Petrov' });
    bed.sim.hangup(channelId);
    await fresh.event('call.ended', callId);
    expect(fresh.events().filter((m) => m.type === 'call.ringing')).to.have.length(1);
  });

  /**
   * The engine with operator 101's console live and a call ringing 101, then the store stops
   * committing (a full disk; the journal keeps retrying): the console already connected still
   * gets the card, from the journal log. `failing.restore()` ends the outage.
   */
  async function ringingDuringOutage(env: Record<string, string> = {}) {
    await start(env);
    routeTo(['101']);
    bed.sim.phones.set('101', { mode: 'ring' });
    const connected = await operatorStream('101');
    const positions = bed.engine.store.outboxPositions!;
    const token = await tokenFor('101');
    const failing = sinon
      .stub(bed.engine.store, 'writeBatch')
      .rejects(new Error('database or disk is full'));
    try {
      const { callId } = await ringingCall('101');
      await connected.event('call.ringing', callId);
      return { connected, positions, token, failing, callId };
    } catch (err) {
      failing.restore();
      throw err;
    }
  }

  it('during a store outage a new socket waits for the commit; one closed while waiting is let go at once', async () => {
    // The card still pops on a console already connected: the event is in the journal log.
    const { positions, token, failing, callId } = await ringingDuringOutage();
    let recovered = false;
    let waiting: StreamClient;
    try {
      expect(positions.committedThrough).to.be.below(positions.durableThrough);

      // Consoles reconnect again and again during the outage; each is welcomed, then waits.
      const reconnects = await Promise.all(Array.from({ length: 20 }, () => open({ token })));
      for (const client of reconnects)
        await client.next((m) => m.type === 'stream.welcome', 'welcome');
      await until(() => positions.waiting === 20, 'every socket waiting for the commit');
      expect(reconnects.every((c) => !c.messages.some((m) => m.type === 'stream.synced'))).to.equal(
        true,
      );
      // Their clients give up: the engine keeps nothing of them while the store is still down.
      for (const client of reconnects) client.close();
      await Promise.all(reconnects.map((c) => c.closed));
      await until(
        () => positions.waiting === 0,
        'the closed sockets to be let go before the store recovers',
        3000,
      );
      expect(bed.engine.stream.size).to.equal(1);

      // One still open when the store recovers gets the ringing call, then goes live.
      waiting = await open({ token });
      await waiting.next((m) => m.type === 'stream.welcome', 'welcome');
      await until(() => positions.waiting === 1, 'the new socket waiting');
      expect(waiting.messages.map((m) => m.type)).to.deep.equal(['stream.welcome']);
      failing.restore();
      recovered = true;
      await waiting.next((m) => m.type === 'stream.synced', 'synced once the store recovered');
      expect(waiting.events().map((m) => [m.type, m.callId])).to.deep.include([
        'call.ringing',
        callId,
      ]);
      expect(positions.waiting).to.equal(0);
    } finally {
      if (!recovered) failing.restore();
    }
  });

  it('closes a socket still waiting for the store after STREAM_COMMIT_WAIT_MS with 1013; a reconnect after the outage syncs', async () => {
    const { connected, positions, token, failing, callId } = await ringingDuringOutage({
      STREAM_COMMIT_WAIT_MS: '300',
    });
    try {
      const refreshed = await open({ token });
      await refreshed.next((m) => m.type === 'stream.welcome', 'welcome');
      await until(() => refreshed.ws.readyState === refreshed.ws.CLOSED, 'the close', 5000);
      const closed = await refreshed.closed;
      expect(closed.code).to.equal(1013);
      expect(closed.reason).to.match(/store.*retry later/);
      expect(refreshed.messages.map((m) => m.type)).to.deep.equal(['stream.welcome']);
      expect(positions.waiting).to.equal(0);
      // A console already live is not touched.
      expect(connected.ws.readyState).to.equal(connected.ws.OPEN);
      const metrics = await bed.engine.registry.metrics();
      expect(metrics).to.match(/aricrm_stream_closes_total\{code="1013"\} 1$/m);
    } finally {
      failing.restore();
    }
    const again = await operatorStream('101');
    expect(again.events().map((m) => [m.type, m.callId])).to.deep.include(['call.ringing', callId]);
  });

  it("a call ringing across an engine restart keeps the customer's link: API, history, stream, webhooks", async () => {
    await start();
    routeTo(['101']);
    bed.sim.phones.set('101', { mode: 'ring' });
    bed.sim.phones.set('102', { mode: 'ring' });
    const card = {
      id: 'c-42',
      name: 'Ivan Petrov',
      link: 'https://crm.example.com/customers/42',
    };
    const { callId, channelId, from } = await ringingCall('101');
    await bed.engine.calls.settled();
    await bed.engine.journal.flush();

    const { config, logger } = bed.engine;
    await bed.engine.stop();
    restarted = await startEngine(config, { logger, simulator: bed.sim });
    const recovered = await bed.crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.recovered',
      10_000,
    );
    expect(recovered.body.data).to.include({ state: 'operator_ringing' });
    // The call details of the adopted call.
    const details = await apiRequest<{ customer?: unknown }>(engineUrl(), `/v1/calls/${callId}`);
    expect(details.status).to.equal(200);
    expect(details.body.customer).to.deep.equal(card);
    // A console opened after the restart: the card of the ringing call, link included.
    const s101 = await operatorStream('101');
    const ringing = s101.events().find((m) => m.type === 'call.ringing' && m.callId === callId);
    expect(ringing?.data?.customer).to.deep.equal(card);

    // 101 answers after the restart and hands the caller to 102: the new ringing carries the card.
    const s102 = await operatorStream('102');
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    await s101.event('call.answered', callId);
    await restarted.calls.settled();
    const transfer = await apiRequest(engineUrl(), `/v1/calls/${callId}/transfer`, {
      body: { kind: 'extension', to: '102' },
    });
    expect(transfer.status, transfer.text).to.equal(202);
    const toTarget = await s102.event('call.ringing', callId);
    expect(toTarget.data).to.include({ extension: '102' });
    expect(toTarget.data!.customer).to.deep.equal(card);
    const webhook = await bed.crm.waitForWebhook(
      (w) =>
        w.body.callId === callId &&
        w.body.type === 'call.ringing' &&
        w.body.data.extension === '102',
    );
    expect(webhook.body.data.customer).to.deep.equal(card);

    // Once ended, the call history still has it.
    bed.sim.hangup(channelId);
    await s101.event('call.ended', callId);
    const history = await apiRequest<{ items: Array<{ id: string; customer?: unknown }> }>(
      engineUrl(),
      `/v1/calls?number=${from}`,
    );
    expect(history.status).to.equal(200);
    expect(history.body.items.find((c) => c.id === callId)?.customer).to.deep.equal(card);
  });

  it('an admin stream (API key) gets every event; the first message may carry the credential', async () => {
    await start();
    routeTo(['101']);
    bed.sim.phones.set('101', { mode: 'ring' });
    const admin = await open({ headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    await admin.next((m) => m.type === 'stream.synced', 'synced');
    expect(admin.messages[0]).to.include({ type: 'stream.welcome', admin: true });
    const byMessage = await open();
    byMessage.send({ type: 'auth', token: await tokenFor('101') });
    await byMessage.next((m) => m.type === 'stream.synced', 'synced after the auth message');
    const { callId, channelId } = await ringingCall('101');
    await admin.event('call.started', callId);
    await byMessage.event('call.ringing', callId);
    bed.sim.hangup(channelId);
    await admin.event('call.ended', callId);
    expect(byMessage.events().some((m) => m.type === 'call.started')).to.equal(false);
  });

  it('refuses bad and expired tokens with their close codes, closes at expiry, renews in place', async () => {
    await start();
    const bad = await open({ token: `${(await tokenFor('101')).slice(0, -4)}AAAA` });
    expect((await bad.closed).code).to.equal(4003);
    const wrongKey = await open({ headers: { authorization: 'Bearer not-a-key-of-this-engine' } });
    expect((await wrongKey.closed).code).to.equal(4003);
    const past = new OperatorTokens({ secrets: [SECRET], now: () => Date.now() - 3_600_000 });
    const expired = await open({ token: past.mint('101', 60, 'test').token });
    expect((await expired.closed).code).to.equal(4001);
    const silent = await open();
    expect((await silent.closed).code).to.equal(4002);
    // An API key never travels in a URL.
    const keyInUrl = await open({ token: TEST_API_KEY });
    expect((await keyInUrl.closed).code).to.equal(4003);

    // A token 1.5 s from its expiry: the socket closes with 4001 then…
    const soon = new OperatorTokens({ secrets: [SECRET], now: () => Date.now() - 58_500 });
    const expiring = await open({ token: soon.mint('101', 60, 'test').token });
    await expiring.next((m) => m.type === 'stream.synced', 'synced');
    expect((await expiring.closed).code).to.equal(4001);
    // …unless renewed before.
    const renewing = await open({ token: soon.mint('101', 60, 'test').token });
    await renewing.next((m) => m.type === 'stream.synced', 'synced');
    const firstExpiry = Date.parse(String(renewing.messages[0]!.expiresAt));
    renewing.send({ type: 'renew', token: await tokenFor('101', 3600) });
    const renewed = await renewing.next((m) => m.type === 'stream.renewed', 'renewed');
    expect(Date.parse(String(renewed.expiresAt))).to.be.above(firstExpiry + 3_000_000);
    await until(() => Date.now() > firstExpiry + 500, 'the first expiry to pass', 5000);
    renewing.send({ type: 'ping' });
    await renewing.next((m) => m.type === 'pong', 'pong after the first expiry');
    // A renewal for another extension is refused.
    renewing.send({ type: 'renew', token: await tokenFor('102') });
    expect((await renewing.closed).code).to.equal(4003);
  });

  it('caps the stream sockets on their own: at the cap new ones get 503 stream_full, and the API keeps its HTTP connections', async () => {
    // Tiny limits: 3 stream sockets, 2 HTTP connections (each stream socket would have taken one);
    // no places kept for admin streams (the next test is about those).
    await start({
      STREAM_MAX_SOCKETS: '3',
      STREAM_ADMIN_RESERVE: '0',
      HTTP_MAX_CONNECTIONS: '2',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '60000',
    });
    const signer = new OperatorTokens({ secrets: [SECRET] });
    const consoleOf = async (extension: string): Promise<StreamClient> => {
      const client = await open({ token: signer.mint(extension, 600, 'test').token });
      await client.next((m) => m.type === 'stream.synced', `synced of ${extension}`);
      return client;
    };
    const s101 = await consoleOf('101');
    await consoleOf('102');
    const admin = await open({ headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    await admin.next((m) => m.type === 'stream.synced', 'synced of the admin stream');

    // The stream is full: one more console is refused before the upgrade.
    const refused = await open({ token: signer.mint('103', 600, 'test').token }).then(
      () => undefined,
      (err: { status?: number; headers?: IncomingHttpHeaders; body?: string }) => err,
    );
    expect(refused?.status).to.equal(503);
    expect(refused?.headers?.['retry-after']).to.equal('5');
    expect(JSON.parse(refused!.body!)).to.include({ code: 'stream_full' });

    // The API still has its 2 connections: the CRM's requests and Prometheus are served.
    const crm = await rawHttp(engineUrl());
    const prometheus = await rawHttp(engineUrl());
    expect((await crm.get('/healthz'))?.status).to.equal(200);
    const metrics = await prometheus.get('/metrics');
    expect(metrics?.status).to.equal(200);
    expect(sample(metrics!.body, 'aricrm_stream_connections')).to.equal(3);
    expect(sample(metrics!.body, 'aricrm_stream_max_sockets')).to.equal(3);
    expect(sample(metrics!.body, 'aricrm_stream_refusals_total{code="stream_full"}')).to.equal(1);
    // HTTP_MAX_CONNECTIONS still holds for HTTP: a third connection is closed unanswered.
    const third = await rawHttp(engineUrl());
    expect(await third.get('/healthz')).to.equal(undefined);
    expect((await crm.get('/healthz'))?.status, 'the held connections still work').to.equal(200);

    // A console that closes frees its place for the next one (whose upgrade request is HTTP: it
    // needs a free HTTP connection for that moment).
    crm.socket.destroy();
    s101.close();
    await until(() => bed.engine.stream.size === 2, 'the closed socket to be gone');
    const s103 = await consoleOf('103');
    s103.close();
    admin.close();
    await until(() => bed.engine.stream.size === 1, 'the sockets to be gone');
    // With the stream sockets gone the HTTP limit is back where it was: 2, not more.
    const after = await prometheus.get('/metrics');
    expect(sample(after!.body, 'aricrm_stream_connections')).to.equal(1);
    expect(
      sample(after!.body, 'aricrm_http_client_errors_total{code="connection_limit"}'),
    ).to.equal(1);
    const again = await rawHttp(engineUrl());
    expect((await again.get('/healthz'))?.status).to.equal(200);
    const extra = await rawHttp(engineUrl());
    expect(await extra.get('/healthz')).to.equal(undefined);
    for (const conn of [prometheus, again, third, extra]) conn.socket.destroy();
  });

  it('keeps STREAM_ADMIN_RESERVE places for API key streams: operators past theirs get 503 stream_full or close 1013, admin streams still open', async () => {
    // 4 stream sockets, 2 of them kept for admin streams: operators have 2 places.
    await start({ STREAM_MAX_SOCKETS: '4', STREAM_ADMIN_RESERVE: '2' });
    const signer = new OperatorTokens({ secrets: [SECRET] });
    const tokenOf = (extension: string): string => signer.mint(extension, 600, 'test').token;
    const refusal = (
      options: Parameters<typeof StreamClient.open>[1],
    ): Promise<{ status?: number; headers?: IncomingHttpHeaders; body?: string } | undefined> =>
      open(options).then(
        () => undefined,
        (err: { status?: number; headers?: IncomingHttpHeaders; body?: string }) => err,
      );
    const metrics = async (): Promise<string> =>
      (await apiRequest(engineUrl(), '/metrics', { key: null })).text;

    // The operators fill their places: one with the token in the URL, one in its first message.
    const s101 = await open({ token: tokenOf('101') });
    await s101.next((m) => m.type === 'stream.synced', 'synced of 101');
    const s102 = await open();
    s102.send({ type: 'auth', token: tokenOf('102') });
    await s102.next((m) => m.type === 'stream.synced', 'synced of 102');

    // The next operator: with the token in the URL or the header, refused before the upgrade…
    for (const options of [
      { token: tokenOf('103') },
      { headers: { authorization: `Bearer ${tokenOf('103')}` } },
    ]) {
      const refused = await refusal(options);
      expect(refused?.status).to.equal(503);
      expect(refused?.headers?.['retry-after']).to.equal('5');
      const body = JSON.parse(refused!.body!) as { code: string; message: string };
      expect(body.code).to.equal('stream_full');
      expect(body.message).to.include('STREAM_ADMIN_RESERVE');
    }
    // …with it in the first message, opened (who it is is not known yet), then closed with 1013
    // once the token is read, without a welcome.
    const late = await open();
    late.send({ type: 'auth', token: tokenOf('103') });
    expect((await late.closed).code).to.equal(1013);
    expect(late.messages).to.deep.equal([]);
    await until(() => bed.engine.stream.size === 2, 'the closed socket to be gone');

    // The places kept are there for admin streams: the CRM's server (API key in the header) and a
    // wallboard page (API key in its first message).
    const crm = await open({ headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    await crm.next((m) => m.type === 'stream.synced', 'synced of the CRM');
    const wallboard = await open();
    wallboard.send({ type: 'auth', token: TEST_API_KEY });
    await wallboard.next((m) => m.type === 'stream.synced', 'synced of the wallboard');
    expect(crm.messages[0]).to.include({ type: 'stream.welcome', admin: true });
    expect(wallboard.messages[0]).to.include({ type: 'stream.welcome', admin: true });
    // Now the whole cap is reached: anyone is refused.
    const full = await refusal({ headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    expect(full?.status).to.equal(503);
    expect(JSON.parse(full!.body!)).to.include({ code: 'stream_full' });

    const seen = await metrics();
    expect(sample(seen, 'aricrm_stream_connections')).to.equal(4);
    expect(sample(seen, 'aricrm_stream_operator_connections')).to.equal(2);
    expect(sample(seen, 'aricrm_stream_admin_reserve')).to.equal(2);
    expect(sample(seen, 'aricrm_stream_closes_total{code="1013"}')).to.equal(1);
    expect(sample(seen, 'aricrm_stream_refusals_total{code="stream_full"}')).to.equal(3);
    const warned = bed.logs.filter((l) => String(l.message).startsWith('live stream full'));
    expect(warned, 'one warning a minute at most').to.have.length(1);
    expect(warned[0]).to.include({ level: 'warn', maxSockets: 4, adminReserve: 2 });

    // An operator who leaves frees a place for the next, which opens in its first message too.
    s101.close();
    await until(() => bed.engine.stream.size === 3, 'the operator socket to be gone');
    const s103 = await open();
    s103.send({ type: 'auth', token: tokenOf('103') });
    await s103.next((m) => m.type === 'stream.synced', 'synced of 103');
    expect(s103.messages[0]).to.include({ type: 'stream.welcome', extension: '103' });
    expect(sample(await metrics(), 'aricrm_stream_operator_connections')).to.equal(2);
    // An admin stream that leaves frees a kept place, not one for operators.
    wallboard.close();
    await until(() => bed.engine.stream.size === 3, 'the wallboard socket to be gone');
    expect((await refusal({ token: tokenOf('101') }))?.status).to.equal(503);
  });

  it('drops a socket that stops answering pings', async () => {
    await start({ STREAM_PING_INTERVAL_MS: '200' });
    const alive = await operatorStream('101');
    const dead = await operatorStream('102');
    // The network under 102 goes away: it reads nothing, answers no ping.
    (dead.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await until(() => bed.engine.stream.size === 1, 'the engine to drop the dead socket');
    // The live one answered every ping and is still served.
    alive.send({ type: 'ping' });
    await alive.next((m) => m.type === 'pong', 'pong');
  });

  it('pings its sockets spread over the interval, not all at once', async () => {
    // 1 s: ticks every 100 ms, ten slots. Twelve consoles opened together.
    await start({ STREAM_PING_INTERVAL_MS: '1000' });
    const token = await tokenFor('101');
    const consoles = await Promise.all(Array.from({ length: 12 }, () => open({ token })));
    const pingedAt: number[][] = consoles.map(() => []);
    consoles.forEach((c, i) => c.ws.on('ping', () => pingedAt[i]!.push(performance.now())));
    await until(
      () => pingedAt.every((times) => times.length >= 2),
      'every console to be pinged twice',
      5000,
    );
    // Each console once per interval...
    for (const times of pingedAt) expect(times[1]! - times[0]!).to.be.within(800, 1300);
    // ...but not all in the same tick: the first pings span most of the interval.
    const firsts = pingedAt.map((times) => times[0]!);
    expect(Math.max(...firsts) - Math.min(...firsts)).to.be.above(500);
  });

  it('refuses a page of an origin not allowed, and lets an allowed one in', async () => {
    await start({ STREAM_ALLOWED_ORIGINS: 'https://crm.example.com' });
    const token = await tokenFor('101');
    const refused = await StreamClient.open(bed.engine.httpUrl, {
      token,
      origin: 'https://evil.example.net',
    }).then(
      () => undefined,
      (err: { status?: number; body?: string }) => err,
    );
    expect(refused?.status).to.equal(403);
    expect(JSON.parse(refused!.body!)).to.include({ code: 'origin_not_allowed' });
    const allowed = await open({ token, origin: 'https://crm.example.com' });
    await allowed.next((m) => m.type === 'stream.synced', 'synced');
  });

  it('closes a client that does not read (4008) instead of queueing without bound', async () => {
    await start({ STREAM_MAX_BUFFERED_BYTES: '65536' });
    const admin = await open({ headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    await admin.next((m) => m.type === 'stream.synced', 'synced');
    const socket = (admin.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    // Large events (100 KB each) straight into the outbox: far more than the socket buffers hold.
    const callId = randomUUID();
    const big = 'x'.repeat(100_000);
    for (let batch = 0; batch < 20; batch++) {
      await bed.engine.store.events.appendEvents(
        Array.from({ length: 10 }, (_, i) => ({
          id: randomUUID(),
          type: 'call.started' as const,
          occurredAt: new Date().toISOString(),
          callId,
          sequence: batch * 10 + i + 1,
          data: { direction: 'in' as const, from: '1', to: '2', variables: { big } },
        })),
      );
      if (bed.engine.registry.getSingleMetric('aricrm_stream_closes_total')) {
        const closes = await bed.engine.registry
          .getSingleMetric('aricrm_stream_closes_total')!
          .get();
        if (closes.values.some((v) => v.labels.code === '4008' && v.value > 0)) break;
      }
    }
    await until(async () => {
      const closes = await bed.engine.registry.getSingleMetric('aricrm_stream_closes_total')!.get();
      return closes.values.some((v) => v.labels.code === '4008' && v.value > 0);
    }, 'the engine to close the slow socket');
    socket.resume();
    expect((await admin.closed).code).to.equal(4008);
  });

  it('an operator token clicks to call from its own extension only and sees only its calls', async () => {
    await start();
    const token = await tokenFor('101');
    const asOperator = { key: token };
    const other = await apiRequest(bed.engine.httpUrl, '/v1/calls', {
      ...asOperator,
      body: { operator: '102', to: '+74957654321' },
    });
    expect(other.status).to.equal(403);
    expect(other.body).to.include({ code: 'extension_not_allowed' });
    bed.sim.phones.set('101', { mode: 'ring' });
    const own = await apiRequest<{ id: string }>(bed.engine.httpUrl, '/v1/calls', {
      ...asOperator,
      body: { operator: '101', to: '+74957654321' },
    });
    expect(own.status, own.text).to.equal(202);
    const mine = await apiRequest(bed.engine.httpUrl, `/v1/calls/${own.body.id}`, asOperator);
    expect(mine.status).to.equal(200);
    const theirs = await apiRequest(bed.engine.httpUrl, `/v1/calls/${own.body.id}`, {
      key: await tokenFor('102'),
    });
    expect(theirs.status).to.equal(404);
    const list = await apiRequest<{ items: Array<{ id: string }> }>(
      bed.engine.httpUrl,
      '/v1/calls',
      asOperator,
    );
    expect(list.status).to.equal(200);
    expect(
      (await apiRequest(bed.engine.httpUrl, '/v1/calls?extension=102', asOperator)).status,
    ).to.equal(403);
    // A token cannot mint tokens nor use API-key-only routes.
    const mint = await apiRequest(bed.engine.httpUrl, '/v1/operators/101/tokens', {
      ...asOperator,
      body: {},
    });
    expect(mint.body).to.include({ code: 'token_not_allowed' });
    const events = await apiRequest(bed.engine.httpUrl, '/v1/events', asOperator);
    expect(events.status).to.equal(403);
    const expired = new OperatorTokens({ secrets: [SECRET], now: () => Date.now() - 3_600_000 });
    const late = await apiRequest(bed.engine.httpUrl, '/v1/calls', {
      key: expired.mint('101', 60, 'test').token,
    });
    expect(late.status).to.equal(401);
    expect(late.body).to.include({ code: 'token_expired' });
    // No token in the logs.
    expect(JSON.stringify(bed.logs)).to.not.include(token.split('.')[2]);
  });
});
