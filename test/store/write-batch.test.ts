/**
 * Write batches and the SQLite thread (src/store/write-batch.ts, src/store/sqlite-worker.ts):
 * the call journal's and the outbox's writes commit all together or not at all, keep SQLite's
 * error codes, never read, and run off the engine's thread.
 */
import { expect } from 'chai';
import { CompiledQuery, Kysely } from 'kysely';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isUniqueViolation } from '../../src/store/errors.ts';
import { createStore } from '../../src/store/index.ts';
import {
  SqliteThreadError,
  SqliteWorkerDialect,
  type SqliteWorkerDriver,
} from '../../src/store/sqlite-worker.ts';
import { compiledStatement } from '../../src/store/compiled.ts';
import { WriteBatchCollector, WriteBatchError } from '../../src/store/write-batch.ts';
import { StreamBrokenError } from '../../src/store/write-streams.ts';
import { until } from '../support/until.ts';
import { callEvents, endedCall, forEachDialect, logger, tempDir } from './helpers.ts';

forEachDialect('store: write batches', ({ store, dialect }) => {
  it('commits the call, its legs and its events together', async () => {
    const call = endedCall();
    const result = await store().writeBatch(async (repos) => {
      await repos.calls.upsertCall(call);
      await repos.events.appendEvents(callEvents(call.id, 3));
      return 'done';
    });
    expect(result).to.equal('done');
    const stored = await store().calls.getCall(call.id);
    expect(stored?.state).to.equal('ended');
    expect(stored?.legs.map((l) => l.channelId)).to.deep.equal(call.legs.map((l) => l.channelId));
    expect(await store().events.pending()).to.equal(3);
  });

  it('a failing statement rolls the whole batch back and keeps the driver error recognisable', async () => {
    const call = endedCall();
    const [first] = callEvents(call.id, 1);
    await store().writeBatch(async (repos) => {
      await repos.calls.upsertCall(call);
      await repos.events.appendEvents([first!]);
    });
    const other = endedCall();
    // Same (call, sequence) under a new event id: the unique index refuses it.
    const clash = { ...first!, id: `${first!.id}-other` };
    let error: unknown;
    await store()
      .writeBatch(async (repos) => {
        await repos.calls.upsertCall(other);
        await repos.events.appendEvents([clash]);
      })
      .catch((err: unknown) => (error = err));
    expect(error, 'the batch must fail').to.be.instanceOf(Error);
    // The SQLite batch sees the driver error itself; PostgreSQL's transaction runs
    // appendEvents, which names the conflict.
    if (dialect === 'sqlite') {
      expect(isUniqueViolation(error)).to.equal(true);
      expect(error).to.be.instanceOf(SqliteThreadError);
      expect((error as SqliteThreadError).index).to.be.a('number');
    } else {
      expect((error as Error).name).to.equal('StoreConflictError');
    }
    expect(await store().calls.getCall(other.id)).to.equal(undefined);
    expect(await store().events.pending()).to.equal(1);
  });

  it("a batch that throws writes nothing and rejects with the batch's error", async () => {
    const call = endedCall();
    let error: unknown;
    await store()
      .writeBatch(async (repos) => {
        await repos.calls.upsertCall(call);
        throw new Error('boom');
      })
      .catch((err: unknown) => (error = err));
    expect((error as Error).message).to.equal('boom');
    expect(await store().calls.getCall(call.id)).to.equal(undefined);
  });

  it('batches of a write stream commit in call order; after one fails the later ones write nothing until one resumes', async () => {
    const [a, b, c, d] = [endedCall(), endedCall(), endedCall(), endedCall()];
    const outcome = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => 'committed',
        (err: unknown) => err,
      );
    // Asked for one after the other without waiting: on SQLite the second is queued in the
    // thread before the first's answer comes back, so the thread itself must refuse it.
    const first = outcome(
      store().writeBatch(
        async (repos) => {
          await repos.calls.upsertCall(a);
          // No such call: the foreign key refuses the leg, failing the whole batch.
          await repos.calls.upsertLegs('no-such-call', a.legs.slice(0, 1));
        },
        { stream: 'journal' },
      ),
    );
    const second = outcome(
      store().writeBatch((repos) => repos.calls.upsertCall(b), { stream: 'journal' }),
    );
    const elsewhere = outcome(store().writeBatch((repos) => repos.calls.upsertCall(c)));
    const [e1, e2, e3] = await Promise.all([first, second, elsewhere]);
    expect(e1).to.be.instanceOf(Error).and.not.instanceOf(StreamBrokenError);
    expect(e2).to.be.instanceOf(StreamBrokenError);
    expect((e2 as StreamBrokenError).stream).to.equal('journal');
    expect(e3, 'a batch of no stream is not affected').to.equal('committed');
    expect(await store().calls.getCall(a.id)).to.equal(undefined);
    expect(await store().calls.getCall(b.id), 'refused: nothing written').to.equal(undefined);
    // Still broken for the next batch that does not resume.
    expect(
      await outcome(
        store().writeBatch((repos) => repos.calls.upsertCall(d), { stream: 'journal' }),
      ),
    ).to.be.instanceOf(StreamBrokenError);
    expect(
      await outcome(
        store().writeBatch((repos) => repos.calls.upsertCall(b), {
          stream: 'journal',
          resume: true,
        }),
      ),
    ).to.equal('committed');
    expect(
      await outcome(
        store().writeBatch((repos) => repos.calls.upsertCall(d), { stream: 'journal' }),
      ),
    ).to.equal('committed');
    expect((await store().calls.getCall(b.id))?.id).to.equal(b.id);
    expect((await store().calls.getCall(d.id))?.id).to.equal(d.id);
  });

  it('a batch of a stream whose statements cannot be collected breaks the stream too', async () => {
    const [a, b] = [endedCall(), endedCall()];
    const first = store().writeBatch(
      async () => {
        throw new Error('boom');
      },
      { stream: 'journal' },
    );
    const second = store().writeBatch((repos) => repos.calls.upsertCall(a), { stream: 'journal' });
    const [r1, r2] = await Promise.allSettled([first, second]);
    expect(r1.status === 'rejected' && (r1.reason as Error).message).to.equal('boom');
    expect(r2.status === 'rejected' && r2.reason).to.be.instanceOf(StreamBrokenError);
    expect(await store().calls.getCall(a.id)).to.equal(undefined);
    await store().writeBatch((repos) => repos.calls.upsertCall(b), {
      stream: 'journal',
      resume: true,
    });
    expect((await store().calls.getCall(b.id))?.id).to.equal(b.id);
  });

  if (dialect === 'sqlite') {
    it('batches reach SQLite in the order they were asked for, also behind a stream turn', async () => {
      // The journal's second batch (an event) waits for its stream turn behind the first, which
      // waits for the connection (a transaction holds it). A batch asked for after both (the
      // webhook queue recording the delivery of that event, handed on early from the journal
      // log) must not overtake it: its row references the event (a foreign key).
      const call = endedCall();
      const [event] = callEvents(call.id, 1);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let holding!: () => void;
      const holds = new Promise<void>((resolve) => (holding = resolve));
      const transaction = store().transaction(async (repos) => {
        await repos.calls.getCall(call.id);
        holding();
        await held;
      });
      await holds;
      const first = store().writeBatch((repos) => repos.calls.upsertCall(call), {
        stream: 'journal',
      });
      const second = store().writeBatch(
        (repos) => repos.events.appendEvents([event!], Date.now()),
        { stream: 'journal' },
      );
      await new Promise((resolve) => setImmediate(resolve));
      const later = store().writeBatch((repos) =>
        repos.events.recordAttempt({
          eventId: event!.id,
          attempt: 1,
          outcome: 'delivered',
          statusCode: 204,
          durationMs: 3,
        }),
      );
      release();
      await transaction;
      await Promise.all([first, second, later]);
      expect((await store().events.getEvent(event!.id))?.attempts).to.equal(1);
    });

    it('a batch cannot read: the read throws WriteBatchError and nothing is written', async () => {
      const call = endedCall();
      let error: unknown;
      await store()
        .writeBatch(async (repos) => {
          await repos.calls.upsertCall(call);
          await repos.calls.getCall(call.id);
        })
        .catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(WriteBatchError);
      expect(await store().calls.getCall(call.id)).to.equal(undefined);
    });

    it('a statement first sent in a batch that failed early still runs later', async () => {
      const call = endedCall();
      // The leg upsert is the batch's first statement and fails (no such call: foreign key); the
      // call upsert after it is sent with its SQL text for the first time.
      const fresh = createStore({ url: 'sqlite::memory:', logger });
      try {
        await fresh.migrate();
        const failed = await fresh
          .writeBatch(async (repos) => {
            await repos.calls.upsertLegs('no-such-call', call.legs.slice(0, 1));
            await repos.calls.upsertCall(call);
          })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(failed).to.be.instanceOf(SqliteThreadError);
        expect((failed as SqliteThreadError).index).to.equal(0);
        await fresh.writeBatch((repos) => repos.calls.upsertCall(call));
        expect((await fresh.calls.getCall(call.id))?.id).to.equal(call.id);
      } finally {
        await fresh.close();
      }
    });

    it("SQLite runs off the engine's thread: timers keep firing while a large batch commits", async () => {
      const call = endedCall();
      let ticks = 0;
      let ticking = true;
      const tick = (): void => {
        ticks++;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const before = ticks;
      await store().writeBatch(async (repos) => {
        await repos.calls.upsertCall(call);
        await repos.events.appendEvents(callEvents(call.id, 5000));
      });
      ticking = false;
      expect(await store().events.pending()).to.equal(5000);
      // On the engine's thread the commit would have run between two ticks, in one piece.
      expect(ticks - before).to.be.greaterThan(1);
    });
  }
});

