/**
 * The connectors' vendor HTTP client against a real local server: form encoding, the vendor's
 * answers classified for the outbox (2xx, 401 with the refresh hook, 429 with Retry-After, 5xx,
 * a validation 4xx with the vendor's message), and the rate limit (a request waits its turn).
 * And the employee ↔ extension directory: CRM entries, configuration overrides, failed refresh.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { ExtensionDirectory } from '../../src/connectors/extensions.ts';
import { createVendorHttpClient } from '../../src/connectors/http.ts';
import { createLogger } from '../../src/logging/logger.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

describe('connectors: vendor HTTP client', function () {
  this.timeout(20_000);
  let server: Server;
  let base: string;
  let seen: Seen[];
  let answers: Array<{ status: number; body?: unknown; headers?: Record<string, string> }>;

  beforeEach(async () => {
    seen = [];
    answers = [];
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          headers: req.headers,
          body,
          at: Date.now(),
        });
        const answer = answers.shift() ?? { status: 200, body: { success: true } };
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
      });
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const client = (extra: Partial<Parameters<typeof createVendorHttpClient>[0]> = {}) =>
    createVendorHttpClient({
      baseUrl: base,
      headers: { 'x-api-key': 'secret-key' },
      ratePerSec: { default: 100 },
      timeoutMs: 2000,
      ...extra,
    });

  it('sends a form-encoded body with the headers and parses the JSON answer', async () => {
    const answer = await client().request({
      method: 'POST',
      path: '/api/v5/telephony/call/event',
      form: { event: JSON.stringify({ phone: '+7 916', type: 'in' }) },
    });
    expect(answer).to.deep.include({ ok: true, status: 200, json: { success: true } });
    expect(answer.url).to.equal(`${base}/api/v5/telephony/call/event`);
    expect(seen[0]!.headers['content-type']).to.equal('application/x-www-form-urlencoded');
    expect(seen[0]!.headers['x-api-key']).to.equal('secret-key');
    expect(Object.fromEntries(new URLSearchParams(seen[0]!.body))).to.deep.equal({
      event: '{"phone":"+7 916","type":"in"}',
    });
  });

  it('classifies answers: 429 with Retry-After, 5xx retry; a validation 4xx is rejected with the vendor message', async () => {
    answers.push(
      { status: 429, body: {}, headers: { 'retry-after': '3' } },
      { status: 503, body: { errorMsg: 'down' } },
      { status: 400, body: { success: false, errorMsg: 'Errors in the input parameters' } },
    );
    const c = client({
      errorMessage: (json) => (json as { errorMsg?: string }).errorMsg,
    });
    const get = { method: 'GET' as const, path: '/x', query: { phone: '1' } };
    expect(await c.request(get)).to.deep.include({
      ok: false,
      kind: 'retry',
      status: 429,
      retryAfterMs: 3000,
    });
    expect(await c.request(get)).to.deep.include({
      ok: false,
      kind: 'retry',
      status: 503,
      detail: 'HTTP 503: down',
    });
    expect(await c.request(get)).to.deep.include({
      ok: false,
      kind: 'rejected',
      status: 400,
      detail: 'HTTP 400: Errors in the input parameters',
    });
    // The delivery log's URL has no query (a key may travel there).
    expect(seen[0]!.url).to.equal('/x?phone=1');
  });

  it('401: calls the refresh hook, then reports a retry due at once with the new credentials used next', async () => {
    let token = 'old';
    answers.push({ status: 401, body: { error: 'expired_token' } });
    const c = client({
      headers: () => ({ authorization: `Bearer ${token}` }),
      onUnauthorized: () => {
        token = 'new';
        return Promise.resolve();
      },
    });
    const first = await c.request({ method: 'POST', path: '/rest/x', json: { a: 1 } });
    expect(first).to.deep.include({ ok: false, kind: 'retry', status: 401, retryAfterMs: 0 });
    const second = await c.request({ method: 'POST', path: '/rest/x', json: { a: 1 } });
    expect(second.ok).to.equal(true);
    expect(seen.map((s) => s.headers.authorization)).to.deep.equal(['Bearer old', 'Bearer new']);
    expect(seen[0]!.headers['content-type']).to.equal('application/json');
  });

  it('keeps to the rate limit: the 3rd request of a 2/s bucket waits for the next second', async () => {
    const c = client({ ratePerSec: { default: 100, telephony: 2 } });
    const request = { method: 'GET' as const, path: '/t', bucket: 'telephony' };
    const answers3 = await Promise.all([
      c.request(request),
      c.request(request),
      c.request(request),
    ]);
    expect(answers3.every((a) => a.ok)).to.equal(true);
    const times = seen.map((s) => s.at).sort((a, b) => a - b);
    expect(times[2]! - times[0]!).to.be.at.least(900);
  });

  it('a connection error is a retry', async () => {
    const answer = await createVendorHttpClient({
      baseUrl: 'http://127.0.0.1:1',
      headers: {},
      ratePerSec: { default: 10 },
      timeoutMs: 2000,
    }).request({ method: 'GET', path: '/x' });
    expect(answer).to.deep.include({ ok: false, kind: 'retry' });
  });
});

describe('connectors: employee ↔ extension directory', () => {
  const logger = createLogger({ level: 'error', stream: new PassThrough() });

  it("merges the CRM's map with configuration overrides, which win", async () => {
    const directory = new ExtensionDirectory({
      load: () =>
        Promise.resolve([
          { userId: '3', extension: '01' },
          { userId: '4', extension: '02' },
          { userId: '5', extension: '109' },
        ]),
      overrides: [
        { userId: '4', extension: '102' },
        { userId: '9', extension: '109' },
      ],
      refreshMs: 0,
      timeoutMs: 1000,
      logger,
    });
    await directory.refresh();
    expect(directory.entries()).to.deep.equal([
      { userId: '3', extension: '01' },
      { userId: '4', extension: '102' },
      { userId: '9', extension: '109' },
    ]);
    expect(directory.extensionOf('4')).to.equal('102');
    expect(directory.userOf('109')).to.equal('9');
  });

  it('keeps the last good map when a refresh fails', async () => {
    let fail = false;
    const directory = new ExtensionDirectory({
      load: () =>
        fail
          ? Promise.reject(new Error('CRM down'))
          : Promise.resolve([{ userId: '3', extension: '101' }]),
      overrides: [],
      refreshMs: 0,
      timeoutMs: 1000,
      logger,
    });
    await directory.refresh();
    fail = true;
    await directory.refresh();
    expect(directory.extensionOf('3')).to.equal('101');
  });
});
