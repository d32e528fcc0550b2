/**
 * The engine's numbering of the outbox on SQLite (src/store/outbox-positions.ts): events reach the
 * live stream the moment they are durable, at the position the outbox keeps them at, in order;
 * the pull feed never shows a position before every smaller one has committed.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { CallJournal } from '../../src/calls/journal.ts';
import { snapshotCall } from '../../src/calls/model.ts';
import { CallNotifier } from '../../src/calls/notifier.ts';
import type { LifecycleEvent } from '../../src/events/types.ts';
import { createStore, feedCursor, feedPosition, type Store } from '../../src/store/index.ts';
import {
  JournalLog,
  recoverJournalLog,
  type JournalLogEntry,
} from '../../src/store/journal-log.ts';
import { OutboxPositions, type PositionedEvent } from '../../src/store/outbox-positions.ts';
import { StreamHub } from '../../src/stream/hub.ts';
import { callEvents, logger, modelInboundCall, modelLeg, tempDir } from './helpers.ts';

const T0 = Date.UTC(2025, 0, 31, 9, 15, 0);

/** Let queued microtasks and one turn of the event loop run. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** `store` whose write batches wait until `release()` (a busy SQLite thread). */
function heldStore(store: Store): Store & { release(): void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const wrapper = Object.create(store) as Store & { release(): void };
  wrapper.writeBatch = async (fn, options) => {
    await gate;
    return store.writeBatch(fn, options);
  };
  wrapper.release = () => open();
  return wrapper;
}

describe('outbox positions: numbering and watermarks', () => {
  const event = (n: number): LifecycleEvent => callEvents(`call-${n}`, 1)[0]!;

  it('hands events out in position order as they become durable, skipping abandoned ones', () => {
    const positions = new OutboxPositions();
    positions.start(10);
    const handed: number[] = [];
    positions.onDurable((items) => handed.push(...items.map((i) => i.position)));
    const [a, b, c, d] = positions.allocate(4);
    expect([a, b, c, d]).to.deep.equal([11, 12, 13, 14]);
    // 12 is durable first: it waits for 11.
    positions.durable([{ position: b!, event: event(2) }]);
    expect(handed).to.deep.equal([]);
    positions.committed([{ position: a!, event: event(1) }]);
    expect(handed).to.deep.equal([11, 12]);
    // 13 rolled back: 14 goes as soon as it is durable.
    positions.abandoned([c!]);
    positions.durable([{ position: d!, event: event(4) }]);
    expect(handed).to.deep.equal([11, 12, 14]);
    expect(positions.durableThrough).to.equal(14);
    // Committed: 11 and 13 (abandoned); 12 is only durable.
    expect(positions.committedThrough).to.equal(11);
  });

  it('whenCommitted resolves once every position up to it committed or was abandoned', async () => {
    const positions = new OutboxPositions();
    positions.start(0);
    const [a, b] = positions.allocate(2);
    let resolved = false;
    void positions.whenCommitted(b!).then(() => (resolved = true));
    positions.committed([{ position: b!, event: event(2) }]);
    await nextTurn();
    expect(resolved, 'position 1 is still open').to.equal(false);
    positions.abandoned([a!]);
    await nextTurn();
    expect(resolved).to.equal(true);
    expect(positions.committedThrough).to.equal(2);
  });

  it('numbering goes on after positions a replayed journal log carries', () => {
    const positions = new OutboxPositions();
    positions.start(5);
    positions.observe([9]);
    positions.committed([{ position: 9, event: event(9) }]);
    expect(positions.committedThrough, '6-8 count as abandoned').to.equal(9);
    expect(positions.allocate(1)).to.deep.equal([10]);
  });

  it('refuses to number before the store was migrated', () => {
    expect(() => new OutboxPositions().allocate(1)).to.throw(/migrate the store/);
  });
});

