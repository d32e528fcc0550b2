/**
 * A call script recording still downloading from Asterisk when the engine stops is not left in
 * Asterisk: the download is noted in the store before the first try, and the next engine on the
 * same store (the same SQLite file) fetches, verifies and stores it once ARI is connected, then
 * deletes Asterisk's copy; a recording Asterisk no longer has is forgotten.
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
  VerbRecordingDownloads,
  VerbRecordingError,
  VerbRecordings,
  verbRecordingKey,
} from '../../src/recordings/verb-recordings.ts';
import { audioFile } from '../../src/simulator/wav.ts';
import { createStore, type Store } from '../../src/store/index.ts';

const logger = createSilentLogger();
const CALL = '0a0a0a0a-0000-4000-8000-00000000000b';
const NAME = 'vrec-21111111-2222-4333-8444-555555555555';
const GONE = 'vrec-31111111-2222-4333-8444-555555555555';

describe('call script recordings across an engine stop (store-kept downloads)', function () {
  this.timeout(20_000);
  let dir: string;
  let storage: LocalRecordingStorage;
  /** Asterisk's stored recordings; while `down`, every file request fails (connection). */
  let asterisk: Map<string, Buffer>;
  let down: boolean;
  let requests: string[];
  const stores: Store[] = [];

  const gateway = {
    recordings: {
      getStoredFile(name: string): Promise<Buffer> {
        requests.push(`GET ${name}/file`);
        if (down) return Promise.reject(new AriConnectionError('GET file', 'socket hang up'));
        const file = asterisk.get(name);
        return file
          ? Promise.resolve(file)
          : Promise.reject(new AriNotFoundError('GET file', 'Recording not found'));
      },
      deleteStored(name: string): Promise<void> {
        requests.push(`DELETE ${name}`);
        asterisk.delete(name);
        return Promise.resolve();
      },
    },
  } as unknown as ConstructorParameters<typeof VerbRecordings>[0]['gateway'];

  /** One engine run: a store on the same SQLite file, and its VerbRecordings. */
  async function engine(): Promise<{ verbs: VerbRecordings; registry: Registry }> {
    const store = createStore({ url: `sqlite:${join(dir, 'ari-crm.sqlite')}`, logger });
    stores.push(store);
    await store.migrate();
    const registry = new Registry();
    const verbs = new VerbRecordings({
      gateway,
      storage,
      links: new RecordingLinks({
        secret: 'verb-recordings-secret-0123456789',
        ttlSec: 600,
        baseUrl: 'http://engine',
      }),
      logger,
      registry,
      pending: new VerbRecordingDownloads(store.db),
      options: {
        deleteFromAsterisk: true,
        download: { attempts: 50, initialDelayMs: 20, maxDelayMs: 50 },
      },
    });
    return { verbs, registry };
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'verb-recordings-resume-'));
    storage = new LocalRecordingStorage(join(dir, 'recordings'));
    asterisk = new Map();
    down = false;
    requests = [];
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a download cut by the engine stopping is completed by the next start; Asterisk keeps no copy', async () => {
    const wav = audioFile('wav', 2 * 50); // 2 s
    asterisk.set(NAME, wav);
    asterisk.set(GONE, wav);
    down = true; // Asterisk's HTTP fails: the first run keeps retrying

    const first = await engine();
    const keeping = first.verbs.keep(CALL, NAME, 2).catch((err: unknown) => err);
    const keepingGone = first.verbs.keep(CALL, GONE, 2).catch((err: unknown) => err);
    while (requests.length < 4) await new Promise((resolve) => setTimeout(resolve, 10));
    first.verbs.stop(); // the engine stops mid-download
    const cut = await keeping;
    expect(cut).to.be.instanceOf(VerbRecordingError);
    expect((cut as VerbRecordingError).stage).to.equal('stopped');
    await keepingGone;
    expect(await storage.stat(verbRecordingKey(CALL, NAME))).to.equal(undefined);
    expect(asterisk.has(NAME)).to.equal(true);
    await stores[0]!.close();
    stores.length = 0;

    // Asterisk lost one recording meanwhile; the next start fetches the other.
    asterisk.delete(GONE);
    down = false;
    requests = [];
    const second = await engine();
    expect(await second.verbs.resumePending()).to.equal(1);
    const file = await storage.stat(verbRecordingKey(CALL, NAME));
    expect(file?.bytes).to.equal(wav.length);
    expect(asterisk.has(NAME), "Asterisk's copy deleted").to.equal(false);
    expect(requests).to.include(`DELETE ${NAME}`);
    expect((await second.verbs.list(CALL)).map((r) => r.name)).to.deep.equal([NAME]);
    const resumed = await second.registry
      .getSingleMetric('aricrm_verb_recordings_resumed_total')!
      .get();
    expect(resumed.values[0]!.value).to.equal(1);

    // Nothing is left to fetch: a later start (or reconnect) asks Asterisk for nothing.
    requests = [];
    expect(await second.verbs.resumePending()).to.equal(0);
    expect(requests).to.deep.equal([]);
  });

  it('a download that ends normally leaves nothing to take up', async () => {
    asterisk.set(NAME, audioFile('wav', 50));
    const run = await engine();
    await run.verbs.keep(CALL, NAME, 1);
    requests = [];
    expect(await run.verbs.resumePending()).to.equal(0);
    expect(requests).to.deep.equal([]);
  });
});
