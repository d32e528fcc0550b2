/**
 * `CallJournal.whenCommitted` (src/calls/journal.ts): the call service drops an ended call from
 * memory only once the store holds its last change, so the API never misses a call that just
 * ended, even while the store lags a turn behind or fails. `CallJournal.whenWritten`:
 * `POST /v1/calls` answers once the new call is stored, while the call goes on changing.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { CallJournal } from '../../src/calls/journal.ts';
import type { Call } from '../../src/calls/model.ts';
import type { Store } from '../../src/store/index.ts';
import { until } from '../support/until.ts';
import { callEvents, flakyStore, forEachDialect, logger, modelInboundCall } from './helpers.ts';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');

const call = (id: string): Call =>
  modelInboundCall(id, { phase: 'dialing', startedAt: T0, legs: new Map() });

/**
 * A store whose write batches (the journal's transactions) each wait for their own gate: `open(n)`
 * lets the n-th (from 1) be written, `open()` every one. The wait is inside the batch, after it
 * took its place in the write stream, so batches still commit in the order they were asked for.
 * Counts the batches asked for and committed.
 */
function gated(
  store: Store,
): Store & { open: (n?: number) => void; transactions: number; committed: number } {
  const gates: Array<{ promise: Promise<void>; release: () => void }> = [];
  const gate = (n: number): { promise: Promise<void>; release: () => void } => {
    while (gates.length < n) {
      let release!: () => void;
      const promise = new Promise<void>((resolve) => (release = resolve));
      gates.push({ promise, release });
    }
    return gates[n - 1]!;
  };
  let all = false;
  const wrapper = Object.create(store) as Store & {
    open: (n?: number) => void;
    transactions: number;
    committed: number;
  };
  wrapper.transactions = 0;
  wrapper.committed = 0;
  wrapper.open = (n) => {
    if (n !== undefined) return gate(n).release();
    all = true;
    for (const g of gates) g.release();
  };
  wrapper.writeBatch = async (fn, options) => {
    const n = ++wrapper.transactions;
    const result = await store.writeBatch(async (repos) => {
      if (!all) await gate(n).promise;
      return fn(repos);
    }, options);
    wrapper.committed++;
    return result;
  };
  return wrapper;
}

