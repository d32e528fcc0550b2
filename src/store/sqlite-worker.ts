/**
 * SQLite in a worker thread (full inbound calls per second with an event-loop lag p99 ≤ 20 ms).
 * better-sqlite3 is synchronous: on the engine's thread every statement, every
 * commit (the WAL pages of a group commit, ~0.8 ms under load) and every WAL checkpoint (with
 * its fsyncs) stopped call control for as long as it took; under `npm run bench` SQLite was
 * ~18 % of the engine's thread. Here the store's only SQLite connection lives in a worker thread
 * (src/store/sqlite-thread.js) and the engine's thread only sends it statements and awaits the
 * answers.
 *
 * - {@link SqliteWorkerDialect} is a Kysely dialect: SQLite's query compiler, adapter and
 *   introspector, with a driver whose one connection forwards each statement to the thread
 *   (one message each way). Kysely transactions work as with Kysely's own SQLite dialect
 *   (one connection, a mutex).
 * - {@link SqliteWorkerDriver.batch} sends many statements in one message, run in one
 *   transaction: the per-call writes (call journal, webhook outbox) are collected first and
 *   committed with one round trip (`Store.writeBatch`).
 *
 * Errors keep SQLite's `code` (e.g. `SQLITE_CONSTRAINT_UNIQUE`) on a {@link SqliteThreadError}.
 * If the thread dies, pending statements fail with a {@link SqliteThreadError} and the next
 * statement starts a new thread.
 *
 * This file: the driver and the dialect. The threads' engine side is in sqlite-thread-client.ts,
 * the messages in sqlite-protocol.ts, the connection's mutex in connection-mutex.ts.
 */
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';
import { ConnectionMutex, type MutexTicket } from './connection-mutex.ts';
import {
  SqliteThreadError,
  type OpResult,
  type RequestBody,
  type SqliteOp,
} from './sqlite-protocol.ts';
import { Checkpointer, SqliteThread } from './sqlite-thread-client.ts';
import { WriteStreams, type StreamPlace } from './write-streams.ts';

export { ConnectionMutex, SqliteThreadError, type MutexTicket, type SqliteOp };

/** How to open the database in the thread. */
export interface SqliteWorkerOptions {
  /** Path of the database file (its directory must exist), or `:memory:`. */
  filename: string;
  /** `PRAGMA synchronous` (WAL): see SQLITE_SYNCHRONOUS. */
  synchronous: 'normal' | 'full';
  /** `PRAGMA busy_timeout`, ms. */
  busyTimeoutMs: number;
  /**
   * How often the checkpointer thread copies the WAL into the database file, ms (file databases
   * only). Default {@link DEFAULT_CHECKPOINT_INTERVAL_MS}.
   */
  checkpointIntervalMs?: number;
  /** Told when the checkpointer cannot start or stops (the store works on; the WAL grows more). */
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

/** Options of {@link SqliteWorkerDriver.batch}. */
export interface BatchOptions {
  /** The write stream of the batch (src/store/write-streams.ts). */
  stream?: string;
  /** The batch's place in its stream, from {@link SqliteWorkerDriver.reserve}. */
  place?: StreamPlace;
  /** Write even though an earlier batch of the stream failed, and clear that state. */
  resume?: boolean;
  /**
   * The batch's place among the batches, from {@link SqliteWorkerDriver.reserveBatch} (taken
   * when the batch was asked for); without it the batch queues when it is sent.
   */
  ticket?: MutexTicket;
}

/**
 * Default {@link SqliteWorkerOptions.checkpointIntervalMs}. Small, frequent checkpoints disturb
 * the writer's commits less than larger ones: at 500 ms the screen pop's store commit had a p99
 * of about 4.4 ms under `npm run bench`, at 100 ms about 2.8 ms (docs/store.md).
 */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 100;

/**
 * WAL size, pages (4 KiB), at which the writer checkpoints inside a commit itself when the
 * checkpointer falls behind or is gone (SQLite's default is 1000, with no checkpointer).
 */
const WRITER_AUTOCHECKPOINT_PAGES = 10_000;

/** Kysely's result shape from the thread's answer for one statement. */
function toQueryResult<R>(result: OpResult): QueryResult<R> {
  if (result.rows) return { rows: result.rows as R[] };
  return {
    rows: [],
    ...(result.changes === undefined ? {} : { numAffectedRows: BigInt(result.changes) }),
    ...(result.lastInsertRowid === undefined ? {} : { insertId: BigInt(result.lastInsertRowid) }),
  };
}

/**
 * The Kysely driver of {@link SqliteWorkerDialect}: one connection (the thread), behind a mutex
 * as in Kysely's SqliteDriver. The thread is started on first use and again after it died.
 */
export class SqliteWorkerDriver implements Driver {
  private readonly mutex = new ConnectionMutex();
  /** The order batches are sent in: the order they were asked for ({@link reserveBatch}). */
  private readonly batchLine = new ConnectionMutex();
  /** Order and broken state of the write streams (see {@link batch}). */
  private readonly streams = new WriteStreams();
  private thread: Promise<SqliteThread> | undefined;
  private checkpointer: Promise<Checkpointer | undefined> | undefined;
  private destroyed = false;
  private readonly connection: DatabaseConnection;
  /** Threads started so far: the generation of the newest. */
  private generation = 0;
  /**
   * The generation of the thread that ran the open Kysely transaction's `begin`; undefined
   * outside a transaction. Statements of a transaction never go to a later thread: the old
   * thread's transaction died with it, and the rest would commit one by one (see {@link send}).
   */
  private txGeneration: number | undefined;

