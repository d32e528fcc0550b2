import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { expect } from 'chai';
import { LocalRecordingStorage, recordingKey } from '../../src/recordings/storage.ts';

const CALL = '9d6c1e0a-2b7f-4a51-8f0e-6a1c2d3e4f50';

describe('local recording storage', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ari-crm-rec-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keys recordings by the UTC day the call started: <YYYY>/<MM>/<DD>/<callId>.wav', () => {
    expect(recordingKey(CALL, Date.UTC(2025, 0, 31, 23, 59, 59))).to.equal(
      `2025/01/31/${CALL}.wav`,
    );
    expect(() => recordingKey('../etc/passwd', 0)).to.throw(RangeError);
  });

  it('stores a file atomically under the key, reports its size, reads it whole or by range', async () => {
    const storage = new LocalRecordingStorage(join(dir, 'recordings'));
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    const key = recordingKey(CALL, Date.UTC(2025, 0, 31));
    const stored = await storage.put(key, data);
    expect(stored).to.include({ key, bytes: 1000 });
    expect(readFileSync(join(dir, 'recordings', '2025', '01', '31', `${CALL}.wav`))).to.deep.equal(
      data,
    );
    expect(readdirSync(join(dir, 'recordings', '2025', '01', '31'))).to.deep.equal([`${CALL}.wav`]); // no temporary file left
    expect(await buffer(storage.read(key))).to.deep.equal(data);
    expect(await buffer(storage.read(key, { start: 10, end: 19 }))).to.deep.equal(
      data.subarray(10, 20),
    );
    await storage.put(key, data.subarray(0, 10));
    expect((await storage.stat(key))?.bytes).to.equal(10);
    await storage.remove(key);
    expect(await storage.stat(key)).to.equal(undefined);
    await storage.remove(key); // no error when already gone
  });

  it('stores into a day directory removed since its last recording (a clean-up job ran)', async () => {
    const storage = new LocalRecordingStorage(join(dir, 'recordings'));
    const day = Date.UTC(2025, 0, 31);
    await storage.put(recordingKey(CALL, day), Buffer.from('first'));
    rmSync(join(dir, 'recordings', '2025'), { recursive: true, force: true });
    const other = '0f1e2d3c-4b5a-4697-8877-665544332211';
    const stored = await storage.put(recordingKey(other, day), Buffer.from('second'));
    expect(stored.bytes).to.equal(6);
    expect(
      readFileSync(join(dir, 'recordings', '2025', '01', '31', `${other}.wav`), 'utf8'),
    ).to.equal('second');
  });

  it('fails a put it cannot write (the directory is a file), leaving nothing behind', async () => {
    writeFileSync(join(dir, 'blocked'), 'not a directory');
    const storage = new LocalRecordingStorage(join(dir, 'blocked'));
    let failure: unknown;
    try {
      await storage.put(`2025/01/31/${CALL}.wav`, Buffer.alloc(10));
    } catch (err) {
      failure = err;
    }
    expect(failure).to.be.instanceOf(Error);
    expect(readFileSync(join(dir, 'blocked'), 'utf8')).to.equal('not a directory');
  });

  it('refuses keys that leave the root or are not plain relative paths', () => {
    const storage = new LocalRecordingStorage(dir);
    for (const key of [
      '../x.wav',
      '2025/../../x.wav',
      '/etc/passwd',
      'a//b',
      '',
      'a/./b',
      '.hidden',
    ])
      expect(() => storage.pathOf(key), key).to.throw(RangeError);
    expect(storage.pathOf('2025/01/31/x.wav')).to.equal(join(dir, '2025', '01', '31', 'x.wav'));
  });
});
