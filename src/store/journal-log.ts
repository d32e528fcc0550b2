/**
 * The journal log: a write-ahead file in front of the SQLite store for the call journal's urgent
 * writes (`202` at once, screen pop p99 ≤ 5 ms, and nothing accepted is ever lost). docs/store.md
 * "The journal log" explains it for operators.
 *
 * The SQLite store commits in its own thread (src/store/sqlite-worker.ts). A commit itself takes
 * ~0.1 ms, but its round trip waits twice for a core and an event loop (the SQLite thread's, then
 * the engine's): under load that is 2-5 ms at p99, and a new click-to-call's `202` and the
 * `call.ringing` webhook (the screen pop) used to wait for it. With the journal log the call
 * journal (src/calls/journal.ts) appends such a write, with the journal transactions still in
 * flight before it, to this file with one synchronous `write(2)` on the engine's thread, and the
 * `202` and the webhooks go out at once. The same transactions are still sent to SQLite as before.
 *
 * Durability is that of SQLite with `synchronous=normal` (SQLITE_SYNCHRONOUS): a `write(2)` that
 * returned survives a crash or a kill of the engine, not a crash of the OS or a power cut (no
 * fsync, as SQLite's WAL commits at `normal`). With `full`, or on PostgreSQL, there is no journal
 * log and everything waits for the commit.
 *
 * Each journal transaction carries its sequence number (`seq`) and commits `journal_state.seq`
 * with it (migration 0004), so the store always says which transaction committed last. At
 * start-up {@link recoverJournalLog} replays, in order and in one transaction, the log's entries
 * with a greater `seq`: the store then holds what it would have held had those commits landed
 * before the crash, and reconciliation (src/calls/reconcile.ts) goes on from there. Every replayed
 * write is idempotent (call and leg upserts, events inserted by event id).
 *
 * File format, one record per transaction, appended: a 12-byte header (magic `JLG1` as a
 * little-endian u32, payload length u32 LE, FNV-1a 32 of the payload u32 LE) and the payload, the
 * entry as `v8.serialize` writes it (Dates, `undefined` and bigints survive as they are). A record
 * cut short or damaged (only possible with an OS crash mid-write) ends the log there: what follows
 * it is ignored. The file is emptied (`ftruncate`) once everything in it is committed and it has
 * grown past {@link JOURNAL_LOG_TRUNCATE_BYTES}, and after each recovery.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, writevSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import type { CallSnapshot } from '../calls/model.ts';
import type { LifecycleEvent } from '../events/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { LegInput, RecordingFields } from './calls.ts';
import type { Store } from './store.ts';

/** One journal transaction, as logged and as replayed (the arguments of its repository calls). */
export interface JournalLogEntry {
  /** The transaction's sequence number: increasing in send order, across restarts. */
  seq: number;
  /** When the transaction was made, epoch ms (the rows' `updated_at`, the events' `created_at`). */
  at: number;
  /** Call rows to upsert: the snapshot and the legs that changed (`CallRepository.upsertCall`). */
  calls: Array<{ snapshot: CallSnapshot; legs: LegInput[] }>;
  /** Recording columns to set, per call id (`CallRepository.setRecording`). */
  recordings: Array<[string, RecordingFields]>;
  /** Lifecycle events to insert into the outbox (`EventRepository.appendEvents`). */
  events: LifecycleEvent[];
  /**
   * SQLite: the events' outbox positions, one per event (`Store.outboxPositions`): a replay
   * writes them where the live stream already announced them. Absent in logs of earlier
   * versions: the replay numbers them anew.
   */
  positions?: number[];
  /**
   * The events are not to be sent (no webhook URL was configured when they were recorded): they
   * are stored `skipped`, also when replayed by a start that has a URL. Absent: `pending`.
   */
  skipDelivery?: true;
}

/** Size past which the log is emptied once everything in it is committed, bytes. */
export const JOURNAL_LOG_TRUNCATE_BYTES = 1024 * 1024;

