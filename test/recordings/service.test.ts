/**
 * The recordings service's recovery paths, against a small in-memory Asterisk (live and stored
 * recordings, reachable or not) where the e2e tests cannot set the timing: the fetch after
 * `finishTimeoutMs` when RecordingFinished never comes, a record request lost before it reached
 * Asterisk (started again while the call goes on, failed once it ended), a live recording of an
 * ended call stopped, a download while ARI is unreachable that waits for the reconnect without using up
 * tries, `stored` written and Asterisk's copy deleted only once `recording.ready` is committed,
 * a shutdown waiting for the downloads in progress, and a resumed recording whose
 * `recording.ready` an earlier run already sent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { AriConnectionError, AriServerError } from '../../src/ari/errors.ts';
import type { Call } from '../../src/calls/model.ts';
import type { RecordingReadyData } from '../../src/events/types.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { RecordingLinks } from '../../src/recordings/links.ts';
import {
  RecordingService,
  type RecordingServiceDeps,
  type RecordingServiceOptions,
  START_TRIES,
} from '../../src/recordings/service.ts';
import { LocalRecordingStorage, recordingKey } from '../../src/recordings/storage.ts';
import { audioFile } from '../../src/simulator/wav.ts';
import type {
  CallRecord,
  RecordingFields,
  UnsettledRecordingRecord,
} from '../../src/store/calls.ts';
import { until } from '../support/until.ts';
import { FakeAsterisk, liveCall } from './support/fake-asterisk.ts';

/** A call journal whose commits the test releases. */
class ManualJournal {
  private readonly waiting: Array<() => void> = [];
  whenCommitted(_callId: string, committed: () => void): void {
    this.waiting.push(committed);
  }
  commit(): void {
    for (const committed of this.waiting.splice(0)) committed();
  }
  pending(): number {
    return this.waiting.length;
  }
}

