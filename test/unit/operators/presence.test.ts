import { expect } from 'chai';
import sinon from 'sinon';
import type { LifecycleEvent } from '../../../src/events/types.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { operatorExtensions } from '../../../src/operators/config.ts';
import {
  deriveState,
  takesCalls,
  type EngineView,
  type OperatorState,
} from '../../../src/operators/model.ts';
import { OperatorNotFoundError, PresenceService } from '../../../src/operators/service.ts';
import type { OperatorChange, StoredOperator } from '../../../src/operators/store.ts';
import { createEventEnvelope } from '../../../src/events/types.ts';

describe('operator presence: the state machine', () => {
  const ringing: EngineView = { callId: 'c-1', answered: false };
  const talking: EngineView = { callId: 'c-1', answered: true };

  it('is offline until Asterisk says anything, and when the phone has no registered contact', () => {
    expect(deriveState({}, undefined)).to.deep.equal({ state: 'offline' });
    expect(deriveState({ deviceState: 'UNAVAILABLE' }, undefined).state).to.equal('offline');
    expect(deriveState({ deviceState: 'INVALID' }, undefined).state).to.equal('offline');
    expect(deriveState({ endpointState: 'offline' }, undefined).state).to.equal('offline');
    expect(
      deriveState({ deviceState: 'UNAVAILABLE', endpointState: 'online' }, undefined).state,
    ).to.equal('offline');
  });

  it('is idle when the registered phone is not in use', () => {
    expect(deriveState({ deviceState: 'NOT_INUSE' }, undefined)).to.deep.equal({ state: 'idle' });
    expect(deriveState({ endpointState: 'online' }, undefined).state).to.equal('idle');
    expect(
      deriveState({ deviceState: 'UNKNOWN', endpointState: 'online' }, undefined).state,
    ).to.equal('idle');
    // The live device state wins over an endpoint state read earlier.
    expect(
      deriveState({ deviceState: 'NOT_INUSE', endpointState: 'offline' }, undefined).state,
    ).to.equal('idle');
  });

  it('is ringing while the device rings or the engine rings it (with the call id)', () => {
    expect(deriveState({ deviceState: 'RINGING' }, undefined)).to.deep.equal({ state: 'ringing' });
    expect(deriveState({ deviceState: 'NOT_INUSE' }, ringing)).to.deep.equal({
      state: 'ringing',
      callId: 'c-1',
    });
    expect(deriveState({ deviceState: 'RINGING' }, ringing).callId).to.equal('c-1');
    // A leg being dialled names the call of a ringing device, but does not ring by itself.
    const dialing: EngineView = { callId: 'c-2', answered: false, dialing: true };
    expect(deriveState({ deviceState: 'NOT_INUSE' }, dialing)).to.deep.equal({ state: 'idle' });
    expect(deriveState({ deviceState: 'RINGING' }, dialing)).to.deep.equal({
      state: 'ringing',
      callId: 'c-2',
    });
  });

  it('is on_call when the device is in use or the engine saw the answer first', () => {
    for (const device of ['INUSE', 'BUSY', 'ONHOLD', 'RINGINUSE', 'inuse'])
      expect(deriveState({ deviceState: device }, undefined).state, device).to.equal('on_call');
    expect(deriveState({ deviceState: 'RINGING' }, talking)).to.deep.equal({
      state: 'on_call',
      callId: 'c-1',
    });
    expect(deriveState({ deviceState: 'INUSE' }, ringing).state).to.equal('on_call');
  });

  it('a leg the engine hangs up unconnected (a ring-all another operator won) keeps ringing with its call, never on_call', () => {
    const releasing: EngineView = { callId: 'c-3', answered: false, releasing: true };
    // Still ringing as the engine cancels it, or picked up a moment too late: that call's leg.
    expect(deriveState({ deviceState: 'RINGING' }, releasing)).to.deep.equal({
      state: 'ringing',
      callId: 'c-3',
    });
    expect(deriveState({ deviceState: 'INUSE' }, releasing)).to.deep.equal({
      state: 'ringing',
      callId: 'c-3',
    });
    // Once the phone is idle (or gone), the leg says nothing more.
    expect(deriveState({ deviceState: 'NOT_INUSE' }, releasing)).to.deep.equal({ state: 'idle' });
    expect(deriveState({ deviceState: 'UNAVAILABLE' }, releasing)).to.deep.equal({
      state: 'offline',
    });
    // On hold or busy is another call of the phone.
    expect(deriveState({ deviceState: 'ONHOLD' }, releasing)).to.deep.equal({ state: 'on_call' });
  });

  it('takes calls only when available, and neither offline nor on a call', () => {
    const cases: Array<[OperatorState, 'available' | 'break' | 'dnd', boolean]> = [
      ['idle', 'available', true],
      ['ringing', 'available', true],
      ['offline', 'available', false],
      ['on_call', 'available', false],
      ['idle', 'break', false],
      ['idle', 'dnd', false],
    ];
    for (const [state, status, expected] of cases)
      expect(takesCalls({ state, status }), `${state}/${status}`).to.equal(expected);
  });

  it('knows the operators from OPERATOR_EXTENSIONS, else from the rest of the configuration', () => {
    const base = {
      FALLBACK_ROUTE: 'sequential:105,101:timeout=10',
      RING_TIMEOUT_SEC: 20,
      OPERATOR_IP_MAP: [{ ip: '10.0.0.5', extension: '107' }],
      SIM_EXTENSIONS: ['101', '102'],
    };
    expect(
      operatorExtensions({ ...base, OPERATOR_EXTENSIONS: ['201', '202'] }, true),
    ).to.deep.equal(['201', '202']);
    expect(operatorExtensions(base, false)).to.deep.equal(['105', '101', '107']);
    expect(operatorExtensions(base, true)).to.deep.equal(['105', '101', '107', '102']);
    expect(operatorExtensions({ ...base, FALLBACK_ROUTE: 'hangup' }, false)).to.deep.equal(['107']);
  });
});

