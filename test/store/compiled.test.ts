import { expect } from 'chai';
import { sql } from 'kysely';
import { CompiledStatementError, compiledStatement } from '../../src/store/compiled.ts';
import { callId, endedCall, forEachDialect } from './helpers.ts';

forEachDialect('store: statements compiled once', ({ store }) => {
  async function seedCall(id: string): Promise<void> {
    await store().calls.upsertCall(endedCall({ id }));
  }

  it('binds each value to its own column whatever order the values are given in, on every run', async () => {
    const statement = compiledStatement(
      'test.update-customer',
      (db, p: { customer_name: string; id: string; customer_id: string }) =>
        db
          .updateTable('calls')
          .set({ customer_id: p.customer_id, customer_name: p.customer_name })
          .where('id', '=', p.id),
    );
    const [a, b] = [callId(), callId()];
    await seedCall(a);
    await seedCall(b);
    await statement.run(store().db, { customer_name: 'Acme', id: a, customer_id: 'c-1' });
    await store()
      .db.transaction()
      .execute((trx) => statement.run(trx, { customer_name: 'Globex', id: b, customer_id: 'c-2' }));
    expect((await store().calls.getCall(a))?.customer).to.deep.equal({ id: 'c-1', name: 'Acme' });
    expect((await store().calls.getCall(b))?.customer).to.deep.equal({ id: 'c-2', name: 'Globex' });
  });

  it('refuses, before writing, a statement that does not bind one of its values', async () => {
    const id = callId();
    await seedCall(id);
    const statement = compiledStatement(
      'test.unbound',
      (db, p: { id: string; customer_name: string }) =>
        db.updateTable('calls').set({ customer_name: 'fixed' }).where('id', '=', p.id),
    );
    const error = await statement
      .run(store().db, { id, customer_name: 'Acme' })
      .catch((err: unknown) => err);
    expect(error).to.be.instanceOf(CompiledStatementError);
    expect((error as Error).message).to.match(/does not bind customer_name/);
    expect((await store().calls.getCall(id))?.customer?.name).to.not.equal('fixed');
  });

  it('refuses a statement that converts or inlines its values instead of binding them', async () => {
    const converted = compiledStatement('test.converted', (db, p: { id: string }) =>
      db.updateTable('calls').set({ customer_name: 'x' }).where('id', '=', p.id.toUpperCase()),
    );
    const inlined = compiledStatement('test.inlined', (db, p: { id: string }) =>
      db.updateTable('calls').set({ customer_name: 'x' }).where('id', '=', sql.lit(p.id)),
    );
    for (const statement of [converted, inlined]) {
      const error = await statement.run(store().db, { id: callId() }).catch((err: unknown) => err);
      expect(error).to.be.instanceOf(CompiledStatementError);
    }
  });

  it('refuses at first use a statement whose shape depends on the values', async () => {
    const id = callId();
    await seedCall(id);
    const statement = compiledStatement(
      'test.value-shaped',
      (db, p: { id: string; customer_name: string | null }) =>
        db
          .updateTable('calls')
          .set({ customer_name: p.customer_name })
          // `= null` compiles to `is null`: a shape that changes with the value.
          .where('id', p.customer_name === null ? 'is' : '=', p.id),
    );
    const error = await statement
      .run(store().db, { id, customer_name: null })
      .catch((err: unknown) => err);
    expect(error).to.be.instanceOf(CompiledStatementError);
    expect((error as Error).message).to.match(/does not match a fresh compile/);
  });

  it('refuses values missing from the cached shape', async () => {
    const statement = compiledStatement(
      'test.missing-value',
      (db, p: { id: string; customer_name: string | null }) =>
        db.updateTable('calls').set({ customer_name: p.customer_name }).where('id', '=', p.id),
    );
    await statement.run(store().db, { id: callId(), customer_name: 'Acme' });
    const error = await statement
      .run(store().db, { id: callId(), customer_name: undefined as unknown as null })
      .catch((err: unknown) => err);
    expect(error).to.be.instanceOf(CompiledStatementError);
    expect((error as Error).message).to.match(/no value for customer_name/);
  });
});
