/**
 * End to end with CRM_CONNECTOR=amocrm: the engine on the PBX simulator talks to a fake amoCRM
 * (test/support/fake-amocrm.ts). Each test drives calls like phone users and checks the exact
 * amoCRM requests: the contact search that routes the call, the incoming-call notifications of
 * the ringing operators, the finished call with its status, result, responsible user and
 * recording link; the widget's click-to-call; and how vendor failures show in the delivery log.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { FakeAmoCrm, type AmoCrmRequest } from '../support/fake-amocrm.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
const TOKEN = 'amocrm-long-lived-token-0123456789';
const LINK_SECRET = 'amocrm-test-link-secret-0123456789abcdef';
let caller = 79261000000;
/** A fresh caller number per test. */
const nextCaller = (): string => String(++caller);

interface DeliveryRow {
  eventId: string;
  callId: string;
  eventType: string;
  url?: string;
  outcome: string;
  statusCode?: number;
  error?: string;
  at: string;
}

describe('amoCRM / Kommo connector (e2e: engine + simulator + fake amoCRM)', function () {
  this.timeout(30_000);
  let bed: TestBed | undefined;
  let amo: FakeAmoCrm;

  async function start(env: Record<string, string> = {}, reuse = false): Promise<TestBed> {
    if (!reuse) amo = await FakeAmoCrm.start(TOKEN);
    bed = await startTestBed({
      CRM_CONNECTOR: 'amocrm',
      AMOCRM_URL: amo.url,
      AMOCRM_TOKEN: amo.token,
      AMOCRM_USERS: '101:1001,102:1002,103:1003',
      FALLBACK_ROUTE: 'ringall:101:timeout=1',
      WEBHOOK_RETRY_INITIAL_DELAY_MS: '50',
      WEBHOOK_RETRY_MAX_DELAY_MS: '300',
      ...env,
    });
    return bed;
  }

  afterEach(async () => {
    await bed?.stop();
    bed = undefined;
    await amo?.close();
  });

  async function startedCall(b: TestBed, from: string): Promise<string> {
    const started = await b.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.from === from,
    );
    return started.body.callId;
  }

  /** The incoming-call notifications sent for `from`, in order. */
  function notifications(from: string): AmoCrmRequest[] {
    return amo
      .requestsTo('POST /api/v2/events')
      .filter((r) => JSON.stringify(r.body).includes(`"phone_number":"${from}"`));
  }

  async function deliveries(b: TestBed, callId: string): Promise<DeliveryRow[]> {
    const answer = await apiRequest<{ items: DeliveryRow[] }>(
      b.engine.httpUrl,
      '/v1/webhooks/deliveries?limit=500',
    );
    expect(answer.status).to.equal(200);
    return answer.body.items.filter((d) => d.callId === callId && d.url?.startsWith(amo.url));
  }

  it('inbound answered: the contact routes to its responsible user first, each ringing operator gets the notification, the call lands with status 4', async () => {
    const b = await start();
    const from = nextCaller();
    amo.contacts.push({ id: 77, name: 'Anna Smirnova', responsible_user_id: 1002, phone: from });
    b.sim.phones.set('102', { mode: 'ring' });
    b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    await b.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 3000 });
    const callId = await startedCall(b, from);
    const end = await b.crm.waitForEnded(callId, 20_000);
    const call = await amo.waitForCall(callId);

    // Route: the contact search by the caller's last 10 digits, with the token.
    const search = amo.requestsTo('GET /api/v4/contacts').at(-1)!;
    expect(search.query).to.deep.equal({ query: from.slice(-10), limit: '1' });
    expect(search.headers.authorization).to.equal(`Bearer ${TOKEN}`);
    // The responsible user's extension 102 rang first, then the fallback 101.
    const ringing = b.crm
      .eventsOf(callId)
      .filter((w) => w.body.type === 'call.ringing')
      .map((w) => w.body.data);
    expect(ringing.map((d) => d.extension)).to.deep.equal(['102', '101']);
    expect(ringing[0]!.customer).to.deep.equal({
      id: '77',
      name: 'Anna Smirnova',
      link: `${amo.url}/contacts/detail/77`,
    });
    // One notification per ringing operator, to that operator's amoCRM user.
    expect(notifications(from).map((r) => r.body)).to.deep.equal([
      { add: [{ type: 'phone_call', phone_number: from, users: [1002] }] },
      { add: [{ type: 'phone_call', phone_number: from, users: [1001] }] },
    ]);
    const cdr = end.body.data;
    expect(cdr).to.include({ disposition: 'answered', answeredBy: '101' });
    expect(call).to.deep.equal({
      direction: 'inbound',
      uniq: callId,
      duration: cdr.talkSec,
      source: 'ari-crm',
      phone: from,
      call_status: 4,
      call_result: 'Answered by 101',
      responsible_user_id: 1001,
      created_by: 1001,
      created_at: Math.floor(Date.parse(String(cdr.startedAt)) / 1000),
    });
    const calls = amo.requestsTo('POST /api/v4/calls');
    expect(calls).to.have.length(1);
    expect(calls[0]!.headers['content-type']).to.match(/^application\/json/);
    // The delivery log shows each vendor request of the call, delivered.
    const rows = await deliveries(b, callId);
    expect(rows.filter((r) => r.outcome === 'delivered').map((r) => r.url)).to.include.members([
      `${amo.url}/api/v2/events`,
      `${amo.url}/api/v4/calls`,
    ]);
    // The token never reaches the logs.
    expect(JSON.stringify(b.logs)).to.not.include(TOKEN);
  });

  it('inbound missed: nobody answers → call_status 6 "No answer", the rung operator is responsible', async () => {
    const b = await start();
    b.sim.phones.set('101', { mode: 'ring' });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(b, from);
    const end = await b.crm.waitForEnded(callId, 20_000);
    expect(end.body.data).to.include({ disposition: 'no_answer' });
    const call = await amo.waitForCall(callId);
    // No contact has the number: the fallback route, no customer.
    expect(amo.requestsTo('GET /api/v4/contacts').at(-1)!.status).to.equal(204);
    expect(notifications(from).map((r) => r.body)).to.deep.equal([
      { add: [{ type: 'phone_call', phone_number: from, users: [1001] }] },
    ]);
    expect(call).to.deep.include({
      direction: 'inbound',
      uniq: callId,
      duration: 0,
      phone: from,
      call_status: 6,
      call_result: 'No answer',
      responsible_user_id: 1001,
      created_by: 1001,
    });
    expect(call).to.not.have.property('link');
  });

  it('inbound abandoned: the caller hangs up while the phone rings → call_status 6 "Caller hung up before an answer"', async () => {
    const b = await start({ FALLBACK_ROUTE: 'ringall:101:timeout=20' });
    b.sim.phones.set('101', { mode: 'ring' });
    const from = nextCaller();
    const { channelId } = await b.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(b, from);
    await b.crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === 'call.ringing');
    b.sim.hangup(channelId);
    const end = await b.crm.waitForEnded(callId, 20_000);
    expect(end.body.data).to.include({ disposition: 'canceled', hangupBy: 'caller' });
    const call = await amo.waitForCall(callId);
    expect(call).to.deep.include({
      direction: 'inbound',
      duration: 0,
      call_status: 6,
      call_result: 'Caller hung up before an answer',
      responsible_user_id: 1001,
    });
  });

  it('inbound busy: the operator is busy → call_status 7 "Busy"', async () => {
    const b = await start();
    b.sim.phones.set('101', { mode: 'busy' });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await startedCall(b, from);
    const end = await b.crm.waitForEnded(callId, 20_000);
    expect(end.body.data).to.include({ disposition: 'busy' });
    const call = await amo.waitForCall(callId);
    expect(call).to.deep.include({
      direction: 'inbound',
      duration: 0,
      phone: from,
      call_status: 7,
      call_result: 'Busy',
    });
  });

  it("click-to-call from the widget: the user's extension rings first, then the customer; the call lands as outbound", async () => {
    const b = await start();
    const customer = '+74957654321';
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 500 });
    b.sim.customers.set('*', { mode: 'answer', answerAfterMs: 1000, hangupAfterMs: 3000 });
    // Without the API key: refused, no call.
    const anonymous = await apiRequest(b.engine.httpUrl, '/connectors/amocrm/click-to-call', {
      body: { user_id: 1002, phone: customer },
      key: null,
    });
    expect(anonymous.status).to.equal(401);
    // A user without an extension: 400 unknown_user.
    const unknown = await apiRequest(b.engine.httpUrl, '/connectors/amocrm/click-to-call', {
      body: { user_id: 999, phone: customer },
    });
    expect(unknown.status).to.equal(400);
    expect(unknown.body).to.include({ code: 'unknown_user' });

    const answer = await apiRequest<{ id: string; status: string; operator: string }>(
      b.engine.httpUrl,
      '/connectors/amocrm/click-to-call',
      { body: { user_id: 1002, phone: customer } },
    );
    expect(answer.status).to.equal(202);
    expect(answer.body).to.include({ status: 'accepted', operator: '102' });
    const callId = answer.body.id;
    const end = await b.crm.waitForEnded(callId, 20_000);
    const started = b.crm.eventsOf(callId)[0]!.body.data;
    expect(started).to.deep.include({ direction: 'out', from: '102', to: customer });
    expect(started.variables).to.deep.equal({ amocrmUserId: '1002' });
    // The operator's phone was originated first, the customer's leg only after it.
    const originate = b.sim.requests.find((r) => r.method === 'POST' && r.path === '/channels');
    expect(originate?.query).to.include({ endpoint: 'PJSIP/102' });
    const paths = b.sim.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths.indexOf('POST /channels')).to.be.below(paths.indexOf('POST /channels/create'));
    const cdr = end.body.data;
    expect(cdr).to.include({ disposition: 'answered', answeredBy: '102' });
    const call = await amo.waitForCall(callId);
    expect(call).to.deep.equal({
      direction: 'outbound',
      uniq: callId,
      duration: cdr.talkSec,
      source: 'ari-crm',
      phone: customer,
      call_status: 4,
      call_result: 'Answered by 102',
      responsible_user_id: 1002,
      created_by: 1002,
      created_at: Math.floor(Date.parse(String(cdr.startedAt)) / 1000),
    });
    // An outbound call pops no incoming-call notification.
    expect(amo.requestsTo('POST /api/v2/events')).to.have.length(0);
    // The endpoint is in the OpenAPI document.
    const doc = await apiRequest<{ paths: Record<string, Record<string, unknown>> }>(
      b.engine.httpUrl,
      '/openapi.json',
      { key: null },
    );
    expect(Object.keys(doc.body.paths['/connectors/amocrm/click-to-call'] ?? {})).to.deep.equal([
      'post',
    ]);
  });

  it("click-to-call from a widget in the operator's browser: an operator token calls from its own extension only", async () => {
    const b = await start();
    b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
    b.sim.customers.set('*', { mode: 'answer', answerAfterMs: 300, hangupAfterMs: 1000 });
    const minted = await apiRequest<{ token: string }>(
      b.engine.httpUrl,
      '/v1/operators/101/tokens',
      {
        body: { ttlSec: 300 },
      },
    );
    expect(minted.status).to.equal(201);
    const withToken = { authorization: `Bearer ${minted.body.token}` };
    // Another user's extension: refused, no call.
    const other = await apiRequest(b.engine.httpUrl, '/connectors/amocrm/click-to-call', {
      body: { user_id: 1002, phone: '+74957654321' },
      key: null,
      headers: withToken,
    });
    expect(other.status).to.equal(403);
    expect(other.body).to.include({ code: 'extension_not_allowed' });
    expect(
      b.sim.requests.filter((r) => r.method === 'POST' && r.path === '/channels'),
    ).to.have.length(0);
    // Its own: 101 rings first.
    const own = await apiRequest<{ id: string; operator: string }>(
      b.engine.httpUrl,
      '/connectors/amocrm/click-to-call',
      { body: { user_id: 1001, phone: '+74957654321' }, key: null, headers: withToken },
    );
    expect(own.status).to.equal(202);
    expect(own.body).to.include({ operator: '101' });
    const end = await b.crm.waitForEnded(own.body.id, 20_000);
    expect(end.body.data).to.include({ disposition: 'answered', answeredBy: '101' });
  });

  it('click-to-call from the widget passes the toll-fraud guard of POST /v1/calls', async () => {
    const b = await start({ DESTINATION_ALLOWLIST: 'RU' });
    const answer = await apiRequest(b.engine.httpUrl, '/connectors/amocrm/click-to-call', {
      body: 'user_id=1001&phone=%2B4930123456',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(answer.status).to.equal(403);
    expect(answer.body).to.include({ code: 'destination_not_allowed' });
    expect(
      b.sim.requests.filter((r) => r.method === 'POST' && r.path === '/channels'),
    ).to.have.length(0);
  });

  it('recorded call: added once the recording is stored, with the signed link that plays it', async () => {
    const b = await start({ RECORD_CALLS: 'all', RECORDING_LINK_SECRET: LINK_SECRET });
    b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 15_000 });
    const callId = await startedCall(b, from);
    const end = await b.crm.waitForEnded(callId, 20_000);
    const recordingUrl = String(end.body.data.recordingUrl);
    expect(recordingUrl).to.match(/\/v1\/calls\/[^/]+\/recording\?/);
    const call = await amo.waitForCall(callId, 25_000);
    expect(call).to.include({ call_status: 4, link: recordingUrl });
    // When amoCRM got the call the recording was stored: the link plays.
    const audio = await fetch(recordingUrl);
    expect(audio.status).to.equal(200);
    expect(amo.requestsTo('POST /api/v4/calls')).to.have.length(1);
  });

  it('vendor failures: 401 retried until the token works again, 429 waits Retry-After, 500 retried, 400 rejected with the message in the delivery log', async () => {
    const b = await start();
    b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });

    // 401: the token was revoked; the call waits in the outbox and goes once it works again.
    amo.token = 'revoked-token';
    const first = nextCaller();
    await b.sim.injectInboundCall({ from: first, to: DID, hangupAfterMs: 1000 });
    const firstId = await startedCall(b, first);
    await b.crm.waitForEnded(firstId, 20_000);
    // Events of a call go in order: the notification is refused first, the call waits behind it.
    await until(
      () => amo.requests.filter((r) => r.status === 401).length >= 2,
      'two refused requests',
      20_000,
    );
    const refused = (await deliveries(b, firstId)).filter((r) => r.statusCode === 401);
    expect(refused.length).to.be.at.least(1);
    expect(refused[0]).to.include({ outcome: 'failed', url: `${amo.url}/api/v2/events` });
    expect(refused[0]!.error).to.include('HTTP 401');
    expect(amo.requestsTo('POST /api/v4/calls')).to.have.length(0);
    amo.token = TOKEN;
    await amo.waitForCall(firstId, 20_000);

    // 429 with Retry-After: 1 → the next attempt a second later; then 500 → retried.
    amo.failNext('POST /api/v4/calls', {
      status: 429,
      headers: { 'retry-after': '1' },
      body: { title: 'Too Many Requests', status: 429 },
    });
    amo.failNext('POST /api/v4/calls', { status: 500, body: { title: 'Internal Server Error' } });
    const second = nextCaller();
    await b.sim.injectInboundCall({ from: second, to: DID, hangupAfterMs: 1000 });
    const secondId = await startedCall(b, second);
    await amo.waitForCall(secondId, 20_000);
    const tries = amo
      .requestsTo('POST /api/v4/calls')
      .filter((r) => JSON.stringify(r.body).includes(secondId));
    expect(tries.map((r) => r.status)).to.deep.equal([429, 500, 200]);
    expect(tries[1]!.at - tries[0]!.at).to.be.at.least(900);
    await until(async () => {
      const rows = await deliveries(b, secondId);
      return rows.filter((r) => r.eventType === 'call.ended').length === 3;
    }, 'three delivery log rows of the call');
    const secondRows = (await deliveries(b, secondId)).filter((r) => r.eventType === 'call.ended');
    // Newest first.
    expect(secondRows.map((r) => [r.outcome, r.statusCode])).to.deep.equal([
      ['delivered', 200],
      ['failed', 500],
      ['failed', 429],
    ]);

    // 400 validation error: settled rejected with amoCRM's message, not retried.
    amo.failNext('POST /api/v4/calls', {
      status: 400,
      body: {
        'validation-errors': [
          {
            request_id: '0',
            errors: [
              {
                code: 'NotSupportedChoice',
                path: 'direction',
                detail: 'The value you selected is not a valid choice.',
              },
            ],
          },
        ],
        title: 'Bad Request',
        type: 'https://httpstatus.es/400',
        status: 400,
        detail: 'Request validation failed',
      },
    });
    const third = nextCaller();
    await b.sim.injectInboundCall({ from: third, to: DID, hangupAfterMs: 1000 });
    const thirdId = await startedCall(b, third);
    await amo.waitFor(
      (r) => r.path === '/api/v4/calls' && r.status === 400,
      20_000,
      'the refused call',
    );
    let rejected: DeliveryRow | undefined;
    await until(async () => {
      rejected = (await deliveries(b, thirdId)).find((r) => r.outcome === 'rejected');
      return rejected !== undefined;
    }, 'the rejected row in the delivery log');
    expect(rejected, 'a rejected row in the delivery log').to.not.equal(undefined);
    expect(rejected).to.include({ eventType: 'call.ended', statusCode: 400 });
    expect(rejected!.error).to.include('Request validation failed').and.include('direction');
    expect(
      amo.requestsTo('POST /api/v4/calls').filter((r) => JSON.stringify(r.body).includes(thirdId)),
    ).to.have.length(1);
  });

  it('a revoked token: the calls wait in the outbox; with a new token after a restart they go, in order', async function () {
    const dataDir = mkdtempSync(join(tmpdir(), 'ari-crm-amocrm-'));
    try {
      const b = await start({ DATA_DIR: dataDir, SHUTDOWN_TIMEOUT_MS: '200' });
      amo.token = 'amocrm-new-long-lived-token-987654321';
      b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
      const from = nextCaller();
      await b.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 1000 });
      const callId = await startedCall(b, from);
      await b.crm.waitForEnded(callId, 20_000);
      await until(() => amo.requests.some((r) => r.status === 401), 'a refused request');
      expect(b.engine.connector!.delivery.pending()).to.be.greaterThan(0);
      await b.stop();
      bed = undefined;
      expect(amo.requestsTo('POST /api/v4/calls').filter((r) => r.status === 200)).to.have.length(
        0,
      );

      // The administrator generates a new token, sets AMOCRM_TOKEN and restarts the engine.
      const restarted = await start({ DATA_DIR: dataDir }, true);
      expect(restarted).to.not.equal(undefined);
      const call = await amo.waitForCall(callId, 20_000);
      expect(call).to.include({ uniq: callId, call_status: 4, phone: from });
      const accepted = amo.requests.filter((r) => r.status !== 401);
      const notified = accepted.findIndex((r) => r.path === '/api/v2/events');
      const added = accepted.findIndex((r) => r.path === '/api/v4/calls');
      expect(notified).to.be.within(0, added - 1);
    } finally {
      await bed?.stop();
      bed = undefined;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
