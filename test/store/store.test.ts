import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Migrator, sql } from 'kysely';
import {
  createStore,
  storeMigrationProvider,
  parseStoreUrl,
  storeMigrations,
  StoreUrlError,
  toIsoTime,
} from '../../src/store/index.ts';
import {
  DIALECTS,
  PG_URL,
  endedCall,
  callEvents,
  forEachDialect,
  logger,
  tempDir,
} from './helpers.ts';

describe('store: URLs and SQLite settings', () => {
  it('parses sqlite file, memory and postgres URLs', () => {
    expect(parseStoreUrl('sqlite::memory:')).to.deep.equal({
      dialect: 'sqlite',
      filename: ':memory:',
    });
    expect(parseStoreUrl('sqlite:/var/lib/ari-crm/db.sqlite')).to.deep.equal({
      dialect: 'sqlite',
      filename: '/var/lib/ari-crm/db.sqlite',
    });
    expect(parseStoreUrl('sqlite:data/x.sqlite')).to.deep.equal({
      dialect: 'sqlite',
      filename: join(process.cwd(), 'data/x.sqlite'),
    });
    expect(parseStoreUrl('postgres://u:p@db:5432/crm').dialect).to.equal('postgres');
    expect(parseStoreUrl('postgresql://db/crm').dialect).to.equal('postgres');
  });

  it('rejects other schemes and empty paths', () => {
    expect(() => parseStoreUrl('mysql://db/crm')).to.throw(StoreUrlError);
    expect(() => parseStoreUrl('sqlite:')).to.throw(StoreUrlError);
    expect(() => parseStoreUrl('/tmp/x.sqlite')).to.throw(StoreUrlError);
  });

  it('creates the data directory and opens the file in WAL mode with foreign keys and a busy timeout', async () => {
    const { dir, cleanup } = tempDir();
    const store = createStore({ url: `sqlite:${join(dir, 'nested', 'ari-crm.sqlite')}`, logger });
    try {
      await store.migrate();
      const pragma = async (name: string): Promise<unknown> => {
        const { rows } = await sql<Record<string, unknown>>`pragma ${sql.raw(name)}`.execute(
          store.db,
        );
        return Object.values(rows[0] ?? {})[0];
      };
      expect(await pragma('journal_mode')).to.equal('wal');
      expect(await pragma('foreign_keys')).to.equal(1);
      expect(await pragma('busy_timeout')).to.equal(5000);
    } finally {
      await store.close();
      cleanup();
    }
  });

  it('normalises times to 24-character ISO 8601 UTC and rejects invalid ones', () => {
    expect(toIsoTime(0)).to.equal('1970-01-01T00:00:00.000Z');
    expect(toIsoTime('2025-01-31T12:15:02+03:00')).to.equal('2025-01-31T09:15:02.000Z');
    expect(toIsoTime(new Date(Date.UTC(2025, 0, 31, 9, 15, 2, 123)))).to.equal(
      '2025-01-31T09:15:02.123Z',
    );
    expect(() => toIsoTime('yesterday')).to.throw(RangeError);
    expect(() => toIsoTime(Date.UTC(10000, 0, 1))).to.throw(RangeError);
  });

  it('close is idempotent and ping fails afterwards', async () => {
    const store = createStore({ url: 'sqlite::memory:', logger });
    await store.ping();
    await store.close();
    await store.close();
    let failed = false;
    await store.ping().catch(() => (failed = true));
    expect(failed).to.equal(true);
  });

  it('ping rejects when PostgreSQL is unreachable', async () => {
    const store = createStore({ url: 'postgres://postgres@127.0.0.1:1/none', logger });
    try {
      let error: unknown;
      await store.ping().catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(Error);
    } finally {
      await store.close();
    }
  });
});

