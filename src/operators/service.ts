/**
 * Operator presence: the state of every configured operator's phone, learned from Asterisk
 * (device and endpoint states, fed by stasis.ts) and from the engine's own calls (which call
 * rings or holds the phone), and the status each operator chose (`PUT
 * /v1/operators/{extension}/status`).
 *
 * Every change (state or status) is published three ways, in this order:
 * 1. the in-process `change` event (`service.on('change', (op) => …)`), synchronously;
 * 2. the store: the operator's row and its `operator.state` event in one transaction;
 * 3. the committed event to `committed` (the notifier: webhooks, notifier.ts).
 *
 * Changes are group-committed: one write to the store is in flight at a time, and the changes
 * made while it is (of every operator) are written together by the next one, as one write batch
 * of the store (`OperatorStore.saveChanges`: one transaction, one round trip to the SQLite
 * thread). So a burst of changes (many calls ending at once) costs a few writes, not one each,
 * and the events do not lag behind the phones. Events commit in the order the changes happened:
 * per operator with strictly increasing sequences (two changes of one operator in a batch are
 * two events, the row ends at the last), and across operators in change order; `committed` gets
 * them in that order. {@link PresenceService.setStatus} resolves once its own change committed.
 *
 * A failed write is logged and its changes are written again, in front of the changes made
 * since, after a short delay that doubles with each failure in a row
 * ({@link PresenceServiceDeps.retryDelayMs}); a change whose write failed
 * {@link PresenceServiceDeps.maxWriteAttempts} times is given up (logged as an error: its
 * `operator.state` event is lost, its operator's row catches up with the operator's next change)
 * and its `setStatus` rejects with the store's error. The changes behind it are written as usual.
 *
 * Inbound routing asks {@link PresenceService.takesCalls} before ringing an operator.
 */
import { EventEmitter } from 'node:events';
import type { LifecycleEvent } from '../events/types.ts';
import type { Logger } from '../logging/logger.ts';
import { toIsoTime } from '../store/schema.ts';
import {
  deriveState,
  takesCalls,
  type AsteriskView,
  type EngineView,
  type Operator,
  type OperatorStatus,
} from './model.ts';
import type { OperatorChange, OperatorStore, StoredOperator } from './store.ts';

/** No operator has this extension. HTTP 404 `operator_not_found`. */
export class OperatorNotFoundError extends Error {
  override readonly name = 'OperatorNotFoundError';
  constructor(readonly extension: string) {
    super(`no operator has extension ${extension}`);
  }
}

/** What {@link PresenceService} needs. */
export interface PresenceServiceDeps {
  /** The operator extensions (OPERATOR_EXTENSIONS, or what the configuration implies). */
  extensions: readonly string[];
  store: Pick<OperatorStore, 'loadAll' | 'saveChanges'>;
  logger: Logger;
  /**
   * What the engine's live calls say about an extension (CallService.operatorActivity); absent:
   * Asterisk's word only.
   */
  engineView?: (extension: string) => EngineView | undefined;
  /** Where committed `operator.state` events go (OperatorNotifier.committed). */
  committed?: (event: LifecycleEvent) => void;
  now?: () => number;
  /**
   * While the engine's calls and Asterisk disagree (a leg the engine still counts, a device
   * already idle), the state is looked at again after this long, ms (default 500).
   */
  recheckDelayMs?: number;
  /**
   * After a failed write, its changes are written again after this long, ms, doubled with each
   * failure in a row up to {@link MAX_RETRY_DELAY_MS} (default 100).
   */
  retryDelayMs?: number;
  /**
   * How many times a change's write may fail before the change is given up (default 10: with the
   * default delays, a store unreachable for about 20 s loses nothing, and a status request
   * waiting for its change answers within about 21 s, before common HTTP client time-outs).
   */
  maxWriteAttempts?: number;
}

/** Longest wait before writing again after failed writes, ms. */
const MAX_RETRY_DELAY_MS = 5000;

/** How many times in a row a disagreement is looked at again before waiting for news. */
const MAX_RECHECKS = 20;

/** A change waiting for its write, or in it. */
interface PendingChange extends OperatorChange {
  /** Failed writes so far. */
  attempts: number;
  /** Settles the change's promise: committed (undefined) or given up (the store's error). */
  settle: (err?: Error) => void;
}

