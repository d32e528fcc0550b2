/**
 * Checking a downloaded recording before it is kept (its size is verified). ARI's
 * `StoredRecording` has no size, so the file is checked against itself and against the
 * RecordingFinished event: Asterisk's `wav` format is RIFF/WAVE PCM (8 kHz, 16-bit, mono:
 * 16 000 bytes per second after a 44-byte header; a 3 s recording is 48 044 bytes, as in the
 * inbound-answered trace), and Asterisk writes the RIFF and `data` sizes when it closes the file.
 * A download cut short, or a file still being written, fails these checks. Pure functions.
 */

/** What a verified WAV file holds. */
export interface WavInfo {
  /** Whole file, bytes. */
  bytes: number;
  /** Bytes of audio (the `data` chunk). */
  dataBytes: number;
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** Audio length, milliseconds (`dataBytes / byteRate`, rounded). */
  durationMs: number;
  /**
   * Audio length in whole seconds, counted as Asterisk counts the `duration` of RecordingFinished:
   * rounded down (`main/app.c`, `__ast_play_and_record`: `ast_tellstream() / 8000`, samples
   * written divided by the rate in integer arithmetic; checked on Asterisk 22: a 1.90 s bridge
   * recording is reported as 1 s, a 2.02 s one as 2 s). Taken from the exact byte count, not from
   * `durationMs`, so that 1.99990 s is 1, not 2.
   */
  durationSec: number;
}

/** The file is not a complete WAV recording; `message` says what does not add up. */
export class RecordingVerifyError extends Error {
  override readonly name = 'RecordingVerifyError';
}

/**
 * Parse and check a WAV file: `RIFF` size = file size − 8, a PCM `fmt ` chunk, a `data` chunk
 * ending exactly at the end of the file (one pad byte allowed). When `expectedDurationSec` (the
 * RecordingFinished `duration`, whole seconds) is given, the audio length must agree with it
 * within one second.
 *
 * @throws RecordingVerifyError when any check fails
 */
export function verifyWav(file: Buffer, expectedDurationSec?: number): WavInfo {
  if (file.length < 44) throw new RecordingVerifyError(`${file.length} bytes: too short for WAV`);
  if (file.toString('ascii', 0, 4) !== 'RIFF' || file.toString('ascii', 8, 12) !== 'WAVE')
    throw new RecordingVerifyError('not a RIFF/WAVE file');
  const riffSize = file.readUInt32LE(4);
  if (riffSize + 8 !== file.length)
    throw new RecordingVerifyError(
      `RIFF header says ${riffSize + 8} bytes, the file has ${file.length}`,
    );
  let offset = 12;
  let fmt: { channels: number; sampleRate: number; byteRate: number; bits: number } | undefined;
  while (offset + 8 <= file.length) {
    const id = file.toString('ascii', offset, offset + 4);
    const size = file.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + size > file.length)
        throw new RecordingVerifyError('truncated fmt chunk');
      if (file.readUInt16LE(body) !== 1) throw new RecordingVerifyError('not PCM audio');
      fmt = {
        channels: file.readUInt16LE(body + 2),
        sampleRate: file.readUInt32LE(body + 4),
        byteRate: file.readUInt32LE(body + 8),
        bits: file.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new RecordingVerifyError('data chunk before fmt chunk');
      const end = body + size;
      if (end !== file.length && end + 1 !== file.length)
        throw new RecordingVerifyError(
          `data chunk says ${size} bytes of audio, the file holds ${file.length - body}`,
        );
      if (fmt.byteRate <= 0) throw new RecordingVerifyError('byte rate is 0');
      const durationMs = Math.round((size * 1000) / fmt.byteRate);
      if (
        expectedDurationSec !== undefined &&
        Math.abs(durationMs / 1000 - expectedDurationSec) > 1
      )
        throw new RecordingVerifyError(
          `the file holds ${(durationMs / 1000).toFixed(2)} s of audio, Asterisk reported ${expectedDurationSec} s`,
        );
      return {
        bytes: file.length,
        dataBytes: size,
        sampleRate: fmt.sampleRate,
        channels: fmt.channels,
        bitsPerSample: fmt.bits,
        durationMs,
        durationSec: Math.floor(size / fmt.byteRate),
      };
    }
    offset = body + size + (size % 2);
  }
  throw new RecordingVerifyError('no data chunk');
}
