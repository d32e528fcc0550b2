/**
 * The retailCRM connector end to end: the engine on the simulator with CRM_CONNECTOR=retailcrm
 * against a fake retailCRM (test/support/fake-retailcrm.ts). Asserts the exact requests the CRM
 * gets: the route lookup, the call events, the call history uploads (and the second one with the
 * recording), the click-to-call endpoint, vendor errors (429, 500, validation) through the
 * durable outbox and the delivery log, and the module registration command.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConnectorCommand } from '../../src/connectors/cli.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import {
  FakeRetailCrm,
  validationError,
  type RetailCrmRequest,
} from '../support/fake-retailcrm.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
const CLIENT_ID = 'retailcrm-client-id-0123456789';
const EVENT = '/api/v5/telephony/call/event';
const UPLOAD = '/api/v5/telephony/calls/upload';
const DATE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

let callerSeq = 0;
const nextCaller = (): string => `7916555${String(7000 + ++callerSeq).padStart(4, '0')}`;

describe('retailCRM connector (e2e)', function () {
  this.timeout(30_000);
  let bed: TestBed | undefined;
  let crm: FakeRetailCrm;
  let statusChanges: Array<[string, string]>;

  beforeEach(async () => {
    crm = await FakeRetailCrm.start();
    statusChanges = [];
  });
  afterEach(async () => {
    await bed?.stop();
    bed = undefined;
    await crm.close();
  });

  async function start(env: Record<string, string> = {}): Promise<TestBed> {
    bed = await startTestBed(
      {
        CRM_CONNECTOR: 'retailcrm',
        RETAILCRM_URL: crm.url,
        RETAILCRM_API_KEY: crm.apiKey,
        RETAILCRM_CLIENT_ID: CLIENT_ID,
        RETAILCRM_TIME_ZONE: 'Europe/Moscow',
        FALLBACK_ROUTE: 'ringall:102',
        WEBHOOK_RETRY_INITIAL_DELAY_MS: '50',
        WEBHOOK_RETRY_MAX_DELAY_MS: '200',
        ...env,
      },
      {
        setOperatorStatus: (extension, status) => {
          statusChanges.push([extension, status]);
          return Promise.resolve();
        },
      },
    );
    return bed;
  }

  /** The engine's call id of the inbound call from `from` (its `call.started` webhook). */
  async function callOf(b: TestBed, from: string): Promise<string> {
    const started = await b.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.from === from,
      15_000,
    );
    return started.body.callId;
  }

  /** The call's upload request (the first, or the one with a recording). */
  function uploadOf(callId: string, withRecording = false): Promise<RetailCrmRequest> {
    return crm.waitFor(
      (r) =>
        r.path === UPLOAD &&
        r.calls?.[0]?.externalId === callId &&
        'recordUrl' in (r.calls[0] ?? {}) === withRecording,
    );
  }

  it('inbound answered: asks telephony/manager, rings the manager first with the customer name, sends in/hangup and uploads the call', async () => {
    crm.manager = () => ({
      status: 200,
      body: {
        success: true,
        manager: { id: 7, firstName: 'Inna', code: '101' },
        customer: { id: 42, firstName: 'Ivan', lastName: 'Petrov' },
        links: { customerLink: 'https://shop.retailcrm.ru/customers/42' },
      },
    });
    const b = await start();
    b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 3000 });
    const callId = await callOf(b, from);
    const upload = await uploadOf(callId);

    // Route lookup: GET with the caller and details=1, the API key in X-API-KEY.
    const lookup = crm.requests.find((r) => r.path === '/api/v5/telephony/manager')!;
    expect(lookup.method).to.equal('GET');
    expect(lookup.query).to.deep.equal({ phone: from, details: '1' });
    expect(lookup.headers['x-api-key']).to.equal(crm.apiKey);
    // The manager's phone rang with the customer's name behind the prefix.
    const create = b.sim.requests.find((r) => r.method === 'POST' && r.path === '/channels/create');
    expect(create!.query).to.include({ endpoint: 'PJSIP/101' });
    expect(JSON.stringify(create!.body)).to.include('"CALLERID(name)":"CRM: Petrov Ivan"');
    // The webhook's call.ringing carries the customer with the card link.
    const ringing = b.crm.eventsOf(callId).find((w) => w.body.type === 'call.ringing')!;
    expect(ringing.body.data.customer).to.deep.equal({
      id: '42',
      name: 'Petrov Ivan',
      link: 'https://shop.retailcrm.ru/customers/42',
    });

    const events = crm.to(EVENT, callId);
    expect(events.map((r) => r.headers['content-type'])).to.satisfy((types: string[]) =>
      types.every((t) => t.startsWith('application/x-www-form-urlencoded')),
    );
    expect(events.map((r) => r.event)).to.deep.equal([
      { phone: from, type: 'in', codes: ['101'], callExternalId: callId, externalPhone: DID },
      {
        phone: from,
        type: 'hangup',
        codes: ['101'],
        hangupStatus: 'answered',
        callExternalId: callId,
        externalPhone: DID,
      },
    ]);
    const end = await b.crm.waitForEnded(callId);
    expect(upload.calls).to.have.length(1);
    const call = upload.calls![0]!;
    expect(call).to.deep.equal({
      date: call.date,
      type: 'in',
      phone: from,
      code: '101',
      result: 'answered',
      duration: end.body.data.talkSec,
      durationWaiting: end.body.data.waitSec,
      externalId: callId,
      externalPhone: DID,
    });
    expect(call.date).to.match(DATE);
    // Moscow is UTC+3.
    const utc = new Date(String(end.body.data.startedAt));
    expect(Number(String(call.date).slice(11, 13))).to.equal((utc.getUTCHours() + 3) % 24);
    // Events of the call went in order: the upload after the hang-up event.
    expect(crm.requests.indexOf(upload)).to.be.greaterThan(crm.requests.indexOf(events[1]!));
  });

  it('missed: nobody answers the fallback route → hangupStatus "no answered", result "no answer"', async () => {
    const b = await start({ FALLBACK_ROUTE: 'ringall:102:timeout=5' });
    b.sim.phones.set('102', { mode: 'ring' });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    const upload = await uploadOf(callId);
    const hangup = crm.to(EVENT, callId).find((r) => r.event?.type === 'hangup')!;
    expect(hangup.event).to.deep.equal({
      phone: from,
      type: 'hangup',
      codes: ['102'],
      hangupStatus: 'no answered',
      callExternalId: callId,
      externalPhone: DID,
    });
    expect(upload.calls![0]).to.include({
      type: 'in',
      phone: from,
      code: '102',
      result: 'no answer',
      duration: 0,
      externalId: callId,
    });
  });

  it('abandoned: the caller hangs up while the phone rings → hangupStatus "cancel", result "no answer"', async () => {
    const b = await start();
    b.sim.phones.set('102', { mode: 'ring' });
    const from = nextCaller();
    const { channelId } = await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    await crm.waitFor((r) => r.event?.callExternalId === callId && r.event.type === 'in');
    b.sim.hangup(channelId);
    const upload = await uploadOf(callId);
    const hangup = crm.to(EVENT, callId).find((r) => r.event?.type === 'hangup')!;
    expect(hangup.event).to.include({ hangupStatus: 'cancel', phone: from });
    expect(hangup.event!.codes).to.deep.equal(['102']);
    expect(upload.calls![0]).to.include({ result: 'no answer', duration: 0, code: '102' });
  });

  it('busy: the operator is busy → hangupStatus "busy", result "busy"', async () => {
    const b = await start();
    b.sim.phones.set('102', { mode: 'busy' });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    const upload = await uploadOf(callId);
    const hangup = crm.to(EVENT, callId).find((r) => r.event?.type === 'hangup')!;
    expect(hangup.event).to.include({ hangupStatus: 'busy' });
    expect(upload.calls![0]).to.include({ result: 'busy', type: 'in' });
  });

  it('click-to-call from the CRM (makeCallUrl): rings the operator, then the customer; sends "out" and uploads an outgoing call', async () => {
    const b = await start();
    b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    b.sim.customers.set('*', { mode: 'answer', answerAfterMs: 500, hangupAfterMs: 1000 });
    const answer = await apiRequest(b.engine.httpUrl, '/connectors/retailcrm/make-call', {
      method: 'POST',
      key: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        clientId: CLIENT_ID,
        code: '101',
        phone: '+74957654321',
        userId: '7',
        externalPhone: DID,
      }).toString(),
    });
    expect(answer.status).to.equal(200);
    expect(answer.body).to.include({ success: true });
    const callId = String(answer.body.callId);
    const upload = await uploadOf(callId);
    // The operator's phone was dialled before the customer's.
    const dials = b.sim.requests
      .filter((r) => r.method === 'POST' && /^\/channels(\/create)?$/.test(r.path))
      .map((r) => String(r.query.endpoint ?? (r.body as Record<string, unknown>)?.endpoint));
    expect(dials[0]).to.equal('PJSIP/101');
    expect(dials.slice(1).some((e) => e.includes('74957654321'))).to.equal(true);
    const events = crm.to(EVENT, callId).map((r) => r.event);
    expect(events[0]).to.deep.equal({
      phone: '+74957654321',
      type: 'out',
      codes: ['101'],
      callExternalId: callId,
    });
    expect(events[1]).to.include({ type: 'hangup', hangupStatus: 'answered' });
    expect(upload.calls![0]).to.include({
      type: 'out',
      phone: '+74957654321',
      code: '101',
      result: 'answered',
    });
  });

  it('refuses makeCallUrl with a wrong clientId (403) and starts no call', async () => {
    const b = await start();
    const answer = await apiRequest(
      b.engine.httpUrl,
      `/connectors/retailcrm/make-call?clientId=wrong&code=101&phone=%2B74957654321`,
      { key: null },
    );
    expect(answer.status).to.equal(403);
    expect(answer.body).to.include({ code: 'invalid_client_id' });
    expect(b.engine.calls.liveOriginatedCalls()).to.equal(0);
    expect(b.sim.requests.some((r) => r.path === '/channels/create')).to.equal(false);
    // The endpoints are in the OpenAPI document of an engine with the connector.
    const doc = await apiRequest<{ paths: Record<string, Record<string, unknown>> }>(
      b.engine.httpUrl,
      '/openapi.json',
      { key: null },
    );
    for (const path of ['/connectors/retailcrm/make-call', '/connectors/retailcrm/user-status'])
      expect(Object.keys(doc.body.paths[path] ?? {})).to.deep.equal(['get', 'post']);
  });

  it('refuses a click-to-call to a number the toll-fraud guard denies', async () => {
    const b = await start({ DESTINATION_ALLOWLIST: 'RU' });
    const answer = await apiRequest(
      b.engine.httpUrl,
      `/connectors/retailcrm/make-call?clientId=${CLIENT_ID}&code=101&phone=%2B4930123456`,
      { key: null },
    );
    expect(answer.status).to.equal(403);
    expect(answer.body).to.include({ code: 'destination_not_allowed' });
  });

  it('changeUserStatusUrl: maps retailCRM statuses to operator statuses by the module codes', async () => {
    crm.additionalCodes = [{ userId: 7, code: '101' }];
    const b = await start();
    await crm.waitFor((r) => r.path === '/api/v5/integration-modules/ari-crm');
    // The directory loads asynchronously at start: retry until the user is known.
    let answer = { status: 0, body: {} as Record<string, unknown> };
    await until(async () => {
      answer = await apiRequest(
        b.engine.httpUrl,
        `/connectors/retailcrm/user-status?clientId=${CLIENT_ID}&userId=7&status=dinner`,
        { key: null },
      );
      return answer.status !== 400;
    }, 'the user directory loaded');
    expect(answer.status).to.equal(200);
    expect(answer.body).to.deep.equal({
      success: true,
      extension: '101',
      status: 'break',
      applied: true,
    });
    expect(statusChanges).to.deep.equal([['101', 'break']]);
    const bad = await apiRequest(
      b.engine.httpUrl,
      `/connectors/retailcrm/user-status?clientId=${CLIENT_ID}&code=101&status=sleeping`,
      { key: null },
    );
    expect(bad.status).to.equal(400);
  });

  it('uploads the call again with recordUrl once the recording is ready', async () => {
    const b = await start({ RECORD_CALLS: 'all', RECORDING_LINK_SECRET: 'x'.repeat(32) });
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 500 });
    const from = nextCaller();
    // 300 ms of real talk: the bridge and its recording are up before the hang-up.
    await b.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 15_000 });
    const callId = await callOf(b, from);
    const first = await uploadOf(callId, false);
    const second = await uploadOf(callId, true);
    const ready = await b.crm.waitForWebhook(
      (w) => w.body.type === 'recording.ready' && w.body.callId === callId,
      15_000,
    );
    expect(first.calls![0]).to.not.have.property('recordUrl');
    const { recordUrl, ...rest } = second.calls![0]!;
    expect(recordUrl).to.equal(ready.body.data.recordingUrl);
    expect(rest).to.deep.equal(first.calls![0]);
    // The link plays the recording.
    const audio = await fetch(String(recordUrl));
    expect(audio.status).to.equal(200);
  });

  it('vendor 429 and 500: retried (no sooner than Retry-After), delivered in order, failed attempts in the delivery log', async () => {
    const b = await start();
    crm.script(
      EVENT,
      {
        status: 429,
        body: { success: false, errorMsg: 'Too Many Requests' },
        headers: { 'retry-after': '1' },
      },
      { status: 500, body: { success: false, errorMsg: 'Internal error' } },
    );
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    await uploadOf(callId);
    const attempts = crm.to(EVENT).filter((r) => r.form.event?.includes(callId));
    // in: 429, 500, 200; then hangup: 200.
    expect(attempts.map((r) => r.event!.type)).to.deep.equal(['in', 'in', 'in', 'hangup']);
    expect(attempts[1]!.at - attempts[0]!.at).to.be.at.least(950);
    const log = await apiRequest<{ items: Array<Record<string, unknown>> }>(
      b.engine.httpUrl,
      '/v1/webhooks/deliveries?status=failed',
    );
    const failed = log.body.items.filter(
      (d) => d.callId === callId && String(d.url).endsWith(EVENT),
    );
    expect(failed.map((d) => d.statusCode).sort()).to.deep.equal([429, 500]);
    expect(failed.every((d) => d.outcome === 'failed')).to.equal(true);
    const metric = await b.engine.registry.getSingleMetricAsString(
      'aricrm_connector_deliveries_total',
    );
    expect(metric).to.match(/outcome="retried"} [2-9]/);
  });

  it('vendor validation error: the event is rejected with the vendor message (delivery log), later requests still go', async () => {
    const b = await start();
    crm.script(UPLOAD, validationError('calls[0][phone]', 'Phone is invalid'));
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    await uploadOf(callId);
    // Rejected: not retried.
    let log = { body: { items: [] as Array<Record<string, unknown>> } };
    await until(async () => {
      log = await apiRequest<{ items: Array<Record<string, unknown>> }>(
        b.engine.httpUrl,
        '/v1/webhooks/deliveries?status=failed',
      );
      return log.body.items.some((d) => d.callId === callId);
    }, 'the rejected delivery in the log');
    const rejected = log.body.items.find((d) => d.callId === callId)!;
    expect(rejected).to.include({ outcome: 'rejected', statusCode: 400, eventType: 'call.ended' });
    expect(String(rejected.error)).to.include('Phone is invalid');
    expect(String(rejected.url)).to.equal(crm.url + UPLOAD);
    expect(crm.to(UPLOAD, callId)).to.have.length(1);
    // The hang-up event of that call.ended went before the refused upload.
    expect(crm.to(EVENT, callId).map((r) => r.event!.type)).to.deep.equal(['in', 'hangup']);
    // The webhook of the same event was delivered: the targets are independent.
    await b.crm.waitForEnded(callId);
  });

  it('keeps undelivered retailCRM requests across a restart and sends them once the CRM is back', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ari-crm-retailcrm-'));
    try {
      crm.down = { status: 503, body: { success: false, errorMsg: 'maintenance' } };
      const b = await start({ DATA_DIR: dataDir, SHUTDOWN_TIMEOUT_MS: '200' });
      b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
      const from = nextCaller();
      await b.sim.injectInboundCall({ from, to: DID });
      const callId = await callOf(b, from);
      await b.crm.waitForEnded(callId, 15_000);
      expect(b.engine.connector!.delivery.pending()).to.be.greaterThan(0);
      await b.stop();
      bed = undefined;
      expect(crm.to(UPLOAD, callId)).to.have.length(0);

      crm.down = undefined;
      await start({ DATA_DIR: dataDir });
      const upload = await uploadOf(callId);
      expect(upload.calls![0]).to.include({ type: 'in', phone: from, result: 'answered' });
      const delivered = crm.requests.filter(
        (r) => r.event?.callExternalId === callId && r.headers['x-api-key'] === crm.apiKey,
      );
      // In order: the incoming-call event, then the hang-up (the route lookup was not queued).
      const kinds = delivered.filter((r) => r.at >= delivered[0]!.at).map((r) => r.event!.type);
      expect(kinds.slice(-2)).to.deep.equal(['in', 'hangup']);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('npm run connector -- retailcrm register: POSTs integration-modules/{code}/edit with the telephony module', async () => {
    crm.additionalCodes = [
      { userId: 3, code: '01' },
      { userId: 4, code: '02' },
    ];
    const out: string[] = [];
    const err: string[] = [];
    const status = await runConnectorCommand(
      ['retailcrm', 'register'],
      (l) => out.push(l),
      (l) => err.push(l),
      {
        RETAILCRM_URL: crm.url,
        RETAILCRM_API_KEY: crm.apiKey,
        RETAILCRM_CLIENT_ID: CLIENT_ID,
        RETAILCRM_EXTENSIONS: '4=102,9=109',
        PUBLIC_URL: 'https://pbx.example.com',
        NODE_ENV: 'test',
        DATA_DIR: '/tmp',
      },
    );
    expect(err).to.deep.equal([]);
    expect(status).to.equal(0);
    const edit = crm.requests.find((r) => r.path === '/api/v5/integration-modules/ari-crm/edit')!;
    expect(edit.method).to.equal('POST');
    expect(edit.headers['content-type']).to.match(/^application\/x-www-form-urlencoded/);
    expect(edit.headers['x-api-key']).to.equal(crm.apiKey);
    expect(edit.integrationModule).to.deep.equal({
      code: 'ari-crm',
      integrationCode: 'ari-crm',
      active: true,
      name: 'ari-crm (Asterisk)',
      clientId: CLIENT_ID,
      baseUrl: 'https://pbx.example.com',
      integrations: {
        telephony: {
          makeCallUrl: 'https://pbx.example.com/connectors/retailcrm/make-call',
          changeUserStatusUrl: 'https://pbx.example.com/connectors/retailcrm/user-status',
          allowEdit: false,
          inputEventSupported: true,
          outputEventSupported: true,
          hangupEventSupported: true,
          additionalCodes: [
            { userId: '3', code: '01' },
            { userId: '4', code: '102' },
            { userId: '9', code: '109' },
          ],
        },
      },
    });
  });
});
