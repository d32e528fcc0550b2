// @ts-check
/**
 * The WAL checkpointer (started by src/store/sqlite-thread-client.ts next to the SQLite thread,
 * for a database file): its own connection copies the WAL back into the database file every
 * `intervalMs` with `PRAGMA wal_checkpoint(PASSIVE)`, which never waits for and never blocks
 * the writer. Without it the writer checkpoints inside a commit every 1000 WAL pages, and that
 * commit then also waits for the copy and its fsync: under `npm run bench` a batch's p99 went
 * from about 1.7 ms to about 6.5 ms, and the screen-pop p99 from about 5.7 ms to about 9 ms.
 * The writer keeps a large automatic checkpoint as a safety valve (src/store/sqlite-thread.js).
 *
 * Plain JavaScript for the same reason as sqlite-thread.js. `{ kind: 'close' }` stops it (it
 * closes its connection and exits); on start it answers `{ kind: 'ready' }` or
 * `{ kind: 'failed', error: { name, message, code? } }`.
 */
import process from 'node:process';
import { clearInterval, setInterval } from 'node:timers';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const port = parentPort;
if (!port) throw new Error('sqlite-checkpointer.js must run in a worker thread');
const options = /** @type {{ filename: string, intervalMs: number }} */ (workerData);

/** @type {import('better-sqlite3').Database} */
let db;
try {
  db = new Database(options.filename, { fileMustExist: true });
} catch (err) {
  const e = /** @type {{ name?: string, message?: string, code?: string }} */ (err);
  port.postMessage({
    kind: 'failed',
    error: { name: e.name ?? 'Error', message: e.message ?? String(err), code: e.code },
  });
  process.exit(1);
}

const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // SQLITE_BUSY (another checkpoint runs) or a transient I/O error: the next tick tries again,
    // and the writer's own automatic checkpoint bounds the WAL meanwhile.
  }
}, options.intervalMs);

port.on('message', (/** @type {{ kind?: string }} */ message) => {
  if (message.kind !== 'close') return;
  clearInterval(timer);
  db.close();
  port.close();
});

port.postMessage({ kind: 'ready' });
