/**
 * The engine's numbering of the outbox on SQLite (src/store/outbox-positions.ts): events reach the
 * live stream the moment they are durable, at the position the outbox keeps them at, in order;
 * the pull feed never shows a position before every smaller one has committed.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { CallJournal } from '../../src/calls/journal.ts';
import { snapshotCall } from '../../src/calls/model.ts';
import { CallNotifier } from '../../src/calls/notifier.ts';
import type { LifecycleEvent } from '../../src/events/types.ts';
import { createStore, feedCursor, feedPosition, type Store } from '../../src/store/index.ts';
import {
  JournalLog,
  JournalLogWriteError,
  readJournalLog,
  recoverJournalLog,
  type JournalLogEntry,
} from '../../src/store/journal-log.ts';
import { OutboxPositions, type PositionedEvent } from '../../src/store/outbox-positions.ts';
import { StreamHub } from '../../src/stream/hub.ts';
import { until } from '../support/until.ts';
import {
  callEvents,
  flakyStore,
  heldStore,
  logger,
  modelInboundCall,
  modelLeg,
  tempDir,
} from './helpers.ts';

const T0 = Date.UTC(2025, 0, 31, 9, 15, 0);

/** Let queued microtasks and one turn of the event loop run. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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

  it('a whenCommitted whose caller gave up (aborted) rejects at once and is not kept', async () => {
    const positions = new OutboxPositions();
    positions.start(0);
    const [a] = positions.allocate(1);
    const leaving = new AbortController();
    const gaveUp = positions.whenCommitted(a!, leaving.signal);
    let stays = false;
    void positions.whenCommitted(a!).then(() => (stays = true));
    expect(positions.waiting).to.equal(2);
    leaving.abort(new Error('socket closed'));
    expect(
      await gaveUp.then(
        () => 'resolved',
        (err: Error) => err.message,
      ),
    ).to.equal('socket closed');
    expect(positions.waiting, 'only the one still waiting').to.equal(1);
    positions.committed([{ position: a!, event: event(1) }]);
    await nextTurn();
    expect(stays).to.equal(true);
    expect(positions.waiting).to.equal(0);
    const late = positions.whenCommitted(1, leaving.signal);
    expect(
      await late.then(
        () => 'resolved',
        (err: Error) => err.message,
      ),
    ).to.equal('socket closed');
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
    store = await openStore();
  });
  afterEach(async () => {
    await store.close();
    dir.cleanup();
  });

  afterEach(() => sinon.restore());

  function journalOn(
    target: Store,
    log?: JournalLog,
  ): { journal: CallJournal; notifier: CallNotifier } {
    const journal = new CallJournal({
      store: target,
      logger,
      registry: new Registry(),
      deliver: () => {},
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
      ...(log ? { log } : {}),
    });
    return { journal, notifier: new CallNotifier([], logger, () => T0, journal) };
  }

  /** The SQLite store on the test's file, migrated: a fresh one, or the next run's after a restart. */
  async function openStore(): Promise<Store> {
    const opened = createStore({ url: `sqlite:${join(dir.dir, 'db.sqlite')}`, logger });
    await opened.migrate();
    return opened;
  }

  /** What `target` hands to the live listeners from now on, in order. */
  function liveEvents(target: Store): PositionedEvent[] {
    const live: PositionedEvent[] = [];
    target.outboxPositions!.onDurable((items) => live.push(...items));
    return live;
  }

  /**
   * `journal` and `notifier` ({@link journalOn}, logging to `log`) on `flaky`, the store whose
   * commits fail until `flaky.failing` is set false; `errors`, the logger's `error` stubbed
   * (restore it before the test ends); `live`, as {@link liveEvents}.
   */
  function failingJournal(log: JournalLog) {
    const flaky = flakyStore(store);
    flaky.failing = true;
    const errors = sinon.stub(logger, 'error');
    return { ...journalOn(flaky, log), flaky, errors, live: liveEvents(store) };
  }

  /** The first append to `log` goes through; the next ones fail as with a full disk. */
  function failAppendsAfterTheFirst(log: JournalLog): void {
    const real = log.append.bind(log);
    let calls = 0;
    sinon.stub(log, 'append').callsFake((entries) => {
      if (calls++ > 0) throw new JournalLogWriteError(new Error('ENOSPC: no space left on device'));
      real(entries);
    });
  }

  /** A call ringing operator 101, recorded through `notifier`. */
  function ring(notifier: CallNotifier, id: string): void {
    const call = modelInboundCall(id, { startedAt: T0, phase: 'dialing' });
    const operator = modelLeg(`op-${id}`, 'operator', { extension: '101', createdAt: T0 });
    call.legs.set(operator.channelId, operator);
    operator.ringing = true;
    notifier.started(call);
    notifier.ringing(call, operator);
  }

  /** The feed read to its end, as [position, event id]. */
  async function feedOf(target: Store): Promise<Array<[number, string]>> {
    const feed = await target.events.feed({ limit: 1000 });
    return feed.items.map((i) => [feedPosition(i.cursor), i.event.id]);
  }

  it('a call.ringing in the journal log reaches the live listeners before its commit, at the position the feed then shows', async () => {
    const held = heldStore(store);
    const log = JournalLog.open(join(dir.dir, 'db.sqlite.journal-log'));
    const { journal, notifier } = journalOn(held, log);
    const live = liveEvents(store);
    ring(notifier, 'call-live');
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
    const live = liveEvents(store);
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
    const live = liveEvents(store);
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
    store = await openStore();
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
    store = await openStore();
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

  it('a ringing call whose commit fails is announced once, and committed where it was announced when the store recovers', async () => {
    const log = JournalLog.open(join(dir.dir, 'db.sqlite.journal-log'));
    const { journal, notifier, flaky, errors, live } = failingJournal(log);
    ring(notifier, 'call-retry');
    await until(() => errors.callCount >= 3, 'the write failed and was retried');
    // Meanwhile an operator's status change commits (its own transaction, a later position).
    const [operatorEvent] = callEvents('operator-101', 1);
    await store.events.appendEvents([operatorEvent!], T0);
    ring(notifier, 'call-later');
    await until(() => errors.callCount >= 5, 'more retries');
    flaky.failing = false;
    expect(await journal.flush(5000)).to.equal(true);
    errors.restore();

    const feed = await feedOf(store);
    expect(feed.map(([, id]) => id)).to.have.length(5);
    expect(
      live.map((i) => [i.position, i.event.id]),
      'each announced once, where it is',
    ).to.deep.equal(feed);
    log.close();
  });

  it('after a crash while the commit kept failing, the replay writes each event once where it was announced, though the retries were logged again', async () => {
    const path = join(dir.dir, 'db.sqlite.journal-log');
    const log = JournalLog.open(path);
    const { journal, notifier, errors, live } = failingJournal(log);
    ring(notifier, 'call-crash');
    await until(() => errors.callCount >= 3, 'the write failed and was retried');
    ring(notifier, 'call-crash-2');
    await until(() => errors.callCount >= 5, 'more retries');
    // The engine dies: nothing was committed; the log holds the writes (some more than once).
    await journal.close(0);
    log.close();
    errors.restore();
    const logged = readJournalLog(path).entries;
    const ringing = live.find((i) => i.event.type === 'call.ringing')!.event.id;
    expect(
      logged.filter((e) => e.events.some((ev) => ev.id === ringing)).length,
      'logged again by its retries',
    ).to.be.greaterThan(1);
    await store.close();

    store = await openStore();
    await recoverJournalLog(store, path, logger);
    expect(await feedOf(store)).to.deep.equal(live.map((i) => [i.position, i.event.id]));
    expect(live).to.have.length(4);
  });

  it('a journal log turned off by a write error after an event was announced: it commits where it was announced, also after a crash', async () => {
    const path = join(dir.dir, 'db.sqlite.journal-log');
    const log = JournalLog.open(path);
    // The first append goes through; then the disk is full and the log is off for good.
    failAppendsAfterTheFirst(log);
    const { journal, notifier, errors, live } = failingJournal(log);
    ring(notifier, 'call-off');
    await until(() => errors.callCount >= 3, 'the write failed and was retried');
    expect(live, 'announced from the log').to.have.length(2);
    expect(errors.getCalls().map((c) => c.args[0])).to.include(
      'journal log write failed; writes now wait for their commit',
    );
    ring(notifier, 'call-after-off');
    await until(() => errors.callCount >= 5, 'more retries');
    expect(live, 'nothing more is durable until it commits').to.have.length(2);

    // Killed now: the replay puts the announced events where they were announced.
    await journal.close(0);
    errors.restore();
    log.close();
    await store.close();
    store = await openStore();
    await recoverJournalLog(store, path, logger);
    expect(await feedOf(store)).to.deep.equal(live.map((i) => [i.position, i.event.id]));
    // A console resuming after the last event it got sees the next one (call-after-off was
    // never announced, nor stored: reconciliation finds such calls again).
    const [next] = callEvents('call-next', 1);
    await store.events.appendEvents([next!], T0);
    const resumed = await store.events.feed({
      after: feedCursor(live.at(-1)!.position),
      limit: 10,
    });
    expect(resumed.items.map((i) => i.event.id)).to.deep.equal([next!.id]);
  });

  it('a journal log turned off by a write error: the retry without it commits the events where they were announced', async () => {
    const log = JournalLog.open(join(dir.dir, 'db.sqlite.journal-log'));
    failAppendsAfterTheFirst(log);
    const { journal, notifier, flaky, errors, live } = failingJournal(log);
    ring(notifier, 'call-off');
    await until(() => errors.callCount >= 3, 'the write failed and was retried');
    ring(notifier, 'call-after-off');
    await until(() => errors.callCount >= 5, 'more retries');
    flaky.failing = false;
    expect(await journal.flush(5000)).to.equal(true);
    errors.restore();
    const feed = await feedOf(store);
    expect(feed).to.have.length(4);
    expect(live.map((i) => [i.position, i.event.id])).to.deep.equal(feed);
    log.close();
  });
});
