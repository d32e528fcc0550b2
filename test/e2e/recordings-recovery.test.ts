/**
 * Recordings survive an engine restart and an ARI outage (nothing accepted is
 * ever lost), end to end on the PBX simulator with the real ari-client: a recording the engine
 * was making or downloading when it stopped is taken up by the next engine on the same store
 * and the same Asterisk (downloaded, stored, deleted from Asterisk, `recording.ready` once, after
 * `call.ended`, continuing the call's sequence); a RecordingFinished lost while the WebSocket was
 * down is made up for at the reconnect; a recording Asterisk no longer has ends failed, counted.
 * A download in progress when the engine stops is finished before it disconnects; one that
 * outlasts the shutdown budget and finishes while the engine disconnects has its
 * `recording.ready`, committed after the webhook dispatcher stopped, wait in the outbox for the
 * next engine (not logged or counted dead).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import sinon from 'sinon';
import type { Config } from '../../src/config/schema.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import { LocalRecordingStorage } from '../../src/recordings/index.ts';
import type { PbxSimulator } from '../../src/simulator/index.ts';
import { audioFile } from '../../src/simulator/wav.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import type { ReceivedWebhook } from '../support/fake-crm.ts';
import { metricValue } from '../events/receiver.ts';
import { AriFaultProxy } from '../recordings/support/fault-proxy.ts';
import { simulatedTimePasses } from '../support/sim-time.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
const LINK_SECRET = 'e2e-recovery-link-secret-0123456789abcdef';
const RECORDING = {
  RECORD_CALLS: 'all',
  RECORDING_LINK_SECRET: LINK_SECRET,
  ARI_RECONNECT_MAX_DELAY_MS: '200',
};
const LIFECYCLE = ['call.started', 'call.ringing', 'call.answered', 'call.ended'];
let caller = 79190000000;
const nextCaller = (): string => String(++caller);

/** The call's webhook types, checking signatures and gap-free sequence numbers from 1. */
function typesOf(bed: Pick<TestBed, 'crm'>, callId: string): string[] {
  const events = bed.crm.eventsOf(callId);
  events.forEach((w, i) => {
    expect(w.signatureValid, `signature of ${w.body.type}`).to.equal(true);
    expect(w.body.sequence, `sequence of ${w.body.type}`).to.equal(i + 1);
  });
  return events.map((w) => w.body.type);
}

function waitFor(
  bed: Pick<TestBed, 'crm'>,
  callId: string,
  type: string,
  timeoutMs = 10_000,
): Promise<ReceivedWebhook> {
  return bed.crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === type, timeoutMs);
}

