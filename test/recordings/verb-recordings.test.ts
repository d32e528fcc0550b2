/**
 * Call script recordings kept by the engine ({@link VerbRecordings}), against a small in-memory
 * Asterisk where the e2e tests cannot make a download fail: a failed try is retried and the file
 * stored and deleted from Asterisk; a recording Asterisk does not have fails at once; a
 * truncated file is never stored; Asterisk keeps its copy when told to.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { AriConnectionError, AriNotFoundError } from '../../src/ari/errors.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { RecordingLinks } from '../../src/recordings/links.ts';
import { LocalRecordingStorage } from '../../src/recordings/storage.ts';
import {
  VerbRecordingError,
  VerbRecordings,
  verbRecordingKey,
} from '../../src/recordings/verb-recordings.ts';
import { audioFile } from '../../src/simulator/wav.ts';

const CALL = '0a0a0a0a-0000-4000-8000-00000000000a';
const NAME = 'vrec-11111111-2222-4333-8444-555555555555';

describe('call script recordings (VerbRecordings)', () => {
  let dir: string;
  let storage: LocalRecordingStorage;
  let registry: Registry;
  /** Asterisk's stored recordings; `failures`: how many file requests fail first (connection). */
  let stored: Map<string, Buffer>;
  let failures: number;
  let requests: string[];

  const gateway = {
    recordings: {
      getStoredFile(name: string): Promise<Buffer> {
        requests.push(`GET ${name}/file`);
        if (failures > 0) {
          failures--;
          return Promise.reject(new AriConnectionError('GET file', 'socket hang up'));
        }
        const file = stored.get(name);
        return file
          ? Promise.resolve(file)
          : Promise.reject(new AriNotFoundError('GET file', 'Recording not found'));
      },
      deleteStored(name: string): Promise<void> {
        requests.push(`DELETE ${name}`);
        stored.delete(name);
        return Promise.resolve();
      },
    },
  } as unknown as ConstructorParameters<typeof VerbRecordings>[0]['gateway'];

  function service(deleteFromAsterisk = true): VerbRecordings {
    return new VerbRecordings({
      gateway,
      storage,
      links: new RecordingLinks({
        secret: 'verb-recordings-secret-0123456789',
        ttlSec: 600,
        baseUrl: 'http://engine',
      }),
      logger: createSilentLogger(),
      registry,
      options: {
        deleteFromAsterisk,
        download: { attempts: 3, initialDelayMs: 5, maxDelayMs: 20 },
      },
    });
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'verb-recordings-'));
    storage = new LocalRecordingStorage(dir);
    registry = new Registry();
    stored = new Map();
    failures = 0;
    requests = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const metric = async (name: string): Promise<number> =>
    (await registry.getSingleMetric(name)!.get()).values.reduce((n, v) => n + v.value, 0);

  it('retries a failed download, stores the file under verbs/<callId>/, deletes it from Asterisk, signs a link', async () => {
    const wav = audioFile('wav', 3 * 50); // 3 s
    stored.set(NAME, wav);
    failures = 2;
    const kept = await service().keep(CALL, NAME, 3);
    expect(kept).to.deep.include({ name: NAME, bytes: wav.length, durationSec: 3 });
    expect(new URL(kept.url).pathname).to.equal(`/v1/calls/${CALL}/recordings/${NAME}`);
    expect(requests).to.deep.equal([
      `GET ${NAME}/file`,
      `GET ${NAME}/file`,
      `GET ${NAME}/file`,
      `DELETE ${NAME}`,
    ]);
    expect(verbRecordingKey(CALL, NAME)).to.equal(`verbs/${CALL}/${NAME}.wav`);
    const file = await service().lookup(CALL, NAME);
    expect(file?.bytes).to.equal(wav.length);
    // Call details list it (other calls and unknown calls: nothing).
    const listed = await service().list(CALL);
    expect(listed.map((r) => [r.name, r.bytes])).to.deep.equal([[NAME, wav.length]]);
    expect(new URL(listed[0]!.url).pathname).to.equal(`/v1/calls/${CALL}/recordings/${NAME}`);
    expect(await service().list('0b0b0b0b-0000-4000-8000-00000000000b')).to.deep.equal([]);
    expect(await metric('aricrm_verb_recordings_stored_total')).to.equal(1);
  });

  it('fails at once when Asterisk has no such recording; nothing is stored', async () => {
    const error = await service()
      .keep(CALL, NAME, 3)
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(error).to.be.instanceOf(VerbRecordingError);
    expect((error as VerbRecordingError).stage).to.equal('missing');
    expect(requests).to.deep.equal([`GET ${NAME}/file`]);
    expect(await service().lookup(CALL, NAME)).to.equal(undefined);
  });

  it('never stores a file shorter than Asterisk reported, and leaves it in Asterisk', async () => {
    stored.set(NAME, audioFile('wav', 1 * 50)); // 1 s where Asterisk said 3 s
    const error = await service()
      .keep(CALL, NAME, 3)
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect((error as VerbRecordingError).stage).to.equal('verify');
    expect(requests.filter((r) => r.startsWith('GET'))).to.have.length(3);
    expect(requests.some((r) => r.startsWith('DELETE'))).to.equal(false);
    expect(stored.has(NAME)).to.equal(true);
    expect(await service().lookup(CALL, NAME)).to.equal(undefined);
    expect(await metric('aricrm_verb_recording_failures_total')).to.equal(1);
  });

  it("keeps Asterisk's copy when RECORDING_DELETE_FROM_ASTERISK is off; lookup refuses foreign names", async () => {
    stored.set(NAME, audioFile('wav', 2 * 50));
    const kept = await service(false).keep(CALL, NAME);
    expect(kept.durationSec).to.equal(2); // measured from the file
    expect(requests).to.deep.equal([`GET ${NAME}/file`]);
    expect(stored.has(NAME)).to.equal(true);
    expect(await service().lookup(CALL, 'rec-x')).to.equal(undefined);
  });
});
