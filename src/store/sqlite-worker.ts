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
 */
import { Worker } from 'node:worker_threads';
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
import { StoreError } from './errors.ts';
import { StreamBrokenError, WriteStreams, type StreamPlace } from './write-streams.ts';

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

/** What the SQLite thread is started with (its `workerData`: plain data only). */
interface ThreadOptions {
  filename: string;
  synchronous: 'normal' | 'full';
  busyTimeoutMs: number;
  /** `PRAGMA wal_autocheckpoint` of the writer, pages; absent = SQLite's default (1000). */
  walAutocheckpointPages?: number;
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

/** A statement as sent to the thread. */
export interface SqliteOp {
  sql: string;
  parameters: readonly unknown[];
}

/** What the thread answers for one statement. */
interface OpResult {
  rows?: unknown[];
  changes?: number;
  lastInsertRowid?: number | bigint;
}

/** An error as the thread describes it. */
interface ThreadErrorShape {
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
interface WireOp {
  key?: number;
  sql?: string;
  parameters: readonly unknown[];
}

/**
 * A batch's write stream (src/store/write-streams.ts): the thread refuses a batch of a stream
 * that failed earlier unless it resumes the stream.
 */
interface StreamTag {
  stream?: string;
  resume?: boolean;
}

/** A request as the thread receives it, without its id. */
type WireBody =
  | { kind: 'query'; op: WireOp }
  | ({ kind: 'batch'; ops: readonly WireOp[] } & StreamTag)
  | { kind: 'close' };

/** A request as the driver makes it (full SQL texts). */
type RequestBody =
  | { kind: 'query'; op: SqliteOp }
  | ({ kind: 'batch'; ops: readonly SqliteOp[] } & StreamTag)
  | { kind: 'close' };

/** Most distinct SQL texts given a key per thread (queries with `in (…)` lists vary). */
const MAX_STATEMENT_KEYS = 1000;

type Request = WireBody & { id: number };

type Reply =
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

const THREAD_URL = new URL('./sqlite-thread.js', import.meta.url);
const CHECKPOINTER_URL = new URL('./sqlite-checkpointer.js', import.meta.url);

/**
 * Start a thread and wait for its `{ kind: 'ready' }`.
 *
 * @throws SqliteThreadError with the thread's `{ kind: 'failed', error }`, or its startup error
 */
function startWorker(url: URL, workerData: object): Promise<Worker> {
  const worker = new Worker(url, { workerData });
  return new Promise((resolve, reject) => {
    const settle = (error?: ThreadErrorShape): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      if (!error) return resolve(worker);
      reject(new SqliteThreadError(error));
      void worker.terminate();
    };
    const onMessage = (reply: Reply): void => {
      if ('kind' in reply) settle(reply.kind === 'failed' ? reply.error : undefined);
    };
    const onError = (err: Error): void => settle({ name: err.name, message: err.message });
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}

/**
 * End a thread: `ask` sends its close request; it gets 2 s to close its connection and exit,
 * then it is terminated.
 */
async function endWorker(worker: Worker, ask: () => Promise<unknown>): Promise<void> {
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  await ask().catch(() => undefined);
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
  await worker.terminate();
}

/**
 * The WAL checkpointer thread (src/store/sqlite-checkpointer.js): started once the writer has
 * opened the file in WAL mode. Never keeps the process alive.
 */
class Checkpointer {
  private closing = false;

  private constructor(
    private readonly worker: Worker,
    warn: SqliteWorkerOptions['warn'],
  ) {
    worker.unref();
    worker.once('exit', (code) => {
      if (!this.closing)
        warn?.('SQLite WAL checkpointer stopped; the writer checkpoints itself', { code });
    });
  }

  /** Start it; undefined (and `warn` told why) when it cannot run. */
  static async start(
    options: SqliteWorkerOptions,
    intervalMs: number,
  ): Promise<Checkpointer | undefined> {
    try {
      const worker = await startWorker(CHECKPOINTER_URL, {
        filename: options.filename,
        intervalMs,
      });
      return new Checkpointer(worker, options.warn);
    } catch (err) {
      options.warn?.('SQLite WAL checkpointer could not start; the writer checkpoints itself', {
        error: (err as Error).message,
      });
      return undefined;
    }
  }

  /** Stop checkpointing and close its connection. */
  async close(): Promise<void> {
    this.closing = true;
    await endWorker(this.worker, async () => this.worker.postMessage({ kind: 'close' }));
  }
}

/**
 * A place in a {@link ConnectionMutex}'s line, taken before its holder is ready to use the
 * connection: `acquire` resolves once every earlier place was released; `cancel` gives up a place
 * never acquired. Every place must be acquired (then unlocked) or cancelled, or the line stops.
 */
export interface MutexTicket {
  acquire(): Promise<void>;
  cancel(): void;
}

/**
 * A single-connection mutex, as in Kysely's SqliteDriver (also used by src/store/write-batch.ts),
 * first come first served: the connection goes to places in the order they were taken, so no
 * later `lock` can overtake an earlier one (write batches of a stream rely on their order). A
 * place can be taken ahead of use ({@link reserve}): the driver's line of batches does, so that
 * a batch asked for later (the webhook queue recording the delivery of an event the journal
 * handed on early) never reaches the thread before an earlier one still being collected.
 */
export class ConnectionMutex {
  private held = false;
  private readonly line: Array<{ grant?: () => void; cancelled: boolean }> = [];

  /** Take the next place in line now; use it later (see {@link MutexTicket}). */
  reserve(): MutexTicket {
    const place: { grant?: () => void; cancelled: boolean } = { cancelled: false };
    this.line.push(place);
    return {
      acquire: () =>
        new Promise<void>((resolve) => {
          place.grant = resolve;
          this.next();
        }),
      cancel: () => {
        if (place.grant) return; // acquired: unlock it instead
        place.cancelled = true;
        this.next();
      },
    };
  }

  lock(): Promise<void> {
    return this.reserve().acquire();
  }

  unlock(): void {
    this.held = false;
    this.next();
  }

  /** Hand the connection to the first place in line, once it asks for it. */
  private next(): void {
    if (this.held) return;
    while (this.line[0]?.cancelled) this.line.shift();
    const first = this.line[0];
    if (!first?.grant) return;
    this.line.shift();
    this.held = true;
    first.grant();
  }
}

/** The thread and its pending requests. */
class SqliteThread {
  private readonly pending = new Map<
    number,
    {
      resolve: (result: OpResult | OpResult[]) => void;
      reject: (err: Error) => void;
      /** The write stream of a batch. */
      stream: string | undefined;
    }
  >();
  private nextId = 1;
  private closing = false;
  /** Keys of the SQL texts sent to this thread. */
  private readonly keys = new Map<string, number>();
  private nextKey = 1;
  private constructor(
    private readonly worker: Worker,
    /** Which thread of its driver this is (1, 2… : a new one after each death). */
    readonly generation: number,
    /**
     * Told, synchronously, of the streams of batches that failed or were lost with the thread
     * (before any later batch can be sent).
     */
    private readonly streamsBroken: (streams: Iterable<string>) => void,
  ) {
    worker.on('message', (reply: Reply) => this.onReply(reply));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => {
      this.exited = true;
      if (!this.closing || this.pending.size > 0)
        this.failAll(new Error(`the SQLite thread exited with code ${code}`));
    });
    worker.unref();
  }

  /** Whether the thread has exited (a new one must be started). */
  exited = false;

  /**
   * Start a thread and wait until it has opened the database.
   *
   * @throws SqliteThreadError when the database cannot be opened (the thread's error)
   */
  static async start(
    options: ThreadOptions,
    generation: number,
    streamsBroken: (streams: Iterable<string>) => void,
  ): Promise<SqliteThread> {
    return new SqliteThread(await startWorker(THREAD_URL, options), generation, streamsBroken);
  }

  /** End the thread at once, as a crash would: pending requests fail, nothing is rolled back. */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  /** A statement for the wire: its key, and its SQL text the first time only. */
  private wire(op: SqliteOp): WireOp {
    const key = this.keys.get(op.sql);
    if (key !== undefined) return { key, parameters: op.parameters };
    if (this.keys.size >= MAX_STATEMENT_KEYS) return { sql: op.sql, parameters: op.parameters };
    const next = this.nextKey++;
    this.keys.set(op.sql, next);
    return { key: next, sql: op.sql, parameters: op.parameters };
  }

  /**
   * Send a request (posted before this returns: the thread runs requests in the order they were
   * sent); resolves with the thread's result, rejects with a {@link SqliteThreadError}, or a
   * {@link StreamBrokenError} for a batch the thread refused.
   */
  send<R extends OpResult | OpResult[]>(request: RequestBody): Promise<R> {
    if (this.exited) {
      return Promise.reject(
        new SqliteThreadError({ name: 'Error', message: 'the SQLite thread has exited' }),
      );
    }
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const stream = request.kind === 'batch' ? request.stream : undefined;
      this.pending.set(id, {
        resolve: resolve as (result: OpResult | OpResult[]) => void,
        reject,
        stream,
      });
      // Keep the process alive while an answer is awaited, not while the thread is idle.
      if (this.pending.size === 1) this.worker.ref();
      const message: Request =
        request.kind === 'query'
          ? { id, kind: 'query', op: this.wire(request.op) }
          : request.kind === 'batch'
            ? {
                id,
                kind: 'batch',
                ops: request.ops.map((op) => this.wire(op)),
                ...(stream === undefined ? {} : { stream, resume: request.resume === true }),
              }
            : { id, kind: 'close' };
      try {
        this.worker.postMessage(message);
      } catch (err) {
        // A parameter that cannot be sent to a thread (a function, a symbol): this request only.
        // The thread never saw the SQL texts this message introduced.
        const ops =
          message.kind === 'query' ? [message.op] : message.kind === 'batch' ? message.ops : [];
        for (const op of ops)
          if (op.key !== undefined && op.sql !== undefined) this.keys.delete(op.sql);
        this.pending.delete(id);
        if (this.pending.size === 0) this.worker.unref();
        if (stream !== undefined) this.streamsBroken([stream]);
        reject(
          new SqliteThreadError({
            name: 'DataCloneError',
            message: `statement parameters cannot be sent to the SQLite thread: ${err instanceof Error ? err.message : String(err)}`,
          }),
        );
      }
    });
  }

  /** Close the database and let the thread end. */
  async close(): Promise<void> {
    if (this.exited) return;
    this.closing = true;
    // The thread answers, closes its port and exits on its own.
    await endWorker(this.worker, () => this.send({ kind: 'close' }));
  }

  private onReply(reply: Reply): void {
    if (!('id' in reply)) return;
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) {
      waiter.resolve(reply.result);
      return;
    }
    if (waiter.stream !== undefined) this.streamsBroken([waiter.stream]);
    waiter.reject(
      reply.error.name === 'StreamBrokenError' && waiter.stream !== undefined
        ? new StreamBrokenError(waiter.stream)
        : new SqliteThreadError(reply.error),
    );
  }

  private failAll(err: Error): void {
    const failure = new SqliteThreadError({
      name: 'Error',
      message: `SQLite thread failed: ${err.message}`,
    });
    const streams = new Set<string>();
    for (const waiter of this.pending.values())
      if (waiter.stream !== undefined) streams.add(waiter.stream);
    // Batches lost with the thread may or may not have committed: their streams are broken.
    if (streams.size > 0) this.streamsBroken(streams);
    for (const waiter of this.pending.values()) waiter.reject(failure);
    this.pending.clear();
    this.worker.unref();
  }
}

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
