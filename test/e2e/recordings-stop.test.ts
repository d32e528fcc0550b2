/**
 * The stop of a recording that outlived its call, end to end on the PBX simulator with the real
 * ARI client, the engine talking to ARI through a fault proxy: when ARI is cut as the engine asks
 * Asterisk to stop the recording, and comes back before that request is known to have failed
 * (its answer is cut short after the reconnect), the stop is made again at once; the recording
 * ends stopped in Asterisk and is fetched, stored and sent in `recording.ready`, not left
 * recording until the 30 s fetch.
 */
import { expect } from 'chai';
import type { Config } from '../../src/config/schema.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import type { PbxSimulator } from '../../src/simulator/index.ts';
import { AriFaultProxy } from '../recordings/support/fault-proxy.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { simulatedTimePasses } from '../support/sim-time.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
const STOP = /^\/ari\/recordings\/live\/[^/]+\/stop$/;
const INTERNAL = { message: 'Internal Server Error' };

/** `GET /ari<path>` on the simulator itself, as Asterisk's ARI answers it. */
async function ariStatus(sim: PbxSimulator, path: string): Promise<number> {
  const auth = Buffer.from(`${sim.username}:${sim.password}`).toString('base64');
  const response = await fetch(`${sim.url}/ari${path}`, {
    headers: { authorization: `Basic ${auth}` },
  });
  await response.arrayBuffer();
  return response.status;
}

describe('the stop of a recording that outlived its call, across an ARI cut (e2e)', function () {
  this.timeout(60_000);
  let bed: TestBed | undefined;
  let engine: Engine | undefined;
  let proxy: AriFaultProxy | undefined;

  afterEach(async () => {
    await engine?.stop();
    engine = undefined;
    await proxy?.close();
    proxy = undefined;
    await bed?.stop();
    bed = undefined;
  });

  it('ARI is cut as the engine stops the recording and comes back before the stop fails: the stop is made again at once, the recording ends stopped in Asterisk, fetched and ready', async () => {
    bed = await startTestBed({
      RECORD_CALLS: 'all',
      RECORDING_LINK_SECRET: 'e2e-stop-link-secret-0123456789abcdef',
      ARI_RECONNECT_MAX_DELAY_MS: '200',
    });
    proxy = await AriFaultProxy.start(bed.sim.url);
    await bed.engine.stop(); // the test bed's own engine; ours talks through the proxy
    const config: Config = { ...bed.engine.config, ARI_URL: proxy.url };
    engine = await startEngine(config, { logger: bed.engine.logger, simulator: bed.sim });
    const sim = bed.sim;
    const crm = bed.crm;
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });

    const { channelId: callerChannel } = await sim.injectInboundCall({
      from: '79190000001',
      to: DID,
    });
    const started = await crm.waitForWebhook((w) => w.body.type === 'call.started');
    const callId = started.body.callId;
    const name = `rec-${callId}`;
    await crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === 'call.answered');
    await until(
      async () => (await engine!.store.calls.getCall(callId))?.recording?.status === 'recording',
      'the recording to start',
    );
    await simulatedTimePasses(sim, 2000);

    // The caller hangs up; Asterisk refuses to hang the operator up or destroy the bridge, so the
    // bridge outlives the call and Asterisk keeps recording it.
    proxy.fail('DELETE', /^\/ari\/channels\/[^/]+$/, 100, 500, INTERNAL);
    proxy.fail('DELETE', /^\/ari\/bridges\/[^/]+$/, 100, 500, INTERNAL);
    const cut = proxy.cutAt('POST', STOP);
    let reconnects = 0;
    engine.gateway.onConnectionChange((state) => {
      if (state === 'connected') reconnects++;
    });
    sim.hangup(callerChannel);
    await crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === 'call.ended');
    expect(await ariStatus(sim, `/recordings/live/${name}`)).to.equal(200);

    // finishCheckMs after the call's end: the recording is found live and the engine asks
    // Asterisk to stop it; ARI is cut then, and reconnects while the stop waits for its answer.
    await cut.cut;
    await until(() => reconnects >= 1 && engine!.gateway.isConnected(), 'the reconnect');
    expect(await ariStatus(sim, `/recordings/live/${name}`), 'still recording').to.equal(200);
    cut.drop(); // the stop's answer is cut short: no usable answer

    const ready = await crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'recording.ready',
      10_000,
    );
    expect(proxy.seen(STOP, 'POST')).to.have.length(2);
    expect(await ariStatus(sim, `/recordings/live/${name}`), 'stopped in Asterisk').to.equal(404);
    expect(ready.body.data).to.include({ format: 'wav' });
    await until(
      async () => (await engine!.store.calls.getCall(callId))?.recording?.status === 'stored',
      'the store to say stored',
    );
    expect(
      bed.logs.filter(
        (l) =>
          l.callId === callId &&
          l.message === 'no RecordingFinished after the call ended; fetching the recording',
      ),
      'fetched by the 30 s timer',
    ).to.deep.equal([]);
  });
});
