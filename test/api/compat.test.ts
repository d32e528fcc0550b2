/**
 * The asterisk.fcgi-compatible path over a fake CallControl: text answers, operator
 * from the client address, API key in the query, the same guard as /v1.
 */
import { expect } from 'chai';
import type { CallSnapshot } from '../../src/calls/model.ts';
import { apiRequest } from '../support/api.ts';
import { TEST_API_KEY } from '../support/engine.ts';
import { startApiApp, type ApiTestApp } from './support/app.ts';

const MAPPED = { OPERATOR_IP_MAP: '127.0.0.1=101' };

/** Once the fake's call `id` exists, move it to `change` after `ms` more. */
function progress(app: ApiTestApp, id: string, ms: number, change: Partial<CallSnapshot>): void {
  const timer = setInterval(() => {
    const call = app.control.calls.get(id);
    if (!call) return;
    clearInterval(timer);
    setTimeout(() => app.control.update(id, change), ms);
  }, 2);
}

describe('compat path /asterisk.fcgi (fake call control)', () => {
  let app: ApiTestApp;
  afterEach(async () => {
    await app?.close();
  });

  it('makecall: rings the mapped operator and answers Answer: OK once the customer rings', async () => {
    app = await startApiApp({
      ...MAPPED,
      CLICK_TO_CALL_TRIES: '2',
      CLICK_TO_CALL_TRIES_PERIOD_SEC: '4',
    });
    progress(app, 'call-1', 30, { state: 'customer_ringing' });
    const res = await apiRequest(app.url, '/asterisk.fcgi?makecall=8%20(495)%20765-43-21');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    expect(res.text).to.equal('Answer: OK\n');
    expect(res.headers.get('x-call-id')).to.equal('call-1');
    expect(app.control.started[0]).to.deep.include({
      operator: '101',
      to: '+74957654321',
      tries: 2,
      triesPeriodSec: 4,
      requestedBy: 'test',
    });
  });

  it('makecall: Answer: Busy when the line stayed busy, Answer: Error when it failed', async () => {
    app = await startApiApp(MAPPED);
    progress(app, 'call-1', 20, {
      state: 'ended',
      disposition: 'busy',
      endReason: 'operator_unreachable',
    });
    const busy = await apiRequest(app.url, '/asterisk.fcgi?makecall=74957654321');
    expect(busy.text).to.equal('Answer: Busy\n');
    expect(busy.headers.get('x-error-code')).to.equal('operator_unreachable');
    progress(app, 'call-2', 20, { state: 'ended', disposition: 'no_answer' });
    const failed = await apiRequest(app.url, '/asterisk.fcgi?makecall=74957654321');
    expect(failed.status).to.equal(200);
    expect(failed.text).to.equal('Answer: Error\n');
  });

  it('makecall: Answer: Error when no operator sits at the client address', async () => {
    app = await startApiApp({ OPERATOR_IP_MAP: '10.0.0.5=101' });
    const res = await apiRequest(app.url, '/asterisk.fcgi?makecall=74957654321');
    expect(res.status).to.equal(200);
    expect(res.text).to.equal('Answer: Error\n');
    expect(res.headers.get('x-error-code')).to.equal('unknown_workstation');
    expect(app.control.started).to.have.length(0);
  });

  it('makecall: the guard applies (destination, premium-rate numbers, rate limit with Retry-After)', async () => {
    app = await startApiApp({ ...MAPPED, CALLS_RATE_LIMIT_PER_MIN: '1' });
    const foreign = await apiRequest(app.url, '/asterisk.fcgi?makecall=%2B442079460958');
    expect(foreign.status).to.equal(403);
    expect(foreign.text).to.equal('Answer: Error\n');
    expect(foreign.headers.get('x-error-code')).to.equal('destination_not_allowed');
    const premium = await apiRequest(app.url, '/asterisk.fcgi?makecall=88095051234');
    expect(premium.status).to.equal(403);
    expect(premium.text).to.equal('Answer: Error\n');
    expect(premium.headers.get('x-error-code')).to.equal('destination_type_not_allowed');
    expect(app.control.started).to.have.length(0);
    progress(app, 'call-1', 10, { state: 'bridged' });
    expect((await apiRequest(app.url, '/asterisk.fcgi?makecall=74957654321')).text).to.equal(
      'Answer: OK\n',
    );
    const limited = await apiRequest(app.url, '/asterisk.fcgi?makecall=74957654321');
    expect(limited.status).to.equal(429);
    expect(limited.text).to.equal('Answer: Error\n');
    expect(limited.headers.get('x-error-code')).to.equal('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).to.be.within(1, 60);
  });

  it('makecall: Answer: Error store_unavailable (503, Retry-After) while store writes fail; no call placed', async () => {
    app = await startApiApp(MAPPED);
    app.control.storeDown = true;
    const res = await apiRequest(app.url, '/asterisk.fcgi?makecall=74957654321');
    expect(res.status).to.equal(503);
    expect(res.text).to.equal('Answer: Error\n');
    expect(res.headers.get('x-error-code')).to.equal('store_unavailable');
    expect(res.headers.get('retry-after')).to.equal('5');
    expect(app.control.started).to.have.length(0);
  });

  it('makecall: Answer: Error ari_unavailable (503, Retry-After) while ARI is not connected; no call placed', async () => {
    app = await startApiApp(MAPPED);
    app.control.ariUp = false;
    const res = await apiRequest(app.url, '/asterisk.fcgi?makecall=74957654321');
    expect(res.status).to.equal(503);
    expect(res.text).to.equal('Answer: Error\n');
    expect(res.headers.get('x-error-code')).to.equal('ari_unavailable');
    expect(res.headers.get('retry-after')).to.equal('5');
    expect(app.control.started).to.have.length(0);
  });

  it('makecall: an unparseable number is a 400 Answer: Error', async () => {
    app = await startApiApp(MAPPED);
    const res = await apiRequest(app.url, '/asterisk.fcgi?makecall=abc');
    expect(res.status).to.equal(400);
    expect(res.text).to.equal('Answer: Error\n');
    expect(res.headers.get('x-error-code')).to.equal('invalid_number');
  });

  it('get_uniqueid_callerid: the current call of the operator at this address', async () => {
    app = await startApiApp(MAPPED);
    const none = await apiRequest(app.url, '/asterisk.fcgi?get_uniqueid_callerid');
    expect(none.text).to.equal('Answer: Error\n');
    app.control.current.set('101', {
      callId: 'c1',
      customerChannelId: '1738314902.17',
      callerId: { number: '79161234567', name: '' },
      direction: 'in',
      state: 'operator_ringing',
    });
    const res = await apiRequest(app.url, '/asterisk.fcgi?get_uniqueid_callerid');
    expect(res.status).to.equal(200);
    expect(res.text).to.equal('Answer: OK\nCallerID: 79161234567\nUniqueID: 1738314902.17\n');
  });

  it('transfer: finds the call by the customer UniqueID and sends it to the service number', async () => {
    app = await startApiApp({ OPERATOR_IP_MAP: '127.0.0.1=101,10.0.0.6=102' });
    app.control.calls.set('c2', {
      id: 'c2',
      direction: 'in',
      state: 'bridged',
      from: '79161234567',
      to: '74951234567',
      startedAt: '2025-01-31T09:15:00.000Z',
      waitSec: 1,
      talkSec: 5,
      legs: [],
    });
    app.control.current.set('102', {
      callId: 'c2',
      customerChannelId: '1738314902.20',
      callerId: { number: '79161234567', name: '' },
      direction: 'in',
      state: 'bridged',
    });
    const res = await apiRequest(app.url, '/asterisk.fcgi?transfer=1738314902.20&dest=9999');
    expect(res.text).to.equal('Answer: OK\n');
    expect(app.control.transfers).to.deep.equal([
      { callId: 'c2', request: { kind: 'service', to: '9999' } },
    ]);
    const unknown = await apiRequest(app.url, '/asterisk.fcgi?transfer=nope&dest=9999');
    expect(unknown.text).to.equal('Answer: Error\n');
    expect(unknown.headers.get('x-error-code')).to.equal('call_not_found');
    const noDest = await apiRequest(app.url, '/asterisk.fcgi?transfer=1738314902.20');
    expect(noDest.status).to.equal(400);
    expect(noDest.text).to.equal('Answer: Error\n');
  });

  it('takes the API key from ?api_key= or the header; refuses without in the same text format', async () => {
    app = await startApiApp(MAPPED);
    const noKey = await apiRequest(app.url, '/asterisk.fcgi?get_uniqueid_callerid', { key: null });
    expect(noKey.status).to.equal(401);
    expect(noKey.text).to.equal('Answer: Error\n');
    expect(noKey.headers.get('x-error-code')).to.equal('unauthorized');
    const wrong = await apiRequest(
      app.url,
      '/asterisk.fcgi?get_uniqueid_callerid&api_key=nope-nope-nope',
      {
        key: null,
      },
    );
    expect(wrong.status).to.equal(403);
    expect(wrong.headers.get('x-error-code')).to.equal('forbidden');
    const query = await apiRequest(
      app.url,
      `/asterisk.fcgi?get_uniqueid_callerid&api_key=${TEST_API_KEY}`,
      { key: null },
    );
    expect(query.status).to.equal(200);
    expect(app.rawLogs.join('\n')).to.not.include(TEST_API_KEY);
  });

  it('serves the configured COMPAT_PATH; unknown commands are 400, autocall is 501', async () => {
    app = await startApiApp({ ...MAPPED, COMPAT_PATH: '/fcgi-bin/asterisk.fcgi' });
    expect(
      (await apiRequest(app.url, '/fcgi-bin/asterisk.fcgi?get_uniqueid_callerid')).status,
    ).to.equal(200);
    expect((await apiRequest(app.url, '/asterisk.fcgi?get_uniqueid_callerid')).status).to.equal(
      404,
    );
    const nothing = await apiRequest(app.url, '/fcgi-bin/asterisk.fcgi');
    expect(nothing.status).to.equal(400);
    expect(nothing.text).to.equal('Answer: Error\n');
    const autocall = await apiRequest(
      app.url,
      '/fcgi-bin/asterisk.fcgi?autocall=74957654321&file1=x',
    );
    expect(autocall.status).to.equal(501);
    expect(autocall.headers.get('x-error-code')).to.equal('not_implemented');
  });
});
