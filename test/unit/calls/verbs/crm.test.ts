/**
 * The CRM client of scripts (gather actionUrl, redirect) against a real local HTTP server: the
 * request is signed like the webhooks and carries the API key, the answer's verbs are validated
 * (a bad one is refused naming the path), and every failure (HTTP status, timeout, connection)
 * is returned, logged and counted instead of thrown.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { verifyWebhookSignature } from '../../../../src/events/signature.ts';
import { createSilentLogger } from '../../../../src/logging/logger.ts';
import { createVerbCrm } from '../../../../src/calls/verbs/crm.ts';
import type { VerbCrmRequest } from '../../../../src/calls/verbs/types.ts';
import {
  closedPort,
  json,
  metricValue,
  startServer,
  type TestServer,
} from '../../../crm/helpers.ts';

const SECRET = 'a-webhook-secret-of-32-characters';
const REQUEST: VerbCrmRequest = {
  callId: 'call-1',
  channelId: 'ch-1',
  verb: 'gather',
  digits: '1',
  reason: 'numDigits',
};

describe('CRM client of call scripts', () => {
  let server: TestServer | undefined;
  let registry: Registry;
  const live = () => new AbortController().signal;

  beforeEach(() => {
    registry = new Registry();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  function client(timeoutMs = 1000) {
    return createVerbCrm({
      timeoutMs,
      secret: SECRET,
      apiKey: 'crm-key',
      logger: createSilentLogger(),
      registry,
    });
  }

  it('posts the request signed like a webhook and returns the validated verbs', async () => {
    server = await startServer((_req, res) => json(res, 200, { verbs: [{ verb: 'hangup' }] }));
    const answer = await client().fetchVerbs(server.url, REQUEST, live());
    expect(answer).to.deep.include({ ok: true, verbs: [{ verb: 'hangup' }] });
    const [req] = server.requests;
    expect(JSON.parse(req!.body)).to.deep.equal(REQUEST);
    expect(req!.headers['content-type']).to.equal('application/json');
    expect(req!.headers.authorization).to.equal('Bearer crm-key');
    const signature = req!.headers['x-signature'] as string;
    expect(verifyWebhookSignature(SECRET, signature, req!.body)).to.equal(true);
    expect(
      verifyWebhookSignature('another-secret-of-32-characters!', signature, req!.body),
    ).to.equal(false);
    expect(
      await metricValue(registry, 'aricrm_verb_crm_failures_total', { reason: 'invalid_body' }),
    ).to.equal(0);
  });

  it('refuses an answer with a bad verb, naming its path', async () => {
    server = await startServer((_req, res) =>
      json(res, 200, { verbs: [{ verb: 'hangup' }, { verb: 'pause', sec: 9999 }] }),
    );
    const answer = await client().fetchVerbs(server.url, REQUEST, live());
    expect(answer.ok).to.equal(false);
    if (answer.ok) return;
    expect(answer.reason).to.equal('invalid_body');
    expect(answer.detail).to.match(/^verbs\[1\]\.sec: /);
    expect(
      await metricValue(registry, 'aricrm_verb_crm_failures_total', { reason: 'invalid_body' }),
    ).to.equal(1);
  });

  it('an HTTP error status, a non-JSON body, a timeout and a refused connection are failures', async () => {
    server = await startServer((_req, res) => json(res, 503, { error: 'down' }));
    const status = await client().fetchVerbs(server.url, REQUEST, live());
    expect(status).to.deep.include({ ok: false, reason: 'http_status', detail: 'HTTP 503' });

    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>');
    });
    expect(await client().fetchVerbs(server.url, REQUEST, live())).to.deep.include({
      ok: false,
      reason: 'invalid_body',
    });

    // Never answers: the request fails at its 200 ms deadline, to the millisecond (timers faked;
    // the HTTP exchange is real).
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    server.handle(() => arrived());
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      let over = false;
      const pending = client(200)
        .fetchVerbs(server.url, REQUEST, live())
        .finally(() => (over = true));
      await requestArrived;
      await clock.tickAsync(199);
      expect(over, 'over before its timeout').to.equal(false);
      await clock.tickAsync(1);
      expect(await pending).to.deep.include({ ok: false, reason: 'timeout' });
    } finally {
      clock.restore();
    }

    const refused = await client().fetchVerbs(
      `http://127.0.0.1:${await closedPort()}/x`,
      REQUEST,
      live(),
    );
    expect(refused).to.deep.include({ ok: false, reason: 'connection' });
    expect(
      await metricValue(registry, 'aricrm_verb_crm_failures_total', { reason: 'timeout' }),
    ).to.equal(1);
    expect(
      await metricValue(registry, 'aricrm_verb_crm_failures_total', { reason: 'http_status' }),
    ).to.equal(1);
  });

  it('a hang-up cuts the request short', async () => {
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    server = await startServer(() => arrived()); // never answers
    const hangup = new AbortController();
    const startedAt = Date.now();
    const pending = client(60_000).fetchVerbs(server.url, REQUEST, hangup.signal);
    await requestArrived;
    hangup.abort();
    const answer = await pending;
    // Ended by the hang-up, not by its timeout a minute away; not counted as a CRM failure.
    expect(answer).to.deep.include({ ok: false, reason: 'connection' });
    expect(Date.now() - startedAt).to.be.below(60_000);
    expect(
      await metricValue(registry, 'aricrm_verb_crm_failures_total', { reason: 'connection' }),
    ).to.equal(0);
  });
});
