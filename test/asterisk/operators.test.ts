/**
 * Operator presence on a real Asterisk 22 (the kit) with the shipped `asterisk-conf/`, where
 * operator phones register with their passwords: a phone that has not registered is `offline`;
 * a SIPp phone registering makes its operator `idle`; a call to it shows `ringing`, `on_call`,
 * then `idle` again, from Asterisk's device states and the engine's call; logging out (REGISTER
 * with Expires: 0) makes it `offline` again.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Operator } from '../../src/operators/index.ts';
import { apiRequest } from '../support/api.ts';
import { TEST_API_KEY } from '../support/engine.ts';
import type { EngineProcess } from '../support/engine-process.ts';
import { FakeCrm, type ReceivedWebhook } from '../support/fake-crm.ts';
import { until } from '../support/until.ts';
import { startEngineProcess } from './support/bed.ts';
import { type KitAsterisk, onProcessExit } from './support/kit.ts';
import { operator101, startShippedAsterisk, type Secrets } from './support/shipped.ts';
import { Sipp, stopAllSipp } from './support/sipp.ts';
import { describeOnAsterisk } from './support/suite.ts';

const DID = '74951234567';

describeOnAsterisk('real Asterisk: operator presence', function () {
  let asterisk: KitAsterisk;
  let crm: FakeCrm;
  let dataDir: string;
  let engine: EngineProcess | undefined;
  let httpUrl: string;
  let secrets: Secrets;

  const operator = async (extension: string): Promise<Operator> => {
    const answer = await apiRequest<Operator>(httpUrl, `/v1/operators/${extension}`);
    expect(answer.status, answer.text).to.equal(200);
    return answer.body;
  };
  const stateWebhook = (
    extension: string,
    data: Record<string, unknown>,
    after = 0,
  ): Promise<ReceivedWebhook> =>
    crm.waitForWebhook(
      (w) =>
        w.body.type === 'operator.state' &&
        w.body.data.extension === extension &&
        w.body.sequence > after &&
        Object.entries(data).every(([k, v]) => w.body.data[k] === v),
      20_000,
    );

  before(async function () {
    this.timeout(180_000);
    ({ asterisk, secrets } = await startShippedAsterisk());
    crm = await FakeCrm.start();
    dataDir = await mkdtemp(join(tmpdir(), 'ari-crm-accept-operators-'));
    const ownDataDir = dataDir;
    onProcessExit(() => rmSync(ownDataDir, { recursive: true, force: true }));
    crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101'], ringTimeoutSec: 20 },
    }));
    ({ engine, httpUrl } = await startEngineProcess(asterisk, {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      ARI_URL: asterisk.ariUrl,
      ARI_USERNAME: 'ari-crm',
      ARI_PASSWORD: secrets.ari,
      DATA_DIR: dataDir,
      API_KEYS: `test:${TEST_API_KEY}`,
      CRM_ROUTE_URL: crm.routeUrl,
      CRM_WEBHOOK_URL: crm.webhookUrl,
      WEBHOOK_SECRET: crm.secret,
      CRM_ROUTE_CACHE_TTL_MS: '0',
      OPERATOR_EXTENSIONS: '101,102',
    }));
  });

  after(async () => {
    await stopAllSipp();
    engine?.child.kill('SIGKILL');
    await crm?.close();
    await asterisk?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && engine)
      console.log(engine.lines.map((l) => JSON.stringify(l)).join('\n'));
  });

  it('shows phones that never registered as offline, read from Asterisk at connect', async () => {
    const list = await apiRequest<{ items: Operator[] }>(httpUrl, '/v1/operators');
    expect(list.status).to.equal(200);
    expect(list.body.items.map((o) => [o.extension, o.state, o.status])).to.deep.equal([
      ['101', 'offline', 'available'],
      ['102', 'offline', 'available'],
    ]);
    // The engine subscribed its application to the phones' device states.
    const app = await asterisk.ari<{ device_names: string[] }>('/applications/crm-app');
    expect(app.body.device_names).to.include.members(['PJSIP/101', 'PJSIP/102']);
  });

  it('makes a registering phone idle, ringing, on_call and idle for a call to it, offline once it logs out', async () => {
    const ports = asterisk.ports;
    const phone = operator101('op101-presence', 'register.xml', asterisk, secrets);
    await until(
      () => phone.receivedResponses().includes('200'),
      'the REGISTER of 101 to be accepted',
      15_000,
    );
    const idle = await stateWebhook('101', { state: 'idle', previousState: 'offline' });
    expect(await operator('101')).to.include({ state: 'idle', status: 'available' });
    expect(await operator('102')).to.include({ state: 'offline' });

    const caller = Sipp.caller('caller-presence', 'uac.xml', ports, {
      did: DID,
      caller: '79161234567',
      pauseMs: 1500,
    });
    const started = await crm.waitForWebhook((w) => w.body.type === 'call.started', 20_000);
    const callId = started.body.callId;
    await crm.waitForEnded(callId, 20_000);
    await caller.passed();
    const back = await stateWebhook(
      '101',
      { state: 'idle', previousState: 'on_call' },
      idle.body.sequence,
    );
    const states = crm.webhooks
      .filter(
        (w) =>
          w.body.type === 'operator.state' &&
          w.body.data.extension === '101' &&
          w.body.sequence > idle.body.sequence &&
          w.body.sequence <= back.body.sequence,
      )
      .map((w) => [w.body.data.state, w.body.data.callId]);
    expect(states).to.deep.equal([
      ['ringing', callId],
      ['on_call', callId],
      ['idle', undefined],
    ]);
    expect(await operator('101')).to.include({ state: 'idle' });

    // The phone logs out (REGISTER with Expires: 0 for the same contact): Asterisk drops it.
    await phone.stop();
    const logout = operator101('op101-logout', 'unregister.xml', asterisk, secrets);
    await logout.passed();
    await stateWebhook('101', { state: 'offline', previousState: 'idle' }, back.body.sequence);
    expect(await operator('101')).to.include({ state: 'offline' });
  });
});