/** The `operator.state` event OperatorStore.saveChanges makes of a change. */
function eventOf({ operator, previousState, atMs }: OperatorChange): LifecycleEvent {
  return createEventEnvelope(
    'operator.state',
    `operator-${operator.extension}`,
    operator.eventSeq,
    {
      extension: operator.extension,
      state: operator.state,
      status: operator.status,
      since: operator.since,
      ...(previousState ? { previousState } : {}),
    },
    atMs,
  );
}

/** A presence service over an in-memory store that records what it was asked to write. */
function service(options: { stored?: StoredOperator[]; engine?: Map<string, EngineView> } = {}) {
  const saved: Array<{ op: StoredOperator; previousState?: OperatorState }> = [];
  const committed: LifecycleEvent[] = [];
  let clock = Date.UTC(2025, 0, 31, 9, 0, 0);
  const presence = new PresenceService({
    extensions: ['101', '102'],
    store: {
      loadAll: () => Promise.resolve(new Map((options.stored ?? []).map((o) => [o.extension, o]))),
      saveChanges: (changes) => {
        for (const { operator, previousState } of changes)
          saved.push({ op: { ...operator }, ...(previousState ? { previousState } : {}) });
        return Promise.resolve(changes.map(eventOf));
      },
    },
    logger: createSilentLogger(),
    engineView: (ext) => options.engine?.get(ext),
    committed: (event) => committed.push(event),
    now: () => (clock += 1000),
    recheckDelayMs: 5,
  });
  return { presence, saved, committed };
}

