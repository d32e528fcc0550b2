/**
 * The store (state that must survive a restart lives in a store, SQLite
 * embedded by default, PostgreSQL when several instances share the work). One Kysely schema, two
 * dialects, versioned in-code migrations. Reference: docs/store.md.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Kysely, Migrator, PostgresDialect, sql, type MigrationResult } from 'kysely';
import pg from 'pg';
import type { Logger } from '../logging/logger.ts';
import { createCallRepository, type CallRepository } from './calls.ts';
import { StoreError, StoreUrlError } from './errors.ts';
import {
  createEventRepository,
  type AppendHooks,
  type ConnectorOutboxTarget,
  type EventRepository,
} from './events.ts';
import { OutboxPositions, type PositionedEvent } from './outbox-positions.ts';
import { createConnectorOutbox } from './connector-outbox.ts';
import type { OutboxRepository } from './durable-queue.ts';
import { createIdempotencyRepository, type IdempotencyRepository } from './idempotency.ts';
import { storeMigrationProvider, type StoreDialect } from './migrations.ts';
import { createOperatorRepository, type OperatorRepository } from './operators.ts';
import { claimStore, type StoreClaim } from './ownership.ts';
import type { Database } from './schema.ts';
import { SqliteWorkerDialect } from './sqlite-worker.ts';
import { WriteBatchCollector } from './write-batch.ts';
import { WriteStreams } from './write-streams.ts';

/** Options of {@link createStore}. */
export interface StoreOptions {
  /**
   * `sqlite:<path>` (a file; its directory is created), `sqlite::memory:` (tests), or
   * `postgres://user:pass@host:port/db` / `postgresql://…`. Never logged with its password.
   */
  url: string;
  logger: Logger;
  /**
   * PostgreSQL only: schema to use instead of `public` (created by `migrate()` if missing; set
   * as the connections' `search_path`). For tests and for several deployments in one database.
   */
  schema?: string;
  /** PostgreSQL only: most pooled connections. Default 10. */
  poolSize?: number;
  /** SQLite only: how long a write waits for a lock held by another connection, ms. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * SQLite only (SQLITE_SYNCHRONOUS): `full` (default here) makes a commit survive a power cut;
   * `normal` (WAL) survives a crash of the process but not of the OS, and commits without
   * waiting for the disk.
   */
  synchronous?: 'normal' | 'full';
  /**
   * The CRM connector's delivery target (CRM_CONNECTOR other than `webhook`): its events are
   * queued in `connector_outbox` with the event itself (src/store/connector-outbox.ts).
   */
  connectorOutbox?: ConnectorOutboxTarget;
}

/** The repositories, bound to the store or to one transaction. */
export interface StoreRepositories {
  calls: CallRepository;
  events: EventRepository;
  idempotency: IdempotencyRepository;
  /** Operator presence rows (src/store/operators.ts). */
  operators: OperatorRepository;
  /** The CRM connector's outbox, when {@link StoreOptions.connectorOutbox} is set. */
  connectorOutbox?: OutboxRepository;
}

/** What {@link Store.migrate} did. */
export interface MigrationReport {
  /** Names of the migrations applied now, in order (empty when already up to date). */
  applied: string[];
}

/** An open store. */
/** Options of {@link Store.writeBatch}. */
export interface WriteBatchOptions {
  /** The ordered write stream the batch belongs to (e.g. `journal`). */
  stream?: string;
  /** With `stream`: write even though an earlier batch of the stream failed, clearing that. */
  resume?: boolean;
}