describe('store: the SQLite thread', () => {
  /** A Kysely over the worker dialect on a file in `dir`, with a table `t (n integer)`. */
  async function threadDb(
    dir: string,
  ): Promise<{ db: Kysely<unknown>; driver: SqliteWorkerDriver }> {
    const dialect = new SqliteWorkerDialect({
      filename: join(dir, 'thread.sqlite'),
      synchronous: 'normal',
      busyTimeoutMs: 1000,
    });
    const db = new Kysely<unknown>({ dialect });
    await db.executeQuery(CompiledQuery.raw('create table t (n integer not null)'));
    return { db, driver: dialect.driver };
  }
  const countRows = async (db: Kysely<unknown>): Promise<unknown> =>
    (await db.executeQuery(CompiledQuery.raw('select count(*) as n from t'))).rows[0];

  it('a thread that dies is replaced by the next statement, with everything committed before', async () => {
    const { dir, cleanup } = tempDir();
    const { db, driver } = await threadDb(dir);
    try {
      await db.executeQuery(CompiledQuery.raw('insert into t (n) values (?)', [1]));
      await driver.terminateThread();
      await db.executeQuery(CompiledQuery.raw('insert into t (n) values (?)', [2]));
      expect(await countRows(db)).to.deep.equal({ n: 2 });
    } finally {
      await db.destroy();
      cleanup();
    }
  });

  it('a transaction whose thread died fails as a whole: none of it commits on the next thread', async () => {
    const { dir, cleanup } = tempDir();
    const { db, driver } = await threadDb(dir);
    try {
      let error: unknown;
      await db
        .transaction()
        .execute(async (trx) => {
          await trx.executeQuery(CompiledQuery.raw('insert into t (n) values (?)', [1]));
          await driver.terminateThread();
          await trx.executeQuery(CompiledQuery.raw('insert into t (n) values (?)', [2]));
        })
        .catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(SqliteThreadError);
      expect((error as Error).message).to.match(/ended inside a transaction/);
      // Neither row: the first died uncommitted with its thread, the second never ran.
      expect(await countRows(db)).to.deep.equal({ n: 0 });
      // The next transaction runs on a new thread.
      await db.transaction().execute(async (trx) => {
        await trx.executeQuery(CompiledQuery.raw('insert into t (n) values (?)', [3]));
      });
      expect(await countRows(db)).to.deep.equal({ n: 1 });
    } finally {
      await db.destroy();
      cleanup();
    }
  });

  it('a file that cannot be opened fails migrate with the reason, and the store stays usable to close', async () => {
    const { dir, cleanup } = tempDir();
    try {
      // A directory where the database file should be.
      const path = join(dir, 'db.sqlite');
      mkdirSync(path);
      const store = createStore({ url: `sqlite:${path}`, logger });
      let error: unknown;
      await store.migrate().catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.match(/unable to open|directory/i);
      let pingError: unknown;
      await store.ping().catch((err: unknown) => (pingError = err));
      expect(pingError).to.be.instanceOf(SqliteThreadError);
      await store.close();
    } finally {
      cleanup();
    }
  });

  it('a parameter that cannot reach the thread fails that statement only; the same statement runs after', async () => {
    const store = createStore({ url: 'sqlite::memory:', logger });
    try {
      await store.migrate();
      const text = 'select ? as one';
      let error: unknown;
      await store.db
        .executeQuery(CompiledQuery.raw(text, [Symbol('not sendable')]))
        .catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(SqliteThreadError);
      expect((error as Error).message).to.match(/cannot be sent to the SQLite thread/);
      // The thread never got that SQL text: it is sent again with the next run.
      const good = await store.db.executeQuery(CompiledQuery.raw(text, [1]));
      expect(good.rows).to.deep.equal([{ one: 1 }]);
    } finally {
      await store.close();
    }
  });

  it('a checkpointer copies the WAL into the database file in the background; close removes the WAL', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, 'engine.sqlite');
      const store = createStore({ url: `sqlite:${path}`, logger, synchronous: 'normal' });
      await store.migrate();
      await until(() => statSync(path).size > 0, 'the schema in the database file');
      const before = statSync(path).size;
      // Well under the writer's own checkpoint threshold: only the checkpointer moves this data.
      for (let i = 0; i < 20; i++) {
        const call = endedCall();
        await store.writeBatch(async (repos) => {
          await repos.calls.upsertCall(call);
          await repos.events.appendEvents(callEvents(call.id, 20));
        });
      }
      expect(statSync(`${path}-wal`).size).to.be.greaterThan(0);
      await until(() => statSync(path).size > before, 'the WAL copied into the database file');
      await store.close();
      // Both connections closed, the writer last: its close checkpointed and removed the WAL.
      expect(existsSync(`${path}-wal`)).to.equal(false);
    } finally {
      cleanup();
    }
  });

  it('close lets the thread end and later statements fail with "the store is closed"', async () => {
    const store = createStore({ url: 'sqlite::memory:', logger });
    await store.migrate();
    await store.close();
    let error: unknown;
    await store.ping().catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(Error);
  });
});

