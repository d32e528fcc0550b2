/**
 * The call journal (src/calls/journal.ts) on each dialect: changes of a call and its events are
 * committed together, events reach the dispatcher only after the commit and in order, and a store
 * that fails for a while loses nothing.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { CallJournal } from '../../src/calls/journal.ts';
import type { Call } from '../../src/calls/model.ts';
import { CallNotifier } from '../../src/calls/notifier.ts';
import type { LifecycleEvent } from '../../src/events/types.ts';
import type { LegInput } from '../../src/store/calls.ts';
import type { Store } from '../../src/store/index.ts';
import { StreamBrokenError } from '../../src/store/write-streams.ts';
import { until } from '../support/until.ts';
import { flakyStore, forEachDialect, logger, modelInboundCall, modelLeg } from './helpers.ts';

/** A leg as the store takes it (for a leg write that fails: its call does not exist). */
const modelLegInput = (): LegInput => ({
  channelId: 'orphan-1',
  role: 'operator',
  position: 0,
  createdAt: T0,
});

const T0 = Date.parse('2026-11-21T10:00:00.000Z');

const inboundCall = (id: string): Call => modelInboundCall(id, { phase: 'dialing', startedAt: T0 });

/**
 * A journal on `target` that retries within milliseconds, handing events to `delivered`, with a
 * notifier and a spy on the logger's errors (restore it).
 */
function retryingJournal(
  target: Store,
  registry: Registry,
  delivered: LifecycleEvent[],
): { journal: CallJournal; notifier: CallNotifier; errors: sinon.SinonSpy } {
  const journal = new CallJournal({
    store: target,
    logger,
    registry,
    deliver: (event) => delivered.push(event),
    retryInitialDelayMs: 5,
    retryMaxDelayMs: 20,
  });
  return {
    journal,
    notifier: new CallNotifier([], logger, Date.now, journal),
    errors: sinon.spy(logger, 'error'),
  };
}

