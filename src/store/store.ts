/**
 * The store (issue 4; BRIEF "Shape": state that must survive a restart lives in a store, SQLite
 * embedded by default, PostgreSQL when several instances share the work). One Kysely schema, two
 * dialects, versioned in-code migrations. Reference: docs/store.md.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  Kysely,
  type SqliteDatabase as SqliteDialectDatabase,
  Migrator,
  PostgresDialect,
  sql,
  SqliteDialect,
  type MigrationResult,
} from 'kysely';
import pg from 'pg';
import type { Logger } from '../logging/logger.ts';
import { createCallRepository, type CallRepository } from './calls.ts';
import { StoreError, StoreUrlError } from './errors.ts';
import { createEventRepository, type EventRepository } from './events.ts';
import { createIdempotencyRepository, type IdempotencyRepository } from './idempotency.ts';
import { storeMigrationProvider, type StoreDialect } from './migrations.ts';
import type { Database } from './schema.ts';

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
}

/** The repositories, bound to the store or to one transaction. */
export interface StoreRepositories {
  calls: CallRepository;
  events: EventRepository;
  idempotency: IdempotencyRepository;
}

/** What {@link Store.migrate} did. */
export interface MigrationReport {
  /** Names of the migrations applied now, in order (empty when already up to date). */
  applied: string[];
}

/** An open store. */
export interface Store extends StoreRepositories {
  readonly dialect: StoreDialect;
  /** The Kysely instance (for queries the repositories do not cover). */
  readonly db: Kysely<Database>;
  /**
   * Apply pending migrations (idempotent; run at start-up before anything else).
   *
   * @throws StoreError naming the failed migration, with the driver error as `cause`
   */
  migrate(): Promise<MigrationReport>;
  /**
   * Run `fn` in one transaction with repositories bound to it: all its writes commit together
   * or none do (issue 4: an event is written in the same transaction as the state change that
   * caused it). Rejects with `fn`'s error after rolling back. On SQLite transactions are
   * serialised; inside `fn` use only the given repositories (the store's own would wait for
   * the transaction and deadlock).
   */
  transaction<T>(fn: (repos: StoreRepositories) => Promise<T>): Promise<T>;
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
 * Open a store. SQLite: opens (creating) the file and its directory, with WAL journal, foreign
 * keys on, `synchronous` as {@link StoreOptions.synchronous} says (default FULL) and a busy timeout.
 * PostgreSQL: a `pg` pool; connections are made lazily (use {@link Store.ping} to check).
 * Call {@link Store.migrate} before using the repositories.
 *
 * @throws StoreUrlError on an unusable URL; the driver's error when the SQLite file cannot be opened
 */
export function createStore(options: StoreOptions): Store {
  const target = parseStoreUrl(options.url);
  const logger = options.logger;
  let db: Kysely<Database>;
  if (target.dialect === 'sqlite') {
    if (target.filename !== ':memory:') mkdirSync(dirname(target.filename), { recursive: true });
    const database = new SqliteDatabase(target.filename);
    if (target.filename !== ':memory:') database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    database.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    database.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    db = new Kysely<Database>({
      dialect: new SqliteDialect({ database: cachingStatements(database) }),
    });
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
  const bind = (k: Kysely<Database>): StoreRepositories => ({
    calls: createCallRepository(k),
    events: createEventRepository(k, dialect),
    idempotency: createIdempotencyRepository(k),
  });
  let closed: Promise<void> | undefined;

  return {
    dialect,
    db,
    ...bind(db),

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
      return { applied };
    },

    transaction(fn) {
      return db.transaction().execute((trx) => fn(bind(trx)));
    },

    async ping() {
      await sql`select 1`.execute(db);
    },

    close() {
      closed ??= db.destroy();
      return closed;
    },
  };
}

/** Most distinct SQL texts whose prepared statements are kept (queries with `in (…)` lists vary). */
const MAX_CACHED_STATEMENTS = 1000;

/**
 * The SQLite connection as Kysely's dialect sees it, with prepared statements reused by SQL text:
 * Kysely prepares every query it runs, and preparing cost 12-15 % of the engine's time under load
 * (`npm run bench`). Safe because a better-sqlite3 statement is only busy while it is iterated,
 * and the store never streams (`.stream()`) a query.
 */
function cachingStatements(database: SqliteDatabase.Database): SqliteDialectDatabase {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => database.close(),
    prepare: (source: string) => {
      let statement = statements.get(source);
      if (!statement) {
        statement = database.prepare(source);
        if (statements.size < MAX_CACHED_STATEMENTS) statements.set(source, statement);
      }
      return statement;
    },
  };
}