describe('operator presence: the service', () => {
  it('starts offline and available, follows Asterisk, numbers and commits each change', async () => {
    const { presence, saved, committed } = service();
    await presence.load();
    expect(presence.list().map((o) => [o.extension, o.state, o.status])).to.deep.equal([
      ['101', 'offline', 'available'],
      ['102', 'offline', 'available'],
    ]);
    const changes: string[] = [];
    presence.on('change', (op) => changes.push(`${op.extension}:${op.state}`));
    presence.asteriskSaid('101', { deviceState: 'NOT_INUSE', endpointState: 'online' });
    presence.asteriskSaid('101', { deviceState: 'NOT_INUSE' }); // no change: no event
    presence.asteriskSaid('101', { deviceState: 'RINGING' });
    presence.asteriskSaid('101', { deviceState: 'INUSE' });
    presence.asteriskSaid('999', { deviceState: 'INUSE' }); // not an operator
    await presence.flush();
    expect(changes).to.deep.equal(['101:idle', '101:ringing', '101:on_call']);
    expect(saved.map((s) => [s.op.state, s.op.eventSeq, s.previousState])).to.deep.equal([
      ['idle', 1, 'offline'],
      ['ringing', 2, 'idle'],
      ['on_call', 3, 'ringing'],
    ]);
    expect(committed.map((e) => e.sequence)).to.deep.equal([1, 2, 3]);
    expect(presence.get('101').since).to.equal(saved[2]!.op.since);
    expect(() => presence.get('103')).to.throw(OperatorNotFoundError);
  });

  it('sets a status (stored, once), and routing skips operators who do not take calls', async () => {
    const { presence, saved } = service({
      stored: [
        {
          extension: '102',
          state: 'on_call',
          status: 'dnd',
          since: '2025-01-31T08:00:00.000Z',
          eventSeq: 7,
        },
      ],
    });
    await presence.load();
    // Not read from Asterisk yet: the stored state may be stale, only the status counts.
    expect(presence.takesCalls('101')).to.equal(true);
    expect(presence.takesCalls('102')).to.equal(false);
    expect(presence.takesCalls('555')).to.equal(true); // not an operator: always rung
    presence.asteriskSaid('101', { deviceState: 'NOT_INUSE' });
    presence.asteriskSaid('102', { deviceState: 'NOT_INUSE' });
    const onBreak = await presence.setStatus('101', 'break');
    expect(onBreak).to.include({ extension: '101', status: 'break', state: 'idle' });
    expect(presence.takesCalls('101')).to.equal(false);
    await presence.setStatus('101', 'break'); // the same status: nothing written
    await presence.setStatus('102', 'available');
    expect(presence.takesCalls('102')).to.equal(true);
    presence.asteriskSaid('102', { deviceState: 'INUSE' });
    expect(presence.takesCalls('102')).to.equal(false);
    await presence.flush();
    const of102 = saved.filter((s) => s.op.extension === '102').map((s) => s.op.eventSeq);
    expect(of102).to.deep.equal([8, 9, 10]);
    const statusOnly = saved.find((s) => s.op.status === 'break')!;
    expect(statusOnly).to.not.have.property('previousState');
    let missing: unknown;
    try {
      await presence.setStatus('103', 'dnd');
    } catch (err) {
      missing = err;
    }
    expect(missing).to.be.instanceOf(OperatorNotFoundError);
  });

  it("takes the engine's call id, and looks again when a call event arrives", async () => {
    const engine = new Map<string, EngineView>();
    const { presence } = service({ engine });
    await presence.load();
    presence.asteriskSaid('101', { deviceState: 'NOT_INUSE' });
    engine.set('101', { callId: 'call-9', answered: false });
    const next = new Promise((resolve) => presence.once('change', resolve));
    presence.callEvent(
      createEventEnvelope('call.ringing', 'call-9', 2, { extension: '101', from: '1', to: '2' }),
    );
    await next;
    expect(presence.get('101')).to.include({ state: 'ringing', callId: 'call-9' });
    // The engine lets go of the leg after Asterisk already said idle: a recheck catches up.
    engine.delete('101');
    const idle = new Promise((resolve) => presence.once('change', resolve));
    await idle;
    expect(presence.get('101')).to.deep.include({ state: 'idle' });
    expect(presence.get('101')).to.not.have.property('callId');
    presence.stop();
  });

  it('a late answer the engine hangs up: no on_call without a call; on that call until idle when Asterisk said so first', async () => {
    const engine = new Map<string, EngineView>();
    const { presence, saved } = service({ engine });
    await presence.load();
    presence.asteriskSaid('101', { deviceState: 'NOT_INUSE' });
    presence.asteriskSaid('102', { deviceState: 'NOT_INUSE' });
    engine.set('101', { callId: 'call-5', answered: false });
    engine.set('102', { callId: 'call-5', answered: false });
    presence.asteriskSaid('101', { deviceState: 'RINGING' });
    presence.asteriskSaid('102', { deviceState: 'RINGING' });
    // 101 won: the engine hangs up 102's leg, then 102's phone reports the answer it sent anyway.
    engine.set('101', { callId: 'call-5', answered: true });
    engine.set('102', { callId: 'call-5', answered: false, releasing: true });
    presence.asteriskSaid('101', { deviceState: 'INUSE' });
    presence.asteriskSaid('102', { deviceState: 'INUSE' });
    expect(presence.get('102')).to.include({ state: 'ringing', callId: 'call-5' });
    engine.delete('102');
    presence.asteriskSaid('102', { deviceState: 'NOT_INUSE' });
    // The other order: 102's phone is in use before the engine decided; then it loses.
    engine.set('102', { callId: 'call-6', answered: false });
    presence.asteriskSaid('102', { deviceState: 'RINGING' });
    presence.asteriskSaid('102', { deviceState: 'INUSE' });
    engine.set('102', { callId: 'call-6', answered: false, releasing: true });
    presence.recompute('102');
    engine.delete('102');
    presence.asteriskSaid('102', { deviceState: 'NOT_INUSE' });
    await presence.flush();
    const of102 = saved
      .filter((s) => s.op.extension === '102')
      .map((s) => [s.op.state, s.op.callId]);
    expect(of102).to.deep.equal([
      ['idle', undefined],
      ['ringing', 'call-5'],
      ['idle', undefined],
      ['ringing', 'call-6'],
      ['on_call', 'call-6'],
      ['idle', undefined],
    ]);
    presence.stop();
  });
});

