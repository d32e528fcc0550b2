import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { createRouteClient, type RouteClientOptions } from '../../src/crm/route-client.ts';
import { parseRouteSpec } from '../../src/crm/route.ts';
import type { Route } from '../../src/crm/types.ts';
import { createLogger, createSilentLogger } from '../../src/logging/logger.ts';
import {
  closedPort,
  histogramCount,
  json,
  metricValue,
  startServer,
  type TestServer,
} from './helpers.ts';
import { postFromFetch } from '../support/outbound.ts';

const FALLBACK: Route = parseRouteSpec('ringall:101,102,103', 20);
const API_KEY = 'crm-api-key-SECRET-0123456789';
const REQUEST = {
  callId: 'c0ffee00-0000-4000-8000-000000000001',
  from: '79161234567',
  did: '74951234567',
};

/** The fields object of a logger call (`logger.warn(message, fields)`). */
const fieldsOf = (call: sinon.SinonSpyCall): Record<string, unknown> =>
  (call.args as unknown[])[1] as Record<string, unknown>;

const EXAMPLE_ANSWER = {
  customer: { id: '42', name: 'Ivan Petrov' },
  action: 'dial',
  strategy: 'ringall',
  extensions: ['101', '102'],
  ringTimeoutSec: 20,
  greeting: ['sound:hello-world'],
  record: true,
};

