/**
 * The messages between the engine's thread and the SQLite thread (src/store/sqlite-thread.js,
 * plain JavaScript, which follows these shapes): the thread's start options, statements and
 * batches as the driver makes them and as they go over the wire (a key instead of a SQL text
 * already sent), the answers, and {@link SqliteThreadError}, the error the thread's failures
 * become on the engine's side (src/store/sqlite-worker.ts).
 */
import { StoreError } from './errors.ts';

/** What the SQLite thread is started with (its `workerData`: plain data only). */
export interface ThreadOptions {
  filename: string;
  synchronous: 'normal' | 'full';
  busyTimeoutMs: number;
  /** `PRAGMA wal_autocheckpoint` of the writer, pages; absent = SQLite's default (1000). */
  walAutocheckpointPages?: number;
}

/** A statement as sent to the thread. */
export interface SqliteOp {
  sql: string;
  parameters: readonly unknown[];
}

/** What the thread answers for one statement. */
export interface OpResult {
  rows?: unknown[];
  changes?: number;
  lastInsertRowid?: number | bigint;
}

/** An error as the thread describes it. */
export interface ThreadErrorShape {
  name: string;
  message: string;
  code?: string;
  /** Batch only: index of the statement that failed. */
  index?: number;
}

/**
 * A statement as the thread receives it: with a key, its SQL text is sent only the first time
 * (the thread keeps the prepared statement under the key).
 */
export interface WireOp {
  key?: number;
  sql?: string;
  parameters: readonly unknown[];
}

/**
 * A batch's write stream (src/store/write-streams.ts): the thread refuses a batch of a stream
 * that failed earlier unless it resumes the stream.
 */
export interface StreamTag {
  stream?: string;
  resume?: boolean;
}

/** A request as the thread receives it, without its id. */
export type WireBody =
  | { kind: 'query'; op: WireOp }
  | ({ kind: 'batch'; ops: readonly WireOp[] } & StreamTag)
  | { kind: 'close' };

/** A request as the driver makes it (full SQL texts). */
export type RequestBody =
  | { kind: 'query'; op: SqliteOp }
  | ({ kind: 'batch'; ops: readonly SqliteOp[] } & StreamTag)
  | { kind: 'close' };

/** A request as the thread receives it: its id comes back with the answer. */
export type Request = WireBody & { id: number };

/**
 * What the thread posts: once at start, `ready` or `failed` (it could not open the database);
 * then one answer per request, with the request's id.
 */
export type Reply =
  | { kind: 'ready' }
  | { kind: 'failed'; error: ThreadErrorShape }
  | { id: number; ok: true; result: OpResult | OpResult[] }
  | { id: number; ok: false; error: ThreadErrorShape };

/**
 * A statement failed in the SQLite thread, or the thread could not start or died. `code` is
 * SQLite's extended code when SQLite raised it (`SQLITE_CONSTRAINT_UNIQUE`, `SQLITE_BUSY`, …);
 * `index` says which statement of a batch failed.
 */
export class SqliteThreadError extends StoreError {
  override name = 'SqliteThreadError';
  readonly code: string | undefined;
  readonly index: number | undefined;
  constructor(shape: ThreadErrorShape) {
    super(shape.message);
    this.code = shape.code;
    this.index = shape.index;
  }
}