/**
 * A presence service over a store whose writes wait until the test answers them (each
 * `saveChanges` call is one write, counted by a sinon spy).
 */
function gatedService(options: { maxWriteAttempts?: number } = {}) {
  const writes: Array<{ changes: OperatorChange[]; answer: (err?: Error) => void }> = [];
  let sent: (() => void) | undefined;
  const saveChanges = sinon.spy(
    (changes: readonly OperatorChange[]) =>
      new Promise<LifecycleEvent[]>((resolve, reject) => {
        writes.push({
          changes: changes.map((c) => ({ ...c, operator: { ...c.operator } })),
          answer: (err) => (err ? reject(err) : resolve(changes.map(eventOf))),
        });
        sent?.();
      }),
  );
  const logger = createSilentLogger();
  // winston's overloads hide the (message, fields) one from sinon's types.
  const errors = sinon.spy(logger, 'error') as unknown as sinon.SinonSpy<[string, object?]>;
  const committed: string[] = [];
  let clock = Date.UTC(2025, 0, 31, 9, 0, 0);
  const presence = new PresenceService({
    extensions: ['101', '102', '103'],
    store: { loadAll: () => Promise.resolve(new Map()), saveChanges },
    logger,
    committed: (event) => committed.push(`${event.callId}#${event.sequence}`),
    now: () => (clock += 1000),
    retryDelayMs: 1,
    ...options,
  });
  /** The `index`th write (0 first), once the service sent it. */
  const write = async (index: number) => {
    while (writes.length <= index) await new Promise<void>((resolve) => (sent = resolve));
    return writes[index]!;
  };
  /** What a write holds: `<extension>:<state>/<status>#<sequence>`. */
  const shown = (w: { changes: OperatorChange[] }) =>
    w.changes.map(({ operator: o }) => `${o.extension}:${o.state}/${o.status}#${o.eventSeq}`);
  return { presence, saveChanges, write, shown, committed, errors };
}

/** Settles once the event loop went round (promises chained on what happened so far ran). */
const aTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Whether `promise` has settled yet (after a turn), without waiting for it. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await aTurn();
  return done;
}