  constructor(private readonly options: SqliteWorkerOptions) {
    const send = <R extends OpResult | OpResult[]>(request: RequestBody): Promise<R> =>
      this.send<R>(request);
    this.connection = {
      async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
        const result = await send<OpResult>({
          kind: 'query',
          op: { sql: compiledQuery.sql, parameters: compiledQuery.parameters },
        });
        return toQueryResult<R>(result);
      },
      // eslint-disable-next-line require-yield
      async *streamQuery() {
        throw new Error('the SQLite worker driver does not stream queries');
      },
    };
  }

  async init(): Promise<void> {
    await this.current();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.mutex.lock();
    return this.connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'));
    this.txGeneration = this.generation;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await connection.executeQuery(CompiledQuery.raw('commit'));
    } finally {
      this.txGeneration = undefined;
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const generation = this.txGeneration;
    try {
      const thread = await this.thread?.catch(() => undefined);
      // A transaction whose thread died is gone already: nothing to roll back.
      if (!thread || thread.exited || thread.generation !== generation) return;
      await connection.executeQuery(CompiledQuery.raw('rollback'));
    } finally {
      this.txGeneration = undefined;
    }
  }

  /**
   * End the current thread at once, as a crash of it would (tests; the next statement starts a
   * new thread). Requests in flight fail with {@link SqliteThreadError}.
   */
  async terminateThread(): Promise<void> {
    const thread = await this.thread?.catch(() => undefined);
    await thread?.terminate();
  }

  async releaseConnection(): Promise<void> {
    this.mutex.unlock();
  }

  /**
   * Take the next place of write stream `stream` (src/store/write-streams.ts), synchronously:
   * give it to {@link batch} (`options.place`) to have the batch sent in that order.
   */
  reserve(stream: string): StreamPlace {
    return this.streams.enter(stream);
  }

  /**
   * Take the batch's place among the batches now, synchronously: give it to {@link batch}
   * (`options.ticket`), or cancel it when the batch is not sent. Batches then reach the thread in
   * the order they were asked for, whatever their collecting and their stream turns took.
   * Queries and transactions do not wait for batches still being collected: they only queue
   * for the connection, as before.
   */
  reserveBatch(): MutexTicket {
    return this.batchLine.reserve();
  }

  /**
   * A batch of `stream` failed before it could be sent (its statements could not be collected):
   * the stream's later batches are refused until one resumes it.
   */
  markBroken(stream: string): void {
    this.streams.markBroken(stream);
  }

