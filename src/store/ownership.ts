/**
 * One engine per store (docs/store.md "One engine per set of tables"). At start-up an engine adopts every
 * unfinished call in its store and resends every pending webhook event; a second engine on the
 * same tables would end the first one's live calls and send its webhooks again. So the engine
 * claims its store before migrating it and holds the claim until it stops; a second engine
 * started on the same store refuses to start ({@link StoreInUseError}).
 *
 * The claim is a lock the operating system or the database drops with the process, so a crashed
 * engine never leaves a stale claim behind and a restart after `kill -9` starts at once:
 * - SQLite: an exclusive lock on `<database file>.lock`, a small SQLite database opened in
 *   `locking_mode=EXCLUSIVE` (a POSIX advisory lock, released by the kernel when the process
 *   ends). Its content does not matter: a write is what takes the lock.
 * - PostgreSQL: a session advisory lock (`pg_try_advisory_lock(hashtext('ari-crm'),
 *   hashtext(<schema>))`) on a connection of its own, released when that session ends.
 * `sqlite::memory:` stores are private to their process and need no claim.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Logger } from '../logging/logger.ts';
import { StoreInUseError } from './errors.ts';
import type { StoreTarget } from './store.ts';

/** A held claim; {@link StoreClaim.release} gives it up (idempotent). */
export interface StoreClaim {
  release(): Promise<void>;
}

/** The SQLite lock file of a database file. */
export function sqliteLockPath(filename: string): string {
  return `${filename}.lock`;
}

/**
 * Claim the store for this process.
 *
 * @param target the parsed store URL
 * @param schema PostgreSQL schema (unset: `public`)
 * @throws StoreInUseError when another engine (another process, or another store in this one)
 *   holds it; the driver's error when the lock cannot be taken for another reason
 */
export async function claimStore(
  target: StoreTarget,
  schema: string | undefined,
  logger: Logger,
): Promise<StoreClaim> {
  if (target.dialect === 'sqlite') {
    if (target.filename === ':memory:') return { release: async () => undefined };
    return claimSqlite(target.filename);
  }
  return claimPostgres(target.connectionString, schema ?? 'public', logger);
}

function claimSqlite(filename: string): StoreClaim {
  const path = sqliteLockPath(filename);
  // timeout 0: a lock held by another engine fails at once instead of waiting for it.
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('journal_mode = MEMORY');
    // EXCLUSIVE locking mode keeps the write lock of the first transaction until the connection
    // closes: no other connection (in this process or another) can read or write the file.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('begin exclusive');
    db.exec('create table if not exists claim (id integer primary key)');
    db.exec('insert or replace into claim (id) values (1)');
    db.exec('commit');
  } catch (err) {
    db.close();
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY')
      throw new StoreInUseError(
        `another engine is using the store ${filename} (it holds ${path}); each engine needs its own DATA_DIR or DATABASE_URL`,
        { cause: err },
      );
    throw err;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}

async function claimPostgres(
  connectionString: string,
  schema: string,
  logger: Logger,
): Promise<StoreClaim> {
  const client = new pg.Client({ connectionString });
  let released = false;
  client.on('error', (err) => {
    if (released) return;
    // The session and its lock are gone: another engine could now claim the store.
    logger.error('lost the PostgreSQL session that holds the store claim', { schema, err });
  });
  try {
    await client.connect();
    const { rows } = await client.query<{ claimed: boolean }>(
      "select pg_try_advisory_lock(hashtext('ari-crm'), hashtext($1)) as claimed",
      [schema],
    );
    if (!rows[0]?.claimed)
      throw new StoreInUseError(
        `another engine is using the PostgreSQL schema ${schema} of this database; each engine needs its own DATABASE_SCHEMA`,
      );
  } catch (err) {
    released = true;
    await client.end().catch(() => undefined);
    throw err;
  }
  return {
    async release() {
      if (released) return;
      released = true;
      await client.end().catch(() => undefined);
    },
  };
}
