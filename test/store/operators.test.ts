import { expect } from 'chai';
import { OperatorStore } from '../../src/operators/store.ts';
import { forEachDialect } from './helpers.ts';

const NOW = Date.UTC(2025, 0, 31, 9, 0, 0);

forEachDialect('store: operators', ({ store }) => {
  it('stores an operator change with its operator.state event, and loads it back', async () => {
    const ops = new OperatorStore(store());
    expect((await ops.loadAll()).size).to.equal(0);
    const since = new Date(NOW).toISOString();
    const event = await ops.saveChange(
      {
        extension: '101',
        state: 'ringing',
        status: 'available',
        since,
        callId: 'c-1',
        eventSeq: 1,
      },
      'idle',
      NOW,
    );
    expect(event).to.include({ type: 'operator.state', callId: 'operator-101', sequence: 1 });
    expect(event.data).to.deep.equal({
      extension: '101',
      state: 'ringing',
      status: 'available',
      since,
      callId: 'c-1',
      previousState: 'idle',
    });
    await ops.saveChange(
      { extension: '101', state: 'ringing', status: 'break', since, callId: 'c-1', eventSeq: 2 },
      undefined,
      NOW + 1000,
    );
    const loaded = await ops.loadAll();
    expect(loaded.get('101')).to.deep.equal({
      extension: '101',
      state: 'ringing',
      status: 'break',
      since,
      callId: 'c-1',
      eventSeq: 2,
    });
    const feed = await store().events.feed({ limit: 10 });
    expect(feed.items.map((i) => [i.event.type, i.event.sequence, i.status])).to.deep.equal([
      ['operator.state', 1, 'pending'],
      ['operator.state', 2, 'pending'],
    ]);
  });

  it('stores events as skipped when webhooks are off', async () => {
    const ops = new OperatorStore(store(), { skipDelivery: true });
    await ops.saveChange(
      {
        extension: '102',
        state: 'offline',
        status: 'available',
        since: new Date(NOW).toISOString(),
        eventSeq: 1,
      },
      undefined,
      NOW,
    );
    const feed = await store().events.feed({ limit: 10 });
    expect(feed.items.map((i) => i.status)).to.deep.equal(['skipped']);
    expect((await ops.loadAll()).get('102')).to.not.have.property('callId');
  });

  it('the operators repository inserts a row, then replaces all of it, also inside a write batch', async () => {
    const since = new Date(NOW).toISOString();
    await store().writeBatch(async (repos) => {
      await repos.operators.save(
        { extension: '103', state: 'on_call', status: 'dnd', since, callId: 'c-7', eventSeq: 4 },
        NOW,
      );
    });
    expect(await store().operators.list()).to.deep.equal([
      { extension: '103', state: 'on_call', status: 'dnd', since, callId: 'c-7', eventSeq: 4 },
    ]);
    const later = new Date(NOW + 5000).toISOString();
    await store().writeBatch(async (repos) => {
      await repos.operators.save(
        { extension: '103', state: 'idle', status: 'available', since: later, eventSeq: 5 },
        NOW + 5000,
      );
      await repos.operators.save(
        { extension: '101', state: 'offline', status: 'break', since: later, eventSeq: 1 },
        NOW + 5000,
      );
    });
    // The call id is cleared, not kept from the row before.
    expect(await store().operators.list()).to.deep.equal([
      { extension: '101', state: 'offline', status: 'break', since: later, eventSeq: 1 },
      { extension: '103', state: 'idle', status: 'available', since: later, eventSeq: 5 },
    ]);
    const row = await store()
      .db.selectFrom('operators')
      .select(['updated_at'])
      .where('extension', '=', '103')
      .executeTakeFirstOrThrow();
    expect(row.updated_at).to.equal(later);
  });
});