describe('write batch collector: compiled statements', () => {
  const update = compiledStatement('test.update', (db, p: { id: string; state: string }) =>
    db.updateTable('calls').set({ state: p.state }).where('id', '=', p.id),
  );
  const read = compiledStatement('test.read', (db, p: { id: string }) =>
    db.selectFrom('calls').select('id').where('id', '=', p.id),
  );

  it('are kept in order with the builder statements, with their values bound', async () => {
    const collector = new WriteBatchCollector();
    const { ops } = await collector.collect(async (trx) => {
      await update.run(trx, { id: 'c-1', state: 'ended' });
      await trx.deleteFrom('call_legs').where('call_id', '=', 'c-1').execute();
      await update.run(trx, { id: 'c-2', state: 'bridged' });
    });
    expect(ops.map((op) => op.parameters)).to.deep.equal([
      ['ended', 'c-1'],
      ['c-1'],
      ['bridged', 'c-2'],
    ]);
    expect(ops[0]!.sql).to.match(/^update "calls" set "state" = \? where "id" = \?$/);
    expect(ops[2]!.sql).to.equal(ops[0]!.sql);
  });

  it('one that reads is refused like a builder read', async () => {
    const collector = new WriteBatchCollector();
    let error: unknown;
    await collector
      .collect(async (trx) => {
        await read.run(trx, { id: 'c-1' });
      })
      .catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(WriteBatchError);
    expect((error as Error).message).to.contain('cannot read');
  });
});
