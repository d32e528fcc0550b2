/**
 * The journal log (src/store/journal-log.ts) and the call journal's use of it: the file format
 * (a record cut short or damaged ends the log), start-up replay of exactly the entries the store
 * lacks, and a journal that answers `whenWritten` and hands a `call.ringing` to the dispatcher as
 * soon as the write is logged, before its commit, and never twice.
 */
import { expect } from 'chai';
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { CallJournal, type CallJournalOptions } from '../../src/calls/journal.ts';
import { snapshotCall, type Call } from '../../src/calls/model.ts';
import { CallNotifier } from '../../src/calls/notifier.ts';
import type { LifecycleEvent } from '../../src/events/types.ts';
import {
  JOURNAL_LOG_TRUNCATE_BYTES,
  JournalLog,
  type JournalLogEntry,
  JournalLogWriteError,
  readJournalLog,
  recoverJournalLog,
} from '../../src/store/journal-log.ts';
import { createStore, type Store } from '../../src/store/index.ts';
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

const T0 = Date.parse('2026-11-22T10:00:00.000Z');

/**
 * A journal on `target` with `log`, handing events to `delivered`, and its notifier (clock T0).
 */
function loggedJournal(
  target: Store,
  log: JournalLog,
  delivered: LifecycleEvent[] = [],
  options: Partial<CallJournalOptions> = {},
): { journal: CallJournal; notifier: CallNotifier } {
  const journal = new CallJournal({
    store: target,
    logger,
    registry: new Registry(),
    deliver: (event) => delivered.push(event),
    log,
    ...options,
  });
  return { journal, notifier: new CallNotifier([], logger, () => T0, journal) };
}

/** Let queued microtasks and one turn of the event loop run. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A journal entry with `call`'s snapshot and `events`. */
function entryOf(seq: number, call: Call, events: LifecycleEvent[]): JournalLogEntry {
  const snapshot = snapshotCall(call, T0);
  return { seq, at: T0, calls: [{ snapshot, legs: snapshot.legs }], recordings: [], events };
}

describe('journal log file', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => dir.cleanup());

  it('reads back what was appended, times and absent fields included; no file reads as empty', () => {
    const path = join(dir.dir, 'db.journal-log');
    expect(readJournalLog(path)).to.deep.equal({ entries: [], ignoredBytes: 0 });
    const call = modelInboundCall('call-a', { startedAt: T0 });
    const first = entryOf(1, call, callEvents('call-a', 1));
    const second: JournalLogEntry = {
      seq: 2,
      at: T0 + 5,
      calls: [],
      recordings: [['call-a', { status: 'recording', bytes: undefined }]],
      events: callEvents('call-a', 1, 2),
    };
    const log = JournalLog.open(path);
    log.append([first]);
    log.append([second]);
    log.close();
    expect(log.size).to.equal(statSync(path).size);
    const { entries, ignoredBytes } = readJournalLog(path);
    expect(ignoredBytes).to.equal(0);
    expect(entries).to.deep.equal([first, second]);
  });

  it('stops at a record cut short or damaged, and ignores what follows it', () => {
    const path = join(dir.dir, 'db.journal-log');
    const call = modelInboundCall('call-b', { startedAt: T0 });
    const log = JournalLog.open(path);
    log.append([entryOf(1, call, []), entryOf(2, call, callEvents('call-b', 1))]);
    log.close();
    const whole = statSync(path).size;
    // An OS crash cut the last write short.
    truncateSync(path, whole - 3);
    const cut = readJournalLog(path);
    expect(cut.entries.map((e) => e.seq)).to.deep.equal([1]);
    expect(cut.ignoredBytes).to.be.greaterThan(0);
    // A damaged byte in the first record: nothing from it on is trusted.
    const bytes = readFileSync(path);
    bytes[20] = bytes[20]! ^ 0xff;
    writeFileSync(path, bytes);
    expect(readJournalLog(path).entries).to.deep.equal([]);
    // Garbage after whole records.
    const clean = JournalLog.open(path);
    clean.append([entryOf(3, call, [])]);
    clean.close();
    appendFileSync(path, Buffer.from('not a record'));
    expect(readJournalLog(path).entries.map((e) => e.seq)).to.deep.equal([3]);
  });

  it('opening empties the file (its content was replayed first)', () => {
    const path = join(dir.dir, 'db.journal-log');
    const log = JournalLog.open(path);
    log.append([entryOf(1, modelInboundCall('call-c', { startedAt: T0 }), [])]);
    log.close();
    JournalLog.open(path).close();
    expect(statSync(path).size).to.equal(0);
  });
});

