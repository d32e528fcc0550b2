/**
 * Structured JSON logging (winston). One JSON object per line on stdout:
 * `{"level":"info","message":"…","time":"…",…fields}`. Errors in any field are serialised with
 * `name`, `message`, `stack` (and `cause`). Fields whose name looks like a secret are redacted, so
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

/** Replace secret-looking values and URL credentials; returns a redacted deep copy. */
export function redact(value: unknown, depth = 0): unknown {
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
