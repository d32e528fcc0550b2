/**
 * Write batches (`Store.writeBatch`): the statements of a write-only transaction are collected
 * by running the repositories' own code against a Kysely instance whose driver runs nothing,
 * then sent to the SQLite thread in one message and committed there in one transaction
 * (src/store/sqlite-worker.ts). The per-call writes of the call journal and of the webhook
 * outbox go this way: one round trip per group commit instead of one per statement.
 *
 * The repositories are unchanged: each statement is still built once, by Kysely, in
 * src/store/calls.ts and src/store/events.ts. What a batch cannot do is read: a statement that
 * returns rows throws {@link WriteBatchError} while collecting, and a write's result (rows
 * changed) is not known inside the batch (`numAffectedRows` is undefined).
 */
import {
  CompiledQuery,
  Kysely,
  SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';
import { collectCompiledStatements } from './compiled.ts';
import { StoreError } from './errors.ts';
import type { Database } from './schema.ts';
import { ConnectionMutex } from './connection-mutex.ts';
import type { SqliteOp } from './sqlite-protocol.ts';

/** A write batch tried to read, or to run a statement outside its transaction. */
export class WriteBatchError extends StoreError {
  override name = 'WriteBatchError';
}

const READS = /^\s*(select|with|pragma|explain)\b|\breturning\b/i;

/** Verdicts of {@link READS} per SQL text: the same few texts come back for every call. */
const readVerdicts = new Map<string, boolean>();

/** Whether `sql` reads (scanning a long upsert for `returning` was 1.5 % of the engine's time). */
function reads(sql: string): boolean {
  let verdict = readVerdicts.get(sql);
  if (verdict === undefined) {
    verdict = READS.test(sql);
    // Bounded: statements built with a varying shape (an IN list) make texts of their own.
    if (readVerdicts.size >= 1000) readVerdicts.clear();
    readVerdicts.set(sql, verdict);
  }
  return verdict;
}

function cannotRead(sql: string): WriteBatchError {
  return new WriteBatchError(
    `a write batch cannot read (its statements run later, all at once): ${sql.slice(0, 80)}`,
  );
}

/** The collecting driver: one connection, a mutex, statements kept per transaction. */
class CollectingDriver implements Driver {
  private readonly mutex = new ConnectionMutex();
  private ops: SqliteOp[] | undefined;
  private readonly connection: DatabaseConnection;

  constructor() {
    const collect = (query: CompiledQuery): void => {
      if (SelectQueryNode.is(query.query)) throw cannotRead(query.sql);
      this.collect(query.sql, query.parameters);
    };
    this.connection = {
      executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
        collect(query);
        return Promise.resolve({ rows: [] });
      },
      // eslint-disable-next-line require-yield
      async *streamQuery() {
        throw new WriteBatchError('a write batch cannot stream');
      },
    };
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.mutex.lock();
    return this.connection;
  }

  async beginTransaction(): Promise<void> {
    this.ops = [];
  }

  async commitTransaction(): Promise<void> {}

  async rollbackTransaction(): Promise<void> {
    this.ops = undefined;
  }

  async releaseConnection(): Promise<void> {
    this.ops = undefined;
    this.mutex.unlock();
  }

  /**
   * Keep one statement of the open transaction.
   *
   * @throws WriteBatchError outside a transaction, or for a statement that reads
   */
  collect(sql: string, parameters: readonly unknown[]): void {
    if (!this.ops) {
      throw new WriteBatchError('a write batch statement ran outside the batch transaction');
    }
    if (reads(sql)) throw cannotRead(sql);
    this.ops.push({ sql, parameters });
  }

  /** The statements collected so far in the open transaction (and forget them). */
  take(): SqliteOp[] {
    const ops = this.ops ?? [];
    this.ops = [];
    return ops;
  }

  async destroy(): Promise<void> {}
}

/**
 * Collects the statements of write-only transactions written with Kysely for SQLite. One per
 * store (compiled statements are cached per instance, src/store/compiled.ts).
 */
export class WriteBatchCollector {
  private readonly driver = new CollectingDriver();
  private readonly db: Kysely<Database>;

  constructor() {
    const driver = this.driver;
    const dialect: Dialect = {
      createDriver: (): Driver => driver,
      createQueryCompiler: (): QueryCompiler => new SqliteQueryCompiler(),
      createAdapter: (): DialectAdapter => new SqliteAdapter(),
      createIntrospector: (db: Kysely<unknown>): DatabaseIntrospector => new SqliteIntrospector(db),
    };
    this.db = new Kysely<Database>({ dialect });
  }

  /**
   * Run `fn` with a transaction of the collecting instance and return what it returned and the
   * statements it ran, in order. Nothing is written. Batches collect one at a time.
   *
   * @throws WriteBatchError when `fn` reads; `fn`'s own error
   */
  async collect<T>(
    fn: (trx: Kysely<Database>) => Promise<T>,
  ): Promise<{ result: T; ops: SqliteOp[] }> {
    return this.db.transaction().execute(async (trx) => {
      // Compiled statements (most of the per-call writes) skip Kysely's executor.
      collectCompiledStatements(trx, (sql, parameters) => this.driver.collect(sql, parameters));
      const result = await fn(trx);
      return { result, ops: this.driver.take() };
    });
  }
}