forEachDialect('call journal', ({ store }) => {
  it('commits the call, its legs and its events together, then hands the events on in order', async () => {
    const delivered: LifecycleEvent[] = [];
    const journal = new CallJournal({
      store: store(),
      logger,
      registry: new Registry(),
      deliver: (event) => delivered.push(event),
      now: () => T0 + 5000,
    });
    const notifier = new CallNotifier([], logger, () => T0 + 5000, journal);
    const call = inboundCall('call-1');
    notifier.started(call);
    const operator = modelLeg('op-1', 'operator', {
      extension: '101',
      endpoint: 'PJSIP/101',
      createdAt: T0,
    });
    call.legs.set(operator.channelId, operator);
    operator.ringing = true;
    notifier.ringing(call, operator);
    // Nothing is handed on before the commit.
    expect(delivered).to.have.length(0);
    expect(await journal.flush(5000)).to.equal(true);

    expect(delivered.map((e) => [e.type, e.sequence])).to.deep.equal([
      ['call.started', 1],
      ['call.ringing', 2],
    ]);
    const record = await store().calls.getCall('call-1');
    expect(record).to.include({ state: 'operator_ringing', from: '79161234567' });
    expect(record!.legs.map((l) => [l.channelId, l.role, l.extension])).to.deep.equal([
      ['in-1', 'caller', undefined],
      ['op-1', 'operator', '101'],
    ]);
    const feed = await store().events.feed({ limit: 10 });
    expect(feed.items.map((i) => i.event.id)).to.deep.equal(delivered.map((e) => e.id));

    // A later change without an event (the leg ended) is written too.
    operator.ended = true;
    operator.outcome = 'busy';
    operator.cause = 17;
    operator.endedAt = T0 + 4000;
    journal.record(call);
    await journal.flush(5000);
    const after = await store().calls.getCall('call-1');
    expect(after!.legs[1]).to.include({ outcome: 'busy', cause: 17 });
    expect(after!.legs[1]!.endedAt).to.equal(new Date(T0 + 4000).toISOString());
  });

  it('sends the next transaction while one is in flight (SQLite); when one fails, those behind it are retried with it, in order', async () => {
    const delivered: LifecycleEvent[] = [];
    const registry = new Registry();
    const base = store();
    // The first transaction waits inside its batch (after taking its place in the write stream)
    // and then fails in the database itself: a leg of a call that does not exist.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let asked = 0;
    const target = Object.create(base) as typeof base;
    target.writeBatch = (fn, options) => {
      const n = ++asked;
      return base.writeBatch(async (repos) => {
        if (n === 1) await gate;
        const result = await fn(repos);
        if (n === 1) await repos.calls.upsertLegs('no-such-call', [modelLegInput()]);
        return result;
      }, options);
    };
    const { journal, notifier, errors } = retryingJournal(target, registry, delivered);
    try {
      const a = inboundCall('call-a');
      notifier.started(a);
      await until(() => asked === 1, 'the first transaction');
      const operator = modelLeg('op-1', 'operator', { extension: '101', createdAt: T0 });
      a.legs.set(operator.channelId, operator);
      operator.ringing = true;
      notifier.ringing(a, operator);
      if (base.pipelinedWrites) {
        // Sent without waiting for the first one's answer.
        await until(() => asked === 2, 'the second transaction, sent behind the first');
      } else {
        await new Promise((resolve) => setImmediate(resolve));
        expect(asked, 'PostgreSQL: one transaction at a time').to.equal(1);
      }
      release();
      expect(await journal.flush(5000)).to.equal(true);
      expect(delivered.map((e) => [e.type, e.sequence])).to.deep.equal([
        ['call.started', 1],
        ['call.ringing', 2],
      ]);
      const feed = await base.events.feed({ limit: 10 });
      expect(feed.items.map((i) => i.event.sequence)).to.deep.equal([1, 2]);
      expect(await base.calls.getCall('call-a')).to.include({ state: 'operator_ringing' });
      const failures = await registry.getSingleMetricAsString('aricrm_store_write_failures_total');
      expect(failures, 'one failure, not one per transaction behind it').to.match(
        /aricrm_store_write_failures_total 1$/m,
      );
      const logged = errors.getCalls().find((c) => c.args[0] === 'store write failed; retrying');
      expect(logged, 'the failure is logged').to.not.equal(undefined);
      const cause = (logged!.args[1] as { err: unknown }).err;
      expect(cause, 'the cause, not "the stream was broken"').to.not.be.instanceOf(
        StreamBrokenError,
      );
    } finally {
      errors.restore();
      await journal.close(1000);
    }
  });

  it('keeps every change while the store fails, retries, then commits and delivers them in order', async () => {
    const delivered: LifecycleEvent[] = [];
    const registry = new Registry();
    const target = flakyStore(store());
    target.failing = true;
    const { journal, notifier, errors } = retryingJournal(target, registry, delivered);
    try {
      const a = inboundCall('call-a');
      const b = inboundCall('call-b');
      notifier.started(a);
      notifier.started(b);
      expect(await journal.flush(50)).to.equal(false);
      expect(journal.failing()).to.equal(true);
      // Changes keep arriving during the outage.
      a.phase = 'ended';
      a.disposition = 'canceled';
      a.endedAt = Date.now();
      notifier.ended(a);
      expect(delivered).to.have.length(0);

      target.failing = false;
      expect(await journal.flush(5000)).to.equal(true);
      expect(journal.failing()).to.equal(false);
      expect(delivered.filter((e) => e.callId === 'call-a').map((e) => e.type)).to.deep.equal([
        'call.started',
        'call.ended',
      ]);
      expect(delivered.filter((e) => e.callId === 'call-b').map((e) => e.type)).to.deep.equal([
        'call.started',
      ]);
      expect(await store().calls.getCall('call-a')).to.include({
        state: 'ended',
        disposition: 'canceled',
      });
      expect((await store().events.feed({ limit: 10 })).items).to.have.length(3);
      const failures = await registry.getSingleMetricAsString('aricrm_store_write_failures_total');
      expect(failures).to.match(/aricrm_store_write_failures_total [1-9]/);
      expect(errors.calledWithMatch('store write failed; retrying')).to.equal(true);
    } finally {
      errors.restore();
      await journal.close(1000);
    }
  });

  it('writes recording statuses in its transactions: after the call row, stored in the commit of recording.ready, kept through a failure', async () => {
    const delivered: LifecycleEvent[] = [];
    const registry = new Registry();
    const target = flakyStore(store());
    let batches = 0;
    const flaky = target.writeBatch.bind(target);
    target.writeBatch = (fn, options) => {
      batches++;
      return flaky(fn, options);
    };
    const { journal, notifier, errors } = retryingJournal(target, registry, delivered);
    try {
      const call = inboundCall('call-r');
      notifier.started(call);
      // Recorded in the same turn as the call's first change: written after its row.
      journal.recordRecording('call-r', {
        name: 'rec-call-r',
        path: 'x/call-r.wav',
        status: 'recording',
      });
      expect(await journal.flush(5000)).to.equal(true);
      expect(batches, 'one transaction for the call and its recording status').to.equal(1);
      expect((await store().calls.getCall('call-r'))!.recording).to.deep.include({
        name: 'rec-call-r',
        status: 'recording',
      });

      call.phase = 'ended';
      call.disposition = 'answered';
      call.endedAt = T0 + 9000;
      notifier.ended(call);
      await journal.flush(5000);
      // The store fails while recording.ready and `stored` are written: both wait, together.
      target.failing = true;
      notifier.recordingReady(call, {
        recordingUrl: 'http://engine/v1/calls/call-r/recording?sig=x',
        expiresAt: new Date(T0 + 86_400_000).toISOString(),
        bytes: 32_044,
        durationSec: 2,
        format: 'wav',
      });
      journal.recordRecording('call-r', { status: 'stored', bytes: 32_044, durationSec: 2 });
      let committed = false;
      journal.whenCommitted('call-r', () => (committed = true));
      expect(await journal.flush(50)).to.equal(false);
      expect(committed).to.equal(false);
      expect((await store().calls.getCall('call-r'))!.recording!.status).to.equal('recording');
      target.failing = false;
      expect(await journal.flush(5000)).to.equal(true);
      expect(committed).to.equal(true);
      expect(delivered.map((e) => e.type)).to.deep.equal([
        'call.started',
        'call.ended',
        'recording.ready',
      ]);
      // A status alone (no change of the call) keeps the fields it does not set.
      expect((await store().calls.getCall('call-r'))!.recording).to.deep.equal({
        name: 'rec-call-r',
        path: 'x/call-r.wav',
        status: 'stored',
        bytes: 32_044,
        durationSec: 2,
      });
    } finally {
      errors.restore();
      await journal.close(1000);
    }
  });

  it('does not store a change recorded after it closed, but logs it at warn with its call id and event type and counts it; an unchanged call is not reported', async () => {
    const delivered: LifecycleEvent[] = [];
    const registry = new Registry();
    const journal = new CallJournal({
      store: store(),
      logger,
      registry,
      deliver: (event) => delivered.push(event),
      now: () => T0 + 5000,
    });
    const emitted: LifecycleEvent[] = [];
    const notifier = new CallNotifier(
      [{ enqueue: (event) => emitted.push(event) }],
      logger,
      () => T0 + 5000,
      journal,
    );
    const warnings = sinon.spy(logger, 'warn');
    try {
      const call = inboundCall('call-late');
      notifier.started(call);
      await journal.close(1000);
      // Nothing changed since the commit: nothing to report.
      journal.record(call);
      expect(warnings.called).to.equal(false);

      call.phase = 'ended';
      call.disposition = 'failed';
      call.hangupBy = 'system';
      call.endReason = 'route_hangup';
      call.endedAt = T0 + 4000;
      notifier.ended(call);
      journal.record(call); // the step's own record after the event: reported once, with it
      journal.recordRecording('call-late', { status: 'stored', bytes: 100, durationSec: 1 });
      let committed = false;
      journal.whenCommitted('call-late', () => (committed = true));
      await new Promise((resolve) => setImmediate(resolve));

      const message = 'call change recorded after the call journal closed: not stored by this run';
      expect(warnings.getCalls().map((c) => c.args as unknown[])).to.deep.equal([
        [
          message,
          {
            callId: 'call-late',
            eventType: 'call.ended',
            eventId: emitted.find((e) => e.type === 'call.ended')!.id,
            sequence: 2,
          },
        ],
        [message, { callId: 'call-late', change: 'recording', recordingStatus: 'stored' }],
      ]);
      const dropped = await registry.getSingleMetric('aricrm_store_dropped_changes_total')!.get();
      expect(dropped.values.map((v) => [v.labels.event, v.value])).to.deep.equal([
        ['call.ended', 1],
        ['recording', 1],
      ]);
      // Not stored, not handed on, and never reported as committed.
      expect(delivered.map((e) => e.type)).to.deep.equal(['call.started']);
      expect((await store().calls.getCall('call-late'))!.state).to.not.equal('ended');
      expect(committed).to.equal(false);
    } finally {
      warnings.restore();
    }
  });
});