/** Events of {@link PresenceService}. */
export interface PresenceEvents {
  /** An operator's state or status changed: the operator as it is now. */
  change: [operator: Operator];
}

/** Operator presence (see the module comment). */
export class PresenceService extends EventEmitter<PresenceEvents> {
  private readonly operators = new Map<string, StoredOperator>();
  private readonly asterisk = new Map<string, AsteriskView>();
  /** The calls each operator was last seen in (from call events), to look at again at their end. */
  private readonly callsOf = new Map<string, Set<string>>();
  private readonly rechecks = new Map<string, { timer?: NodeJS.Timeout; count: number }>();
  /** Changes made since the write in flight was sent, in change order. */
  private queue: PendingChange[] = [];
  /** A write is in flight, or waits to be retried. */
  private writing = false;
  /** Writes failed in a row (the retry delay doubles with each). */
  private failuresInARow = 0;
  /** Settles once the last change made so far is stored or given up. */
  private written: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private readonly log: Logger;
  private stopped = false;

  constructor(private readonly deps: PresenceServiceDeps) {
    super();
    this.now = deps.now ?? Date.now;
    this.log = deps.logger;
  }

  /**
   * Load the operators' statuses and last states from the store (an operator never stored
   * starts `offline`, `available`). Call once before anything else.
   */
  async load(): Promise<void> {
    const stored = await this.deps.store.loadAll();
    const since = toIsoTime(this.now());
    for (const extension of this.deps.extensions) {
      const known = stored.get(extension);
      this.operators.set(
        extension,
        known ?? { extension, state: 'offline', status: 'available', since, eventSeq: 0 },
      );
    }
  }

  /** The configured extensions, in configuration order. */
  extensions(): readonly string[] {
    return this.deps.extensions;
  }

  /** Every operator, in configuration order. */
  list(): Operator[] {
    return this.deps.extensions.map((ext) => publicView(this.require(ext)));
  }

  /** @throws OperatorNotFoundError */
  get(extension: string): Operator {
    return publicView(this.require(extension));
  }

  /**
   * Whether inbound routing may ring `extension` now: `available`, not offline, not on a call.
   * An extension that is not an operator's (not configured) is always rung; so is an available
   * operator whose phone Asterisk has not been asked about yet since the engine started (the
   * state it has is the last one stored, maybe stale).
   */
  takesCalls(extension: string): boolean {
    const operator = this.operators.get(extension);
    if (operator === undefined) return true;
    if (!this.asterisk.has(extension) && this.deps.engineView?.(extension) === undefined)
      return operator.status === 'available';
    return takesCalls(operator);
  }

  /**
   * Set an operator's status; resolves once the change (and its `operator.state` event) is
   * stored. Setting the status it already has changes nothing (no event).
   *
   * @throws OperatorNotFoundError; the store's error when the change was given up (its write
   *   failed {@link PresenceServiceDeps.maxWriteAttempts} times, see the module comment)
   */
  async setStatus(extension: string, status: OperatorStatus): Promise<Operator> {
    const operator = this.require(extension);
    if (operator.status === status) {
      await this.written;
      return publicView(operator);
    }
    await this.apply(extension, { ...operator, status });
    return publicView(this.require(extension));
  }

  /**
   * What Asterisk said about an extension's phone (a DeviceStateChanged, an EndpointStateChange,
   * or a read after a (re)connect); fields left undefined are kept. Unknown extensions are
   * ignored.
   */
  asteriskSaid(extension: string, view: AsteriskView): void {
    if (!this.operators.has(extension)) return;
    const current = { ...this.asterisk.get(extension) };
    if (view.deviceState !== undefined) current.deviceState = view.deviceState;
    if (view.endpointState !== undefined) {
      current.endpointState = view.endpointState;
      // A registration seen on the endpoint outdates an "unavailable" device state.
      const device = current.deviceState?.toUpperCase();
      if (
        view.deviceState === undefined &&
        view.endpointState === 'online' &&
        (device === 'UNAVAILABLE' || device === 'INVALID')
      )
        delete current.deviceState;
    }
    this.asterisk.set(extension, current);
    this.recompute(extension);
  }

