/**
 * One engine per store (src/store/ownership.ts): a second engine on the same SQLite file or the
 * same PostgreSQL schema refuses to start, and a crashed engine leaves no stale claim.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { sql } from 'kysely';
import { createStore, StoreInUseError, type Store } from '../../src/store/index.ts';
import { sqliteLockPath } from '../../src/store/ownership.ts';
import { logger, PG_URL, tempDir } from './helpers.ts';

/** The error `promise` rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

describe('store: one engine per store', function () {
  this.timeout(20_000);
  const open: Store[] = [];
  const storeAt = (url: string, schema?: string): Store => {
    const store = createStore({ url, logger, ...(schema ? { schema } : {}) });
    open.push(store);
    return store;
  };
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
  });

  it('SQLite: a second store on the same file is refused until the first one closes', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const url = `sqlite:${join(dir, 'ari-crm.sqlite')}`;
      const first = storeAt(url);
      await first.claim();
      await first.migrate();

      const second = storeAt(url);
      const refused = await rejection(second.claim());
      expect(refused).to.be.instanceOf(StoreInUseError);
      expect((refused as Error).message)
        .to.include(join(dir, 'ari-crm.sqlite'))
        .and.include('DATA_DIR');
      // The first store is untouched by the refusal.
      await first.calls.getCall('nothing');
      await first.close();

      await second.claim();
      await second.migrate();
      expect(existsSync(sqliteLockPath(join(dir, 'ari-crm.sqlite')))).to.equal(true);
    } finally {
      cleanup();
    }
  });

  it('SQLite: a claim held by another process blocks this one; killing that process (kill -9) frees the store at once', async () => {
    const { dir, cleanup } = tempDir();
    const filename = join(dir, 'ari-crm.sqlite');
    const holder = fork(new URL('./support/claim-holder.ts', import.meta.url), [filename], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    try {
      const [message] = (await once(holder, 'message')) as [unknown];
      expect(message).to.equal('claimed');
      const store = storeAt(`sqlite:${filename}`);
      expect(await rejection(store.claim())).to.be.instanceOf(StoreInUseError);

      holder.kill('SIGKILL');
      await once(holder, 'exit');
      // No stale claim: the kernel released the crashed process's lock.
      await store.claim();
      await store.migrate();
    } finally {
      holder.kill('SIGKILL');
      cleanup();
    }
  });

  it('an in-memory SQLite store needs no claim', async () => {
    await storeAt('sqlite::memory:').claim();
    await storeAt('sqlite::memory:').claim();
  });

  (PG_URL ? it : it.skip)(
    'PostgreSQL: one engine per schema; another schema of the same database is free',
    async () => {
      const schema = `own_${process.pid}_${randomBytes(3).toString('hex')}`;
      const other = `${schema}_b`;
      const first = storeAt(PG_URL!, schema);
      await first.claim();
      await first.migrate();
      try {
        const second = storeAt(PG_URL!, schema);
        const refused = await rejection(second.claim());
        expect(refused).to.be.instanceOf(StoreInUseError);
        expect((refused as Error).message)
          .to.include(schema)
          .and.include('DATABASE_SCHEMA');
        await storeAt(PG_URL!, other).claim();

        await first.close();
        await second.claim(); // the session that held the lock ended with close()
      } finally {
        const cleaner = storeAt(PG_URL!);
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(cleaner.db);
      }
    },
  );
});
