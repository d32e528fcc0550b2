// @ts-check
/**
 * The SQLite thread (worker side of src/store/sqlite-worker.ts): owns the store's only SQLite
 * connection (better-sqlite3) and runs the statements the engine's thread sends it, so SQLite's
 * CPU time (statements, commits, WAL checkpoints with their fsyncs) never blocks call control.
 *
 * Plain JavaScript (type-checked through JSDoc) because a worker thread does not inherit the tsx
 * loader the engine runs under; the message shapes are declared in sqlite-protocol.ts.
 *
 * Requests, one per message, run in arrival order: `{ id, kind: 'query', op }` (one statement),
 * `{ id, kind: 'batch', ops, stream?, resume? }` (all statements in one transaction, rolled back
 * as a whole on the first failure), `{ id, kind: 'close' }`. A batch of a write `stream`
 * (src/store/write-streams.ts) that failed marks the stream broken: the stream's later batches
 * are refused with `{ name: 'StreamBrokenError' }`, running nothing, until a batch with
 * `resume: true` arrives (which runs, and clears the mark). A statement (`op`) is `{ sql, parameters }`, or
 * `{ key, sql, parameters }` the first time a statement key is used and `{ key, parameters }`
 * after that (the SQL text is sent once, not with every run). Each request is answered once
 * with `{ id, ok: true, result }` or `{ id, ok: false, error: { name, message, code?, index? } }`.
 * On start the thread answers `{ kind: 'ready' }` or `{ kind: 'failed', error }`.
 */
import process from 'node:process';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/**
 * @typedef {{ filename: string, synchronous: 'normal' | 'full', busyTimeoutMs: number, walAutocheckpointPages?: number }} ThreadOptions
 * @typedef {{ key?: number, sql?: string, parameters: unknown[] }} Op
 * @typedef {{ rows?: unknown[], changes?: number, lastInsertRowid?: number | bigint }} OpResult
 */

const port = parentPort;
if (!port) throw new Error('sqlite-thread.js must run in a worker thread');
const options = /** @type {ThreadOptions} */ (workerData);

/** @param {unknown} err @param {number} [index] */
function describe(err, index) {
  const e = /** @type {{ name?: unknown, message?: unknown, code?: unknown }} */ (
    err && typeof err === 'object' ? err : { message: String(err) }
  );
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(err),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(index === undefined ? {} : { index }),
  };
}

/** @type {import('better-sqlite3').Database} */
let db;
try {
  db = new Database(options.filename);
  if (options.filename !== ':memory:') db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs))}`);
  // With a checkpointer thread (sqlite-checkpointer.js) the writer only checkpoints itself as a
  // safety valve, when the WAL has grown this many pages.
  if (options.walAutocheckpointPages !== undefined)
    db.pragma(`wal_autocheckpoint = ${Math.floor(options.walAutocheckpointPages)}`);
} catch (err) {
  port.postMessage({ kind: 'failed', error: describe(err) });
  process.exit(1);
}

/**
 * SQL texts by key (the engine's thread gives keys to a bounded number of SQL texts) and their
 * prepared statements. Preparing cost 12-15 % of the engine's CPU under load before statements
 * were reused; a statement is only busy while iterated and none is.
 * @type {Map<number, string>}
 */
const sqlByKey = new Map();
/** @type {Map<number, import('better-sqlite3').Statement>} */
const statements = new Map();

/**
 * Learn the keys a message introduces, before running anything (a batch that fails early must
 * still leave its keys known: they are sent with their SQL only once).
 * @param {Op[]} ops
 */
function register(ops) {
  for (const op of ops)
    if (op.key !== undefined && op.sql !== undefined) sqlByKey.set(op.key, op.sql);
}

/** @param {Op} op */
function prepare(op) {
  if (op.key === undefined) return db.prepare(op.sql ?? '');
  let statement = statements.get(op.key);
  if (!statement) {
    const sql = sqlByKey.get(op.key);
    if (sql === undefined) throw new Error(`unknown statement key ${op.key}`);
    statement = db.prepare(sql);
    statements.set(op.key, statement);
  }
  return statement;
}

/** @param {Op} op @returns {OpResult} */
function run(op) {
  const statement = prepare(op);
  if (statement.reader) return { rows: statement.all(op.parameters) };
  const { changes, lastInsertRowid } = statement.run(op.parameters);
  return { changes, lastInsertRowid };
}

/**
 * Write streams whose last batch failed (see the module comment).
 * @type {Set<string>}
 */
const brokenStreams = new Set();

/** @type {Op[]} */
let batchOps = [];
let failedAt = -1;
const runBatch = db.transaction(() => {
  const results = [];
  for (let i = 0; i < batchOps.length; i++) {
    failedAt = i;
    results.push(run(/** @type {Op} */ (batchOps[i])));
  }
  failedAt = -1;
  return results;
});

port.on(
  'message',
  /** @param {{ id: number, kind: 'query' | 'batch' | 'close', op?: Op, ops?: Op[], stream?: string, resume?: boolean }} message */
  (message) => {
    const { id, kind, stream } = message;
    register(message.ops ?? (message.op ? [message.op] : []));
    try {
      if (kind === 'query') {
        port.postMessage({
          id,
          ok: true,
          result: run(message.op ?? { sql: '', parameters: [] }),
        });
      } else if (kind === 'batch') {
        if (stream !== undefined) {
          if (message.resume) brokenStreams.delete(stream);
          else if (brokenStreams.has(stream)) {
            port.postMessage({
              id,
              ok: false,
              error: { name: 'StreamBrokenError', message: `stream ${stream} is broken` },
            });
            return;
          }
        }
        batchOps = message.ops ?? [];
        try {
          port.postMessage({ id, ok: true, result: runBatch() });
        } catch (err) {
          if (stream !== undefined) brokenStreams.add(stream);
          port.postMessage({
            id,
            ok: false,
            error: describe(err, failedAt >= 0 ? failedAt : undefined),
          });
        } finally {
          batchOps = [];
          failedAt = -1;
        }
      } else if (kind === 'close') {
        statements.clear();
        sqlByKey.clear();
        db.close();
        port.postMessage({ id, ok: true, result: {} });
        port.close();
      }
    } catch (err) {
      port.postMessage({ id, ok: false, error: describe(err) });
    }
  },
);

port.postMessage({ kind: 'ready' });