  /**
   * A call event (the call notifier's sink): the extensions it names, and those seen in the same
   * call before, are looked at again once the call's handling of the event is over.
   */
  callEvent(event: LifecycleEvent): void {
    if (!event.type.startsWith('call.')) return;
    const names = new Set<string>();
    const data = event.data as { extension?: string; from?: string; answeredBy?: string };
    for (const ext of [data.extension, data.from, data.answeredBy])
      if (ext !== undefined && this.operators.has(ext)) names.add(ext);
    for (const ext of names) {
      let calls = this.callsOf.get(ext);
      if (!calls) this.callsOf.set(ext, (calls = new Set()));
      calls.add(event.callId);
    }
    for (const [ext, calls] of this.callsOf) {
      if (!calls.has(event.callId)) continue;
      names.add(ext);
      if (event.type === 'call.ended') {
        calls.delete(event.callId);
        if (calls.size === 0) this.callsOf.delete(ext);
      }
    }
    if (names.size === 0) return;
    setImmediate(() => {
      for (const ext of names) this.recompute(ext);
    });
  }

  /**
   * Resolves once every change made so far is stored, or given up after failed writes (tests,
   * shutdown). Never rejects.
   */
  async flush(): Promise<void> {
    await this.written;
  }

  /**
   * Stop following the phones (engine shutdown): no more state changes or rechecks; changes
   * already made are still written ({@link flush}). Statuses can still be set.
   */
  stop(): void {
    this.stopped = true;
    for (const r of this.rechecks.values()) clearTimeout(r.timer);
    this.rechecks.clear();
  }

  /** Decide the extension's state again from what is known now; publish it when it changed. */
  recompute(extension: string): void {
    const operator = this.operators.get(extension);
    if (!operator || this.stopped) return;
    const asterisk = this.asterisk.get(extension) ?? {};
    const engine = this.deps.engineView?.(extension);
    const next = deriveState(asterisk, engine);
    this.scheduleRecheck(extension, asterisk, engine);
    if (next.state === operator.state && next.callId === operator.callId) return;
    // Still ringing or on the call once the engine let go of its leg (the device's state follows
    // a moment later): the call it was is still the best answer; no change.
    if (next.state === operator.state && next.callId === undefined && operator.state !== 'idle')
      return;
    // The phone picked up a call the engine is now hanging up (it was too late): on that call
    // until the phone is idle, rather than back to ringing.
    if (engine?.releasing && operator.state === 'on_call' && operator.callId === next.callId)
      return;
    const { callId: _old, ...rest } = operator;
    void this.apply(extension, {
      ...rest,
      state: next.state,
      ...(next.callId !== undefined ? { callId: next.callId } : {}),
    }).catch(() => undefined); // logged in apply
  }