describe('operator presence: group commit', () => {
  it('changes made while a write is in flight go to the store together in the next write', async () => {
    const { presence, saveChanges, write, shown, committed } = gatedService();
    await presence.load();
    presence.asteriskSaid('101', { deviceState: 'INUSE' });
    const first = await write(0);
    expect(shown(first)).to.deep.equal(['101:on_call/available#1']);
    // Calls end at once while it is in flight: phones go idle, one rings again, a status is set.
    const changes: string[] = [];
    presence.on('change', (op) => changes.push(`${op.extension}:${op.state}/${op.status}`));
    presence.asteriskSaid('102', { deviceState: 'INUSE' });
    presence.asteriskSaid('101', { deviceState: 'NOT_INUSE' });
    presence.asteriskSaid('102', { deviceState: 'NOT_INUSE' });
    const onBreak = presence.setStatus('103', 'break');
    presence.asteriskSaid('103', { deviceState: 'NOT_INUSE' });
    presence.asteriskSaid('101', { deviceState: 'RINGING' });
    // The in-process event is synchronous, with every change.
    expect(changes).to.deep.equal([
      '102:on_call/available',
      '101:idle/available',
      '102:idle/available',
      '103:offline/break',
      '103:idle/break',
      '101:ringing/available',
    ]);
    expect(saveChanges.callCount).to.equal(1);
    expect(await settled(onBreak)).to.equal(false);
    first.answer();
    const second = await write(1);
    expect(shown(second)).to.deep.equal([
      '102:on_call/available#1',
      '101:idle/available#2',
      '102:idle/available#2',
      '103:offline/break#1',
      '103:idle/break#2',
      '101:ringing/available#3',
    ]);
    expect(second.changes.map((c) => c.previousState)).to.deep.equal([
      'offline',
      'on_call',
      'on_call',
      undefined,
      'offline',
      'idle',
    ]);
    // Its own change is not stored yet.
    expect(await settled(onBreak)).to.equal(false);
    expect(committed).to.deep.equal(['operator-101#1']);
    second.answer();
    expect(await onBreak).to.include({ extension: '103', status: 'break', state: 'idle' });
    await presence.flush();
    expect(saveChanges.callCount).to.equal(2);
    expect(committed).to.deep.equal([
      'operator-101#1',
      'operator-102#1',
      'operator-101#2',
      'operator-102#2',
      'operator-103#1',
      'operator-103#2',
      'operator-101#3',
    ]);
  });

  it('flush waits for the changes queued behind the write in flight', async () => {
    const { presence, write } = gatedService();
    await presence.load();
    presence.asteriskSaid('101', { deviceState: 'NOT_INUSE' });
    const first = await write(0);
    presence.asteriskSaid('102', { deviceState: 'NOT_INUSE' });
    const flushed = presence.flush();
    first.answer();
    expect(await settled(flushed)).to.equal(false);
    (await write(1)).answer();
    await flushed;
  });

  it('a failed write is logged and its changes are written again in front of the later ones', async () => {
    const { presence, saveChanges, write, shown, committed, errors } = gatedService();
    await presence.load();
    const onBreak = presence.setStatus('101', 'break');
    const first = await write(0);
    presence.asteriskSaid('102', { deviceState: 'NOT_INUSE' });
    first.answer(new Error('disk I/O error'));
    const second = await write(1);
    expect(errors.calledWithMatch('could not store operator changes; writing them again')).to.equal(
      true,
    );
    expect(shown(second)).to.deep.equal(['101:offline/break#1', '102:idle/available#1']);
    expect(await settled(onBreak)).to.equal(false);
    second.answer();
    expect(await onBreak).to.include({ status: 'break' });
    await presence.flush();
    expect(committed).to.deep.equal(['operator-101#1', 'operator-102#1']);
    expect(saveChanges.callCount).to.equal(2);
  });

  it('a change whose writes keep failing is given up: its setStatus rejects with the store error, later changes are stored', async () => {
    const { presence, write, shown, committed, errors } = gatedService({ maxWriteAttempts: 2 });
    await presence.load();
    const dnd = presence.setStatus('101', 'dnd');
    (await write(0)).answer(new Error('disk full'));
    presence.asteriskSaid('102', { deviceState: 'NOT_INUSE' });
    const second = await write(1);
    expect(shown(second)).to.deep.equal(['101:offline/dnd#1', '102:idle/available#1']);
    const failure = new Error('disk still full');
    second.answer(failure);
    let rejected: unknown;
    try {
      await dnd;
    } catch (err) {
      rejected = err;
    }
    expect(rejected).to.equal(failure);
    expect(
      errors.calledWithMatch(
        'gave up storing an operator change: its operator.state event is lost',
        {
          extension: '101',
          sequence: 1,
        },
      ),
    ).to.equal(true);
    const third = await write(2);
    expect(shown(third)).to.deep.equal(['102:idle/available#1']);
    third.answer();
    await presence.flush();
    expect(committed).to.deep.equal(['operator-102#1']);
    // The operator's next change is stored (the row catches up), with the next sequence.
    const available = presence.setStatus('101', 'available');
    const fourth = await write(3);
    expect(shown(fourth)).to.deep.equal(['101:offline/available#2']);
    fourth.answer();
    await available;
    expect(committed).to.deep.equal(['operator-102#1', 'operator-101#2']);
  });
});