forEachDialect('store: migrations and transactions', ({ store, dialect }) => {
  it('migrate is idempotent: a second run applies nothing', async () => {
    const again = await store().migrate();
    expect(again.applied).to.deep.equal([]);
    const names = Object.keys(storeMigrations(dialect));
    const rows = await sql<{
      name: string;
    }>`select name from kysely_migration order by name`.execute(store().db);
    expect(rows.rows.map((r) => r.name)).to.deep.equal(names);
  });

  it('a fresh database gets every migration, in order', async () => {
    if (dialect !== 'sqlite') return;
    const fresh = createStore({ url: 'sqlite::memory:', logger });
    try {
      const report = await fresh.migrate();
      expect(report.applied).to.deep.equal(Object.keys(storeMigrations('sqlite')));
    } finally {
      await fresh.close();
    }
  });

  it('an existing database upgrades to the customer link column: its calls keep their card', async () => {
    if (dialect !== 'sqlite') return;
    const old = createStore({ url: 'sqlite::memory:', logger });
    try {
      const migrator = new Migrator({ db: old.db, provider: storeMigrationProvider('sqlite') });
      const before = await migrator.migrateTo('0010_connectors_bitrix24_state');
      expect(before.error).to.equal(undefined);
      const call = endedCall();
      const at = '2025-01-31T09:16:07.000Z';
      // A call written by a release without the column.
      await sql`insert into calls (id, direction, from_number, to_number, customer_id,
        customer_name, state, started_at, wait_sec, talk_sec, updated_at)
        values (${call.id}, 'in', ${call.from}, ${call.to}, 'c-7', 'Ivan', 'ended',
        ${call.startedAt}, 7, 60, ${at})`.execute(old.db);
      const report = await old.migrate();
      expect(report.applied).to.include('0011_calls_customer_link');
      expect((await old.calls.getCall(call.id))?.customer).to.deep.equal({
        id: 'c-7',
        name: 'Ivan',
      });
      const link = 'https://crm.example.com/customers/7';
      await old.calls.upsertCall({ ...call, customer: { id: 'c-7', name: 'Ivan', link } });
      expect((await old.calls.getCall(call.id))?.customer).to.deep.equal({
        id: 'c-7',
        name: 'Ivan',
        link,
      });
    } finally {
      await old.close();
    }
  });

  it('ping resolves when the database answers', async () => {
    await store().ping();
  });

  it('a transaction commits the call and its events together', async () => {
    const call = endedCall();
    await store().transaction(async (tx) => {
      await tx.calls.upsertCall(call);
      await tx.events.appendEvents(callEvents(call.id, 2));
    });
    expect(await store().calls.getCall(call.id)).to.not.equal(undefined);
    expect(await store().events.pending()).to.equal(2);
  });

  it('a failing transaction rolls back the call and its events', async () => {
    const call = endedCall();
    let error: unknown;
    await store()
      .transaction(async (tx) => {
        await tx.calls.upsertCall(call);
        await tx.events.appendEvents(callEvents(call.id, 2));
        throw new Error('boom');
      })
      .catch((err: unknown) => (error = err));
    expect((error as Error).message).to.equal('boom');
    expect(await store().calls.getCall(call.id)).to.equal(undefined);
    expect(await store().events.pending()).to.equal(0);
  });
});

for (const dialect of DIALECTS) {
  describe(`store: an earlier version's ended calls [${dialect}]`, () => {
    it('a leg stored without an end time gets the end time of its ended call once migrated; other legs keep theirs', async () => {
      const schema = `t_${process.pid}_${randomBytes(4).toString('hex')}`;
      const old =
        dialect === 'sqlite'
          ? createStore({ url: 'sqlite::memory:', logger })
          : createStore({ url: PG_URL!, logger, schema, poolSize: 2 });
      try {
        // A store at the previous schema version.
        if (dialect === 'postgres') await sql`create schema ${sql.id(schema)}`.execute(old.db);
        const migrator = new Migrator({
          db: old.db,
          provider: storeMigrationProvider(dialect),
          ...(dialect === 'postgres' ? { migrationTableSchema: schema } : {}),
        });
        expect((await migrator.migrateTo('0011_calls_customer_link')).error).to.equal(undefined);
        // Written by that version: an ended call whose caller never reported its end, beside an
        // operator leg that did, and a call still in progress.
        const ended = endedCall();
        const live = endedCall({ state: 'bridged', endedAt: undefined, disposition: undefined });
        await old.calls.upsertCall(ended);
        await old.calls.upsertCall(live);
        const [caller, operator] = ended.legs;
        const operatorEnd = '2025-01-31T09:16:05.000Z';
        await sql`update call_legs set ended_at = ${operatorEnd}
          where channel_id = ${operator!.channelId}`.execute(old.db);
        expect((await old.calls.getCall(ended.id))?.legs.map((l) => l.endedAt)).to.deep.equal([
          undefined,
          operatorEnd,
        ]);

        const report = await old.migrate();
        expect(report.applied).to.deep.equal(['0012_call_legs_end_time']);
        const migrated = await old.calls.getCall(ended.id);
        expect(migrated?.legs.map((l) => [l.channelId, l.endedAt])).to.deep.equal([
          [caller!.channelId, ended.endedAt],
          [operator!.channelId, operatorEnd],
        ]);
        // A call in progress keeps its open legs.
        expect((await old.calls.getCall(live.id))?.legs.map((l) => l.endedAt)).to.deep.equal([
          undefined,
          undefined,
        ]);
      } finally {
        if (dialect === 'postgres')
          await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(old.db);
        await old.close();
      }
    });
  });
}
