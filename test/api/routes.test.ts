/**
 * The /v1 routes over a fake CallControl: authentication, the toll-fraud guard,
 * validation naming the field, idempotency, error mapping, current call by extension and by IP.
 * Real HTTP against the app as the engine builds it.
 */
import { expect } from 'chai';
import { CallNotFoundError, CallStateError } from '../../src/calls/control.ts';
import { apiRequest } from '../support/api.ts';
import { TEST_API_KEY } from '../support/engine.ts';
import { startApiApp, type ApiTestApp } from './support/app.ts';

const OTHER_KEY = 'other-client-key-abcdefghijklmnop';

describe('API /v1 routes (fake call control)', () => {
  let app: ApiTestApp;
  afterEach(async () => {
    await app?.close();
  });

  describe('authentication', () => {
    it('answers 401 unauthorized without credentials, with WWW-Authenticate', async () => {
      app = await startApiApp();
      const res = await apiRequest(app.url, '/v1/calls/x', { key: null });
      expect(res.status).to.equal(401);
      expect(res.body).to.include({ code: 'unauthorized' });
      expect(res.headers.get('www-authenticate')).to.match(/^Bearer/);
      const basic = await apiRequest(app.url, '/v1/calls/x', {
        key: null,
        headers: { authorization: 'Basic dXNlcjpwYXNz' },
      });
      expect(basic.status).to.equal(401);
    });

    it('answers 403 forbidden for a key that is not configured, and never logs the key', async () => {
      app = await startApiApp();
      const wrong = 'not-a-configured-key-0123456789';
      const res = await apiRequest(app.url, '/v1/calls/x', { key: wrong });
      expect(res.status).to.equal(403);
      expect(res.body).to.deep.equal({ code: 'forbidden', message: 'the API key is not valid' });
      expect(app.logs.some((l) => l.reason === 'forbidden')).to.equal(true);
      expect(app.rawLogs.join('\n')).to.not.include(wrong);
    });

    it('does not accept the key as a query parameter on /v1', async () => {
      app = await startApiApp();
      const res = await apiRequest(app.url, `/v1/calls/x?api_key=${TEST_API_KEY}`, { key: null });
      expect(res.status).to.equal(401);
    });

    it('accepts any configured key and attributes the call to its name', async () => {
      app = await startApiApp({ API_KEYS: `crm:${TEST_API_KEY},shop:${OTHER_KEY}` });
      const res = await apiRequest(app.url, '/v1/calls', {
        key: OTHER_KEY,
        body: { operator: '101', to: '+74957654321' },
      });
      expect(res.status).to.equal(202);
      expect(app.control.started[0]!.requestedBy).to.equal('shop');
      expect(app.rawLogs.join('\n')).to.not.include(OTHER_KEY);
    });

    it('refuses everything with 503 api_keys_not_configured when API_KEYS is empty', async () => {
      app = await startApiApp({ API_KEYS: undefined });
      const res = await apiRequest(app.url, '/v1/calls', { body: { operator: '101', to: '1' } });
      expect(res.status).to.equal(503);
      expect(res.body).to.include({ code: 'api_keys_not_configured' });
      expect(app.control.started).to.have.length(0);
    });

    it('leaves /healthz, /readyz, /metrics and /openapi.json open', async () => {
      app = await startApiApp();
      for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
        const res = await apiRequest(app.url, path, { key: null });
        expect(res.status, path).to.equal(200);
      }
    });

    it('applies HTTP_ALLOWED_CIDRS to everything but /healthz and /readyz', async () => {
      app = await startApiApp({ HTTP_ALLOWED_CIDRS: '10.0.0.0/8,2001:db8::/32' });
      const res = await apiRequest(app.url, '/v1/calls/x');
      expect(res.status).to.equal(403);
      expect(res.body).to.include({ code: 'ip_not_allowed' });
      expect((await apiRequest(app.url, '/metrics', { key: null })).status).to.equal(403);
      expect((await apiRequest(app.url, '/healthz', { key: null })).status).to.equal(200);
      expect((await apiRequest(app.url, '/readyz', { key: null })).status).to.equal(200);
      const metrics = await app.registry.getSingleMetricAsString('aricrm_http_auth_refusals_total');
      expect(metrics).to.match(/reason="ip_not_allowed"} 2/);
    });

    it('lets allowed addresses through (127.0.0.1 in the list)', async () => {
      app = await startApiApp({ HTTP_ALLOWED_CIDRS: '127.0.0.0/8' });
      app.control.calls.set('c1', {
        id: 'c1',
        direction: 'in',
        state: 'bridged',
        from: '79161234567',
        to: '74951234567',
        startedAt: '2025-01-31T09:15:00.000Z',
        waitSec: 1,
        talkSec: 2,
        legs: [],
      });
      expect((await apiRequest(app.url, '/v1/calls/c1')).status).to.equal(200);
    });
  });

  describe('POST /v1/calls', () => {
    it('normalises the number to E.164 and answers 202 with the call and Location', async () => {
      app = await startApiApp();
      const res = await apiRequest(app.url, '/v1/calls', {
        body: {
          operator: '101',
          to: '8 (495) 765-43-21',
          variables: { dealId: 'D-17', amount: 1500, vip: true },
        },
      });
      expect(res.status).to.equal(202);
      expect(res.headers.get('location')).to.equal('/v1/calls/call-1');
      expect(Object.keys(res.body).slice(0, 2)).to.deep.equal(['id', 'status']);
      expect(res.body).to.deep.include({
        id: 'call-1',
        status: 'accepted',
        state: 'dialing_operator',
        to: '+74957654321',
      });
      expect(app.control.started[0]).to.deep.equal({
        operator: '101',
        to: '+74957654321',
        variables: { dealId: 'D-17', amount: '1500', vip: 'true' },
        tries: 1,
        triesPeriodSec: 5,
        requestedBy: 'test',
      });
    });

    it('takes tries and period from the request within bounds, else from config', async () => {
      app = await startApiApp({ CLICK_TO_CALL_TRIES: '2', CLICK_TO_CALL_TRIES_PERIOD_SEC: '3' });
      await apiRequest(app.url, '/v1/calls', { body: { operator: '101', to: '+74957654321' } });
      await apiRequest(app.url, '/v1/calls', {
        body: { operator: '101', to: '+74957654321', tries: 3, triesPeriodSec: 10 },
      });
      expect(app.control.started.map((r) => [r.tries, r.triesPeriodSec])).to.deep.equal([
        [2, 3],
        [3, 10],
      ]);
      const res = await apiRequest(app.url, '/v1/calls', {
        body: { operator: '101', to: '+74957654321', tries: 4 },
      });
      expect(res.status).to.equal(400);
      expect(res.body).to.include({ code: 'invalid_request', field: 'tries' });
    });

    it('names the field of malformed bodies', async () => {
      app = await startApiApp();
      const cases: Array<[unknown, string]> = [
        [{ to: '+74957654321' }, 'operator'],
        [{ operator: 'abc', to: '+74957654321' }, 'operator'],
        [{ operator: '101' }, 'to'],
        [{ operator: '101', to: 74957654321 }, 'to'],
        [
          { operator: '101', to: '+74957654321', variables: { 'bad key': 'x' } },
          'variables.bad key',
        ],
        [{ operator: '101', to: '+74957654321', variables: { a: { nested: 1 } } }, 'variables.a'],
        [{ operator: '101', to: '+74957654321', triesPeriodSec: 0.5 }, 'triesPeriodSec'],
        [{ operator: '101', to: '+74957654321', oprator: '102' }, 'oprator'],
        [[1, 2], 'body'],
      ];
      for (const [body, field] of cases) {
        const res = await apiRequest(app.url, '/v1/calls', { body });
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(res.body, JSON.stringify(body)).to.include({ code: 'invalid_request', field });
        expect(String(res.body.message)).to.match(new RegExp(`^${field.replace('.', '\\.')}: `));
      }
      const none = await apiRequest(app.url, '/v1/calls', { method: 'POST' });
      expect(none.body).to.include({ code: 'invalid_request', field: 'body' });
      expect(app.control.started).to.have.length(0);
    });

    it('answers 400 invalid_json for broken JSON and 415 for a body that is not JSON', async () => {
      app = await startApiApp();
      const broken = await apiRequest(app.url, '/v1/calls', { body: '{"operator": "101",' });
      expect(broken.status).to.equal(400);
      expect(broken.body).to.include({ code: 'invalid_json' });
      const form = await apiRequest(app.url, '/v1/calls', {
        body: 'operator=101',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(form.status).to.equal(415);
      expect(form.body).to.include({ code: 'unsupported_media_type' });
    });

    it('answers 400 invalid_number naming the field for numbers that are not numbers', async () => {
      app = await startApiApp();
      for (const to of ['abc', '123', '+7 495 765', '8 (495) 765-43-21-99-99']) {
        const res = await apiRequest(app.url, '/v1/calls', { body: { operator: '101', to } });
        expect(res.status, to).to.equal(400);
        expect(res.body, to).to.include({ code: 'invalid_number', field: 'to' });
        expect(String(res.body.message)).to.match(/^to: /);
      }
      expect(app.control.started).to.have.length(0);
    });

    it('refuses destinations outside the allow-list with 403, logged with the key name and counted', async () => {
      app = await startApiApp(); // default: DEFAULT_REGION (RU) only
      const res = await apiRequest(app.url, '/v1/calls', {
        body: { operator: '101', to: '+44 20 7946 0958' },
      });
      expect(res.status).to.equal(403);
      expect(res.body).to.include({ code: 'destination_not_allowed', field: 'to' });
      const log = app.logs.find((l) => l.message === 'call refused by the toll-fraud guard');
      expect(log).to.include({ reason: 'destination_not_allowed', keyName: 'test' });
      const metric = await app.registry.getSingleMetricAsString('aricrm_call_guard_refusals_total');
      expect(metric).to.include('reason="destination_not_allowed"} 1');
      expect(app.control.started).to.have.length(0);
    });

    it('rate-limits call creation per key with 429 and Retry-After', async () => {
      app = await startApiApp({
        API_KEYS: `crm:${TEST_API_KEY},shop:${OTHER_KEY}`,
        CALLS_RATE_LIMIT_PER_MIN: '2',
      });
      const body = { operator: '101', to: '+74957654321' };
      expect((await apiRequest(app.url, '/v1/calls', { body })).status).to.equal(202);
      expect((await apiRequest(app.url, '/v1/calls', { body })).status).to.equal(202);
      const limited = await apiRequest(app.url, '/v1/calls', { body });
      expect(limited.status).to.equal(429);
      expect(limited.body).to.include({ code: 'rate_limited' });
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).to.be.within(1, 60);
      // Another key has its own budget.
      expect((await apiRequest(app.url, '/v1/calls', { body, key: OTHER_KEY })).status).to.equal(
        202,
      );
      expect(app.logs.find((l) => l.reason === 'rate_limited')).to.include({ keyName: 'crm' });
    });

    it('caps engine-originated calls in progress with 429 too_many_calls', async () => {
      app = await startApiApp({ MAX_LIVE_ORIGINATED_CALLS: '2' });
      app.control.live = 2;
      const res = await apiRequest(app.url, '/v1/calls', {
        body: { operator: '101', to: '+74957654321' },
      });
      expect(res.status).to.equal(429);
      expect(res.body).to.include({ code: 'too_many_calls' });
      expect(res.headers.get('retry-after')).to.equal('10');
      app.control.live = 1;
      const ok = await apiRequest(app.url, '/v1/calls', {
        body: { operator: '101', to: '+74957654321' },
      });
      expect(ok.status).to.equal(202);
    });

    it('returns the same call for a repeated Idempotency-Key and 409 for a different body', async () => {
      app = await startApiApp({ API_KEYS: `crm:${TEST_API_KEY},shop:${OTHER_KEY}` });
      const headers = { 'idempotency-key': 'order-42' };
      const body = { operator: '101', to: '+7 495 765-43-21', variables: { a: '1', b: '2' } };
      const first = await apiRequest(app.url, '/v1/calls', { body, headers });
      // Same content written differently (key order, number format) is the same request.
      const again = await apiRequest(app.url, '/v1/calls', {
        body: { variables: { b: '2', a: '1' }, to: '84957654321', operator: '101' },
        headers,
      });
      expect(first.status).to.equal(202);
      expect(again.status).to.equal(202);
      expect(again.body).to.deep.equal(first.body);
      expect(again.headers.get('location')).to.equal(first.headers.get('location'));
      expect(again.headers.get('idempotent-replayed')).to.equal('true');
      expect(app.control.started).to.have.length(1);

      const conflict = await apiRequest(app.url, '/v1/calls', {
        body: { ...body, operator: '102' },
        headers,
      });
      expect(conflict.status).to.equal(409);
      expect(conflict.body).to.include({ code: 'idempotency_conflict' });

      // Keys are scoped per API key: another client may use the same key.
      const other = await apiRequest(app.url, '/v1/calls', { body, headers, key: OTHER_KEY });
      expect(other.status).to.equal(202);
      expect(other.body.id).to.not.equal(first.body.id);
      expect(app.control.started).to.have.length(2);
    });

    it('answers 202 only once the store holds the new call', async () => {
      app = await startApiApp();
      let commit!: (stored: boolean) => void;
      app.control.storeCommit = new Promise((resolve) => (commit = resolve));
      let answered = false;
      const pending = apiRequest(app.url, '/v1/calls', {
        body: { operator: '101', to: '+74957654321' },
      }).then((res) => {
        answered = true;
        return res;
      });
      // The call is started (the operator leg is being originated) but not answered yet.
      while (app.control.storedWaits.length === 0) await new Promise((r) => setImmediate(r));
      expect(app.control.started).to.have.length(1);
      expect(answered).to.equal(false);
      commit(true);
      const res = await pending;
      expect(res.status).to.equal(202);
      expect(app.control.storedWaits).to.deep.equal([res.body.id]);
    });

    it('answers 202 after API_STORE_WAIT_MS when the commit is slower, with a warning, and at once with 0', async () => {
      app = await startApiApp({ API_STORE_WAIT_MS: '30' });
      app.control.storeCommit = new Promise(() => undefined); // a commit that never comes
      const body = { operator: '101', to: '+74957654321' };
      const late = await apiRequest(app.url, '/v1/calls', { body });
      expect(late.status).to.equal(202);
      expect(app.control.storedWaitTimeoutsMs).to.deep.equal([30]);
      const warning = app.logs.find(
        (l) => l.message === 'click-to-call accepted before the store committed it (store slow)',
      );
      expect(warning).to.include({ callId: late.body.id, waitedMs: 30 });
      await app.close();

      app = await startApiApp({ API_STORE_WAIT_MS: '0' });
      app.control.storeCommit = new Promise(() => undefined);
      const immediate = await apiRequest(app.url, '/v1/calls', { body });
      expect(immediate.status).to.equal(202);
      expect(app.control.storedWaits).to.deep.equal([]); // the commit is not waited for
      expect(app.control.started).to.have.length(1);
    });

    it('refuses new calls with 503 store_unavailable while store writes fail, consuming no rate-limit point', async () => {
      app = await startApiApp({ CALLS_RATE_LIMIT_PER_MIN: '1' });
      app.control.storeDown = true;
      const headers = { 'idempotency-key': 'while-down' };
      const body = { operator: '101', to: '+74957654321' };
      const refused = await apiRequest(app.url, '/v1/calls', { body, headers });
      expect(refused.status).to.equal(503);
      expect(refused.body).to.include({ code: 'store_unavailable' });
      expect(refused.headers.get('retry-after')).to.equal('5');
      expect(app.control.started).to.have.length(0);
      app.control.storeDown = false;
      // The same request (same Idempotency-Key) goes through once the store writes again.
      expect((await apiRequest(app.url, '/v1/calls', { body, headers })).status).to.equal(202);
      expect(app.control.started).to.have.length(1);
    });

    it('does not remember a refused request under its Idempotency-Key', async () => {
      app = await startApiApp({ MAX_LIVE_ORIGINATED_CALLS: '1' });
      app.control.live = 1;
      const headers = { 'idempotency-key': 'retry-me' };
      const body = { operator: '101', to: '+74957654321' };
      expect((await apiRequest(app.url, '/v1/calls', { body, headers })).status).to.equal(429);
      app.control.live = 0;
      expect((await apiRequest(app.url, '/v1/calls', { body, headers })).status).to.equal(202);
    });

    it('validates the Idempotency-Key header', async () => {
      app = await startApiApp();
      const res = await apiRequest(app.url, '/v1/calls', {
        body: { operator: '101', to: '+74957654321' },
        headers: { 'idempotency-key': 'x'.repeat(300) },
      });
      expect(res.status).to.equal(400);
      expect(res.body).to.include({ code: 'invalid_request', field: 'Idempotency-Key' });
    });
  });

  describe('calls by id', () => {
    it('GET answers the snapshot, 404 call_not_found for unknown ids', async () => {
      app = await startApiApp();
      await apiRequest(app.url, '/v1/calls', { body: { operator: '101', to: '+74957654321' } });
      const res = await apiRequest(app.url, '/v1/calls/call-1');
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ id: 'call-1', state: 'dialing_operator' });
      const missing = await apiRequest(app.url, '/v1/calls/nope');
      expect(missing.status).to.equal(404);
      expect(missing.body).to.include({ code: 'call_not_found' });
    });

    it('hangup answers the ended call; 409 call_ended after; 404 for unknown', async () => {
      app = await startApiApp();
      await apiRequest(app.url, '/v1/calls', { body: { operator: '101', to: '+74957654321' } });
      const res = await apiRequest(app.url, '/v1/calls/call-1/hangup', { method: 'POST' });
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ state: 'ended' });
      const again = await apiRequest(app.url, '/v1/calls/call-1/hangup', { method: 'POST' });
      expect(again.status).to.equal(409);
      expect(again.body).to.include({ code: 'call_ended' });
      const missing = await apiRequest(app.url, '/v1/calls/nope/hangup', { method: 'POST' });
      expect(missing.status).to.equal(404);
    });

    it('while ARI is not connected: create, hangup and transfer answer 503 ari_unavailable with Retry-After, reads still answer', async () => {
      app = await startApiApp();
      await apiRequest(app.url, '/v1/calls', { body: { operator: '101', to: '+74957654321' } });
      app.control.ariUp = false;
      const commands = [
        ['/v1/calls', { operator: '101', to: '+74957654321' }],
        ['/v1/calls/call-1/hangup', undefined],
        ['/v1/calls/call-1/transfer', { to: '9999' }],
      ] as const;
      for (const [path, body] of commands) {
        const res = await apiRequest(app.url, path, { method: 'POST', body });
        expect(res.status, path).to.equal(503);
        expect(res.body, path).to.deep.equal({
          code: 'ari_unavailable',
          message: 'the engine is not connected to Asterisk; nothing was done, retry shortly',
        });
        expect(res.headers.get('retry-after'), path).to.equal('5');
      }
      expect(app.control.started).to.have.length(1);
      expect(app.control.transfers).to.deep.equal([]);
      expect((await apiRequest(app.url, '/v1/calls/call-1')).body).to.include({
        state: 'dialing_operator',
      });
      app.control.ariUp = true;
      expect(
        (await apiRequest(app.url, '/v1/calls/call-1/hangup', { method: 'POST' })).status,
      ).to.equal(200);
    });

    it('transfer: service by default, extension on request; field errors; 404/409 codes', async () => {
      app = await startApiApp();
      await apiRequest(app.url, '/v1/calls', { body: { operator: '101', to: '+74957654321' } });
      const service = await apiRequest(app.url, '/v1/calls/call-1/transfer', {
        body: { to: '9999' },
      });
      expect(service.status).to.equal(200);
      const ext = await apiRequest(app.url, '/v1/calls/call-1/transfer', {
        body: { to: '102', kind: 'extension' },
      });
      expect(ext.status).to.equal(202); // the target rings; the outcome follows by webhook
      expect(app.control.transfers).to.deep.equal([
        { callId: 'call-1', request: { kind: 'service', to: '9999' } },
        { callId: 'call-1', request: { kind: 'extension', to: '102' } },
      ]);

      const bad = await apiRequest(app.url, '/v1/calls/call-1/transfer', {
        body: { to: '1', kind: 'extension' },
      });
      expect(bad.body).to.include({ code: 'invalid_request', field: 'to' });
      const badKind = await apiRequest(app.url, '/v1/calls/call-1/transfer', {
        body: { to: '9999', kind: 'queue' },
      });
      expect(badKind.body).to.include({ code: 'invalid_request', field: 'kind' });

      const missing = await apiRequest(app.url, '/v1/calls/nope/transfer', {
        body: { to: '9999' },
      });
      expect(missing.status).to.equal(404);
      expect(missing.body).to.include({ code: 'call_not_found' });
      for (const code of [
        'call_not_bridged',
        'transfer_in_progress',
        'transfer_failed',
        'call_ended',
      ] as const) {
        app.control.transferError = new CallStateError(code, code);
        const res = await apiRequest(app.url, '/v1/calls/call-1/transfer', {
          body: { to: '9999' },
        });
        expect(res.status).to.equal(409);
        expect(res.body).to.include({ code });
      }
      app.control.transferError = new CallNotFoundError('call-1');
      expect(
        (await apiRequest(app.url, '/v1/calls/call-1/transfer', { body: { to: '9999' } })).status,
      ).to.equal(404);
    });
  });

  describe('current call', () => {
    const current = {
      callId: 'c7',
      customerChannelId: '1738314902.17',
      callerId: { number: '79161234567', name: 'Ivan' },
      direction: 'in' as const,
      state: 'bridged' as const,
    };

    it('by extension: 200, 404 no_active_call, 400 for a bad extension', async () => {
      app = await startApiApp();
      app.control.current.set('101', current);
      const res = await apiRequest(app.url, '/v1/operators/101/current-call');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal(current);
      const none = await apiRequest(app.url, '/v1/operators/102/current-call');
      expect(none.status).to.equal(404);
      expect(none.body).to.include({ code: 'no_active_call' });
      const bad = await apiRequest(app.url, '/v1/operators/1x/current-call');
      expect(bad.status).to.equal(400);
      expect(bad.body).to.include({ code: 'invalid_request', field: 'extension' });
    });

    it('by the requester IP through OPERATOR_IP_MAP; 404 unknown_workstation', async () => {
      app = await startApiApp({ OPERATOR_IP_MAP: '127.0.0.1=101,10.0.0.6=102' });
      app.control.current.set('101', current);
      const res = await apiRequest(app.url, '/v1/operators/me/current-call');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal(current);
      await app.close();

      app = await startApiApp({ OPERATOR_IP_MAP: '10.0.0.6=102' });
      const unknown = await apiRequest(app.url, '/v1/operators/me/current-call');
      expect(unknown.status).to.equal(404);
      expect(unknown.body).to.include({ code: 'unknown_workstation' });
    });

    it('behind a proxy (TRUST_PROXY): the address the proxy added, not one the client forged', async () => {
      app = await startApiApp({ OPERATOR_IP_MAP: '10.0.0.6=102', TRUST_PROXY: 'true' });
      app.control.current.set('102', { ...current, callId: 'c8' });
      const res = await apiRequest(app.url, '/v1/operators/me/current-call', {
        headers: { 'x-forwarded-for': '10.0.0.6' },
      });
      expect(res.body).to.include({ callId: 'c8' });
      const forged = await apiRequest(app.url, '/v1/operators/me/current-call', {
        headers: { 'x-forwarded-for': '10.0.0.6, 192.168.7.7' },
      });
      expect(forged.body).to.include({ code: 'unknown_workstation' });
    });
  });

  it('answers unknown routes with 404 not_found in the JSON error model', async () => {
    app = await startApiApp();
    const res = await apiRequest(app.url, '/v2/nothing');
    expect(res.status).to.equal(404);
    expect(res.body).to.include({ code: 'not_found' });
  });
});
