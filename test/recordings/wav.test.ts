import { expect } from 'chai';
import { audioFile } from '../../src/simulator/wav.ts';
import { RecordingVerifyError, verifyWav } from '../../src/recordings/wav.ts';

describe('recording verification (WAV)', () => {
  const threeSeconds = audioFile('wav', 150); // 3 s of 20 ms frames: 48044 bytes, as in the trace

  it('accepts a complete 8 kHz 16-bit mono WAV and measures it', () => {
    expect(verifyWav(threeSeconds, 3)).to.deep.equal({
      bytes: 48044,
      dataBytes: 48000,
      sampleRate: 8000,
      channels: 1,
      bitsPerSample: 16,
      durationMs: 3000,
      durationSec: 3,
    });
    expect(verifyWav(audioFile('wav', 0)).durationMs).to.equal(0);
  });

  it('counts whole seconds as Asterisk counts the duration of RecordingFinished: rounded down', () => {
    // 1.94 s (97 frames of 20 ms) and 1.999875 s (15 999 samples): Asterisk says 1 for both.
    expect(verifyWav(audioFile('wav', 97))).to.include({ durationMs: 1940, durationSec: 1 });
    const almostTwo = Buffer.concat([audioFile('wav', 0), Buffer.alloc(31_998)]);
    almostTwo.writeUInt32LE(36 + 31_998, 4);
    almostTwo.writeUInt32LE(31_998, 40);
    expect(verifyWav(almostTwo)).to.include({ durationMs: 2000, durationSec: 1 });
    expect(verifyWav(audioFile('wav', 100))).to.include({ durationSec: 2 });
  });

  it('rejects a download cut short, or padded, by the RIFF and data sizes', () => {
    expect(() => verifyWav(threeSeconds.subarray(0, 40000), 3)).to.throw(
      RecordingVerifyError,
      /RIFF header says 48044 bytes, the file has 40000/,
    );
    expect(() => verifyWav(Buffer.concat([threeSeconds, Buffer.alloc(10)]), 3)).to.throw(
      RecordingVerifyError,
      /RIFF header/,
    );
    const lyingData = Buffer.from(threeSeconds);
    lyingData.writeUInt32LE(96000, 40);
    expect(() => verifyWav(lyingData)).to.throw(RecordingVerifyError, /data chunk says 96000/);
  });

  it('rejects a file whose length disagrees with the duration Asterisk reported', () => {
    expect(() => verifyWav(threeSeconds, 10)).to.throw(
      RecordingVerifyError,
      /3.00 s of audio, Asterisk reported 10 s/,
    );
    expect(verifyWav(audioFile('wav', 199), 3).durationMs).to.equal(3980); // 3.98 s: within 1 s
  });

  it('rejects what is not a PCM WAV', () => {
    expect(() => verifyWav(Buffer.from('{"message":"Recording not found"}'))).to.throw(
      RecordingVerifyError,
      /too short/,
    );
    expect(() => verifyWav(Buffer.alloc(48044))).to.throw(RecordingVerifyError, /not a RIFF/);
    const notPcm = Buffer.from(threeSeconds);
    notPcm.writeUInt16LE(6, 20); // A-law
    expect(() => verifyWav(notPcm)).to.throw(RecordingVerifyError, /not PCM/);
  });
});

describe('simulated recording audio (src/simulator/wav.ts)', () => {
  it('is the same noise for the same length whatever was made before, and never shared', () => {
    const short = audioFile('sln', 3);
    const long = audioFile('sln', 500);
    const again = audioFile('sln', 3);
    expect(again).to.deep.equal(short);
    // A longer recording starts with the shorter one's audio (one fixed sequence).
    expect(long.subarray(0, short.length)).to.deep.equal(short);
    // Callers get their own bytes: changing one file changes no other.
    again.fill(0);
    expect(audioFile('sln', 3)).to.deep.equal(short);
    expect(short.some((b) => b !== 0)).to.equal(true);
  });
});
