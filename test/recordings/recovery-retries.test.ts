/**
 * The recordings service's retries in Asterisk, on a fake clock against a small in-memory
 * Asterisk: the stop of a live recording of an ended call that Asterisk does not carry out is
 * tried again (after a delay while ARI stays connected, at once when ARI reconnected while it
 * was in flight), whether the look-up after the call's end or the download asked for it; a
 * look-up that throws unexpectedly is logged and tried again, never an unhandled rejection; the
 * retry delays start again from 1 s at each ARI reconnect.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { AriConnectionError, AriServerError } from '../../src/ari/errors.ts';
import type { Call } from '../../src/calls/model.ts';
import type { RecordingReadyData } from '../../src/events/types.ts';
import { createLogger, type Logger } from '../../src/logging/logger.ts';
import { RecordingLinks } from '../../src/recordings/links.ts';
import { RecordingService, type RecordingServiceOptions } from '../../src/recordings/service.ts';
import { LocalRecordingStorage } from '../../src/recordings/storage.ts';
import type { RecordingFields } from '../../src/store/calls.ts';
import { FakeAsterisk, liveCall } from './support/fake-asterisk.ts';

describe('recordings service: retries in Asterisk', () => {
  let dir: string;
  let asterisk: FakeAsterisk;
  let rows: Map<string, RecordingFields>;
  let ready: Array<{ call: Call; data: RecordingReadyData }>;
  let logs: Array<Record<string, unknown>>;
  let logger: Logger;
  let service: RecordingService | undefined;
  let clock: sinon.SinonFakeTimers;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ari-crm-rec-retries-'));
    asterisk = new FakeAsterisk();
    rows = new Map();
    ready = [];
    logs = [];
    const stream = new PassThrough();
    stream.on('data', (line: Buffer) => {
      for (const text of line.toString('utf8').split('\n'))
        if (text.trim()) logs.push(JSON.parse(text) as Record<string, unknown>);
    });
    logger = createLogger({ level: 'debug', stream });
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    clock.restore();
    service?.stop();
    service = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function start(options: Partial<RecordingServiceOptions>): RecordingService {
    service = new RecordingService({
      gateway: asterisk.gateway as never,
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
        getCall: () => Promise.resolve(undefined),
      },
      storage: new LocalRecordingStorage(dir),
      links: new RecordingLinks({
        secret: 'unit-test-link-secret-0123456789abcdef',
        ttlSec: 3600,
        baseUrl: 'http://127.0.0.1:3000',
      }),
      logger,
      registry: new Registry(),
      options: {
        mode: 'all',
        deleteFromAsterisk: true,
        download: { attempts: 2, initialDelayMs: 10, maxDelayMs: 10 },
        storeRetryDelayMs: 5,
        ...options,
      },
    });
    const svc = service;
    asterisk.onFinished = (recording) =>
      svc.handleEvent({ type: 'RecordingFinished', recording } as never);
    return svc;
  }

  /** Record a new call, then end it (its bridge outlives it unless the test finishes it). */
  async function recordedCall(svc: RecordingService): Promise<{ call: Call; name: string }> {
    const call = liveCall();
    await svc.bridgeCreated(call, 'br-1', undefined);
    expect(asterisk.live.has(`rec-${call.id}`)).to.equal(true);
    return { call, name: `rec-${call.id}` };
  }

  function end(svc: RecordingService, call: Call): void {
    call.phase = 'ended';
    call.endedAt = clock.now;
    svc.callEnded(call);
  }

  /** Let real I/O (the storage's file writes) run under the fake clock until `condition` holds. */
  async function untilIo(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * `POST /recordings/live/{name}/stop` answers with `failures` first (a function: answered when
   * it resolves), then as Asterisk; the fake clock's time of each stop is kept in `times`.
   */
  function failStops(failures: Array<Error | (() => Promise<never>)>): { times: number[] } {
    const times: number[] = [];
    const stopLive = asterisk.gateway.recordings.stopLive;
    asterisk.gateway.recordings.stopLive = (name: string) => {
      times.push(clock.now);
      const failure = failures.shift();
      if (failure === undefined) return stopLive(name);
      if (failure instanceof Error) {
        asterisk.requests.push(`POST live/${name}/stop (failed)`);
        return Promise.reject(failure);
      }
      return failure();
    };
    return { times };
  }

  /** The recording is stored in the engine, `recording.ready` sent once, Asterisk cleaned up. */
  async function expectStored(call: Call, name: string): Promise<void> {
    await untilIo(() => rows.get(call.id)?.status === 'stored', 'stored');
    await untilIo(() => !asterisk.stored.has(name), "Asterisk's copy deleted");
    expect(ready).to.have.length(1);
    expect(ready[0]!.data).to.include({ bytes: 48_044, durationSec: 3, format: 'wav' });
  }

  it('the stop of a live recording of an ended call that Asterisk answers with a 5xx is tried again 1 s later: stopped, fetched and ready long before finishTimeoutMs', async () => {
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    const { call, name } = await recordedCall(svc);
    const stops = failStops([new AriServerError('recordings.stopLive', 'Internal Server Error')]);
    const endedAt = clock.now;
    end(svc, call); // the bridge outlived the call: Asterisk keeps recording
    await clock.tickAsync(20); // finishCheckMs: looked up, live, stop refused
    expect(asterisk.live.has(name)).to.equal(true);
    await clock.tickAsync(999);
    expect(stops.times).to.have.length(1);
    await clock.tickAsync(1);
    expect(stops.times.map((t) => t - endedAt)).to.deep.equal([20, 1_020]);
    expect(asterisk.live.has(name), 'still recording in Asterisk').to.equal(false);
    await expectStored(call, name);
    expect(asterisk.requests.filter((r) => r.includes(name))).to.deep.equal([
      `GET live/${name}`,
      `POST live/${name}/stop (failed)`,
      `GET live/${name}`,
      `POST live/${name}/stop`,
      `GET stored/${name}/file`,
      `DELETE stored/${name}`,
    ]);
    expect(
      logs.some(
        (l) =>
          l.level === 'warn' &&
          l.callId === call.id &&
          l.message === 'could not stop the recording in Asterisk; trying again',
      ),
    ).to.equal(true);
  });

  it('ARI reconnects while the stop is in flight, and the stop then gets no answer: it is made again at once, and the recording ends stopped in Asterisk', async () => {
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
    const { call, name } = await recordedCall(svc);
    let noAnswer!: () => void;
    const stops = failStops([
      () =>
        new Promise<never>((_resolve, reject) => {
          noAnswer = () =>
            reject(
              new AriConnectionError(
                'recordings.stopLive',
                'no answer from Asterisk within 10000 ms',
              ),
            );
        }),
    ]);
    end(svc, call);
    await clock.tickAsync(20); // the stop is asked for; its answer never comes
    expect(stops.times).to.have.length(1);
    // The WebSocket drops and ARI reconnects while the stop waits for its answer.
    svc.connected();
    await clock.tickAsync(5_000);
    noAnswer(); // the command times out
    await clock.tickAsync(0);
    expect(stops.times, 'stopped again at once').to.have.length(2);
    expect(stops.times[1]).to.equal(stops.times[0]! + 5_000);
    expect(asterisk.live.has(name), 'still recording in Asterisk').to.equal(false);
    await expectStored(call, name);
  });

  it('the stop asked for by the download (no RecordingFinished by finishTimeoutMs) that Asterisk answers with a 5xx is tried again 1 s later, not at the next fetch', async () => {
    const svc = start({ finishCheckMs: 600_000, finishTimeoutMs: 20_000 });
    const { call, name } = await recordedCall(svc);
    const stops = failStops([new AriServerError('recordings.stopLive', 'Bad Gateway')]);
    const endedAt = clock.now;
    end(svc, call);
    await clock.tickAsync(20_000); // fetched: not stored yet, still live; the stop is refused
    expect(stops.times).to.have.length(1);
    await clock.tickAsync(1_000);
    expect(stops.times.map((t) => t - endedAt)).to.deep.equal([20_000, 21_000]);
    expect(asterisk.live.has(name), 'still recording in Asterisk').to.equal(false);
    await expectStored(call, name);
  });

  it('a look-up that throws unexpectedly is logged at error with the call id and tried again 1 s later, not an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.prependListener('unhandledRejection', onUnhandled);
    try {
      // A dependency throws once where nothing expects it (here the logger, on one line).
      const info = logger.info;
      let thrown = false;
      logger.info = function (this: Logger, message: unknown, ...rest: unknown[]) {
        if (!thrown && message === 'the recording finished while the engine was not listening') {
          thrown = true;
          throw new TypeError('Converting circular structure to JSON');
        }
        return (info as (...args: unknown[]) => Logger).call(this, message, ...rest);
      } as Logger['info'];
      const svc = start({ finishCheckMs: 20, finishTimeoutMs: 60_000 });
      const { call, name } = await recordedCall(svc);
      asterisk.finish(name, 3, false); // its RecordingFinished is lost
      end(svc, call);
      await clock.tickAsync(20);
      await new Promise((resolve) => setImmediate(resolve));
      expect(thrown).to.equal(true);
      expect(unhandled).to.deep.equal([]);
      const errors = logs.filter((l) => l.level === 'error');
      expect(errors).to.have.length(1);
      expect(errors[0]).to.deep.include({
        callId: call.id,
        message:
          'unexpected error as the engine tried to look the recording up in Asterisk; trying again',
        retryInMs: 1_000,
      });
      expect(ready).to.have.length(0);
      await clock.tickAsync(1_000);
      await expectStored(call, name);
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.removeListener('unhandledRejection', onUnhandled);
    }
  });

  it('after an ARI outage, a look-up that fails again is retried 1 s later, not after the long delay of the failures before the outage', async () => {
    const svc = start({ finishCheckMs: 20, finishTimeoutMs: 600_000 });
    const { call } = await recordedCall(svc);
    const times: number[] = [];
    const getLive = asterisk.gateway.recordings.getLive;
    let failing = true;
    asterisk.gateway.recordings.getLive = (name: string) => {
      times.push(clock.now);
      if (!asterisk.reachable)
        return Promise.reject(new AriConnectionError('recordings.getLive', 'ECONNREFUSED'));
      return failing
        ? Promise.reject(new AriServerError('recordings.getLive', 'Service Unavailable'))
        : getLive(name);
    };
    end(svc, call);
    await clock.tickAsync(20 + 1_000 + 2_000 + 4_000); // 4 failures: the next one 8 s later
    expect(times).to.have.length(4);
    asterisk.reachable = false; // ARI drops before that retry: left to the reconnect
    await clock.tickAsync(30_000);
    expect(times).to.have.length(4);
    asterisk.reachable = true;
    const reconnectedAt = clock.now;
    svc.connected(); // still 5xx at the reconnect
    await clock.tickAsync(0);
    expect(times).to.have.length(5);
    failing = false;
    await clock.tickAsync(1_000);
    expect(times.slice(4).map((t) => t - reconnectedAt)).to.deep.equal([0, 1_000]);
    expect(asterisk.requests).to.include(`POST live/rec-${call.id}/stop`);
  });
});