forEachDialect('call journal: whenCommitted, whenWritten', ({ store }) => {
  let journal: CallJournal | undefined;
  afterEach(async () => {
    await journal?.close(1000);
    journal = undefined;
  });

  const open = (target: Store): CallJournal =>
    (journal = new CallJournal({
      store: target,
      logger,
      registry: new Registry(),
      deliver: () => undefined,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
    }));

  /** A journal on a gated store whose first transaction (call `call-a` recorded) is in flight. */
  const firstWriteInFlight = async (): Promise<{
    target: ReturnType<typeof gated>;
    j: CallJournal;
    a: Call;
  }> => {
    const target = gated(store());
    const j = open(target);
    const a = call('call-a');
    j.record(a);
    await new Promise((resolve) => setImmediate(resolve)); // the first write is now in flight
    expect(target.transactions).to.equal(1);
    return { target, j, a };
  };

  it('answers at once for a call with nothing pending, after the commit otherwise', async () => {
    const j = open(store());
    let idle = false;
    j.whenCommitted('never-recorded', () => (idle = true));
    expect(idle).to.equal(true);

    const a = call('call-a');
    j.record(a);
    const seen: string[] = [];
    j.whenCommitted('call-a', () => seen.push('committed'));
    expect(seen).to.deep.equal([]);
    a.phase = 'ended';
    a.endedAt = T0 + 1000;
    a.disposition = 'canceled';
    j.record(a); // recorded after the callback was asked for: the commit holds it too
    await new Promise<void>((resolve) => j.whenCommitted('call-a', resolve));
    expect(seen).to.deep.equal(['committed']);
    expect(await store().calls.getCall('call-a')).to.include({ state: 'ended' });
  });

  it('waits for a change recorded while the transaction is being written', async () => {
    const { target, j, a } = await firstWriteInFlight();
    a.phase = 'ended';
    a.endedAt = T0 + 1000;
    a.disposition = 'answered';
    a.answeredAt = T0 + 500;
    j.record(a);
    let early = false;
    const fired = new Promise<{ committed: number; state?: string }>((resolve, reject) =>
      j.whenCommitted('call-a', () => {
        const committed = target.committed;
        if (committed < 2) early = true;
        store()
          .calls.getCall('call-a')
          .then((r) => resolve({ committed, state: r?.state }), reject);
      }),
    );
    target.open(1);
    await until(() => target.committed === 1, 'the first commit');
    expect(early, 'answered after the first commit').to.equal(false);
    target.open();
    // Not after the first commit (it held the call still dialling): after the second.
    expect(await fired).to.deep.equal({ committed: 2, state: 'ended' });
  });

  it('both keep waiting while the store fails, and answer once the retry commits', async () => {
    const target = flakyStore(store());
    target.failing = true;
    const j = open(target);
    j.record(call('call-a'));
    let committed = false;
    let written = false;
    j.whenCommitted('call-a', () => (committed = true));
    j.whenWritten('call-a', () => (written = true));
    expect(await j.flush(50)).to.equal(false);
    expect(j.failing()).to.equal(true);
    expect([committed, written]).to.deep.equal([false, false]);
    target.failing = false;
    expect(await j.flush(5000)).to.equal(true);
    expect([committed, written]).to.deep.equal([true, true]);
    expect(await store().calls.getCall('call-a')).to.not.equal(undefined);
  });

  it('whenWritten answers after the commit holding the changes recorded so far, not later ones (a new click-to-call)', async () => {
    const target = gated(store());
    const j = open(target);
    let idle = false;
    j.whenWritten('never-recorded', () => (idle = true));
    expect(idle).to.equal(true);

    const a = call('call-a');
    j.record(a);
    const fired = new Promise<{ committed: number; state?: string }>((resolve, reject) =>
      j.whenWritten('call-a', () => {
        const committed = target.committed;
        store()
          .calls.getCall('call-a')
          .then((r) => resolve({ committed, state: r?.state }), reject);
      }),
    );
    await new Promise((resolve) => setImmediate(resolve)); // the first write is now in flight
    // The call goes on changing while its first write is in flight.
    a.phase = 'ended';
    a.endedAt = T0 + 1000;
    a.disposition = 'canceled';
    j.record(a);
    // Only the first transaction may commit: the answer must not wait for the second.
    target.open(1);
    const first = await fired;
    expect(first.committed).to.equal(1);
    expect(first.state, 'the stored call as it was when asked about').to.not.equal('ended');
    expect(first.state).to.be.a('string');
    target.open();
  });

  /**
   * A journal whose store notes in `order` when a transaction is sent, and `turn(name)`: a
   * callback on the next turn of the event loop that notes `name` (it stands for the I/O
   * callbacks already due in this turn, REST answers of other calls).
   */
  const sendsInOrder = (): {
    j: CallJournal;
    order: string[];
    turn: (name: string) => Promise<void>;
  } => {
    const order: string[] = [];
    const target = Object.create(store()) as Store;
    target.writeBatch = (fn, options) => {
      order.push('sent');
      return store().writeBatch(fn, options);
    };
    const turn = (name: string): Promise<void> =>
      new Promise((resolve) =>
        setImmediate(() => {
          order.push(name);
          resolve();
        }),
      );
    return { j: open(target), order, turn };
  };

  it('whenWritten sends the pending changes before the next turn: a busy turn does not hold back POST /v1/calls', async () => {
    const { j, order, turn } = sendsInOrder();
    const nextTurn = turn('next turn');
    j.record(call('call-b'));
    j.whenWritten('call-b', () => order.push('written'));
    expect(await j.flush(5000)).to.equal(true);
    await nextTurn;
    expect(order.indexOf('sent'), JSON.stringify(order)).to.be.below(order.indexOf('next turn'));
    expect(order).to.include('written');
  });

  it('call.ringing (the screen pop) is sent before the next turn; other changes wait for it, batched', async () => {
    const { j, order, turn } = sendsInOrder();
    const [started, ringing] = callEvents('call-c', 2);
    // call.started: written on the next turn, after the callbacks already due.
    const first = turn('turn 1');
    j.record(call('call-c'), started);
    await first;
    expect(await j.flush(5000)).to.equal(true);
    expect(order).to.deep.equal(['turn 1', 'sent']);
    // call.ringing: written before them.
    order.length = 0;
    const second = turn('turn 2');
    j.record(call('call-c'), ringing);
    expect(await j.flush(5000)).to.equal(true);
    await second;
    expect(order.indexOf('sent'), JSON.stringify(order)).to.be.below(order.indexOf('turn 2'));
  });

  it('whenWritten asked while a write is in flight and nothing newer is pending: that write answers it', async () => {
    const { target, j } = await firstWriteInFlight();
    let written = false;
    j.whenWritten('call-a', () => (written = true));
    expect(written).to.equal(false);
    target.open();
    expect(await j.flush(5000)).to.equal(true);
    expect(written).to.equal(true);
    expect(target.transactions).to.equal(1);
  });

  it('a turn that changes nothing the store keeps sends nothing, and answers with the write before it', async () => {
    const { target, j, a } = await firstWriteInFlight();
    j.record(a); // nothing the store keeps changed (e.g. an operator leg's ring indication)
    const seen: string[] = [];
    j.whenWritten('call-a', () => seen.push('written'));
    j.whenCommitted('call-a', () => seen.push('committed'));
    await new Promise((resolve) => setImmediate(resolve)); // its turn is over
    expect(seen, 'nothing answered before the first write commits').to.deep.equal([]);
    target.open(1);
    expect(await j.flush(5000)).to.equal(true);
    expect(seen).to.have.members(['written', 'committed']);
    expect(target.transactions, 'no transaction for the turn that changed nothing').to.equal(1);
  });

  it('a turn that changes nothing fails with the write before it, and its callbacks wait for the retry', async () => {
    // The first transaction is held, then fails; the later ones go through.
    let fail!: () => void;
    const failed = new Promise<void>((resolve) => (fail = resolve));
    let transactions = 0;
    const target = Object.create(store()) as Store;
    target.writeBatch = async (fn, options) => {
      const n = ++transactions;
      if (n === 1) {
        await failed;
        throw new Error('disk I/O error');
      }
      return store().writeBatch(fn, options);
    };
    const registry = new Registry();
    const j = (journal = new CallJournal({
      store: target,
      logger,
      registry,
      deliver: () => undefined,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
    }));
    const a = call('call-a');
    j.record(a);
    await new Promise((resolve) => setImmediate(resolve));
    j.record(a); // changes nothing: not sent, waits for the first
    let written = false;
    j.whenWritten('call-a', () => (written = true));
    await new Promise((resolve) => setImmediate(resolve));
    fail();
    await until(() => written, 'the retry commits the call');
    expect(await store().calls.getCall('call-a')).to.include({ state: 'dialing_operator' });
    expect(
      transactions,
      'the failed write and its retry; the empty turn never reached the store',
    ).to.equal(2);
    const failures = await registry.getSingleMetric('aricrm_store_write_failures_total')?.get();
    expect(failures?.values[0]?.value, 'one failure, counted once').to.equal(1);
  });
});
