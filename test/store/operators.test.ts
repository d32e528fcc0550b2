import { expect } from 'chai';
import sinon from 'sinon';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { PresenceService } from '../../src/operators/service.ts';
import { OperatorStore, type StoredOperator } from '../../src/operators/store.ts';
import { createEventEnvelope } from '../../src/events/types.ts';
import { forEachDialect } from './helpers.ts';

const NOW = Date.UTC(2025, 0, 31, 9, 0, 0);

forEachDialect('store: operators', ({ store }) => {
  // The PostgreSQL store is shared by the tests: unwrap its spied methods.
  afterEach(() => sinon.restore());

  it('stores an operator change with its operator.state event, and loads it back', async () => {
    const ops = new OperatorStore(store());
    expect((await ops.loadAll()).size).to.equal(0);
    const since = new Date(NOW).toISOString();
    const [event] = await ops.saveChanges([
      {
        operator: {
          extension: '101',
          state: 'ringing',
          status: 'available',
          since,
          callId: 'c-1',
          eventSeq: 1,
        },
        previousState: 'idle',
        atMs: NOW,
      },
    ]);
    expect(event!).to.include({ type: 'operator.state', callId: 'operator-101', sequence: 1 });
    expect(event!.data).to.deep.equal({
      extension: '101',
      state: 'ringing',
      status: 'available',
      since,
      callId: 'c-1',
      previousState: 'idle',
    });
    await ops.saveChanges([
      {
        operator: {
          extension: '101',
          state: 'ringing',
          status: 'break',
          since,
          callId: 'c-1',
          eventSeq: 2,
        },
        atMs: NOW + 1000,
      },
    ]);
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
    await ops.saveChanges([
      {
        operator: {
          extension: '102',
          state: 'offline',
          status: 'available',
          since: new Date(NOW).toISOString(),
          eventSeq: 1,
        },
        atMs: NOW,
      },
    ]);
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

  it('stores a batch of changes in one write: two of one operator are two events, the row is the last', async () => {
    const ops = new OperatorStore(store());
    const writeBatch = sinon.spy(store(), 'writeBatch');
    const transaction = sinon.spy(store(), 'transaction');
    const at = (s: number): string => new Date(NOW + s * 1000).toISOString();
    const op = (
      extension: string,
      state: StoredOperator['state'],
      eventSeq: number,
      s: number,
    ): StoredOperator => ({ extension, state, status: 'available', since: at(s), eventSeq });
    const events = await ops.saveChanges([
      { operator: op('101', 'idle', 1, 0), previousState: 'offline', atMs: NOW },
      { operator: op('102', 'idle', 1, 1), previousState: 'offline', atMs: NOW + 1000 },
      {
        operator: { ...op('101', 'ringing', 2, 2), callId: 'c-1' },
        previousState: 'idle',
        atMs: NOW + 2000,
      },
      {
        operator: { ...op('101', 'on_call', 3, 3), callId: 'c-1' },
        previousState: 'ringing',
        atMs: NOW + 3000,
      },
    ]);
    expect(writeBatch.callCount).to.equal(1);
    expect(transaction.callCount).to.equal(0);
    expect(events.map((e) => [e.callId, e.sequence])).to.deep.equal([
      ['operator-101', 1],
      ['operator-102', 1],
      ['operator-101', 2],
      ['operator-101', 3],
    ]);
    const feed = await store().events.feed({ limit: 10 });
    expect(feed.items.map((i) => i.event.id)).to.deep.equal(events.map((e) => e.id));
    expect(feed.items.map((i) => i.event.occurredAt)).to.deep.equal([0, 1, 2, 3].map(at));
    const loaded = await ops.loadAll();
    expect(loaded.get('101')).to.deep.equal({ ...op('101', 'on_call', 3, 3), callId: 'c-1' });
    expect(loaded.get('102')).to.deep.equal(op('102', 'idle', 1, 1));
  });

  it('a batch whose event cannot be stored writes nothing of it', async () => {
    const ops = new OperatorStore(store());
    const since = new Date(NOW).toISOString();
    // Sequence 1 of operator 102 is already stored under another event id.
    await store().events.appendEvents(
      [
        createEventEnvelope(
          'operator.state',
          'operator-102',
          1,
          { extension: '102', state: 'idle', status: 'available', since },
          NOW,
        ),
      ],
      NOW,
    );
    let failure: unknown;
    try {
      await ops.saveChanges([
        {
          operator: { extension: '101', state: 'idle', status: 'available', since, eventSeq: 1 },
          atMs: NOW,
        },
        {
          operator: { extension: '102', state: 'idle', status: 'available', since, eventSeq: 1 },
          atMs: NOW,
        },
      ]);
    } catch (err) {
      failure = err;
    }
    expect(failure).to.be.instanceOf(Error);
    expect((await ops.loadAll()).size).to.equal(0);
    const feed = await store().events.feed({ limit: 10 });
    expect(feed.items.map((i) => i.event.callId)).to.deep.equal(['operator-102']);
  });

  it('presence changes made in one turn reach the store as one write batch, in change order', async () => {
    const ops = new OperatorStore(store());
    const writeBatch = sinon.spy(store(), 'writeBatch');
    const committed: string[] = [];
    const presence = new PresenceService({
      extensions: ['101', '102', '103'],
      store: ops,
      logger: createSilentLogger(),
      committed: (event) => committed.push(`${event.callId}#${event.sequence}`),
    });
    await presence.load();
    // A call centre's burst: calls end, phones go idle, one phone rings again at once.
    for (const ext of ['101', '102', '103']) presence.asteriskSaid(ext, { deviceState: 'INUSE' });
    for (const ext of ['103', '101', '102'])
      presence.asteriskSaid(ext, { deviceState: 'NOT_INUSE' });
    presence.asteriskSaid('101', { deviceState: 'RINGING' });
    const stored = presence.setStatus('102', 'break');
    expect((await stored).status).to.equal('break');
    await presence.flush();
    expect(writeBatch.callCount).to.equal(1);
    const expected = [
      'operator-101#1',
      'operator-102#1',
      'operator-103#1',
      'operator-103#2',
      'operator-101#2',
      'operator-102#2',
      'operator-101#3',
      'operator-102#3',
    ];
    expect(committed).to.deep.equal(expected);
    const feed = await store().events.feed({ limit: 20 });
    expect(feed.items.map((i) => `${i.event.callId}#${i.event.sequence}`)).to.deep.equal(expected);
    const loaded = await ops.loadAll();
    expect(
      [...loaded.values()].map((o) => [o.extension, o.state, o.status, o.eventSeq]),
    ).to.deep.equal([
      ['101', 'ringing', 'available', 3],
      ['102', 'idle', 'break', 3],
      ['103', 'idle', 'available', 2],
    ]);
  });
});