export interface Store extends StoreRepositories {
  readonly dialect: StoreDialect;
  /** The Kysely instance (for queries the repositories do not cover). */
  readonly db: Kysely<Database>;
  /**
   * Claim the store for this engine, before {@link migrate} (src/store/ownership.ts: an exclusive
   * lock on `<file>.lock` for SQLite, a session advisory lock per schema for PostgreSQL; both
   * end with the process, so a crash leaves no stale claim). {@link close} gives it up.
   * Idempotent.
   *
   * @throws StoreInUseError when another engine holds the store
   */
  claim(): Promise<void>;
  /**
   * Apply pending migrations (idempotent; run at start-up before anything else).
   *
   * @throws StoreError naming the failed migration, with the driver error as `cause`
   */
  migrate(): Promise<MigrationReport>;
  /**
   * Run `fn` in one transaction with repositories bound to it: all its writes commit together
   * or none do (an event is written in the same transaction as the state change that
   * caused it). Rejects with `fn`'s error after rolling back. On SQLite transactions are
   * serialised; inside `fn` use only the given repositories (the store's own would wait for
   * the transaction and deadlock). `trx` is the transaction itself, for a domain's own tables
   * (notification jobs); events appended through `repos.events` reach the connector
   * outbox and wake the live stream like every other event.
   */
  transaction<T>(fn: (repos: StoreRepositories, trx: Kysely<Database>) => Promise<T>): Promise<T>;
  /**
   * Run the writes of `fn` as one transaction, like {@link Store.transaction}, for code that only
   * writes (the call journal, the webhook outbox). On SQLite the statements are collected first
   * and sent to the SQLite thread in one message (src/store/write-batch.ts): inside `fn` nothing
   * is written yet, a read throws `WriteBatchError`, and a write's result (rows changed) is
   * unknown. On PostgreSQL it is {@link Store.transaction}. Resolves with `fn`'s result once
   * everything is committed; rejects (nothing written) with `fn`'s error or the failing
   * statement's driver error (`SqliteThreadError` with SQLite's `code` on SQLite).
   *
   * With `options.stream` the batch belongs to an ordered write stream
   * (src/store/write-streams.ts): batches of a stream commit in the order `writeBatch` was
   * called, and after one failed the later ones reject with `StreamBrokenError`, writing nothing,
   * until one is written with `options.resume`. A caller may keep several batches of a stream
   * in flight: on SQLite they are queued in the SQLite thread without waiting for each other's
   * answer ({@link Store.pipelinedWrites}); on PostgreSQL each waits for the previous one.
   */
  writeBatch<T>(
    fn: (repos: StoreRepositories) => Promise<T>,
    options?: WriteBatchOptions,
  ): Promise<T>;
  /**
   * Whether batches of a write stream are queued without waiting for each other (SQLite: true;
   * PostgreSQL: false, they run one after another). A writer keeps several in flight only when
   * this is true.
   */
  readonly pipelinedWrites: boolean;
  /**
   * Call `listener` after every commit that appended lifecycle events to the outbox (through the
   * store's `events`, {@link Store.transaction} or {@link Store.writeBatch}): the live stream
   * (src/stream/) then reads the feed on. Not told of events another engine instance appended.
   * Listeners must not throw. Returns the function that removes it.
   */
  onEventsAppended(listener: () => void): () => void;
  /**
   * SQLite only: the engine's numbering of the outbox (src/store/outbox-positions.ts), started
   * by {@link migrate}. The call journal allocates its events' positions from it and tells it
   * when they are in the journal log; the live stream takes events from it as they become
   * durable, without reading them back. Undefined on PostgreSQL.
   */
  readonly outboxPositions?: OutboxPositions;
  /** Resolves when the database answers a trivial query (readiness); rejects otherwise. */
  ping(): Promise<void>;
  /** Close connections. Idempotent. */
  close(): Promise<void>;
}

/** A parsed store URL. */
export type StoreTarget =
  { dialect: 'sqlite'; filename: string } | { dialect: 'postgres'; connectionString: string };

/**
 * Parse a store URL (see {@link StoreOptions.url}); relative SQLite paths resolve against the
 * working directory.
 *
 * @throws StoreUrlError on another scheme or an empty SQLite path
 */
export function parseStoreUrl(url: string): StoreTarget {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: 'postgres', connectionString: url };
  if (url.startsWith('sqlite:')) {
    const rest = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (rest === ':memory:') return { dialect: 'sqlite', filename: ':memory:' };
    if (rest === '') throw new StoreUrlError('sqlite URL has no file path: expected sqlite:<path>');
    return { dialect: 'sqlite', filename: resolve(rest) };
  }
  throw new StoreUrlError(
    'unsupported DATABASE_URL: expected sqlite:<path>, sqlite::memory: or postgres://…',
  );
}

