/**
 * Structured JSON logging (winston). One JSON object per line on stdout:
 * `{"level":"info","message":"…","time":"…",…fields}`. Errors in any field are serialised with
 * `name`, `message`, `stack` (and `cause`). Binary data (a Buffer, any typed array, an
 * ArrayBuffer) anywhere in a field, errors included, is written as a short
 * {@link BinaryPreview}, never byte by byte. Fields whose name looks like a secret are redacted, so
 * ARI and CRM credentials never reach the log.
 */
import winston from 'winston';

export type Logger = winston.Logger;
export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'verbose' | 'debug' | 'silly';

const SECRET_KEY = /pass(word)?|secret|token|api_?key|authorization|signature|credential/i;
const URL_CREDENTIALS = /(\/\/)([^/@\s:]+):([^/@\s]+)@/g;

/** Serialise an Error (and its cause chain) into plain JSON-friendly data. */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { name: err.name, message: err.message, stack: err.stack };
  for (const [key, value] of Object.entries(err)) {
    if (!(key in out)) out[key] = value;
  }
  if (err.cause !== undefined && depth < 3) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/** At most this many bytes of binary data are previewed in a log line. */
export const BINARY_PREVIEW_BYTES = 64;

/**
 * How a log line shows binary data: its kind (`Buffer`, `Uint8Array`, `ArrayBuffer`, …), its
 * length in bytes and its first {@link BINARY_PREVIEW_BYTES} bytes, as utf-8 text when they are
 * printable text (URL credentials redacted as in any string), else as hex.
 */
export interface BinaryPreview {
  type: string;
  /** Length in bytes. */
  length: number;
  encoding: 'utf8' | 'hex';
  preview: string;
  /** True when only the first {@link BINARY_PREVIEW_BYTES} bytes are shown. */
  truncated?: true;
}

const PRINTABLE = /^[^\p{Cc}\p{Cs}\uFFFD]*$/u;
const CONTROL_ALLOWED = /[\t\n\r]/g;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes of a Buffer, typed array, DataView or ArrayBuffer; undefined for anything else. */
function bytesOf(value: object): Uint8Array | undefined {
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer)
    return new Uint8Array(value);
  if (ArrayBuffer.isView(value))
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

/** The first bytes as text, when they are valid utf-8 (a character cut at the end is dropped). */
function printableText(bytes: Uint8Array): string | undefined {
  for (let cut = 0; cut < 4 && cut < bytes.length; cut++) {
    let text: string;
    try {
      text = utf8.decode(bytes.subarray(0, bytes.length - cut));
    } catch {
      continue;
    }
    return PRINTABLE.test(text.replace(CONTROL_ALLOWED, '')) ? text : undefined;
  }
  return bytes.length === 0 ? '' : undefined;
}

/**
 * A short preview of binary data for a log line ({@link BinaryPreview}); undefined when `value`
 * is not binary.
 */
export function binaryPreview(value: unknown): BinaryPreview | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const bytes = bytesOf(value);
  if (!bytes) return undefined;
  const head = bytes.subarray(0, BINARY_PREVIEW_BYTES);
  const text = printableText(head);
  const out: BinaryPreview = {
    type: Buffer.isBuffer(value) ? 'Buffer' : Object.prototype.toString.call(value).slice(8, -1),
    length: bytes.byteLength,
    encoding: text === undefined ? 'hex' : 'utf8',
    preview:
      text === undefined
        ? Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('hex')
        : text.replace(URL_CREDENTIALS, '$1$2:***@'),
  };
  if (bytes.byteLength > head.byteLength) out.truncated = true;
  return out;
}

/**
 * Replace secret-looking values and URL credentials, and binary data by its
 * {@link binaryPreview}; returns a redacted deep copy.
 */
export function redact(value: unknown, depth = 0): unknown {
  const binary = binaryPreview(value);
  if (binary) return binary;
  if (depth > 6) return value;
  if (typeof value === 'string') return value.replace(URL_CREDENTIALS, '$1$2:***@');
  if (value instanceof Error) return redact(serializeError(value), depth + 1);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && v !== undefined && v !== '' ? '***' : redact(v, depth + 1);
    }
    return out;
  }
  return value;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'message') continue;
    const value = info[key];
    info[key] = SECRET_KEY.test(key) && value !== undefined && value !== '' ? '***' : redact(value);
  }
  if (typeof info.message === 'string') info.message = redact(info.message);
  return info;
});

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  level: LogLevel;
  /** Where lines go; defaults to stdout. Tests pass a stream to capture or silence output. */
  stream?: NodeJS.WritableStream;
  /** Fields added to every line (e.g. `{service: 'ari-crm'}`). */
  defaultMeta?: Record<string, unknown>;
  /** Drop everything (for tests and benchmarks). */
  silent?: boolean;
}

/** Create the process logger. Use `logger.child({callId, channelId})` for per-call loggers. */
export function createLogger(options: LoggerOptions): Logger {
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  const logger = winston.createLogger({
    level: options.level,
    silent: options.silent ?? false,
    defaultMeta: options.defaultMeta,
    format: winston.format.combine(
      winston.format.errors({ stack: true }),
      winston.format.timestamp(),
      redactFormat(),
      winston.format.json(),
    ),
    transports: [transport],
  });
  // winston builds and pipes an entry even for a level it then drops (~10 µs a call, several
  // debug lines per phone call): the levels this logger never writes are no-ops. Child loggers
  // inherit them (winston's child is an Object.create of its parent).
  for (const level of Object.keys(winston.config.npm.levels) as LogLevel[]) {
    if (options.silent || !logger.isLevelEnabled(level)) logger[level] = dropped(logger);
  }
  return logger;
}

/** A log method that writes nothing and returns `logger` (winston's methods chain). */
function dropped(logger: Logger): winston.LeveledLogMethod {
  return () => logger;
}

/** A logger that writes nothing (tests, benchmarks). */
export function createSilentLogger(): Logger {
  return createLogger({ level: 'error', silent: true });
}