describe('recordings service: recovery paths', () => {
  let dir: string;
  let asterisk: FakeAsterisk;
  let rows: Map<string, RecordingFields>;
  let ready: Array<{ call: Call; data: RecordingReadyData }>;
  let registry: Registry;
  let service: RecordingService | undefined;
  /** What the store says of calls of earlier runs (`calls.getCall`): call id → recording status. */
  let storedCalls: Map<string, string>;

  beforeEach(() => {
    storedCalls = new Map();
    dir = mkdtempSync(join(tmpdir(), 'ari-crm-rec-service-'));
    asterisk = new FakeAsterisk();
    rows = new Map();
    ready = [];
    registry = new Registry();
  });
  let clock: sinon.SinonFakeTimers | undefined;
  afterEach(() => {
    clock?.restore();
    clock = undefined;
    service?.stop();
    service = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function start(
    options: Partial<RecordingServiceOptions> = {},
    journal?: ManualJournal,
  ): RecordingService {
    const deps: RecordingServiceDeps = {
      gateway: asterisk.gateway as unknown as RecordingServiceDeps['gateway'],
      notifier: {
        recordingReady: (call, data) => {
          ready.push({ call, data });
          call.nextSequence++;
        },
      },
      calls: {
        setRecording: (callId, fields) => {
          rows.set(callId, { ...rows.get(callId), ...fields });
          return Promise.resolve(true);
        },
        getCall: (callId) => {
          const status = storedCalls.get(callId);
          return Promise.resolve(
            status === undefined
              ? undefined
              : ({ id: callId, recording: { status } } as unknown as CallRecord),
          );
        },
      },
      ...(journal ? { journal } : {}),
      storage: new LocalRecordingStorage(dir),
      links: new RecordingLinks({
        secret: 'unit-test-link-secret-0123456789abcdef',
        ttlSec: 3600,
        baseUrl: 'http://127.0.0.1:3000',
      }),
      logger: createSilentLogger(),
      registry,
      options: {
        mode: 'all',
        deleteFromAsterisk: true,
        download: { attempts: 2, initialDelayMs: 10, maxDelayMs: 10 },
        finishTimeoutMs: 40,
        storeRetryDelayMs: 5,
        ...options,
      },
    };
    service = new RecordingService(deps);
    asterisk.onFinished = (recording) =>
      service!.handleEvent({ type: 'RecordingFinished', recording } as never);
    return service;
  }

  async function metric(name: string, labels = ''): Promise<number> {
    const text = await registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
    return line ? Number(line.split(' ')[1]) : 0;
  }

  async function recorded(svc: RecordingService): Promise<Call> {
    const call = liveCall();
    await svc.bridgeCreated(call, 'br-1', undefined);
    await until(() => rows.get(call.id)?.status === 'recording', 'the recording status');
    return call;
  }

  function end(svc: RecordingService, call: Call): void {
    call.phase = 'ended';
    call.endedAt = Date.now();
    svc.callEnded(call);
  }

  it('at the first connect, deletes the copies in Asterisk of recordings the store says are stored, and nothing else; once per run', async () => {
    const storedOne = '00000000-0000-4000-8000-00000000a001';
    const stillRecording = '00000000-0000-4000-8000-00000000a002';
    const unknown = '00000000-0000-4000-8000-00000000a003';
    storedCalls.set(storedOne, 'stored');
    storedCalls.set(stillRecording, 'recording');
    for (const name of [`rec-${storedOne}`, `rec-${stillRecording}`, `rec-${unknown}`, 'voicemail'])
      asterisk.stored.set(name, Buffer.alloc(0));
    const svc = start();
    svc.connected();
    await until(
      () => asterisk.requests.includes(`DELETE stored/rec-${storedOne}`),
      'the stored copy deleted',
    );
    expect([...asterisk.stored.keys()].sort()).to.deep.equal(
      [`rec-${stillRecording}`, `rec-${unknown}`, 'voicemail'].sort(),
    );
    svc.connected();
    await svc.sweepStored();
    expect(asterisk.requests.filter((r) => r === 'GET stored')).to.have.length(2);
    expect(asterisk.requests.filter((r) => r.startsWith('DELETE'))).to.deep.equal([
      `DELETE stored/rec-${storedOne}`,
    ]);
  });

  it('keeps every copy in Asterisk when the engine does not delete recordings from it', async () => {
    const id = '00000000-0000-4000-8000-00000000a004';
    storedCalls.set(id, 'stored');
    asterisk.stored.set(`rec-${id}`, Buffer.alloc(0));
    const svc = start({ deleteFromAsterisk: false });
    svc.connected();
    await new Promise((resolve) => setImmediate(resolve));
    expect(asterisk.requests).to.deep.equal([]);
    expect([...asterisk.stored.keys()]).to.deep.equal([`rec-${id}`]);
  });

  it('a bridge gone before the recording started: not recorded, and no failure', async () => {
    const svc = start();
    asterisk.recordOutcome = 'gone';
    const call = liveCall();
    await svc.bridgeCreated(call, 'br-1', undefined);
    expect(rows.get(call.id)).to.equal(undefined);
    expect(svc.inProgress()).to.equal(0);
    expect(svc.recordingUrl(call.id)).to.equal(undefined);
    expect(await metric('aricrm_recording_failures_total', '{stage="start"}')).to.equal(0);
  });

  it('no answer to the record request: looked up in Asterisk, where it is live, then fetched at the end of the call', async () => {
    const svc = start();
    asterisk.recordOutcome = 'lost';
    const call = liveCall();
    await svc.bridgeCreated(call, 'br-1', undefined);
    const name = `rec-${call.id}`;
    await until(() => asterisk.requests.includes(`GET live/${name}`), 'the look-up');
    expect(rows.get(call.id)?.status).to.equal('recording');
    expect(await metric('aricrm_recording_failures_total', '{stage="start"}')).to.equal(0);
    await until(
      async () => (await metric('aricrm_recordings_started_total')) === 1,
      'the recording counted as started once found live',
    );
    asterisk.finish(name, 3, true);
    end(svc, call);
    await until(() => ready.length === 1, 'recording.ready');
    await until(() => rows.get(call.id)?.status === 'stored', 'stored');
  });

  /** The requests about `call`'s recording and bridge, in order. */
  function requestsOf(call: Call): string[] {
    return asterisk.requests.filter((r) => r.includes(`rec-${call.id}`) || r.includes('/bridges/'));
  }

  it("a record request lost before it reached Asterisk while the call goes on: the recording is started again on the call's bridge, without overwriting, then fetched and ready as any other", async () => {
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    asterisk.recordOutcomes = ['dropped'];
    const call = liveCall();
    const name = `rec-${call.id}`;
    await svc.bridgeCreated(call, 'br-1', undefined);
    await until(() => asterisk.live.has(name), 'the recording started again in Asterisk');
    expect(requestsOf(call)).to.deep.equal([
      'POST /bridges/br-1/record',
      `GET live/${name}`,
      `GET stored/${name}`,
      'GET /bridges/br-1',
      'POST /bridges/br-1/record',
    ]);
    expect(asterisk.recordParams).to.deep.equal([{ name, format: 'wav', ifExists: 'fail' }]);
    expect(rows.get(call.id)?.status).to.equal('recording');
    expect(svc.recordingUrl(call.id)).to.be.a('string');
    await until(
      async () => (await metric('aricrm_recordings_started_total')) === 1,
      'the recording counted as started',
    );
    // The call ends: the bridge is destroyed, Asterisk finishes the recording.
    asterisk.finish(name, 4, true);
    end(svc, call);
    await until(() => ready.length === 1, 'recording.ready');
    expect(ready[0]!.data).to.include({ durationSec: 4, format: 'wav' });
    await until(() => rows.get(call.id)?.status === 'stored', 'stored');
    expect(await metric('aricrm_recordings_started_total')).to.equal(1);
    expect(await metric('aricrm_recording_failures_total', '{stage="missing"}')).to.equal(0);
  });

  it('a record request lost as the ARI connection drops: started again once ARI is back, its file fetched without RecordingFinished, durationSec from the file', async () => {
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    asterisk.recordOutcomes = ['cut'];
    const call = liveCall();
    const name = `rec-${call.id}`;
    await svc.bridgeCreated(call, 'br-1', undefined);
    expect(rows.get(call.id)?.status).to.equal('recording');
    expect(requestsOf(call)).to.deep.equal(['POST /bridges/br-1/record']);
    // ARI is back.
    asterisk.reachable = true;
    svc.connected();
    await until(() => asterisk.live.has(name), 'the recording started again in Asterisk');
    expect(await metric('aricrm_recordings_started_total')).to.equal(1);
    // The call ends; the bridge is destroyed and its RecordingFinished lost.
    asterisk.finish(name, 2, false);
    end(svc, call);
    await until(() => ready.length === 1, 'recording.ready');
    expect(ready[0]!.data).to.include({ durationSec: 2 });
    await until(() => rows.get(call.id)?.status === 'stored', 'stored');
    // A reconnect later changes nothing.
    svc.connected();
    expect(await metric('aricrm_recordings_started_total')).to.equal(1);
  });

  it('record requests of several calls lost as the ARI connection drops: at the reconnect only the call still going on is recorded; a call that ended meanwhile (for the engine, its parties gone, its bridge gone) has its recording failed', async () => {
    const svc = start();
    const calls = {
      up: liveCall(),
      ended: liveCall(),
      onePartyLeft: liveCall(),
      bridgeGone: liveCall(),
    };
    const bridgeOf = (call: Call): string => `br-${call.id}`;
    for (const call of Object.values(calls)) {
      asterisk.bridges.set(bridgeOf(call), ['caller', 'operator']);
      asterisk.recordOutcomes = ['cut'];
      asterisk.reachable = true;
      await svc.bridgeCreated(call, bridgeOf(call), undefined);
    }
    // While ARI is away: one call is ended by the engine; in the others the engine has not heard
    // of yet, one party hung up, or the call ended and its bridge was destroyed.
    end(svc, calls.ended);
    asterisk.bridges.set(bridgeOf(calls.onePartyLeft), ['operator']);
    asterisk.bridges.delete(bridgeOf(calls.bridgeGone));
    asterisk.reachable = true;
    svc.connected();
    const { up, ...over } = calls;
    for (const call of Object.values(over))
      await until(() => rows.get(call.id)?.status === 'failed', 'failed');
    await until(() => asterisk.live.has(`rec-${up.id}`), 'the call still going on recorded');
    expect([...asterisk.live]).to.deep.equal([`rec-${up.id}`]);
    expect(asterisk.recordParams.map((p) => p.name)).to.deep.equal([`rec-${up.id}`]);
    expect(rows.get(up.id)?.status).to.equal('recording');
    expect(await metric('aricrm_recording_failures_total', '{stage="missing"}')).to.equal(3);
    expect(await metric('aricrm_recordings_started_total')).to.equal(1);
    for (const call of Object.values(over)) expect(svc.recordingUrl(call.id)).to.equal(undefined);
  });

  it(`a record request that never reaches Asterisk, every time: ${START_TRIES} requests in all, then the recording failed`, async () => {
    const svc = start();
    asterisk.recordOutcome = 'dropped';
    const call = liveCall();
    await svc.bridgeCreated(call, 'br-1', undefined);
    await until(() => rows.get(call.id)?.status === 'failed', 'failed');
    expect(asterisk.requests.filter((r) => r.startsWith('POST /bridges'))).to.have.length(
      START_TRIES,
    );
    expect(await metric('aricrm_recording_failures_total', '{stage="missing"}')).to.equal(1);
    expect(await metric('aricrm_recordings_started_total')).to.equal(0);
    // Later reconnects do not try again.
    svc.connected();
    await new Promise((resolve) => setImmediate(resolve));
    expect(asterisk.requests.filter((r) => r.startsWith('POST /bridges'))).to.have.length(
      START_TRIES,
    );
    end(svc, call);
    expect(ready).to.have.length(0);
  });

  it('the first record request reached Asterisk late, as it is started again: the recording is not overwritten, and counted as started once', async () => {
    const svc = start();
    const call = liveCall();
    const name = `rec-${call.id}`;
    asterisk.recordOutcomes = ['dropped'];
    // The bridge look-up before the second request: meanwhile the first request took effect.
    const get = asterisk.gateway.bridges.get;
    asterisk.gateway.bridges.get = (bridgeId) => {
      asterisk.live.add(name);
      return get(bridgeId);
    };
    await svc.bridgeCreated(call, 'br-1', undefined);
    await until(
      async () => (await metric('aricrm_recordings_started_total')) === 1,
      'the recording counted as started',
    );
    await until(
      () => asterisk.requests.filter((r) => r === `GET live/${name}`).length === 2,
      'the second look-up',
    );
    expect(asterisk.recordParams).to.deep.equal([{ name, format: 'wav', ifExists: 'fail' }]);
    asterisk.finish(name, 3, true);
    end(svc, call);
    await until(() => ready.length === 1, 'recording.ready');
    expect(await metric('aricrm_recordings_started_total')).to.equal(1);
    expect(await metric('aricrm_recording_failures_total', '{stage="start"}')).to.equal(0);
  });

  it('fetches the file finishTimeoutMs after call.ended when RecordingFinished never comes', async () => {
    const svc = start();
    const call = await recorded(svc);
    asterisk.finish(`rec-${call.id}`, 3, false); // the event was lost
    end(svc, call);
    expect(ready).to.have.length(0);
    await until(() => ready.length === 1, 'recording.ready');
    expect(ready[0]!.call).to.equal(call);
    expect(ready[0]!.data).to.include({ bytes: 48_044, durationSec: 3, format: 'wav' });
    await until(() => rows.get(call.id)?.status === 'stored', 'stored');
    expect(rows.get(call.id)).to.deep.include({ bytes: 48_044, durationSec: 3 });
    expect(asterisk.stored.size).to.equal(0);
  });

  it('a RecordingFinished lost after the call ended: the recording is looked up finishCheckMs later, fetched and ready long before finishTimeoutMs', async () => {
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    const call = await recorded(svc);
    const name = `rec-${call.id}`;
    // Asterisk finished the recording as the call's bridge was destroyed; its event never came.
    asterisk.finish(name, 3, false);
    const endedAt = Date.now();
    end(svc, call);
    await until(() => ready.length === 1, 'recording.ready', 5_000);
    expect(Date.now() - endedAt).to.be.below(5_000);
    expect(ready[0]!.data).to.include({ bytes: 48_044, durationSec: 3, format: 'wav' });
    await until(() => rows.get(call.id)?.status === 'stored', 'stored');
    expect(asterisk.requests.filter((r) => r.includes(name))).to.deep.equal([
      `GET live/${name}`,
      `GET stored/${name}`,
      `GET stored/${name}/file`,
      `DELETE stored/${name}`,
    ]);
  });

  /**
   * Hold the answer to `POST /bridges/{id}/record` (Asterisk starts the recording at once): the
   * request is answered when the returned function is called.
   */
  function holdRecordAnswer(): () => void {
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const record = asterisk.gateway.bridges.record;
    asterisk.gateway.bridges.record = async (bridgeId, params) => {
      const result = record(bridgeId, params);
      await answered;
      return result;
    };
    return answer;
  }

  it('a record request answered only after finishCheckMs past the call end: the recording is looked up at the answer, fetched and ready long before finishTimeoutMs; a late RecordingFinished changes nothing', async () => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let call: Call;
    let name: string;
    try {
      const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
      const answer = holdRecordAnswer();
      call = liveCall();
      name = `rec-${call.id}`;
      const starting = svc.bridgeCreated(call, 'br-1', undefined);
      // The call is over at once; Asterisk finished the recording and its event was lost.
      asterisk.finish(name, 3, false);
      end(svc, call);
      await clock.tickAsync(25); // finishCheckMs passes with the request unanswered
      expect(asterisk.requests.filter((r) => r.includes(name))).to.deep.equal([]);
      answer();
      await starting;
    } finally {
      // finishTimeoutMs (60 s, fake) can no longer fire: only the look-up can bring the file.
      clock.restore();
      clock = undefined;
    }
    await until(() => ready.length === 1, 'recording.ready', 2_000);
    expect(ready[0]!.data).to.include({ bytes: 48_044, durationSec: 3, format: 'wav' });
    await until(() => rows.get(call.id)?.status === 'stored', 'stored');
    // Its RecordingFinished after all, late: no second fetch, no second recording.ready.
    asterisk.onFinished({
      name,
      format: 'wav',
      state: 'done',
      target_uri: 'bridge:br-1',
      duration: 3,
    });
    expect(ready).to.have.length(1);
    expect(asterisk.requests.filter((r) => r.includes(name))).to.deep.equal([
      `GET live/${name}`,
      `GET stored/${name}`,
      `GET stored/${name}/file`,
      `DELETE stored/${name}`,
    ]);
    expect(await metric('aricrm_recordings_started_total')).to.equal(1);
  });

  it('a RecordingFinished that comes while the look-up made at a late record answer is in flight: fetched once, one recording.ready', async () => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let call: Call;
    let name: string;
    try {
      const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
      const answer = holdRecordAnswer();
      // The look-up's first request is held until the event has come.
      let lookedUp!: () => void;
      const lookingUp = new Promise<void>((resolve) => (lookedUp = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const getLive = asterisk.gateway.recordings.getLive;
      asterisk.gateway.recordings.getLive = async (recording) => {
        lookedUp();
        await released;
        return getLive(recording);
      };
      call = liveCall();
      name = `rec-${call.id}`;
      const starting = svc.bridgeCreated(call, 'br-1', undefined);
      end(svc, call);
      await clock.tickAsync(25);
      answer();
      await starting;
      await lookingUp;
      asterisk.finish(name, 3, true); // the bridge is destroyed: RecordingFinished
      release();
    } finally {
      clock.restore();
      clock = undefined;
    }
    await until(() => rows.get(call.id)?.status === 'stored', 'stored', 2_000);
    await until(() => !asterisk.stored.has(name), "Asterisk's copy deleted");
    expect(ready).to.have.length(1);
    expect(ready[0]!.data).to.include({ durationSec: 3 });
    expect(asterisk.requests.filter((r) => r.endsWith('/file'))).to.deep.equal([
      `GET stored/${name}/file`,
    ]);
  });

  /**
   * Make `GET /recordings/live/{name}` fail with `failures`, one a look-up, then answer as
   * Asterisk does; the fake clock's time of every look-up is kept in `times`.
   */
  function failLiveLookUps(failures: Error[], fake: sinon.SinonFakeTimers): { times: number[] } {
    const times: number[] = [];
    const getLive = asterisk.gateway.recordings.getLive;
    asterisk.gateway.recordings.getLive = (name: string) => {
      times.push(fake.now);
      const failure = failures.shift();
      return failure ? Promise.reject(failure) : getLive(name);
    };
    return { times };
  }

  /** Let real I/O (the storage's file writes) run under fake timers until `condition` holds. */
  async function untilIo(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  const commandTimeout = (operation: string): AriConnectionError =>
    new AriConnectionError(operation, 'no answer from Asterisk within 10000 ms');

  it('a look-up in Asterisk that fails while ARI stays connected (a command timeout, then a 5xx) is tried again 1 s, then 2 s later: the recording is fetched and ready long before finishTimeoutMs, and not looked up again', async () => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    const call = liveCall();
    const name = `rec-${call.id}`;
    await svc.bridgeCreated(call, 'br-1', undefined);
    // Asterisk finished the recording as the call's bridge was destroyed; its event never came.
    asterisk.finish(name, 3, false);
    const lookUps = failLiveLookUps(
      [
        commandTimeout('recordings.getLive'),
        new AriServerError('recordings.getLive', 'Internal Server Error'),
      ],
      clock,
    );
    const endedAt = clock.now;
    end(svc, call);
    await clock.tickAsync(20); // finishCheckMs: the look-up gets no answer
    expect(lookUps.times).to.have.length(1);
    await clock.tickAsync(999);
    expect(lookUps.times).to.have.length(1);
    await clock.tickAsync(1 + 2_000);
    expect(lookUps.times.map((t) => t - endedAt)).to.deep.equal([20, 1_020, 3_020]);
    await untilIo(() => ready.length === 1, 'recording.ready');
    expect(ready[0]!.data).to.include({ bytes: 48_044, durationSec: 3, format: 'wav' });
    await untilIo(() => rows.get(call.id)?.status === 'stored', 'stored');
    await untilIo(() => !asterisk.stored.has(name), "Asterisk's copy deleted");
    await clock.tickAsync(120_000);
    expect(lookUps.times).to.have.length(3);
    expect(asterisk.requests.filter((r) => r.includes(name))).to.deep.equal([
      `GET live/${name}`,
      `GET stored/${name}`,
      `GET stored/${name}/file`,
      `DELETE stored/${name}`,
    ]);
    expect(ready).to.have.length(1);
  });

  it("the look-up of the call's bridge before its recording is started again fails while ARI stays connected: tried again a second later, and the recording is started again while the call goes on", async () => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    asterisk.recordOutcomes = ['dropped'];
    const get = asterisk.gateway.bridges.get;
    let failures = 1;
    asterisk.gateway.bridges.get = (bridgeId: string) => {
      if (failures-- <= 0) return get(bridgeId);
      asterisk.requests.push(`GET /bridges/${bridgeId} (5xx)`);
      return Promise.reject(new AriServerError('bridges.get', 'Internal Server Error'));
    };
    const call = liveCall();
    const name = `rec-${call.id}`;
    await svc.bridgeCreated(call, 'br-1', undefined);
    await clock.tickAsync(0);
    expect(asterisk.live.has(name)).to.equal(false);
    await clock.tickAsync(1_000);
    expect(asterisk.live.has(name), 'the recording started again').to.equal(true);
    expect(requestsOf(call)).to.deep.equal([
      'POST /bridges/br-1/record',
      `GET live/${name}`,
      `GET stored/${name}`,
      'GET /bridges/br-1 (5xx)',
      `GET live/${name}`,
      `GET stored/${name}`,
      'GET /bridges/br-1',
      'POST /bridges/br-1/record',
    ]);
    expect(asterisk.recordParams).to.deep.equal([{ name, format: 'wav', ifExists: 'fail' }]);
    expect(await metric('aricrm_recordings_started_total')).to.equal(1);
    expect(rows.get(call.id)?.status).to.equal('recording');
  });

  it('look-ups that keep failing while ARI stays connected: tried again after 1, 2, 4, 8, 15, 15 s (at most 15 s apart); none after the engine stops', async () => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 600_000 });
    const call = liveCall();
    await svc.bridgeCreated(call, 'br-1', undefined);
    const lookUps = failLiveLookUps(
      Array.from({ length: 20 }, () => new AriServerError('recordings.getLive', 'Bad Gateway')),
      clock,
    );
    end(svc, call);
    await clock.tickAsync(20 + 1_000 + 2_000 + 4_000 + 8_000 + 15_000 + 15_000);
    const gaps = lookUps.times.slice(1).map((t, i) => t - lookUps.times[i]!);
    expect(gaps).to.deep.equal([1_000, 2_000, 4_000, 8_000, 15_000, 15_000]);
    expect(rows.get(call.id)?.status).to.equal('recording');
    svc.stop();
    await clock.tickAsync(120_000);
    expect(lookUps.times).to.have.length(7);
  });

  it('without RecordingFinished, durationSec is the file length rounded down, as Asterisk counts it', async () => {
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    const call = await recorded(svc);
    const name = `rec-${call.id}`;
    // 15 999 samples (1.999875 s): Asterisk's event would say 1.
    const file = Buffer.concat([audioFile('wav', 0), Buffer.alloc(31_998)]);
    file.writeUInt32LE(36 + 31_998, 4);
    file.writeUInt32LE(31_998, 40);
    asterisk.live.delete(name);
    asterisk.stored.set(name, file); // finished; its event lost
    end(svc, call);
    await until(() => ready.length === 1, 'recording.ready', 5_000);
    expect(ready[0]!.data).to.include({ bytes: 32_042, durationSec: 1 });
    await until(() => rows.get(call.id)?.status === 'stored', 'stored');
    expect(rows.get(call.id)).to.deep.include({ bytes: 32_042, durationSec: 1 });
  });

  it('a recording still live when looked up finishCheckMs after the call ended is stopped and fetched at its RecordingFinished', async () => {
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    const call = await recorded(svc);
    end(svc, call); // the bridge outlived the call: Asterisk keeps recording
    await until(() => ready.length === 1, 'recording.ready', 5_000);
    const name = `rec-${call.id}`;
    expect(asterisk.requests.filter((r) => r.includes(name))).to.deep.equal([
      `GET live/${name}`,
      `POST live/${name}/stop`,
      `GET stored/${name}/file`,
      `DELETE stored/${name}`,
    ]);
  });

  it('stops a recording still live when the timer fires (the bridge outlived the call) and fetches it at its RecordingFinished', async () => {
    const svc = start();
    const call = await recorded(svc);
    end(svc, call); // the bridge was not destroyed: Asterisk keeps recording
    await until(() => ready.length === 1, 'recording.ready');
    const name = `rec-${call.id}`;
    expect(asterisk.requests.filter((r) => r.includes(name))).to.deep.equal([
      `GET stored/${name}/file`,
      `GET live/${name}`,
      `POST live/${name}/stop`,
      `GET stored/${name}/file`,
      `DELETE stored/${name}`,
    ]);
    expect(await metric('aricrm_recording_failures_total', '{stage="missing"}')).to.equal(0);
  });

  it('a download while ARI is unreachable waits for the reconnect, without using up tries', async () => {
    const svc = start();
    const call = await recorded(svc);
    asterisk.finish(`rec-${call.id}`, 3, false);
    asterisk.reachable = false;
    end(svc, call);
    await until(
      () => asterisk.requests.includes(`GET stored/rec-${call.id}/file`),
      'the download try after the timer',
    );
    // Far longer than two tries 10 ms apart: the recording is still waiting, not failed.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(rows.get(call.id)?.status).to.equal('recording');
    expect(svc.inProgress()).to.equal(1);
    expect(await metric('aricrm_recording_download_retries_total', '{stage="download"}')).to.equal(
      0,
    );

    asterisk.reachable = true;
    svc.connected();
    await until(() => ready.length === 1, 'recording.ready after the reconnect');
    await until(() => rows.get(call.id)?.status === 'stored', 'stored');
    expect(await metric('aricrm_recording_failures_total', '{stage="download"}')).to.equal(0);
  });

  it('writes `stored` and deletes the file from Asterisk only once recording.ready is committed', async () => {
    const journal = new ManualJournal();
    const svc = start({}, journal);
    const call = await recorded(svc);
    end(svc, call);
    asterisk.finish(`rec-${call.id}`, 3, true);
    await until(() => ready.length === 1, 'recording.ready');
    // The file is playable from memory, but the store and Asterisk wait for the commit.
    expect(await svc.lookup(call.id)).to.deep.include({ state: 'stored' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(rows.get(call.id)?.status).to.equal('recording');
    expect(asterisk.stored.has(`rec-${call.id}`)).to.equal(true);
    expect(journal.pending()).to.equal(1);

    journal.commit();
    await until(() => !asterisk.stored.has(`rec-${call.id}`), 'the delete from Asterisk');
    expect(rows.get(call.id)?.status).to.equal('stored');
  });

  /** Hold every file download (`requested` once one is asked for) until `release()`. */
  function holdDownloads(): { requested: Promise<void>; release: () => void } {
    const recordings = asterisk.gateway.recordings;
    const getStoredFile = recordings.getStoredFile;
    let release!: () => void;
    let requested!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const asked = new Promise<void>((resolve) => (requested = resolve));
    recordings.getStoredFile = async (name: string) => {
      requested();
      await released;
      return getStoredFile(name);
    };
    return { requested: asked, release };
  }

  it('finishDownloads (engine shutdown) waits for a download in progress until recording.ready is committed and Asterisk cleaned up', async () => {
    const journal = new ManualJournal();
    const svc = start({}, journal);
    expect(await svc.finishDownloads(5000)).to.equal(true); // nothing in progress
    const call = await recorded(svc);
    end(svc, call);
    const download = holdDownloads();
    asterisk.finish(`rec-${call.id}`, 3, true);
    await download.requested;
    let finished = false;
    const finishing = svc.finishDownloads(5000).then((done) => {
      finished = true;
      return done;
    });
    download.release();
    await until(() => ready.length === 1, 'recording.ready');
    await until(() => journal.pending() === 1, 'the wait for its commit');
    expect(finished, 'finished before the commit').to.equal(false);
    journal.commit();
    expect(await finishing).to.equal(true);
    expect(asterisk.stored.has(`rec-${call.id}`)).to.equal(false);
    expect(rows.get(call.id)?.status).to.equal('stored');
  });

  it('finishDownloads does not wait for a download waiting for its retry, and gives up on one still in flight at the timeout', async () => {
    const svc = start({ download: { attempts: 3, initialDelayMs: 60_000, maxDelayMs: 60_000 } });
    const failing = await recorded(svc);
    end(svc, failing);
    const recordings = asterisk.gateway.recordings;
    const getStoredFile = recordings.getStoredFile;
    recordings.getStoredFile = () => Promise.reject(new Error('HTTP 500'));
    asterisk.finish(`rec-${failing.id}`, 3, true);
    await until(
      async () =>
        (await metric('aricrm_recording_download_retries_total', '{stage="download"}')) === 1,
      'the retry to be scheduled',
    );
    expect(await svc.finishDownloads(5000)).to.equal(true);

    recordings.getStoredFile = getStoredFile;
    const hanging = await recorded(svc);
    end(svc, hanging);
    const download = holdDownloads();
    asterisk.finish(`rec-${hanging.id}`, 3, true);
    await download.requested;
    expect(await svc.finishDownloads(50)).to.equal(false);
  });

  it('a resumed recording whose recording.ready an earlier run sent: stored and cleaned up, recording.ready not sent again', async () => {
    const svc = start();
    const id = '00000000-0000-4000-8000-0000000000ff';
    const name = `rec-${id}`;
    asterisk.stored.set(name, audioFile('wav', 150));
    const record: UnsettledRecordingRecord = {
      id,
      direction: 'in',
      state: 'ended',
      from: '79161234567',
      to: '74951234567',
      disposition: 'answered',
      hangupBy: 'caller',
      startedAt: '2025-01-31T09:15:00.000Z',
      answeredAt: '2025-01-31T09:15:05.000Z',
      endedAt: '2025-01-31T09:15:08.000Z',
      waitSec: 5,
      talkSec: 3,
      updatedAt: '2025-01-31T09:15:08.000Z',
      legs: [],
      recording: { name, status: 'recording' },
      lastSequence: 5,
      recordingReadyStored: true,
    };
    expect(svc.resume([record])).to.equal(1);
    svc.connected();
    await until(() => rows.get(id)?.status === 'stored', 'stored');
    await until(() => asterisk.stored.size === 0, 'the delete from Asterisk');
    expect(ready).to.have.length(0);
    expect(rows.get(id)).to.deep.include({
      path: recordingKey(id, Date.parse(record.startedAt)),
      bytes: 48_044,
      durationSec: 3,
    });
    expect(await metric('aricrm_recordings_resumed_total')).to.equal(1);
  });
});
