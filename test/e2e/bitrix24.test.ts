/**
 * The Bitrix24 connector end to end: the engine on the simulator with CRM_CONNECTOR=bitrix24
 * against a fake portal (test/support/fake-bitrix24.ts). Asserts the exact REST methods and
 * fields the portal gets: register / show / hide / finish / attachRecord per call, the route
 * lookup (findbycomm → the responsible user's extension first), the click-to-call Bitrix24 asks
 * for (ONEXTERNALCALLSTART, its CALL_ID reused), the OAuth refresh on expired_token (the new
 * pair kept in the store), load limits and server errors retried, validation errors rejected
 * into the delivery log, and the inbound webhook URL whose secret stays out of the log.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConnectorCommand } from '../../src/connectors/cli.ts';
import type { Bitrix24Connector } from '../../src/connectors/index.ts';
import { createConnectorState } from '../../src/store/connector-state.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { error, FakeBitrix24, type Bitrix24Request } from '../support/fake-bitrix24.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
const APP_TOKEN = 'b24-application-token-0123456789';
const REGISTER = 'telephony.externalcall.register';
const SHOW = 'telephony.externalcall.show';
const HIDE = 'telephony.externalcall.hide';
const FINISH = 'telephony.externalcall.finish';
const ATTACH = 'telephony.externalcall.attachRecord';
const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;

let callerSeq = 0;
const nextCaller = (): string => `7916444${String(7000 + ++callerSeq).padStart(4, '0')}`;

/** The fields a request carried, without the access token. */
const fields = (r: Bitrix24Request | undefined): Record<string, string> => {
  const { auth: _auth, ...rest } = r?.form ?? {};
  return rest;
};

