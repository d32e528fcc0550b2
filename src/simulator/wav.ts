/**
 * Audio files of stored recordings. Asterisk's `wav` format is RIFF/WAVE PCM, 8 kHz, 16-bit, mono:
 * 16000 bytes per second after a 44-byte header, so a 3 s recording is 48044 bytes (as in the
 * inbound-answered trace). Audio is written in 20 ms frames (160 samples). The simulator records
 * faint noise (16-bit PCM formats; the 8-bit ones get silence): deterministic, the same for every
 * file, and different at every offset, so byte ranges of a served recording can be told apart.
 */

/** Bytes of one 20 ms frame per format (8 kHz unless stated). */
const FRAME_BYTES: Record<string, number> = {
  wav: 320,
  sln: 320,
  wav16: 640,
  sln16: 640,
  ulaw: 160,
  alaw: 160,
  gsm: 33,
};

/** Silence byte of the 8-bit companded formats. */
const SILENCE_BYTE: Record<string, number> = { ulaw: 0xff, alaw: 0xd5 };

/** MIME type of each format, as served by `GET /recordings/stored/{name}/file`. */
const CONTENT_TYPE: Record<string, string> = {
  wav: 'audio/wav',
  wav16: 'audio/wav',
  sln: 'audio/x-sln',
  sln16: 'audio/x-sln',
  ulaw: 'audio/basic',
  alaw: 'audio/x-alaw-basic',
  gsm: 'audio/x-gsm',
};

/** Recording formats this simulated Asterisk knows (others answer 422). */
export function isKnownFormat(format: string): boolean {
  return format in FRAME_BYTES;
}

export function contentTypeOf(format: string): string {
  return CONTENT_TYPE[format] ?? 'application/octet-stream';
}

/** 20 ms frames in `durationMs` (Asterisk writes whole frames). */
export function framesIn(durationMs: number): number {
  return Math.max(0, Math.floor(durationMs / 20));
}

/** Formats whose samples are 16-bit little-endian PCM. */
const PCM16 = new Set(['wav', 'wav16', 'sln', 'sln16']);

/** Largest noise kept for reuse, bytes (about 2 minutes of 8 kHz 16-bit audio). */
const MAX_CACHED_NOISE_BYTES = 2 * 1024 * 1024;
/** The longest noise made so far (the sequence is fixed, so shorter noise is its prefix). */
let noiseCache: Buffer = Buffer.alloc(0);

/** `bytes` of noise from the fixed seed, computed (an odd last byte stays 0). */
function computeNoise(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let state = 0x2545f491;
  for (let offset = 0; offset + 1 < bytes; offset += 2) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out.writeInt16LE((state % 129) - 64, offset);
  }
  return out;
}

/**
 * `bytes` of faint 16-bit noise (amplitude ±64, about -54 dBFS), from a fixed xorshift32 seed: a
 * fresh copy (written into `into`, `bytes` long, when given), cut from the longest noise made so far (making it sample by sample was the
 * simulator's largest CPU cost under `npm run bench`).
 */
function faintNoise(bytes: number, into?: Buffer): Buffer {
  if (bytes > MAX_CACHED_NOISE_BYTES) {
    const noise = computeNoise(bytes);
    if (!into) return noise;
    noise.copy(into, 0, 0, bytes);
    return into;
  }
  if (noiseCache.length < bytes) noiseCache = computeNoise(Math.max(bytes, 64 * 1024) + 1);
  const out = into ?? Buffer.allocUnsafe(bytes);
  noiseCache.copy(out, 0, 0, bytes);
  if (bytes % 2 === 1) out[bytes - 1] = 0;
  return out;
}

/** The file of a recording of `frames` 20 ms frames in `format` (see the module comment). */
export function audioFile(format: string, frames: number): Buffer {
  const frameBytes = FRAME_BYTES[format] ?? 320;
  const dataBytes = frames * frameBytes;
  if (format === 'wav' || format === 'wav16') {
    const sampleRate = format === 'wav16' ? 16000 : 8000;
    const file = Buffer.allocUnsafe(44 + dataBytes);
    const header = file.subarray(0, 44);
    header.fill(0);
    header.write('RIFF', 0, 'ascii');
    header.writeUInt32LE(36 + dataBytes, 4);
    header.write('WAVE', 8, 'ascii');
    header.write('fmt ', 12, 'ascii');
    header.writeUInt32LE(16, 16); // fmt chunk size
    header.writeUInt16LE(1, 20); // PCM
    header.writeUInt16LE(1, 22); // mono
    header.writeUInt32LE(sampleRate, 24);
    header.writeUInt32LE(sampleRate * 2, 28); // byte rate
    header.writeUInt16LE(2, 32); // block align
    header.writeUInt16LE(16, 34); // bits per sample
    header.write('data', 36, 'ascii');
    header.writeUInt32LE(dataBytes, 40);
    faintNoise(dataBytes, file.subarray(44));
    return file;
  }
  if (PCM16.has(format)) return faintNoise(dataBytes);
  return Buffer.alloc(dataBytes, SILENCE_BYTE[format] ?? 0);
}

/**
 * Length in ms of a RIFF/WAVE file: the `data` chunk's size divided by the `fmt ` chunk's byte
 * rate. Undefined when the bytes are not a WAV file Asterisk could play (no RIFF/WAVE header,
 * no `fmt ` or `data` chunk, or a zero byte rate).
 */
export function wavDurationMs(file: Buffer): number | undefined {
  if (file.length < 12) return undefined;
  if (file.toString('ascii', 0, 4) !== 'RIFF' || file.toString('ascii', 8, 12) !== 'WAVE')
    return undefined;
  let byteRate = 0;
  let offset = 12;
  while (offset + 8 <= file.length) {
    const id = file.toString('ascii', offset, offset + 4);
    const size = file.readUInt32LE(offset + 4);
    if (id === 'fmt ' && offset + 16 <= file.length) byteRate = file.readUInt32LE(offset + 16);
    if (id === 'data') {
      if (byteRate === 0) return undefined;
      const bytes = Math.min(size, file.length - offset - 8);
      return Math.round((bytes / byteRate) * 1000);
    }
    offset += 8 + size + (size % 2);
  }
  return undefined;
}