describe('journal log recovery and the journal [sqlite]', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: Store;
  let path: string;
  beforeEach(async () => {
    dir = tempDir();
    store = createStore({ url: `sqlite:${join(dir.dir, 'db.sqlite')}`, logger });
    await store.migrate();
    path = join(dir.dir, 'db.sqlite.journal-log');
  });
  afterEach(async () => {
    sinon.restore();
    await store.close();
    dir.cleanup();
  });

  it('replays only the entries above the committed seq, in order, once, and empties the file', async () => {
    const call = modelInboundCall('call-r', { startedAt: T0 });
    const [started, ringing] = callEvents('call-r', 2);
    // Entry 1 committed before the crash (its seq with it); entry 2 did not.
    await store.writeBatch(async (repos) => {
      await repos.calls.upsertCall(snapshotCall(call, T0), { at: T0 });
      await repos.events.appendEvents([started!], T0);
      await repos.calls.setJournalSeq(1);
    });
    const operator = modelLeg('op-r', 'operator', { extension: '101', createdAt: T0 + 1 });
    call.legs.set(operator.channelId, operator);
    call.phase = 'dialing';
    const log = JournalLog.open(path);
    log.append([entryOf(1, modelInboundCall('call-r', { startedAt: T0 }), [started!])]);
    log.append([entryOf(2, call, [ringing!])]);
    log.close();

    const recovery = await recoverJournalLog(store, path, logger);
    expect(recovery).to.deep.equal({ replayed: 1, skipped: 1, lastSeq: 2 });
    expect(await store.calls.journalSeq()).to.equal(2);
    const stored = await store.calls.getCall('call-r');
    expect(stored!.legs.map((l) => l.channelId)).to.deep.equal(['in-1', 'op-r']);
    const feed = await store.events.feed({ limit: 10 });
    expect(feed.items.map((i) => i.event.id)).to.deep.equal([started!.id, ringing!.id]);
    expect(statSync(path).size).to.equal(0);
    // Nothing left to do the second time.
    expect(await recoverJournalLog(store, path, logger)).to.deep.equal({
      replayed: 0,
      skipped: 0,
      lastSeq: 2,
    });
  });

  it('answers whenWritten and hands call.ringing on once logged, before the commit, and never twice', async () => {
    const held = heldStore(store);
    const log = JournalLog.open(path);
    const delivered: LifecycleEvent[] = [];
    const { journal, notifier } = loggedJournal(held, log, delivered, { lastSeq: 7 });
    const call = modelInboundCall('call-w', { startedAt: T0, phase: 'dialing' });
    notifier.started(call);
    let written = false;
    let committed = false;
    journal.whenWritten(call.id, () => (written = true));
    journal.whenCommitted(call.id, () => (committed = true));
    await nextTurn();
    // Logged, not committed: the 202 may go, the event is handed on.
    expect(written).to.equal(true);
    expect(committed).to.equal(false);
    expect(delivered.map((e) => e.type)).to.deep.equal(['call.started']);
    expect(await store.calls.getCall(call.id)).to.equal(undefined);
    const logged = readJournalLog(path).entries;
    expect(logged.map((e) => [e.seq, e.calls[0]?.snapshot.id, e.events.length])).to.deep.equal([
      [8, call.id, 1],
    ]);

    // A ringing operator: the screen pop goes out before its commit too.
    const operator = modelLeg('op-w', 'operator', { extension: '101', createdAt: T0 });
    call.legs.set(operator.channelId, operator);
    operator.ringing = true;
    notifier.ringing(call, operator);
    await nextTurn();
    expect(delivered.map((e) => e.type)).to.deep.equal(['call.started', 'call.ringing']);

    held.release();
    expect(await journal.flush(5000)).to.equal(true);
    expect(committed).to.equal(true);
    // The commits hand nothing on again.
    expect(delivered.map((e) => e.type)).to.deep.equal(['call.started', 'call.ringing']);
    expect(await store.calls.journalSeq()).to.equal(9);
    expect((await store.calls.getCall(call.id))!.legs).to.have.length(2);
    log.close();
  });

  it('without a webhook URL, logged events are replayed as skipped: a start with a URL does not send them', async () => {
    const held = heldStore(store);
    const log = JournalLog.open(path);
    const { journal, notifier } = loggedJournal(held, log, [], { skipDelivery: true });
    const call = modelInboundCall('call-s', { startedAt: T0, phase: 'dialing' });
    notifier.started(call);
    let written = false;
    journal.whenWritten(call.id, () => (written = true));
    await nextTurn();
    expect(written).to.equal(true);
    const logged = readJournalLog(path).entries;
    expect(logged.map((e) => [e.events.length, e.skipDelivery])).to.deep.equal([[1, true]]);
    log.close();

    // The engine died before the commit; the next start (with a URL) replays the log.
    expect(await recoverJournalLog(store, path, logger)).to.deep.include({ replayed: 1 });
    const feed = await store.events.feed({ limit: 10 });
    expect(feed.items.map((i) => [i.event.type, i.status])).to.deep.equal([
      ['call.started', 'skipped'],
    ]);
    expect(await store.events.loadPending()).to.deep.equal([]);
    held.release();
    expect(await journal.flush(5000)).to.equal(true);
    expect((await store.events.feed({ limit: 10 })).items.map((i) => i.status)).to.deep.equal([
      'skipped',
    ]);
  });

  it('logs the transactions in flight before an awaited one with it, and hands their events on first', async () => {
    const held = heldStore(store);
    const log = JournalLog.open(path);
    const delivered: LifecycleEvent[] = [];
    const { journal, notifier } = loggedJournal(held, log, delivered);
    const a = modelInboundCall('call-a', { startedAt: T0, phase: 'dialing' });
    notifier.started(a);
    await nextTurn();
    // call-a's transaction is in flight, not logged: nobody waits for it.
    expect(delivered).to.deep.equal([]);
    expect(readJournalLog(path).entries).to.deep.equal([]);

    const b = modelInboundCall('call-b', { startedAt: T0, phase: 'dialing' });
    notifier.started(b);
    const operator = modelLeg('op-b', 'operator', { extension: '102', createdAt: T0 });
    b.legs.set(operator.channelId, operator);
    operator.ringing = true;
    notifier.ringing(b, operator);
    await nextTurn();
    expect(readJournalLog(path).entries.map((e) => e.seq)).to.deep.equal([1, 2]);
    expect(delivered.map((e) => [e.callId, e.type])).to.deep.equal([
      ['call-a', 'call.started'],
      ['call-b', 'call.started'],
      ['call-b', 'call.ringing'],
    ]);
    held.release();
    expect(await journal.flush(5000)).to.equal(true);
    expect(delivered).to.have.length(3);
    log.close();
  });

  it('a logged write whose commit fails is retried without logging it again or handing its events on twice; the log is emptied once it commits', async () => {
    const flaky = flakyStore(store);
    flaky.failing = true;
    const log = JournalLog.open(path);
    sinon.stub(log, 'size').get(() => JOURNAL_LOG_TRUNCATE_BYTES);
    const delivered: LifecycleEvent[] = [];
    const { journal, notifier } = loggedJournal(flaky, log, delivered, {
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
    });
    const errors = sinon.stub(logger, 'error');
    const call = modelInboundCall('call-x', { startedAt: T0, phase: 'dialing' });
    notifier.started(call);
    let written = 0;
    journal.whenWritten(call.id, () => written++);
    await until(() => errors.callCount >= 3, 'the write failed and was retried');
    expect(written).to.equal(1);
    expect(delivered.map((e) => e.type)).to.deep.equal(['call.started']);
    // The retries are not logged again: the first entry stays until the change is committed.
    const logged = readJournalLog(path).entries;
    expect(logged.map((e) => e.events.map((ev) => ev.type))).to.deep.equal([['call.started']]);
    flaky.failing = false;
    expect(await journal.flush(5000)).to.equal(true);
    expect(written).to.equal(1);
    expect(delivered.map((e) => e.type)).to.deep.equal(['call.started']);
    const feed = await store.events.feed({ limit: 10 });
    expect(feed.items.map((i) => i.event.type)).to.deep.equal(['call.started']);
    expect(await store.calls.journalSeq()).to.be.greaterThan(logged[0]!.seq);
    expect(statSync(path).size).to.equal(0);
    log.close();
  });

  it('turns the log off when a write to it fails: writes then wait for their commit', async () => {
    const held = heldStore(store);
    const log = JournalLog.open(path);
    const append = sinon
      .stub(log, 'append')
      .throws(new JournalLogWriteError(new Error('ENOSPC: no space left on device')));
    const errors = sinon.spy(logger, 'error');
    const delivered: LifecycleEvent[] = [];
    const { journal, notifier } = loggedJournal(held, log, delivered);
    const call = modelInboundCall('call-f', { startedAt: T0, phase: 'dialing' });
    notifier.started(call);
    let written = false;
    journal.whenWritten(call.id, () => (written = true));
    await nextTurn();
    expect(written).to.equal(false);
    expect(delivered).to.deep.equal([]);
    expect(errors.getCalls().map((c) => c.args[0])).to.include(
      'journal log write failed; writes now wait for their commit',
    );
    held.release();
    await journal.flush(5000);
    expect(written).to.equal(true);
    expect(delivered.map((e) => e.type)).to.deep.equal(['call.started']);
    // Not tried again.
    const other = modelInboundCall('call-g', { startedAt: T0, phase: 'dialing' });
    notifier.started(other);
    journal.whenWritten(other.id, () => undefined);
    await journal.flush(5000);
    expect(append.callCount).to.equal(1);
    log.close();
  });

  it('empties the log once it is large and everything in it has committed', async () => {
    const held = heldStore(store);
    const log = JournalLog.open(path);
    sinon.stub(log, 'size').get(() => JOURNAL_LOG_TRUNCATE_BYTES);
    const truncate = sinon.spy(log, 'truncate');
    const { journal, notifier } = loggedJournal(held, log, []);
    const call = modelInboundCall('call-t', { startedAt: T0, phase: 'dialing' });
    notifier.started(call);
    journal.whenWritten(call.id, () => undefined);
    await nextTurn();
    expect(statSync(path).size).to.be.greaterThan(0);
    held.release();
    await journal.flush(5000);
    expect(truncate.called).to.equal(true);
    expect(statSync(path).size).to.equal(0);
    log.close();
  });
});