describe('Bitrix24 connector (e2e)', function () {
  this.timeout(40_000);
  let bed: TestBed | undefined;
  let portal: FakeBitrix24;

  beforeEach(async () => {
    portal = await FakeBitrix24.start();
    portal.users = new Map([
      [5, '101'],
      [6, '102'],
      [7, ''],
    ]);
  });
  afterEach(async () => {
    await bed?.stop();
    bed = undefined;
    await portal.close();
  });

  async function start(env: Record<string, string> = {}, awaitUsers = true): Promise<TestBed> {
    bed = await startTestBed({
      CRM_CONNECTOR: 'bitrix24',
      BITRIX24_URL: portal.url,
      BITRIX24_CLIENT_ID: portal.clientId,
      BITRIX24_CLIENT_SECRET: portal.clientSecret,
      BITRIX24_ACCESS_TOKEN: portal.accessToken,
      BITRIX24_REFRESH_TOKEN: portal.refreshToken,
      BITRIX24_OAUTH_URL: portal.oauthUrl,
      BITRIX24_APPLICATION_TOKEN: APP_TOKEN,
      BITRIX24_RATE_LIMIT_PER_SEC: '100',
      FALLBACK_ROUTE: 'ringall:102',
      WEBHOOK_RETRY_INITIAL_DELAY_MS: '50',
      WEBHOOK_RETRY_MAX_DELAY_MS: '200',
      ...env,
    });
    const connector = bed.engine.connector!.connector as Bitrix24Connector;
    if (awaitUsers) await until(() => connector.directory.fromCrm, 'the Bitrix24 users read');
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

  /** The call's finish request, once sent (and answered). */
  async function finishOf(callId: string): Promise<{ finish: Bitrix24Request; b24: string }> {
    const register = await portal.waitFor(
      (r) => r.method === REGISTER && r.form.EXTERNAL_CALL_ID === callId && r.status === 200,
    );
    const b24 = portal.callIdOf(callId)!;
    expect(register).to.not.equal(undefined);
    const finish = await portal.waitFor(
      (r) => r.method === FINISH && r.form.CALL_ID === b24 && r.status === 200,
    );
    return { finish, b24 };
  }

  /** The delivery log rows of the call that failed (retried or rejected). */
  async function failedDeliveries(
    b: TestBed,
    callId: string,
    count = 1,
  ): Promise<Array<Record<string, unknown>>> {
    let items: Array<Record<string, unknown>> = [];
    await until(async () => {
      const log = await apiRequest<{ items: Array<Record<string, unknown>> }>(
        b.engine.httpUrl,
        '/v1/webhooks/deliveries?status=failed',
      );
      items = log.body.items.filter((d) => d.callId === callId);
      return items.length >= count;
    }, 'failed deliveries in the log');
    return items;
  }

  it('inbound answered: register at the first ring, show for each ringing operator, hide for the one who did not answer, finish 200 with the talk time', async () => {
    const b = await start({ FALLBACK_ROUTE: 'ringall:101,102:timeout=60' });
    // 101 answers late enough for both phones to ring first.
    b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 10_000 });
    b.sim.phones.set('102', { mode: 'ring' });
    const from = nextCaller();
    // A talk of more than a second (simulated time runs 50 times faster).
    await b.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 80_000 });
    const callId = await callOf(b, from);
    const { finish, b24 } = await finishOf(callId);
    const end = await b.crm.waitForEnded(callId, 15_000);

    // The route lookup asked for the caller (no entity known: the fallback rang).
    const lookup = portal.requests.find((r) => r.method === 'crm.duplicate.findbycomm')!;
    expect(fields(lookup)).to.deep.equal({
      type: 'PHONE',
      'values[0]': from,
      'values[1]': `+${from}`,
    });
    expect(lookup.form.auth).to.equal('access-token-1');
    expect(lookup.headers['content-type']).to.match(/^application\/x-www-form-urlencoded/);

    const register = portal.requests.find(
      (r) => r.method === REGISTER && r.form.EXTERNAL_CALL_ID === callId,
    )!;
    const firstUser = register.form.USER_ID!;
    expect(['5', '6']).to.include(firstUser);
    expect(fields(register)).to.deep.equal({
      USER_ID: firstUser,
      PHONE_NUMBER: from,
      TYPE: '2',
      CALL_START_DATE: register.form.CALL_START_DATE,
      CRM_CREATE: '1',
      SHOW: '0',
      LINE_NUMBER: DID,
      EXTERNAL_CALL_ID: callId,
    });
    expect(register.form.CALL_START_DATE).to.match(DATE);
    expect(register.form.CALL_START_DATE!.slice(0, 19)).to.equal(
      String(end.body.data.startedAt).slice(0, 19),
    );
    // Both phones rang: a card for each; 102's hidden when 101 answered.
    const cards = portal.requests
      .filter((r) => (r.method === SHOW || r.method === HIDE) && r.form.CALL_ID === b24)
      .map((r) => [r.method, r.form.USER_ID]);
    expect(cards.slice(0, 2)).to.have.deep.members([
      [SHOW, '5'],
      [SHOW, '6'],
    ]);
    expect(cards.slice(2)).to.deep.equal([[HIDE, '6']]);
    expect(fields(finish)).to.deep.equal({
      CALL_ID: b24,
      USER_ID: '5',
      DURATION: String(end.body.data.talkSec),
      STATUS_CODE: '200',
      ADD_TO_CHAT: '1',
    });
    expect(Number(finish.form.DURATION)).to.be.greaterThan(0);
    const order = portal.requests
      .filter((r) => r.form.EXTERNAL_CALL_ID === callId || r.form.CALL_ID === b24)
      .map((r) => r.method);
    expect(order).to.deep.equal([REGISTER, SHOW, SHOW, HIDE, FINISH]);
  });

  it('attachRecord with the signed recording link once the recording is ready (after finish)', async () => {
    const b = await start({ RECORD_CALLS: 'all', RECORDING_LINK_SECRET: 'x'.repeat(32) });
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 500 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID, hangupAfterMs: 60_000 });
    const callId = await callOf(b, from);
    const { finish, b24 } = await finishOf(callId);
    const ready = await b.crm.waitForWebhook(
      (w) => w.body.type === 'recording.ready' && w.body.callId === callId,
      15_000,
    );
    const attach = await portal.waitFor((r) => r.method === ATTACH && r.form.CALL_ID === b24);
    expect(fields(attach)).to.deep.equal({
      CALL_ID: b24,
      FILENAME: `${callId}.wav`,
      RECORD_URL: ready.body.data.recordingUrl,
    });
    expect(portal.requests.indexOf(attach)).to.be.greaterThan(portal.requests.indexOf(finish));
    const audio = await fetch(String(attach.form.RECORD_URL));
    expect(audio.status).to.equal(200);
  });

  it("route: the contact's responsible user is rung first with the contact's name, the card names the contact; a phone that stops ringing gets its card hidden", async () => {
    portal.entities = [
      {
        type: 'CONTACT',
        id: 12,
        phones: ['+7 916 444-70-99'],
        ASSIGNED_BY_ID: 5,
        NAME: 'Ivan',
        LAST_NAME: 'Petrov',
      },
    ];
    const b = await start({ FALLBACK_ROUTE: 'ringall:102:timeout=5' });
    b.sim.phones.set('101', { mode: 'ring' });
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 500, hangupAfterMs: 1000 });
    const from = '79164447099';
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    const { finish, b24 } = await finishOf(callId);

    expect(portal.requests.find((r) => r.method === 'crm.contact.get')!.form).to.include({
      id: '12',
    });
    const creates = b.sim.requests.filter(
      (r) => r.method === 'POST' && r.path === '/channels/create',
    );
    expect(creates[0]!.query).to.include({ endpoint: 'PJSIP/101' });
    expect(JSON.stringify(creates[0]!.body)).to.include('Ivan Petrov');
    const ringing = b.crm.eventsOf(callId).find((w) => w.body.type === 'call.ringing')!;
    expect(ringing.body.data.customer).to.deep.equal({
      id: '12',
      name: 'Ivan Petrov',
      link: `${portal.url}/crm/contact/details/12/`,
    });
    const register = portal.calls(REGISTER).find((r) => r.form.EXTERNAL_CALL_ID === callId)!;
    expect(fields(register)).to.include({
      USER_ID: '5',
      TYPE: '2',
      CRM_ENTITY_TYPE: 'CONTACT',
      CRM_ENTITY_ID: '12',
    });
    // 101 rang out, then 102 rang: 101's card hidden when 102's was shown.
    const cards = portal.requests
      .filter((r) => (r.method === SHOW || r.method === HIDE) && r.form.CALL_ID === b24)
      .map((r) => [r.method, r.form.USER_ID]);
    expect(cards).to.deep.equal([
      [SHOW, '5'],
      [HIDE, '5'],
      [SHOW, '6'],
    ]);
    expect(fields(finish)).to.include({ USER_ID: '6', STATUS_CODE: '200' });
  });

  it('missed: nobody answers → finish 304 with DURATION 0', async () => {
    const b = await start({ FALLBACK_ROUTE: 'ringall:102:timeout=5' });
    b.sim.phones.set('102', { mode: 'ring' });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    const { finish, b24 } = await finishOf(callId);
    expect(fields(finish)).to.deep.equal({
      CALL_ID: b24,
      USER_ID: '6',
      DURATION: '0',
      STATUS_CODE: '304',
      ADD_TO_CHAT: '1',
    });
    // finish closes the card of its user: no separate hide.
    expect(portal.calls(HIDE, b24)).to.deep.equal([]);
  });

  it('abandoned: the caller hangs up while the phone rings → finish 603-S', async () => {
    const b = await start({ BITRIX24_ADD_TO_CHAT: 'false' });
    b.sim.phones.set('102', { mode: 'ring' });
    const from = nextCaller();
    const { channelId } = await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    await portal.waitFor((r) => r.method === SHOW && r.status === 200);
    b.sim.hangup(channelId);
    const { finish } = await finishOf(callId);
    expect(fields(finish)).to.include({
      USER_ID: '6',
      DURATION: '0',
      STATUS_CODE: '603-S',
      ADD_TO_CHAT: '0',
    });
  });

  it('busy: the operator is busy → finish 486', async () => {
    const b = await start();
    b.sim.phones.set('102', { mode: 'busy' });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    const { finish } = await finishOf(callId);
    expect(fields(finish)).to.include({ STATUS_CODE: '486', DURATION: '0' });
  });

  it('click-to-call from Bitrix24 (ONEXTERNALCALLSTART): rings the user’s extension then the customer, reuses the CALL_ID (no second register)', async () => {
    const b = await start();
    b.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    b.sim.customers.set('*', { mode: 'answer', answerAfterMs: 500, hangupAfterMs: 1500 });
    const b24 = portal.registerClick({ USER_ID: '5', PHONE_NUMBER: '+74957654321', TYPE: '1' });
    const answer = await apiRequest(b.engine.httpUrl, '/connectors/bitrix24/events', {
      method: 'POST',
      key: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        event: 'ONEXTERNALCALLSTART',
        'data[PHONE_NUMBER]': '+74957654321',
        'data[PHONE_NUMBER_INTERNATIONAL]': '+74957654321',
        'data[USER_ID]': '5',
        'data[CALL_ID]': b24,
        'data[CRM_ENTITY_TYPE]': 'CONTACT',
        'data[CRM_ENTITY_ID]': '12',
        'data[IS_MOBILE]': '0',
        ts: '1733473800',
        'auth[domain]': 'company.bitrix24.ru',
        'auth[member_id]': '00168f0dd11ff00b4aeb8ce5befaa139',
        'auth[application_token]': APP_TOKEN,
      }).toString(),
    });
    expect(answer.status).to.equal(200);
    expect(answer.body).to.include({ result: true });
    const callId = String(answer.body.callId);
    const finish = await portal.waitFor((r) => r.method === FINISH && r.form.CALL_ID === b24);
    const end = await b.crm.waitForEnded(callId, 15_000);
    const dials = b.sim.requests
      .filter((r) => r.method === 'POST' && /^\/channels(\/create)?$/.test(r.path))
      .map((r) => String(r.query.endpoint ?? (r.body as Record<string, unknown>)?.endpoint));
    expect(dials[0]).to.equal('PJSIP/101');
    expect(dials.slice(1).some((e) => e.includes('74957654321'))).to.equal(true);
    expect(portal.requests.filter((r) => r.method === REGISTER)).to.deep.equal([]);
    expect(fields(finish)).to.deep.equal({
      CALL_ID: b24,
      USER_ID: '5',
      DURATION: String(end.body.data.talkSec),
      STATUS_CODE: '200',
      ADD_TO_CHAT: '1',
    });
    const started = b.crm.eventsOf(callId).find((w) => w.body.type === 'call.started')!;
    expect(started.body.data.variables).to.deep.include({
      bitrix24CallId: b24,
      bitrix24UserId: '5',
    });
  });

  it('refuses an event with a wrong application token (403) and starts no call', async () => {
    const b = await start();
    const answer = await apiRequest(b.engine.httpUrl, '/connectors/bitrix24/events', {
      method: 'POST',
      key: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        event: 'ONEXTERNALCALLSTART',
        'data[PHONE_NUMBER]': '+74957654321',
        'data[USER_ID]': '5',
        'data[CALL_ID]': 'externalCall.forged',
        'auth[application_token]': 'not-the-application-token',
      }).toString(),
    });
    expect(answer.status).to.equal(403);
    expect(answer.body).to.include({ code: 'invalid_application_token' });
    expect(b.sim.requests.some((r) => r.path === '/channels/create')).to.equal(false);
    // The endpoints are in the OpenAPI document of an engine with the connector.
    const doc = await apiRequest<{ paths: Record<string, Record<string, unknown>> }>(
      b.engine.httpUrl,
      '/openapi.json',
      { key: null },
    );
    for (const path of ['/connectors/bitrix24/events', '/connectors/bitrix24/install'])
      expect(Object.keys(doc.body.paths[path] ?? {})).to.deep.equal(['post']);
  });

  it('install handler: keeps the tokens the portal accepts (app.info), refuses others', async () => {
    const b = await start({ BITRIX24_ACCESS_TOKEN: '', BITRIX24_REFRESH_TOKEN: '' }, false);
    const install = (form: Record<string, string>) =>
      apiRequest(b.engine.httpUrl, '/connectors/bitrix24/install', {
        method: 'POST',
        key: null,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
    const forged = await install({ AUTH_ID: 'forged', REFRESH_ID: 'forged', AUTH_EXPIRES: '3600' });
    expect(forged.status).to.equal(403);
    expect(forged.body).to.include({ code: 'invalid_token' });
    const ok = await install({
      AUTH_ID: portal.accessToken,
      REFRESH_ID: portal.refreshToken,
      AUTH_EXPIRES: '3600',
      member_id: '00168f0dd11ff00b4aeb8ce5befaa139',
    });
    expect(ok.status).to.equal(200);
    expect(ok.headers.get('content-type')).to.match(/^text\/html/);
    const stored = await createConnectorState(b.engine.store.db, 'bitrix24').get<
      Record<string, unknown>
    >('oauth');
    expect(stored).to.include({
      accessToken: portal.accessToken,
      refreshToken: portal.refreshToken,
    });
  });

  it('expired_token: the tokens are refreshed at the OAuth server, the request retried with the new one, and the new pair kept in the store', async () => {
    const b = await start();
    portal.expireAccessToken();
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    await finishOf(callId);
    const refresh = portal.requests.filter((r) => r.method === 'oauth');
    expect(refresh).to.have.length(1);
    expect(refresh[0]!.query).to.deep.equal({
      grant_type: 'refresh_token',
      client_id: portal.clientId,
      client_secret: portal.clientSecret,
      refresh_token: 'refresh-token-1',
    });
    const refused = portal.requests.filter((r) => r.status === 401);
    expect(refused.length).to.be.at.least(1);
    expect(refused.every((r) => r.form.auth === 'access-token-1')).to.equal(true);
    const registered = portal.calls(REGISTER).find((r) => r.form.EXTERNAL_CALL_ID === callId)!;
    expect(registered.form.auth).to.equal('access-token-2');
    const stored = await createConnectorState(b.engine.store.db, 'bitrix24').get<
      Record<string, unknown>
    >('oauth');
    expect(stored).to.include({ accessToken: 'access-token-2', refreshToken: 'refresh-token-2' });
  });

  it('QUERY_LIMIT_EXCEEDED (503) and 429 are retried with backoff, 500 retried; failed attempts in the delivery log, requests in order', async () => {
    const b = await start();
    portal.script(
      REGISTER,
      error(503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests'),
      {
        status: 429,
        body: { error: 'OPERATION_TIME_LIMIT', error_description: 'Method is blocked' },
        headers: { 'retry-after': '1' },
      },
      error(500, 'INTERNAL_SERVER_ERROR', 'Internal server error'),
    );
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    await finishOf(callId);
    const attempts = portal.requests.filter(
      (r) => r.method === REGISTER && r.form.EXTERNAL_CALL_ID === callId,
    );
    expect(attempts.map((r) => r.status)).to.deep.equal([503, 429, 500, 200]);
    expect(attempts[2]!.at - attempts[1]!.at).to.be.at.least(950);
    const failed = await failedDeliveries(b, callId, 3);
    expect(failed.map((d) => d.statusCode).sort()).to.deep.equal([429, 500, 503]);
    expect(String(failed.find((d) => d.statusCode === 503)!.error)).to.include(
      'QUERY_LIMIT_EXCEEDED',
    );
    expect(String(failed[0]!.url)).to.equal(`${portal.url}/rest/${REGISTER}.json`);
  });

  it('validation error (400): the event is rejected with the portal message in the delivery log, not retried', async () => {
    const b = await start();
    portal.script(FINISH, error(400, 'ERROR_ARGUMENT', 'DURATION is not valid'));
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    await portal.waitFor((r) => r.method === FINISH && r.status === 400);
    const [rejected] = await failedDeliveries(b, callId);
    expect(rejected).to.include({ outcome: 'rejected', statusCode: 400, eventType: 'call.ended' });
    expect(String(rejected!.error)).to.include('ERROR_ARGUMENT: DURATION is not valid');
    expect(portal.requests.filter((r) => r.method === FINISH)).to.have.length(1);
  });

  it('inbound webhook URL: methods at /rest/<user>/<secret>/, no auth field, the secret not in the delivery log', async () => {
    const b = await start({
      BITRIX24_URL: '',
      BITRIX24_CLIENT_ID: '',
      BITRIX24_CLIENT_SECRET: '',
      BITRIX24_WEBHOOK_URL: portal.webhookUrl,
    });
    portal.script(REGISTER, error(500, 'INTERNAL_SERVER_ERROR', 'Internal server error'));
    b.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const from = nextCaller();
    await b.sim.injectInboundCall({ from, to: DID });
    const callId = await callOf(b, from);
    const { finish } = await finishOf(callId);
    expect(finish.path).to.equal(`/rest/1/${portal.webhookSecret}/${FINISH}.json`);
    expect(finish.form).to.not.have.property('auth');
    const [failed] = await failedDeliveries(b, callId);
    expect(String(failed!.url)).to.equal(`${portal.url}/rest/1/***/${REGISTER}.json`);
    expect(JSON.stringify(b.logs)).to.not.include(portal.webhookSecret);
  });

  it('npm run connector -- bitrix24 bind: event.bind ONEXTERNALCALLSTART to the engine; extensions prints the map', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ari-crm-b24-cli-'));
    try {
      const env = {
        NODE_ENV: 'test',
        DATA_DIR: dataDir,
        BITRIX24_URL: portal.url,
        BITRIX24_CLIENT_ID: portal.clientId,
        BITRIX24_CLIENT_SECRET: portal.clientSecret,
        BITRIX24_ACCESS_TOKEN: portal.accessToken,
        BITRIX24_REFRESH_TOKEN: portal.refreshToken,
        BITRIX24_OAUTH_URL: portal.oauthUrl,
        BITRIX24_EXTENSIONS: '7=107',
        PUBLIC_URL: 'https://pbx.example.com/',
      };
      const out: string[] = [];
      const err: string[] = [];
      const status = await runConnectorCommand(
        ['bitrix24', 'bind'],
        (l) => out.push(l),
        (l) => err.push(l),
        env,
      );
      expect(err).to.deep.equal([]);
      expect(status).to.equal(0);
      const bind = portal.requests.find((r) => r.method === 'event.bind')!;
      expect(bind.form).to.deep.equal({
        event: 'ONEXTERNALCALLSTART',
        handler: 'https://pbx.example.com/connectors/bitrix24/events',
        auth: 'access-token-1',
      });
      const lines: string[] = [];
      expect(
        await runConnectorCommand(
          ['bitrix24', 'extensions'],
          (l) => lines.push(l),
          () => {},
          env,
        ),
      ).to.equal(0);
      expect(lines).to.deep.equal(['5=101', '6=102', '7=107']);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