  /**
   * The engine still counts a call on the phone while Asterisk says it is idle (or the
   * reverse): one of them has not caught up yet (a leg's end is handled after the device state
   * event). Look again shortly, a bounded number of times.
   */
  private scheduleRecheck(
    extension: string,
    asterisk: AsteriskView,
    engine: EngineView | undefined,
  ): void {
    const device = asterisk.deviceState?.toUpperCase();
    const deviceBusy = device !== undefined && device !== 'NOT_INUSE' && device !== 'UNAVAILABLE';
    const disagree =
      engine !== undefined && !engine.dialing && !engine.releasing
        ? device !== undefined && !deviceBusy
        : false;
    const pending = this.rechecks.get(extension);
    if (!disagree || this.stopped) {
      if (pending) {
        clearTimeout(pending.timer);
        this.rechecks.delete(extension);
      }
      return;
    }
    if (pending?.timer || (pending && pending.count >= MAX_RECHECKS)) return;
    const entry = pending ?? { count: 0 };
    entry.count += 1;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.recompute(extension);
    }, this.deps.recheckDelayMs ?? 500);
    entry.timer.unref();
    this.rechecks.set(extension, entry);
  }

  /**
   * Make `next` the operator's presence: `since` now, the next event sequence; emit `change`,
   * then queue it for the next write (see the module comment).
   *
   * @returns settles once the change committed (and its event went to `committed`); rejects
   *   with the store's error once it was given up
   */
  private apply(
    extension: string,
    next: Omit<StoredOperator, 'since' | 'eventSeq'>,
  ): Promise<void> {
    const before = this.require(extension);
    const now = this.now();
    const operator: StoredOperator = {
      ...next,
      extension,
      since: toIsoTime(now),
      eventSeq: before.eventSeq + 1,
    };
    this.operators.set(extension, operator);
    const previousState = operator.state !== before.state ? before.state : undefined;
    this.log.info('operator presence changed', {
      extension,
      state: operator.state,
      status: operator.status,
      previousState,
      callId: operator.callId,
    });
    try {
      this.emit('change', publicView(operator));
    } catch (err) {
      this.log.error('an operator change listener failed', { extension, err });
    }
    let settle!: (err?: Error) => void;
    const stored = new Promise<void>((resolve, reject) => {
      settle = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.queue.push({
      operator,
      ...(previousState !== undefined ? { previousState } : {}),
      atMs: now,
      attempts: 0,
      settle,
    });
    this.written = stored.catch(() => undefined);
    if (!this.writing) {
      this.writing = true;
      // The other changes of this turn (a call's end recomputes every operator it named) join.
      queueMicrotask(() => void this.writeQueued());
    }
    return stored;
  }

  /**
   * Write every queued change as one batch; once it is answered, write what was queued
   * meanwhile, or retry the batch's changes after a failure.
   */
  private async writeQueued(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    let events: LifecycleEvent[];
    try {
      events = await this.deps.store.saveChanges(batch);
    } catch (err) {
      this.failed(batch, err);
      return;
    }
    this.failuresInARow = 0;
    for (let i = 0; i < batch.length; i++) {
      try {
        this.deps.committed?.(events[i]!);
      } catch (err) {
        this.log.error('the consumer of a committed operator event failed', {
          extension: batch[i]!.operator.extension,
          err,
        });
      }
      batch[i]!.settle();
    }
    this.next();
  }

  /**
   * A batch's write failed: give up the changes that failed too often, put the others back in
   * front of the queue and write again after a delay.
   */
  private failed(batch: PendingChange[], err: unknown): void {
    this.failuresInARow += 1;
    const maxAttempts = this.deps.maxWriteAttempts ?? 10;
    const retry: PendingChange[] = [];
    for (const change of batch) {
      change.attempts += 1;
      if (change.attempts < maxAttempts) {
        retry.push(change);
        continue;
      }
      this.log.error('gave up storing an operator change: its operator.state event is lost', {
        extension: change.operator.extension,
        sequence: change.operator.eventSeq,
        attempts: change.attempts,
        err,
      });
      change.settle(
        err instanceof Error
          ? err
          : new Error(`the operator change could not be stored: ${String(err)}`),
      );
    }
    this.queue = [...retry, ...this.queue];
    if (this.queue.length === 0) {
      this.log.error('could not store operator changes', { changes: batch.length, err });
      this.writing = false;
      return;
    }
    const delayMs = Math.min(
      (this.deps.retryDelayMs ?? 100) * 2 ** (this.failuresInARow - 1),
      MAX_RETRY_DELAY_MS,
    );
    this.log.error('could not store operator changes; writing them again', {
      changes: batch.length,
      retried: retry.length,
      retryInMs: delayMs,
      err,
    });
    setTimeout(() => void this.writeQueued(), delayMs);
  }

  /** The write in flight was answered: write what was queued meanwhile, if anything. */
  private next(): void {
    if (this.queue.length > 0) void this.writeQueued();
    else this.writing = false;
  }

  private require(extension: string): StoredOperator {
    const operator = this.operators.get(extension);
    if (!operator) throw new OperatorNotFoundError(extension);
    return operator;
  }
}

/** The API's view of a stored operator (without its event sequence). */
function publicView(operator: StoredOperator): Operator {
  return {
    extension: operator.extension,
    state: operator.state,
    status: operator.status,
    since: operator.since,
    ...(operator.callId !== undefined &&
    (operator.state === 'ringing' || operator.state === 'on_call')
      ? { callId: operator.callId }
      : {}),
  };
}