/** `<method> /ari<path>` on the simulator, as Asterisk's ARI answers it. */
async function ari<T>(
  sim: PbxSimulator,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: T }> {
  const auth = Buffer.from(`${sim.username}:${sim.password}`).toString('base64');
  const response = await fetch(`${sim.url}/ari${path}`, {
    method,
    headers: { authorization: `Basic ${auth}` },
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** The stored recordings Asterisk holds (`GET /recordings/stored`). */
async function storedInAsterisk(sim: PbxSimulator): Promise<Array<{ name: string }>> {
  return (await ari<Array<{ name: string }>>(sim, '/recordings/stored')).body;
}

/** Resolve once Asterisk has finished and stored the recording `name` (no app may hear of it). */
function recordingFinished(sim: PbxSimulator, name: string): Promise<void> {
  return until(
    async () => (await storedInAsterisk(sim)).some((r) => r.name === name),
    `Asterisk to store ${name}`,
  );
}

/** A promise and its resolve function. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function metric(engine: Engine, line: string): Promise<number> {
  const text = (await apiRequest(engine.httpUrl, '/metrics', { key: null })).text;
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

/** A recorded inbound call answered by 101 and bridged: its id, caller and operator channels. */
async function bridgedRecordedCall(
  bed: Pick<TestBed, 'sim' | 'crm'>,
  engine: Engine,
): Promise<{ callId: string; callerChannel: string; operatorChannel: string }> {
  const from = nextCaller();
  const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
  const started = await bed.crm.waitForWebhook(
    (w) => w.body.type === 'call.started' && w.body.data.from === from,
  );
  const callId = started.body.callId;
  await waitFor(bed, callId, 'call.answered');
  await until(
    async () => (await engine.store.calls.getCall(callId))?.recording?.status === 'recording',
    'the store to say the call is being recorded',
  );
  const record = (await engine.store.calls.getCall(callId))!;
  const operatorChannel = record.legs.find((leg) => leg.role === 'operator')!.channelId;
  return { callId, callerChannel: channelId, operatorChannel };
}

/**
 * What the CRM and the engine show once a recording is settled: `recording.ready` exactly once,
 * right after `call.ended`, the file in the storage equal to what Asterisk recorded, playable by
 * its link, the call's record `stored`, nothing left in Asterisk.
 */
async function expectStored(
  bed: TestBed,
  engine: Engine,
  callId: string,
  lifecycle: string[],
): Promise<void> {
  const ready = await waitFor(bed, callId, 'recording.ready');
  await until(
    async () => (await engine.store.calls.getCall(callId))?.recording?.status === 'stored',
    'the store to say stored',
  );
  await until(
    async () => (await storedInAsterisk(bed.sim)).every((r) => r.name !== `rec-${callId}`),
    'the recording to be deleted from Asterisk',
  );
  expect(await engine.webhooks.drain(5000)).to.equal(true);
  expect(typesOf(bed, callId)).to.deep.equal([...lifecycle, 'recording.ready']);
  const data = ready.body.data as { recordingUrl: string; bytes: number; durationSec: number };
  expect((data.bytes - 44) % 320).to.equal(0);
  expect(data.durationSec).to.equal(Math.floor((data.bytes - 44) / 16000));
  const record = (await engine.store.calls.getCall(callId))!;
  expect(record.recording).to.deep.include({
    status: 'stored',
    name: `rec-${callId}`,
    bytes: data.bytes,
    durationSec: data.durationSec,
  });
  const expected = audioFile('wav', (data.bytes - 44) / 320);
  const onDisk = readFileSync(
    join(bed.dataDir, 'recordings', ...record.recording!.path!.split('/')),
  );
  expect(onDisk).to.deep.equal(expected);
  const played = await fetch(data.recordingUrl, { headers: { range: 'bytes=0-99' } });
  expect(played.status).to.equal(206);
  expect(Buffer.from(await played.arrayBuffer())).to.deep.equal(expected.subarray(0, 100));
}

/**
 * Hold the engine's storage of recording files: `storing` resolves when a file is handed to it,
 * and the file is written once the test resolves `stored`.
 */
function holdStoragePut(): {
  storing: ReturnType<typeof signal>;
  stored: ReturnType<typeof signal>;
} {
  const storing = signal();
  const stored = signal();
  const put = sinon.stub(LocalRecordingStorage.prototype, 'put').callsFake(async function (
    this: LocalRecordingStorage,
    key: string,
    data: Buffer,
  ) {
    storing.resolve();
    await stored.promise;
    return put.wrappedMethod.call(this, key, data);
  });
  return { storing, stored };
}

describe('recordings across an engine restart and an ARI outage (e2e)', function () {
  this.timeout(60_000);
  let bed: TestBed | undefined;
  let second: Engine | undefined;
  let cleanup: (() => Promise<void>) | undefined;

  afterEach(async () => {
    sinon.restore();
    await second?.stop();
    second = undefined;
    await bed?.stop();
    bed = undefined;
    await cleanup?.();
    cleanup = undefined;
  });

  it('a call recorded when the engine stopped and ended while it was down: the next engine downloads the file, stores it, deletes it from Asterisk, sends recording.ready once after call.ended', async () => {
    bed = await startTestBed(RECORDING);
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const call = await bridgedRecordedCall(bed, bed.engine);
    const { config, logger } = bed.engine;
    await bed.engine.stop();

    // While no engine listens, both parties hang up: Asterisk finishes the recording and keeps
    // it; its RecordingFinished reaches nobody.
    await simulatedTimePasses(bed.sim, 3000); // 3 s more of talk
    bed.sim.hangup(call.callerChannel);
    bed.sim.hangup(call.operatorChannel);
    await recordingFinished(bed.sim, `rec-${call.callId}`);
    expect(await storedInAsterisk(bed.sim)).to.deep.equal([
      { name: `rec-${call.callId}`, format: 'wav' },
    ]);
    expect(typesOf(bed, call.callId)).to.deep.equal(LIFECYCLE.slice(0, 3));

    second = await startEngine(config, { logger, simulator: bed.sim });
    const ended = await waitFor(bed, call.callId, 'call.ended');
    expect(ended.body.data).to.include({ disposition: 'answered', answeredBy: '101' });
    await expectStored(bed, second, call.callId, LIFECYCLE);
    const ready = bed.crm.eventsOf(call.callId).at(-1)!;
    expect(ready.body.sequence).to.equal(5);
    expect((ready.body.data as { durationSec: number }).durationSec).to.be.at.least(1);
    expect(await metric(second, 'aricrm_recordings_resumed_total')).to.equal(1);
    expect(await metric(second, 'aricrm_recordings_stored_total')).to.equal(1);
    expect(await storedInAsterisk(bed.sim)).to.deep.equal([]);
  });

  it('a call still up across the restart stays attached to its live recording: its end after the restart brings the file and recording.ready', async () => {
    bed = await startTestBed(RECORDING);
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const call = await bridgedRecordedCall(bed, bed.engine);
    const { config, logger } = bed.engine;
    await bed.engine.stop();

    second = await startEngine(config, { logger, simulator: bed.sim });
    await waitFor(bed, call.callId, 'call.recovered');
    // Asterisk kept recording the bridge while no engine listened.
    const live = await ari<{ state: string }>(bed.sim, `/recordings/live/rec-${call.callId}`);
    expect(live.status).to.equal(200);
    expect(live.body.state).to.equal('recording');
    const pending = await apiRequest(second.httpUrl, `/v1/calls/${call.callId}/recording`);
    expect(pending.status).to.equal(409);
    expect(pending.body.code).to.equal('recording_not_ready');

    bed.sim.hangup(call.callerChannel);
    const ended = await waitFor(bed, call.callId, 'call.ended');
    expect(ended.body.data).to.include({ disposition: 'answered', hangupBy: 'caller' });
    expect(String(ended.body.data.recordingUrl)).to.contain(`/v1/calls/${call.callId}/recording`);
    await expectStored(bed, second, call.callId, [
      'call.started',
      'call.ringing',
      'call.answered',
      'call.recovered',
      'call.ended',
    ]);
    // Fetched on its RecordingFinished, once: no second download.
    const downloads = bed.sim.requests.filter(
      (r) => r.method === 'GET' && r.path === `/recordings/stored/rec-${call.callId}/file`,
    );
    expect(downloads).to.have.length(1);
  });

  it('a call that had ended with its download pending when the engine stopped: the next engine fetches the file and sends recording.ready with the next sequence', async () => {
    // The engine talks to ARI through a proxy that fails the first file download; its retry is
    // a minute away when the engine stops.
    const crmBed = await startTestBed(RECORDING);
    bed = crmBed;
    const proxy = await AriFaultProxy.start(crmBed.sim.url);
    cleanup = () => proxy.close();
    await crmBed.engine.stop(); // the test bed's own engine; ours talks through the proxy
    const config: Config = {
      ...crmBed.engine.config,
      ARI_URL: proxy.url,
      RECORDING_RETRY_DELAY_MS: 60_000,
    };
    const first = await startEngine(config, {
      logger: crmBed.engine.logger,
      simulator: crmBed.sim,
    });
    second = first;
    crmBed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const FILE = /^\/ari\/recordings\/stored\/[^/]+\/file$/;
    proxy.fail('GET', FILE, 1, 403, { message: 'The recording file could not be opened' });
    const call = await bridgedRecordedCall(crmBed, first);
    // 3 s of talk, then the caller hangs up (once the recording runs: a hang-up at a fixed time
    // after the answer could come before a loaded engine started recording).
    await simulatedTimePasses(crmBed.sim, 3000);
    crmBed.sim.hangup(call.callerChannel);
    await waitFor(crmBed, call.callId, 'call.ended');
    await until(() => proxy.seen(FILE).length === 1, 'the first download try');
    expect(await first.webhooks.drain(5000)).to.equal(true);
    const before = (await first.store.calls.getCall(call.callId))!;
    expect(before.recording).to.deep.include({ status: 'recording' });
    await first.stop();
    second = undefined;
    expect(typesOf(crmBed, call.callId)).to.deep.equal(LIFECYCLE);
    expect(await storedInAsterisk(crmBed.sim)).to.have.length(1);

    second = await startEngine(config, { logger: crmBed.engine.logger, simulator: crmBed.sim });
    await expectStored(crmBed, second, call.callId, LIFECYCLE);
    expect(crmBed.crm.eventsOf(call.callId).at(-1)!.body.sequence).to.equal(5);
    // The call's record is otherwise what the first engine wrote.
    const after = (await second.store.calls.getCall(call.callId))!;
    const { recording: _a, updatedAt: _b, ...rest } = after;
    const { recording: _c, updatedAt: _d, ...restBefore } = before;
    expect(rest).to.deep.equal(restBefore);
    expect(await metric(second, 'aricrm_recordings_resumed_total')).to.equal(1);
    // The pull feed holds the same events, in order.
    const feed = await second.store.events.feed({ limit: 100 });
    expect(
      feed.items.filter((i) => i.event.callId === call.callId).map((i) => i.event.type),
    ).to.deep.equal([...LIFECYCLE, 'recording.ready']);
  });

  it('a download in progress when the engine stops: the stop waits for it; recording.ready is delivered and Asterisk cleaned up before the engine is gone', async () => {
    bed = await startTestBed(RECORDING);
    const first = bed.engine;
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    // The file is being stored when the engine is told to stop.
    const { storing, stored } = holdStoragePut();
    const call = await bridgedRecordedCall(bed, first);
    await simulatedTimePasses(bed.sim, 3000);
    bed.sim.hangup(call.callerChannel);
    await waitFor(bed, call.callId, 'call.ended');
    await storing.promise;
    const stopping = first.stop();
    stored.resolve();
    await stopping;

    expect(typesOf(bed, call.callId)).to.deep.equal([...LIFECYCLE, 'recording.ready']);
    expect(await storedInAsterisk(bed.sim)).to.deep.equal([]);
    expect(
      bed.logs.filter((l) => l.callId === call.callId && l.level !== 'info' && l.level !== 'debug'),
      'warnings and errors of the call',
    ).to.deep.equal([]);
    // The next engine has nothing left of it to do.
    sinon.restore();
    second = await startEngine(first.config, { logger: first.logger, simulator: bed.sim });
    expect(await second.webhooks.drain(5000)).to.equal(true);
    expect(await metricValue(second.registry, 'aricrm_recordings_resumed_total')).to.equal(0);
    expect((await second.store.calls.getCall(call.callId))?.recording).to.deep.include({
      status: 'stored',
    });
    expect(typesOf(bed, call.callId)).to.deep.equal([...LIFECYCLE, 'recording.ready']);
  });

  it('a download that outlasts the shutdown budget and finishes while the engine disconnects: recording.ready, committed after the webhook dispatcher stopped, is left pending (not dead) and the next engine delivers it once', async () => {
    bed = await startTestBed({ ...RECORDING, SHUTDOWN_TIMEOUT_MS: '200' });
    const first = bed.engine;
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    // The file is still being stored when the shutdown budget is over; it is stored while ARI
    // closes.
    const { storing, stored } = holdStoragePut();
    // The engine's own steps, observed: recording.ready is recorded while ARI closes, and the
    // call journal commits it (a busy store) only after the webhook dispatcher stopped.
    const readyRecorded = signal();
    const record = sinon.stub(first.journal, 'record').callsFake((call, event) => {
      record.wrappedMethod.call(first.journal, call, event);
      if (event?.type === 'recording.ready') readyRecorded.resolve();
    });
    const heldCommits: Array<() => void> = [];
    let holdCommits = false;
    const writeBatch = sinon.stub(first.store, 'writeBatch').callsFake((fn, options) => {
      const go = (): Promise<unknown> => writeBatch.wrappedMethod.call(first.store, fn, options);
      if (!holdCommits || options?.stream !== 'journal') return go();
      return new Promise((resolve, reject) =>
        heldCommits.push(() => void go().then(resolve, reject)),
      );
    });
    const gatewayStop = sinon.stub(first.gateway, 'stop').callsFake(async () => {
      holdCommits = true;
      stored.resolve();
      await readyRecorded.promise;
      await gatewayStop.wrappedMethod.call(first.gateway);
    });
    const dispatcherStop = sinon.stub(first.webhooks, 'stop').callsFake(() => {
      dispatcherStop.wrappedMethod.call(first.webhooks);
      holdCommits = false;
      for (const commit of heldCommits.splice(0)) commit();
    });

    const call = await bridgedRecordedCall(bed, first);
    await simulatedTimePasses(bed.sim, 3000);
    bed.sim.hangup(call.callerChannel);
    await waitFor(bed, call.callId, 'call.ended');
    await storing.promise;
    const { config, logger } = first;
    await first.stop();
    expect(dispatcherStop.calledOnce, 'the dispatcher stopped').to.equal(true);
    expect(typesOf(bed, call.callId)).to.deep.equal(LIFECYCLE);
    const left = bed.logs.filter(
      (l) => l.callId === call.callId && l.eventType === 'recording.ready',
    );
    expect(left.map((l) => [l.level, l.message])).to.deep.equal([
      ['info', 'webhook dispatcher stopped, event left in the outbox for the next start'],
    ]);
    expect(
      await metricValue(first.registry, 'aricrm_webhook_deliveries_total', { outcome: 'dead' }),
    ).to.equal(0);
    sinon.restore();

    second = await startEngine(config, { logger, simulator: bed.sim });
    const ready = await waitFor(bed, call.callId, 'recording.ready');
    expect(await second.webhooks.drain(5000)).to.equal(true);
    expect(typesOf(bed, call.callId)).to.deep.equal([...LIFECYCLE, 'recording.ready']);
    expect(await second.store.events.getEvent(ready.body.id)).to.deep.include({
      status: 'delivered',
    });
    expect((await second.store.calls.getCall(call.callId))?.recording).to.deep.include({
      status: 'stored',
    });
    // The first engine stored the file but stopped before deleting Asterisk's copy: the next
    // one deletes it once connected.
    const { sim } = bed;
    await until(
      async () => !(await storedInAsterisk(sim)).some((r) => r.name === `rec-${call.callId}`),
      `rec-${call.callId} deleted from Asterisk by the next engine`,
    );
  });

  it('a recording Asterisk no longer has after the restart: failed in the call record, counted, no recording.ready', async () => {
    bed = await startTestBed(RECORDING);
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const call = await bridgedRecordedCall(bed, bed.engine);
    const { config, logger } = bed.engine;
    await bed.engine.stop();
    bed.sim.hangup(call.callerChannel);
    bed.sim.hangup(call.operatorChannel);
    await recordingFinished(bed.sim, `rec-${call.callId}`);
    // Someone cleans Asterisk's spool meanwhile.
    const removed = await ari(bed.sim, `/recordings/stored/rec-${call.callId}`, 'DELETE');
    expect(removed.status).to.equal(204);

    second = await startEngine(config, { logger, simulator: bed.sim });
    await waitFor(bed, call.callId, 'call.ended');
    await until(
      async () => (await second!.store.calls.getCall(call.callId))?.recording?.status === 'failed',
      'the recording to be reported failed',
    );
    expect(await metric(second, 'aricrm_recording_failures_total{stage="missing"}')).to.equal(1);
    const answer = await apiRequest(second.httpUrl, `/v1/calls/${call.callId}/recording`);
    expect(answer.status).to.equal(404);
    expect(answer.body.code).to.equal('recording_failed');
    expect(await second.webhooks.drain(5000)).to.equal(true);
    expect(typesOf(bed, call.callId)).to.deep.equal(LIFECYCLE);
    expect(
      bed.logs.some(
        (l) =>
          l.message === 'recording failed' && l.callId === call.callId && l.stage === 'missing',
      ),
    ).to.equal(true);
  });

  it('a WebSocket outage that swallowed RecordingFinished: the reconnect fetches the file at once; a call kept across it is fetched at its end', async () => {
    bed = await startTestBed(RECORDING);
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const over = await bridgedRecordedCall(bed, bed.engine); // ends during the outage
    const kept = await bridgedRecordedCall(bed, bed.engine); // still up after it

    bed.sim.refuseConnections();
    bed.sim.dropWebSockets();
    await until(() => !bed!.engine.gateway.isConnected(), 'the engine to notice the outage');
    bed.sim.hangup(over.callerChannel);
    bed.sim.hangup(over.operatorChannel);
    // The bridge is empty once both channels are gone: Asterisk finishes the recording then
    // (its RecordingFinished reaches nobody).
    const channels = (): string[] => bed!.sim.channels().map((c) => c.id);
    await until(
      () => !channels().includes(over.callerChannel) && !channels().includes(over.operatorChannel),
      'both channels of the call to be gone',
    );
    bed.sim.acceptConnections();
    expect(await storedInAsterisk(bed.sim)).to.deep.include({
      name: `rec-${over.callId}`,
      format: 'wav',
    });

    // Before the 30 s safety timer (armed at the reconnect, when the engine learns the call
    // ended): the reconnect itself finds the stored recording.
    await waitFor(bed, over.callId, 'recording.ready', 20_000);
    expect(
      bed.logs.filter(
        (l) =>
          l.callId === over.callId &&
          l.message === 'no RecordingFinished after the call ended; fetching the recording',
      ),
      'fetched by the safety timer',
    ).to.deep.equal([]);
    await expectStored(bed, bed.engine, over.callId, LIFECYCLE);
    await waitFor(bed, kept.callId, 'call.recovered');
    expect(
      (await ari<{ state: string }>(bed.sim, `/recordings/live/rec-${kept.callId}`)).body.state,
    ).to.equal('recording');

    bed.sim.hangup(kept.callerChannel);
    await expectStored(bed, bed.engine, kept.callId, [
      'call.started',
      'call.ringing',
      'call.answered',
      'call.recovered',
      'call.ended',
    ]);
    expect(await metric(bed.engine, 'aricrm_recordings_stored_total')).to.equal(2);
    expect(await storedInAsterisk(bed.sim)).to.deep.equal([]);
  });
});