/**
 * Open a store. SQLite: creates the file's directory; a worker thread opens (creating) the file
 * on first use, with WAL journal, foreign keys on, `synchronous` as
 * {@link StoreOptions.synchronous} says (default FULL) and a busy timeout, and runs every
 * statement (src/store/sqlite-worker.ts).
 * PostgreSQL: a `pg` pool; connections are made lazily (use {@link Store.ping} to check).
 * Call {@link Store.migrate} before using the repositories.
 *
 * @throws StoreUrlError on an unusable URL (a SQLite file that cannot be opened fails the first
 *   query, e.g. {@link Store.migrate}, with a `SqliteThreadError`)
 */
export function createStore(options: StoreOptions): Store {
  const target = parseStoreUrl(options.url);
  const logger = options.logger;
  let db: Kysely<Database>;
  let sqlite: { dialect: SqliteWorkerDialect; batches: WriteBatchCollector } | undefined;
  if (target.dialect === 'sqlite') {
    if (target.filename !== ':memory:') mkdirSync(dirname(target.filename), { recursive: true });
    // The connection lives in a worker thread (src/store/sqlite-worker.ts); it opens the file on
    // first use, so an unusable file fails `migrate()`.
    const dialect = new SqliteWorkerDialect({
      filename: target.filename,
      synchronous: options.synchronous ?? 'full',
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      warn: (message, fields) => logger.warn(message, { component: 'store', ...fields }),
    });
    sqlite = { dialect, batches: new WriteBatchCollector() };
    db = new Kysely<Database>({ dialect });
  } else {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new StoreUrlError(`invalid PostgreSQL schema name: ${schema}`);
    }
    const pool = new pg.Pool({
      connectionString: target.connectionString,
      max: options.poolSize ?? 10,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    pool.on('error', (err) => logger.error('idle PostgreSQL connection failed', { err }));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  const dialect = target.dialect;
  // SQLite: the engine numbers the outbox (started by migrate()).
  const positions = dialect === 'sqlite' ? new OutboxPositions() : undefined;
  const appendListeners = new Set<() => void>();
  const appended = (): void => {
    for (const listener of appendListeners) listener();
  };
  /** Repositories over `k`; `hooks` number and report what their `appendEvents` write. */
  const bind = (k: Kysely<Database>, hooks: AppendHooks): StoreRepositories => ({
    calls: createCallRepository(k),
    events: createEventRepository(k, dialect, options.connectorOutbox, hooks),
    idempotency: createIdempotencyRepository(k),
    operators: createOperatorRepository(k),
    ...(options.connectorOutbox
      ? { connectorOutbox: createConnectorOutbox(k, options.connectorOutbox.name) }
      : {}),
  });
  /**
   * The events of one transaction: what its `appendEvents` wrote and the positions they
   * allocated, settled once it committed ({@link settleAppends}) or failed ({@link dropAppends}).
   */
  const trackAppends = (): {
    hooks: AppendHooks;
    items: PositionedEvent[];
    owned: number[];
    appended: boolean;
  } => {
    const tracked = {
      items: [] as PositionedEvent[],
      owned: [] as number[],
      appended: false,
      hooks: {} as AppendHooks,
    };
    tracked.hooks = {
      ...(positions ? { positions } : {}),
      allocated: (owned) => tracked.owned.push(...owned),
      appended: (items) => {
        tracked.appended = true;
        if (items) tracked.items.push(...items);
      },
    };
    return tracked;
  };
  const settleAppends = (tracked: ReturnType<typeof trackAppends>): void => {
    if (positions && (tracked.items.length > 0 || tracked.owned.length > 0)) {
      positions.committed(tracked.items);
      // Allocated by an append whose error `fn` caught: never written.
      const written = new Set(tracked.items.map((item) => item.position));
      const unused = tracked.owned.filter((position) => !written.has(position));
      if (unused.length > 0) positions.abandoned(unused);
    }
    if (tracked.appended) appended();
  };
  const dropAppends = (tracked: ReturnType<typeof trackAppends>): void => {
    // The caller's own positions (the journal's) stay open: it writes them again.
    if (positions && tracked.owned.length > 0) positions.abandoned(tracked.owned);
  };
  /** Run `fn` with repositories bound to `k`; settle its appended events once it committed. */
  const tracking = async <T>(
    run: (bindTo: (k: Kysely<Database>) => StoreRepositories) => Promise<T>,
  ): Promise<T> => {
    const tracked = trackAppends();
    let result: T;
    try {
      result = await run((k) => bind(k, tracked.hooks));
    } catch (err) {
      dropAppends(tracked);
      throw err;
    }
    settleAppends(tracked);
    return result;
  };
  const postgresStreams = new WriteStreams();
  let closed: Promise<void> | undefined;
  let claiming: Promise<StoreClaim> | undefined;

  return {
    dialect,
    db,
    ...bind(db, { ...(positions ? { positions } : {}), appended }),
    ...(positions ? { outboxPositions: positions } : {}),

    onEventsAppended(listener) {
      appendListeners.add(listener);
      return () => appendListeners.delete(listener);
    },

    async claim() {
      claiming ??= claimStore(target, options.schema, logger);
      try {
        await claiming;
      } catch (err) {
        claiming = undefined;
        throw err;
      }
    },

    async migrate() {
      if (dialect === 'postgres' && options.schema) {
        await sql`create schema if not exists ${sql.id(options.schema)}`.execute(db);
      }
      const migrator = new Migrator({
        db,
        provider: storeMigrationProvider(dialect),
        ...(dialect === 'postgres' && options.schema
          ? { migrationTableSchema: options.schema }
          : {}),
      });
      const { error, results = [] } = await migrator.migrateToLatest();
      const failed = results.find((r: MigrationResult) => r.status === 'Error');
      if (error !== undefined) {
        logger.error('store migration failed', { migration: failed?.migrationName, err: error });
        throw new StoreError(
          `store migration ${failed?.migrationName ?? '(setup)'} failed: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
      const applied = results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
      if (applied.length > 0) logger.info('store migrated', { dialect, applied });
      if (positions && !positions.started) {
        const row = await db
          .selectFrom('events')
          .select((eb) => eb.fn.max('id').as('last'))
          .executeTakeFirst();
        // AUTOINCREMENT's high-water mark (explicit ids raise it too): positions of events
        // deleted since are not numbered again, as SQLite's own numbering guaranteed.
        const sequence = await sql<{
          seq: number;
        }>`select seq from sqlite_sequence where name = 'events'`.execute(db);
        positions.start(Math.max(Number(row?.last ?? 0), Number(sequence.rows[0]?.seq ?? 0)));
      }
      return { applied };
    },

    transaction(fn) {
      return tracking((bindTo) => db.transaction().execute((trx) => fn(bindTo(trx), trx)));
    },

    pipelinedWrites: sqlite !== undefined,

    async writeBatch<T>(
      fn: (repos: StoreRepositories) => Promise<T>,
      options: WriteBatchOptions = {},
    ): Promise<T> {
      const { stream, resume = false } = options;
      if (!sqlite) {
        const run = (): Promise<T> =>
          tracking((bindTo) => db.transaction().execute((trx) => fn(bindTo(trx))));
        if (stream === undefined) return run();
        // One after another: a pool gives no order between connections.
        const place = postgresStreams.enter(stream);
        try {
          await place.turn;
          postgresStreams.admit(stream, resume);
          return await run();
        } catch (err) {
          postgresStreams.markBroken(stream);
          throw err;
        } finally {
          place.handedOver();
        }
      }
      const { driver } = sqlite.dialect;
      // The places are taken now, in call order (in the stream, among the batches); collecting
      // the statements awaits.
      const place = stream === undefined ? undefined : driver.reserve(stream);
      const ticket = driver.reserveBatch();
      let collected;
      const tracked = trackAppends();
      try {
        collected = await sqlite.batches.collect((trx) => fn(bind(trx, tracked.hooks)));
      } catch (err) {
        ticket.cancel();
        dropAppends(tracked);
        if (place) {
          // Nothing of it is sent: the stream's later batches must not be written either.
          await place.turn;
          driver.markBroken(stream!);
          place.handedOver();
        }
        throw err;
      }
      try {
        await driver.batch(collected.ops, {
          ...(stream === undefined ? {} : { stream, resume }),
          ...(place ? { place } : {}),
          ticket,
        });
      } catch (err) {
        dropAppends(tracked);
        throw err;
      }
      settleAppends(tracked);
      return collected.result;
    },

    async ping() {
      await sql`select 1`.execute(db);
    },

    close() {
      closed ??= (async () => {
        try {
          await db.destroy();
        } finally {
          // Last: the store is free for another engine once this one wrote its last change.
          const claim = await claiming?.catch(() => undefined);
          await claim?.release();
        }
      })();
      return closed;
    },
  };
}