  /**
   * Run `ops` in order in one transaction in the thread, with one message each way; all commit
   * or none do. Waits for the connection like any query (never inside a Kysely transaction),
   * but only until the message is sent: the thread runs messages in arrival order, so other
   * batches and queries are sent meanwhile and wait in the thread, not for this answer.
   *
   * With `options.stream`, the batch belongs to that write stream: it is sent after the batch
   * of every earlier place of the stream (`options.place`, from {@link reserve}), and refused
   * with {@link StreamBrokenError}, writing nothing, when an earlier batch of the stream failed,
   * unless `options.resume` is set (which clears that state). A batch of a stream is sent even
   * when empty (its success says the stream is not broken).
   *
   * @returns rows changed by each statement
   * @throws SqliteThreadError of the first failing statement (`index` says which), after the
   *   transaction was rolled back; StreamBrokenError (see above)
   */
  async batch(ops: readonly SqliteOp[], options: BatchOptions = {}): Promise<number[]> {
    const { stream, place, ticket } = options;
    if (ops.length === 0 && stream === undefined) {
      ticket?.cancel();
      return [];
    }
    let answer: Promise<OpResult[]>;
    try {
      if (place) await place.turn;
      await (ticket ? ticket.acquire() : this.batchLine.lock());
      try {
        await this.mutex.lock();
        try {
          const thread = await this.usableThread();
          if (stream !== undefined) this.streams.admit(stream, options.resume === true);
          // Posted before send() returns: the next place of the stream may go now.
          answer = thread.send<OpResult[]>({
            kind: 'batch',
            ops,
            ...(stream === undefined ? {} : { stream, resume: options.resume === true }),
          });
        } finally {
          this.mutex.unlock();
        }
      } finally {
        this.batchLine.unlock();
      }
    } catch (err) {
      // Not sent (no thread, or refused): later batches of the stream must not be written.
      if (stream !== undefined) this.streams.markBroken(stream);
      throw err;
    } finally {
      place?.handedOver();
    }
    const results = await answer;
    return results.map((r) => r.changes ?? 0);
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    // The checkpointer first: the last connection to close checkpoints and removes the WAL.
    const checkpointer = await this.checkpointer;
    await checkpointer?.close();
    const thread = this.thread;
    this.thread = undefined;
    if (!thread) return;
    const started = await thread.catch(() => undefined);
    await started?.close();
  }

  private current(): Promise<SqliteThread> {
    if (this.destroyed) {
      return Promise.reject(
        new SqliteThreadError({ name: 'Error', message: 'the store is closed' }),
      );
    }
    if (!this.thread) {
      const file = this.options.filename !== ':memory:';
      const { filename, synchronous, busyTimeoutMs } = this.options;
      const starting = SqliteThread.start(
        {
          filename,
          synchronous,
          busyTimeoutMs,
          ...(file ? { walAutocheckpointPages: WRITER_AUTOCHECKPOINT_PAGES } : {}),
        },
        ++this.generation,
        (streams) => {
          for (const stream of streams) this.streams.markBroken(stream);
        },
      );
      this.thread = starting;
      starting.then(
        () => {
          // Once: a restarted writer keeps the checkpointer.
          if (file && !this.checkpointer && !this.destroyed)
            this.checkpointer = Checkpointer.start(
              this.options,
              this.options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
            );
        },
        () => {
          // A thread that failed to start is retried by the next statement.
          if (this.thread === starting) this.thread = undefined;
        },
      );
    }
    return this.thread;
  }

  /**
   * Send to the current thread, starting a new one when it died, except inside a transaction
   * whose thread died.
   *
   * @throws SqliteThreadError `the SQLite thread ended inside a transaction` for the statements
   *   (and the commit) of such a transaction: it was lost with the thread, so it must fail as a
   *   whole rather than have its remaining statements autocommit on a new thread
   */
  private async send<R extends OpResult | OpResult[]>(request: RequestBody): Promise<R> {
    return (await this.usableThread()).send<R>(request);
  }

  /** The thread to send to now (see {@link send}). */
  private async usableThread(): Promise<SqliteThread> {
    let thread = await this.current();
    const inTransaction = this.txGeneration !== undefined;
    if (thread.exited && !inTransaction) {
      this.thread = undefined;
      thread = await this.current();
    }
    if (inTransaction && (thread.exited || thread.generation !== this.txGeneration)) {
      throw new SqliteThreadError({
        name: 'Error',
        message: 'the SQLite thread ended inside a transaction; the transaction was lost',
      });
    }
    return thread;
  }
}

/**
 * Kysely dialect for a SQLite database run by a worker thread (see the module comment). The
 * driver is created once, and {@link SqliteWorkerDialect.driver} gives it (for batches).
 */
export class SqliteWorkerDialect implements Dialect {
  readonly driver: SqliteWorkerDriver;

  constructor(options: SqliteWorkerOptions) {
    this.driver = new SqliteWorkerDriver(options);
  }

  createDriver(): Driver {
    return this.driver;
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
