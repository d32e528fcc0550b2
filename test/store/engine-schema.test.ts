/**
 * DATABASE_SCHEMA: engines sharing one PostgreSQL database each keep their tables in their own
 * schema (an engine adopts every unfinished call and resends every pending event of its tables
 * at start). PostgreSQL only: skipped without TEST_DATABASE_URL.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { PG_URL } from './helpers.ts';

describe('engine store in its own PostgreSQL schema (DATABASE_SCHEMA)', function () {
  this.timeout(30_000);
  let bed: TestBed | undefined;
  const schema = `engine_${process.pid}_${randomBytes(3).toString('hex')}`;

  before(function () {
    if (!PG_URL) this.skip();
  });
  after(async () => {
    if (!bed) return;
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(bed.engine.store.db);
    await bed.stop();
  });

  it("creates the engine's tables in that schema and writes its calls there", async () => {
    bed = await startTestBed({ DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema });
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    await bed.sim.injectInboundCall({
      from: '79160000777',
      to: '74951234567',
      hangupAfterMs: 1000,
    });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.from === '79160000777',
    );
    await bed.crm.waitForEnded(started.body.callId);
    await bed.engine.journal.flush();
    const tables = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = ${schema}
    `.execute(bed.engine.store.db);
    expect(tables.rows.map((r) => r.table_name)).to.include.members([
      'calls',
      'call_legs',
      'events',
    ]);
    const stored = await sql<{ id: string; state: string }>`
      select id, state from ${sql.id(schema, 'calls')} where id = ${started.body.callId}
    `.execute(bed.engine.store.db);
    expect(stored.rows).to.deep.equal([{ id: started.body.callId, state: 'ended' }]);
  });
});