describe('outbox positions with the call journal and the store [sqlite]', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: Store;
  beforeEach(async () => {
    dir = tempDir();
    store = createStore({ url: `sqlite:${join(dir.dir, 'db.sqlite')}`, logger });
    await store.migrate();
  });
  afterEach(async () => {
    await store.close();
    dir.cleanup();
  });

  function journalOn(
    target: Store,
    log?: JournalLog,
  ): { journal: CallJournal; notifier: CallNotifier } {
    const journal = new CallJournal({
      store: target,
      logger,
      registry: new Registry(),
      deliver: () => {},
      ...(log ? { log } : {}),
    });
    return { journal, notifier: new CallNotifier([], logger, () => T0, journal) };
  }

  it('a call.ringing in the journal log reaches the live listeners before its commit, at the position the feed then shows', async () => {
    const held = heldStore(store);
    const log = JournalLog.open(join(dir.dir, 'db.sqlite.journal-log'));
    const { journal, notifier } = journalOn(held, log);
    const live: PositionedEvent[] = [];
    store.outboxPositions!.onDurable((items) => live.push(...items));
    const call = modelInboundCall('call-live', { startedAt: T0, phase: 'dialing' });
    const operator = modelLeg('op-live', 'operator', { extension: '101', createdAt: T0 });
    call.legs.set(operator.channelId, operator);
    operator.ringing = true;
    notifier.started(call);
    notifier.ringing(call, operator);
    await nextTurn();

    // Durable in the log, not committed: handed out, not in the feed yet.
    expect(live.map((i) => i.event.type)).to.deep.equal(['call.started', 'call.ringing']);
    expect((await store.events.feed({ limit: 10 })).items).to.deep.equal([]);

    held.release();
    expect(await journal.flush(5000)).to.equal(true);
    const feed = await store.events.feed({ limit: 10 });
    expect(feed.items.map((i) => [feedPosition(i.cursor), i.event.id])).to.deep.equal(
      live.map((i) => [i.position, i.event.id]),
    );
    log.close();
  });

  it('an event that commits before an earlier position stays out of the feed until that one commits', async () => {
    const held = heldStore(store);
    const { journal, notifier } = journalOn(held);
    const live: PositionedEvent[] = [];
    store.outboxPositions!.onDurable((items) => live.push(...items));
    const call = modelInboundCall('call-slow', { startedAt: T0 });
    notifier.started(call);
    await nextTurn();
    // The journal's transaction has its position and waits; another writer commits after it.
    const [operatorEvent] = callEvents('operator-101', 1);
    await store.transaction((repos) => repos.events.appendEvents([operatorEvent!], T0));
    expect(
      (await store.events.feed({ limit: 10 })).items,
      'position 1 may still commit',
    ).to.deep.equal([]);
    expect(live, 'handed out in position order').to.deep.equal([]);

    held.release();
    expect(await journal.flush(5000)).to.equal(true);
    const feed = await store.events.feed({ limit: 10 });
    expect(feed.items.map((i) => i.event.type)).to.deep.equal([
      'call.started',
      operatorEvent!.type,
    ]);
    expect(live.map((i) => i.event.id)).to.deep.equal(feed.items.map((i) => i.event.id));
  });

  it('a transaction that rolls back gives its positions up: later events are not held behind them', async () => {
    const live: PositionedEvent[] = [];
    store.outboxPositions!.onDurable((items) => live.push(...items));
    const [lost, kept] = callEvents('call-rb', 2);
    await store
      .transaction(async (repos) => {
        await repos.events.appendEvents([lost!], T0);
        throw new Error('rolled back');
      })
      .catch(() => undefined);
    await store.events.appendEvents([kept!], T0);
    expect(live.map((i) => i.event.id)).to.deep.equal([kept!.id]);
    const feed = await store.events.feed({ limit: 10 });
    expect(feed.items.map((i) => i.event.id)).to.deep.equal([kept!.id]);
    expect(feedPosition(feed.items[0]!.cursor)).to.equal(live[0]!.position);
  });

  it('a console opened after a rolled-back event gets a cursor that stays exact across a restart', async () => {
    const [kept] = callEvents('call-kept', 1);
    await store.events.appendEvents([kept!], T0);
    // An operator's status change fails after its event got position 2: given up.
    const [lost] = callEvents('operator-lost', 1);
    await store
      .transaction(async (repos) => {
        await repos.events.appendEvents([lost!], T0);
        throw new Error('rolled back');
      })
      .catch(() => undefined);
    // A console opens now: where its live events start is the cursor of its `stream.synced`.
    const hub = new StreamHub({
      events: store.events,
      onAppended: (listener) => store.onEventsAppended(listener),
      live: store.outboxPositions!,
      callExtensions: () => Promise.resolve([]),
      pollIntervalMs: 1000,
      logger,
    });
    const synced = await hub.subscribe({ extension: undefined, deliver: () => {} });
    hub.close();
    await store.close();

    // The next run numbers after the greatest stored position.
    store = createStore({ url: `sqlite:${join(dir.dir, 'db.sqlite')}`, logger });
    await store.migrate();
    const [next] = callEvents('call-next', 1);
    await store.events.appendEvents([next!], T0);
    const resumed = await store.events.feed({ after: feedCursor(synced), limit: 10 });
    expect(
      resumed.items.map((i) => i.event.id),
      'nothing missed after the cursor',
    ).to.deep.equal([next!.id]);
  });

  it('positions of deleted events are not numbered again after a restart', async () => {
    const events = callEvents('call-deleted', 2);
    await store.events.appendEvents(events, T0);
    const { nextCursor } = await store.events.feed({ limit: 10 });
    await store.db.deleteFrom('events').execute();
    await store.close();
    store = createStore({ url: `sqlite:${join(dir.dir, 'db.sqlite')}`, logger });
    await store.migrate();
    const [next] = callEvents('call-after-delete', 1);
    await store.events.appendEvents([next!], T0);
    const resumed = await store.events.feed({ after: nextCursor, limit: 10 });
    expect(resumed.items.map((i) => i.event.id)).to.deep.equal([next!.id]);
  });

  it('a journal log replayed at start-up writes its events at the positions it logged', async () => {
    const path = join(dir.dir, 'db.sqlite.journal-log');
    const call = modelInboundCall('call-replay', { startedAt: T0 });
    const events = callEvents('call-replay', 2);
    const snapshot = snapshotCall(call, T0);
    const entry: JournalLogEntry = {
      seq: 1,
      at: T0,
      calls: [{ snapshot, legs: snapshot.legs }],
      recordings: [],
      events,
      positions: [7, 8],
    };
    const log = JournalLog.open(path);
    log.append([entry]);
    log.close();
    await recoverJournalLog(store, path, logger);
    const feed = await store.events.feed({ limit: 10 });
    expect(feed.items.map((i) => [feedPosition(i.cursor), i.event.id])).to.deep.equal([
      [7, events[0]!.id],
      [8, events[1]!.id],
    ]);
    // Numbering goes on after them.
    const [next] = callEvents('call-next', 1);
    await store.events.appendEvents([next!], T0);
    expect(feedPosition(await store.events.head())).to.equal(9);
    const after = await store.events.feed({ after: feed.nextCursor, limit: 10 });
    expect(after.items.map((i) => feedPosition(i.cursor))).to.deep.equal([9]);
  });
});