describe('CRM route client', () => {
  let server: TestServer | undefined;
  let registry: Registry;

  beforeEach(() => {
    registry = new Registry();
  });

  afterEach(async () => {
    sinon.restore();
    await server?.close();
    server = undefined;
  });

  function client(overrides: Partial<RouteClientOptions> = {}) {
    return createRouteClient({
      url: server?.url,
      apiKey: API_KEY,
      timeoutMs: 1500,
      cacheTtlMs: 60_000,
      fallback: FALLBACK,
      logger: createSilentLogger(),
      registry,
      ...overrides,
    });
  }

  it('posts {callId, from, did} with the bearer key and parses a valid answer', async () => {
    server = await startServer((_req, res) => json(res, 200, EXAMPLE_ANSWER));
    const decision = await client().lookup(REQUEST);

    expect(decision.source).to.equal('crm');
    expect(decision.failure).to.equal(undefined);
    expect(decision.route).to.deep.equal({
      customer: { id: '42', name: 'Ivan Petrov' },
      greeting: { media: ['sound:hello-world'] },
      record: true,
      action: { type: 'dial', strategy: 'ringall', extensions: ['101', '102'], ringTimeoutSec: 20 },
    });
    expect(decision.durationMs).to.be.a('number').and.to.be.at.least(0);

    expect(server.requests).to.have.length(1);
    const [req] = server.requests;
    expect(req!.method).to.equal('POST');
    expect(req!.headers.authorization).to.equal(`Bearer ${API_KEY}`);
    expect(req!.headers['content-type']).to.equal('application/json');
    expect(req!.headers['user-agent']).to.match(/^ari-crm\/\d+\.\d+\.\d+/);
    expect(JSON.parse(req!.body)).to.deep.equal(REQUEST);
    expect(
      await histogramCount(registry, 'aricrm_crm_request_duration_seconds', {
        operation: 'route',
        outcome: 'ok',
      }),
    ).to.equal(1);
  });

  it('parses a hangup answer and sends no Authorization header without a key', async () => {
    server = await startServer((_req, res) => json(res, 200, { action: 'hangup' }));
    const decision = await client({ apiKey: undefined }).lookup(REQUEST);
    expect(decision.source).to.equal('crm');
    expect(decision.route).to.deep.equal({ action: { type: 'hangup' } });
    expect(server.requests[0]!.headers.authorization).to.equal(undefined);
  });

  it('parses a call-script answer {verbs}: the customer, the record flag and the validated verbs', async () => {
    server = await startServer((_req, res) =>
      json(res, 200, {
        customer: { id: 42, name: 'Ivan Petrov' },
        record: true,
        verbs: [
          { verb: 'play', media: ['sound:hello-world'] },
          { verb: 'gather', numDigits: 1, timeoutSec: 5, actionUrl: 'https://crm.example/ivr' },
          { verb: 'dial', extensions: ['101'], ringTimeoutSec: 15 },
        ],
        greeting: null,
      }),
    );
    const decision = await client().lookup(REQUEST);
    expect(decision.source).to.equal('crm');
    expect(decision.route).to.deep.equal({
      customer: { id: '42', name: 'Ivan Petrov' },
      record: true,
      action: {
        type: 'verbs',
        verbs: [
          { verb: 'play', media: ['sound:hello-world'] },
          {
            verb: 'gather',
            numDigits: 1,
            timeoutSec: 5,
            prompts: [],
            actionUrl: 'https://crm.example/ivr',
          },
          { verb: 'dial', extensions: ['101'], strategy: 'ringall', ringTimeoutSec: 15 },
        ],
      },
    });
  });

  it('"fallback" answers keep the CRM customer and take the fallback action', async () => {
    server = await startServer((_req, res) =>
      json(res, 200, {
        action: 'fallback',
        customer: { id: 7, name: 'Anna\nSidorova ' },
        record: false,
      }),
    );
    const decision = await client().lookup(REQUEST);
    expect(decision.source).to.equal('crm');
    expect(decision.route).to.deep.equal({
      customer: { id: '7', name: 'Anna Sidorova' },
      record: false,
      action: FALLBACK.action,
    });
  });

  it('accepts lenient forms: numeric extensions, a single greeting string, nulls, defaults', async () => {
    server = await startServer((_req, res) =>
      json(res, 200, {
        action: 'dial',
        extensions: [101, '102', '101'],
        greeting: 'sound:welcome',
        customer: null,
        record: null,
        unknownField: { ignored: true },
      }),
    );
    const decision = await client({ defaultRingTimeoutSec: 33 }).lookup(REQUEST);
    expect(decision.source).to.equal('crm');
    expect(decision.route).to.deep.equal({
      greeting: { media: ['sound:welcome'] },
      action: { type: 'dial', strategy: 'ringall', extensions: ['101', '102'], ringTimeoutSec: 33 },
    });
  });

  it('caches a successful answer per caller number and DID', async () => {
    server = await startServer((_req, res) => json(res, 200, EXAMPLE_ANSWER));
    const routes = client();

    const first = await routes.lookup(REQUEST);
    const second = await routes.lookup({ ...REQUEST, callId: 'another-call' });
    expect(first.source).to.equal('crm');
    expect(second.source).to.equal('cache');
    expect(second.route).to.deep.equal(first.route);
    expect(server.requests).to.have.length(1);
    expect(await metricValue(registry, 'aricrm_crm_route_cache_hits_total')).to.equal(1);

    // The cached route is a copy: changing a decision does not change the cache.
    second.route.action = { type: 'hangup' };
    expect((await routes.lookup(REQUEST)).route.action.type).to.equal('dial');

    await routes.lookup({ ...REQUEST, did: '74950000000' });
    expect(server.requests).to.have.length(2);

    routes.clearCache();
    expect((await routes.lookup(REQUEST)).source).to.equal('crm');
    expect(server.requests).to.have.length(3);
  });

  it('expires cached answers after cacheTtlMs and evicts the oldest beyond cacheMaxEntries', async () => {
    const clock = sinon.useFakeTimers({ toFake: ['Date'], now: 1_000_000 });
    server = await startServer((_req, res) => json(res, 200, EXAMPLE_ANSWER));
    const routes = client({ cacheTtlMs: 10_000, cacheMaxEntries: 2 });

    await routes.lookup(REQUEST);
    clock.tick(9_999);
    expect((await routes.lookup(REQUEST)).source).to.equal('cache');
    clock.tick(1);
    expect((await routes.lookup(REQUEST)).source).to.equal('crm');
    expect(server.requests).to.have.length(2);

    await routes.lookup({ ...REQUEST, from: '70000000002' });
    await routes.lookup({ ...REQUEST, from: '70000000003' }); // evicts REQUEST.from (oldest)
    expect((await routes.lookup({ ...REQUEST, from: '70000000002' })).source).to.equal('cache');
    expect((await routes.lookup(REQUEST)).source).to.equal('crm');
  });

  it('does not cache anonymous callers or when cacheTtlMs is 0', async () => {
    server = await startServer((_req, res) => json(res, 200, EXAMPLE_ANSWER));
    const routes = client();
    await routes.lookup({ ...REQUEST, from: 'anonymous' });
    expect((await routes.lookup({ ...REQUEST, from: 'anonymous' })).source).to.equal('crm');

    const uncached = client({ cacheTtlMs: 0 });
    await uncached.lookup(REQUEST);
    expect((await uncached.lookup(REQUEST)).source).to.equal('crm');
  });

  /**
   * Run `lookup` with the timers faked (the HTTP exchange stays real) and check it settles
   * exactly `timeoutMs` after it started: not a millisecond before, and without waiting for an
   * answer that never comes. The fake clock stands still until `arrived` (the request reached
   * the CRM), so a slow machine cannot make the deadline pass before the request is out.
   */
  async function atDeadline<T>(
    timeoutMs: number,
    arrived: Promise<void>,
    lookup: () => Promise<T>,
  ): Promise<T> {
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      let over = false;
      const pending = lookup().finally(() => (over = true));
      await arrived;
      await clock.tickAsync(timeoutMs - 1);
      expect(over, 'gave up before its timeout').to.equal(false);
      await clock.tickAsync(1);
      return await pending;
    } finally {
      clock.restore();
    }
  }

  /** A promise resolved by the function it comes with. */
  function signal(): { promise: Promise<void>; fire: () => void } {
    let fire!: () => void;
    const promise = new Promise<void>((resolve) => (fire = resolve));
    return { promise, fire };
  }

  it('falls back with reason "timeout" when the CRM never answers, at timeoutMs', async () => {
    const arrived = signal();
    server = await startServer(() => arrived.fire()); // never answers
    const logger = createSilentLogger();
    const warn = sinon.spy(logger, 'warn');
    const timeoutMs = 200;
    const decision = await atDeadline(timeoutMs, arrived.promise, () =>
      client({ timeoutMs, logger }).lookup(REQUEST),
    );

    expect(decision.source).to.equal('fallback');
    expect(decision.failure?.reason).to.equal('timeout');
    expect(decision.route).to.deep.equal(FALLBACK);
    expect(warn.calledOnce).to.equal(true);
    expect(fieldsOf(warn.firstCall)).to.include({ reason: 'timeout', callId: REQUEST.callId });
    expect(
      await metricValue(registry, 'aricrm_crm_route_fallbacks_total', { reason: 'timeout' }),
    ).to.equal(1);
    expect(
      await histogramCount(registry, 'aricrm_crm_request_duration_seconds', {
        operation: 'route',
        outcome: 'timeout',
      }),
    ).to.equal(1);
  });

  it('the timeout covers the body: headers sent, body stalls', async () => {
    const arrived = signal();
    server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"action":"di'); // and never end
      arrived.fire();
    });
    const decision = await atDeadline(200, arrived.promise, () =>
      client({ timeoutMs: 200 }).lookup(REQUEST),
    );
    expect(decision.failure?.reason).to.equal('timeout');
  });

  it('the deadline holds even when fetch ignores the abort signal', async () => {
    const arrived = signal();
    const neverSettles: typeof fetch = () => {
      arrived.fire();
      return new Promise<Response>(() => undefined);
    };
    const decision = await atDeadline(100, arrived.promise, () =>
      client({
        url: 'http://127.0.0.1:9/route',
        timeoutMs: 100,
        post: postFromFetch(neverSettles),
      }).lookup(REQUEST),
    );
    expect(decision.failure?.reason).to.equal('timeout');
  });

  it('falls back with reason "connection" when the connection is refused', async () => {
    const port = await closedPort();
    const decision = await client({ url: `http://127.0.0.1:${port}/route` }).lookup(REQUEST);
    expect(decision.source).to.equal('fallback');
    expect(decision.failure?.reason).to.equal('connection');
    expect(decision.failure?.detail).to.match(/ECONNREFUSED/);
    expect(
      await metricValue(registry, 'aricrm_crm_route_fallbacks_total', { reason: 'connection' }),
    ).to.equal(1);
  });

  it('falls back with reason "http_status" on a 500 and does not cache failures', async () => {
    server = await startServer((_req, res) => json(res, 500, { error: 'boom' }));
    const routes = client();
    const decision = await routes.lookup(REQUEST);
    expect(decision.source).to.equal('fallback');
    expect(decision.failure).to.deep.equal({ reason: 'http_status', detail: 'HTTP 500' });
    expect(decision.route).to.deep.equal(FALLBACK);

    server.handle((_req, res) => json(res, 200, EXAMPLE_ANSWER));
    expect((await routes.lookup(REQUEST)).source).to.equal('crm');
  });

  it('treats a redirect as "http_status" (a POST is never silently turned into a GET)', async () => {
    server = await startServer((_req, res) => {
      res.writeHead(302, { location: '/elsewhere' }).end();
    });
    const decision = await client().lookup(REQUEST);
    expect(decision.failure).to.deep.equal({ reason: 'http_status', detail: 'HTTP 302' });
  });

  it('falls back with reason "invalid_body" on broken JSON, empty and oversized bodies', async () => {
    server = await startServer((_req, res) => json(res, 200, '{"action": "dial", '));
    let decision = await client().lookup(REQUEST);
    expect(decision.source).to.equal('fallback');
    expect(decision.failure?.reason).to.equal('invalid_body');
    expect(decision.failure?.detail).to.match(/not JSON/);

    server.handle((_req, res) => json(res, 200, ''));
    decision = await client().lookup(REQUEST);
    expect(decision.failure).to.deep.equal({ reason: 'invalid_body', detail: 'empty body' });

    server.handle((_req, res) =>
      json(res, 200, JSON.stringify({ action: 'hangup', pad: 'x'.repeat(100_000) })),
    );
    decision = await client().lookup(REQUEST);
    expect(decision.failure?.reason).to.equal('invalid_body');
    expect(decision.failure?.detail).to.match(/larger than/);
    expect(
      await metricValue(registry, 'aricrm_crm_route_fallbacks_total', { reason: 'invalid_body' }),
    ).to.equal(3);
  });

  const schemaInvalid: Array<[string, unknown, RegExp]> = [
    ['unknown action', { action: 'transfer' }, /action/],
    ['missing action', { extensions: ['101'] }, /action/],
    ['non-digit extension', { action: 'dial', extensions: ['101', 'abc'] }, /extensions\[1\]/],
    ['one-digit extension', { action: 'dial', extensions: ['1'] }, /extensions\[0\]/],
    ['no extensions', { action: 'dial', extensions: [] }, /extensions/],
    [
      'ring timeout too long',
      { action: 'dial', extensions: ['101'], ringTimeoutSec: 10_000 },
      /ringTimeoutSec/,
    ],
    [
      'fractional ring timeout',
      { action: 'dial', extensions: ['101'], ringTimeoutSec: 1.5 },
      /ringTimeoutSec/,
    ],
    ['unknown strategy', { action: 'dial', strategy: 'random', extensions: ['101'] }, /strategy/],
    ['media with ..', { action: 'hangup', greeting: ['sound:../../etc/passwd'] }, /greeting/],
    ['media without scheme', { action: 'hangup', greeting: ['hello world'] }, /greeting/],
    ['record not boolean', { action: 'hangup', record: 'yes' }, /record/],
    ['array instead of object', [{ action: 'hangup' }], /\(root\)|action/],
    ['empty verbs', { verbs: [] }, /verbs: a script holds at least one verb/],
    [
      'verb with a bad field',
      {
        verbs: [
          { verb: 'play', media: ['sound:hello-world'] },
          { verb: 'pause', sec: 9999 },
        ],
      },
      /verbs\[1\]\.sec/,
    ],
    ['unknown verb', { verbs: [{ verb: 'sing' }] }, /verbs\[0\]/],
    [
      'both verbs and action',
      { action: 'hangup', verbs: [{ verb: 'hangup' }] },
      /action: an answer carries either verbs or action, not both/,
    ],
  ];
  for (const [name, body, detail] of schemaInvalid) {
    it(`falls back with reason "invalid_body" on a schema-invalid answer: ${name}`, async () => {
      server ??= await startServer((_req, res) => json(res, 200, body));
      const decision = await client().lookup(REQUEST);
      expect(decision.source).to.equal('fallback');
      expect(decision.failure?.reason).to.equal('invalid_body');
      expect(decision.failure?.detail).to.match(detail);
    });
  }

  it('falls back with reason "not_configured" without a URL, making no request', async () => {
    const post = sinon.spy(postFromFetch(fetch));
    const decision = await client({ url: undefined, post }).lookup(REQUEST);
    expect(decision.source).to.equal('fallback');
    expect(decision.failure?.reason).to.equal('not_configured');
    expect(decision.route).to.deep.equal(FALLBACK);
    expect(post.called).to.equal(false);
    expect(
      await metricValue(registry, 'aricrm_crm_route_fallbacks_total', { reason: 'not_configured' }),
    ).to.equal(1);
  });

  it('returns a fresh copy of the fallback route every time', async () => {
    const routes = client({ url: undefined });
    const first = await routes.lookup(REQUEST);
    if (first.route.action.type === 'dial') first.route.action.extensions.push('999');
    expect((await routes.lookup(REQUEST)).route).to.deep.equal(FALLBACK);
  });

  it('never logs the API key, even at debug level', async () => {
    const stream = new PassThrough();
    let output = '';
    stream.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const logger = createLogger({ level: 'debug', stream });
    server = await startServer((req, res) =>
      json(res, 401, { error: `bad key ${req.headers.authorization}` }),
    );
    const decision = await client({ logger }).lookup(REQUEST);
    expect(decision.failure?.reason).to.equal('http_status');
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(output).to.include('http_status');
    expect(output).not.to.include(API_KEY);
  });

  it('never throws, even when the logger does', async () => {
    server = await startServer((_req, res) => json(res, 500, {}));
    const logger = createSilentLogger();
    sinon.stub(logger, 'warn').throws(new Error('logger broken'));
    const decision = await client({ logger }).lookup(REQUEST);
    expect(decision.source).to.equal('fallback');
  });

  it('shares metrics when two clients use one registry', () => {
    client();
    expect(() => client()).not.to.throw();
  });

  it('rejects unusable options at creation', () => {
    expect(() => client({ timeoutMs: 0 })).to.throw(RangeError);
    expect(() => client({ cacheTtlMs: -1 })).to.throw(RangeError);
    expect(() => client({ cacheMaxEntries: 0 })).to.throw(RangeError);
  });
});
