/**
 * Operator presence: the state of every configured operator's phone, learned from Asterisk
 * (device and endpoint states, fed by stasis.ts) and from the engine's own calls (which call
 * rings or holds the phone), and the status each operator chose (`PUT
 * /v1/operators/{extension}/status`).
 *
 * Every change (state or status) is published three ways, in this order:
 * 1. the in-process `change` event (`service.on('change', (op) => …)`), synchronously;
 * 2. the store: the operator's row and its `operator.state` event in one transaction (writes of
 *    all operators are chained, so events commit in the order the changes happened);
 * 3. the committed event to `committed` (the notifier: webhooks, notifier.ts).
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
import type { OperatorStore, StoredOperator } from './store.ts';

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
  store: Pick<OperatorStore, 'loadAll' | 'saveChange'>;
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
}

/** How many times in a row a disagreement is looked at again before waiting for news. */
const MAX_RECHECKS = 20;

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
  private writes: Promise<unknown> = Promise.resolve();
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
   * @throws OperatorNotFoundError; the store's error when the write failed
   */
  async setStatus(extension: string, status: OperatorStatus): Promise<Operator> {
    const operator = this.require(extension);
    if (operator.status === status) {
      await this.writes;
      return publicView(operator);
    }
    const written = this.apply(extension, { ...operator, status });
    await written;
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

  /** Resolves once every change made so far is stored (tests, shutdown). */
  async flush(): Promise<void> {
    await this.writes;
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
   * then store it with its event and deliver the event once committed.
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
    const write = this.writes.then(() =>
      this.deps.store.saveChange(operator, previousState, now).then(
        (event) => this.deps.committed?.(event),
        (err: unknown) => {
          this.log.error('could not store an operator change', { extension, err });
          throw err;
        },
      ),
    );
    this.writes = write.catch(() => undefined);
    return write;
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
