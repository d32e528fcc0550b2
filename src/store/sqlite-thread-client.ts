/**
 * The engine's side of the store's two threads: {@link SqliteThread}, the thread that owns the
 * only SQLite connection (src/store/sqlite-thread.js: requests numbered and answered in order,
 * SQL texts sent once under a key, the requests in flight failed when it dies), and the WAL
 * {@link Checkpointer} (src/store/sqlite-checkpointer.js). Both are started from their files next
 * to this one (`new Worker(new URL(…, import.meta.url))`: the same under tsx and in the build)
 * and never keep the process alive while idle. Used by the driver (src/store/sqlite-worker.ts).
 */
import { Worker } from 'node:worker_threads';
import {
  SqliteThreadError,
  type OpResult,
  type Reply,
  type Request,
  type RequestBody,
  type SqliteOp,
  type ThreadErrorShape,
  type ThreadOptions,
  type WireOp,
} from './sqlite-protocol.ts';
import type { SqliteWorkerOptions } from './sqlite-worker.ts';
import { StreamBrokenError } from './write-streams.ts';

/** Most distinct SQL texts given a key per thread (queries with `in (…)` lists vary). */
const MAX_STATEMENT_KEYS = 1000;

/** The threads' files, next to this one (in src/store/ and in the build alike). */
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
export class Checkpointer {
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

/** The thread and its pending requests. */
export class SqliteThread {
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