const MAGIC = 0x31474c4a; // 'JLG1' little-endian
const HEADER_BYTES = 12;

/** FNV-1a, 32 bits, of `bytes` (detects a damaged record; not a cryptographic hash). */
export function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i]!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The journal log file of a SQLite database file: `<database>.journal-log`, beside its WAL. */
export function journalLogPath(databaseFile: string): string {
  return `${databaseFile}.journal-log`;
}

/** Appending to the journal log failed (`cause`: the `writev(2)` error); part may be written. */
export class JournalLogWriteError extends Error {
  override readonly name = 'JournalLogWriteError';
  constructor(cause: unknown) {
    super(`journal log write failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** An open journal log (see the module comment). Not safe for two processes: the store claim is. */
export class JournalLog {
  private fd: number | undefined;
  private bytes = 0;

  private constructor(
    fd: number,
    /** The file's path. */
    readonly path: string,
  ) {
    this.fd = fd;
  }

  /**
   * Open (create) the log at `path` for appending, emptied: run {@link recoverJournalLog} on it
   * first, which replays what it holds.
   *
   * @throws the `open(2)` / `ftruncate(2)` error (e.g. EACCES)
   */
  static open(path: string): JournalLog {
    const fd = openSync(path, 'a');
    try {
      ftruncateSync(fd, 0);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new JournalLog(fd, path);
  }

  /** Bytes in the file now. */
  get size(): number {
    return this.bytes;
  }

  /**
   * Append `entries`, in order, with one `writev(2)`: when this returns they survive a crash of
   * the engine.
   *
   * @throws the serialisation error (a value `v8.serialize` refuses) before anything is written;
   *   {@link JournalLogWriteError} with the `writev(2)` error (ENOSPC, EIO) as `cause`, after
   *   which the log must not be trusted (the caller stops logging)
   */
  append(entries: readonly JournalLogEntry[]): void {
    if (this.fd === undefined) throw new Error('the journal log is closed');
    const buffers: Buffer[] = [];
    let total = 0;
    for (const entry of entries) {
      const payload = serialize(entry);
      const header = Buffer.allocUnsafe(HEADER_BYTES);
      header.writeUInt32LE(MAGIC, 0);
      header.writeUInt32LE(payload.length, 4);
      header.writeUInt32LE(fnv1a32(payload), 8);
      buffers.push(header, payload);
      total += HEADER_BYTES + payload.length;
    }
    try {
      let written = writevSync(this.fd, buffers);
      // A regular file takes the whole writev unless the disk is full, which the next call reports.
      while (written < total) {
        const more = writevSync(this.fd, [Buffer.concat(buffers).subarray(written)]);
        if (more === 0) throw new Error('the journal log write made no progress');
        written += more;
      }
    } catch (err) {
      throw new JournalLogWriteError(err);
    }
    this.bytes += total;
  }

  /** Empty the file (everything in it is committed). @throws the `ftruncate(2)` error */
  truncate(): void {
    if (this.fd === undefined) return;
    ftruncateSync(this.fd, 0);
    this.bytes = 0;
  }

  /** Close the file (its content stays for the next start's recovery). Idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** What {@link readJournalLog} found. */
export interface JournalLogContent {
  entries: JournalLogEntry[];
  /** Bytes after the last whole record (a record cut short or damaged, and what follows it). */
  ignoredBytes: number;
}

/**
 * The entries of the log at `path`, in file order; none when the file does not exist. Stops at
 * the first record that is cut short, damaged or not an entry.
 *
 * @throws the `read(2)` error other than ENOENT
 */
export function readJournalLog(path: string): JournalLogContent {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], ignoredBytes: 0 };
    throw err;
  }
  const entries: JournalLogEntry[] = [];
  let offset = 0;
  while (offset + HEADER_BYTES <= data.length) {
    if (data.readUInt32LE(offset) !== MAGIC) break;
    const length = data.readUInt32LE(offset + 4);
    const end = offset + HEADER_BYTES + length;
    if (end > data.length) break;
    const payload = data.subarray(offset + HEADER_BYTES, end);
    if (fnv1a32(payload) !== data.readUInt32LE(offset + 8)) break;
    let entry: unknown;
    try {
      entry = deserialize(payload);
    } catch {
      break;
    }
    if (!isEntry(entry)) break;
    entries.push(entry);
    offset = end;
  }
  return { entries, ignoredBytes: data.length - offset };
}

function isEntry(value: unknown): value is JournalLogEntry {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof JournalLogEntry, unknown>>;
  return (
    Number.isSafeInteger(v.seq) &&
    typeof v.at === 'number' &&
    Array.isArray(v.calls) &&
    Array.isArray(v.recordings) &&
    Array.isArray(v.events)
  );
}

/** What {@link recoverJournalLog} did. */
export interface JournalLogRecovery {
  /** Entries written to the store now (their transaction had not committed). */
  replayed: number;
  /** Entries already committed. */
  skipped: number;
  /** The store's `journal_state.seq` after the recovery: the journal's next seq is this + 1. */
  lastSeq: number;
}

/**
 * Replay the journal log at `path` into `store` (start-up, after `store.migrate()`, before the
 * webhook outbox is loaded and unfinished calls are adopted), then empty the file. Entries whose
 * `seq` is above the store's `journal_state.seq` are written in file order in one transaction,
 * with `journal_state.seq` set to the last one.
 *
 * @throws the store's error when the replay cannot commit (start-up must stop: the entries are
 *   still in the file for the next try); the file's `read(2)` error
 */
export async function recoverJournalLog(
  store: Store,
  path: string,
  logger: Logger,
): Promise<JournalLogRecovery> {
  const { entries, ignoredBytes } = readJournalLog(path);
  const committedSeq = await store.calls.journalSeq();
  const due = entries.filter((entry) => entry.seq > committedSeq);
  let lastSeq = committedSeq;
  if (due.length > 0) {
    lastSeq = due.reduce((max, entry) => Math.max(max, entry.seq), committedSeq);
    await store.writeBatch(async (repos) => {
      for (const entry of due) await writeJournalEntry(repos, entry);
      await repos.calls.setJournalSeq(lastSeq);
    });
    logger.warn('replayed journal log entries the store had not committed', {
      replayed: due.length,
      events: due.reduce((n, entry) => n + entry.events.length, 0),
      calls: new Set(due.flatMap((entry) => entry.calls.map((c) => c.snapshot.id))).size,
    });
  }
  if (ignoredBytes > 0)
    logger.warn('journal log ends with an incomplete record (cut by an OS crash); ignored', {
      ignoredBytes,
    });
  // Emptied only once the replay committed: a failed replay is tried again at the next start.
  if (entries.length > 0 || ignoredBytes > 0) JournalLog.open(path).close();
  return { replayed: due.length, skipped: entries.length - due.length, lastSeq };
}

/**
 * The writes of one journal transaction (the call journal's `write`, and its replay): call rows
 * with their changed legs, recording columns, then events. Used inside `Store.writeBatch`.
 */
export async function writeJournalEntry(
  repos: Pick<Store, 'calls' | 'events'>,
  entry: Omit<JournalLogEntry, 'seq'>,
): Promise<void> {
  for (const { snapshot, legs } of entry.calls)
    await repos.calls.upsertCall(snapshot, { legs, at: entry.at });
  for (const [callId, fields] of entry.recordings) await repos.calls.setRecording(callId, fields);
  if (entry.events.length > 0)
    await repos.events.appendEvents(entry.events, entry.at, {
      ...(entry.skipDelivery ? { skipDelivery: true } : {}),
      ...(entry.positions ? { positions: entry.positions } : {}),
    });
}
