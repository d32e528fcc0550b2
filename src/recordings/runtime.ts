/**
 * What the parts of the recordings service share (src/recordings/service.ts wires them): the
 * recordings held in memory, by call and by Asterisk name ({@link Entry}), the service's
 * dependencies and counters, whether the engine is stopping, and the steps every part ends a
 * recording with: failing it, settling it (letting go of the call, forgetting the entry once its
 * final status is in the store) and the waits that a stop cuts short.
 */
import { CancellableSleeps } from '../ari/backoff.ts';
import { clearFinishTimers, type Entry, type RecordingFailureStage } from './entry.ts';
import { createRecordingMetrics, type RecordingMetrics } from './metrics.ts';
import type { RecordingServiceDeps } from './service.ts';
import { persist } from './store.ts';

/** The recordings in memory and the steps shared by the parts of the recordings service. */
export class RecordingRuntime {
  /** The recordings in memory, by call id. */
  readonly byCall = new Map<string, Entry>();
  /** The same, by Asterisk's recording name (the ARI events name them so). */
  readonly byName = new Map<string, Entry>();
  readonly metrics: RecordingMetrics;
  /** The engine is stopping ({@link stop}): nothing new starts, waits end at once. */
  stopped = false;
  private readonly sleeps = new CancellableSleeps(true);
  private readonly evictions = new Set<NodeJS.Timeout>();

  constructor(readonly deps: RecordingServiceDeps) {
    this.metrics = createRecordingMetrics(deps.registry);
  }

  /** Hold a new recording in memory (by call and by name), with its own child logger. */
  register(
    fields: Pick<Entry, 'callId' | 'name' | 'key' | 'call' | 'status' | 'callEnded' | 'readySent'>,
  ): Entry {
    const entry: Entry = {
      ...fields,
      log: this.deps.logger.child({ callId: fields.callId, recordingName: fields.name }),
      finished: false,
      finalizing: false,
      checking: false,
      writes: Promise.resolve(),
    };
    this.byCall.set(entry.callId, entry);
    this.byName.set(entry.name, entry);
    return entry;
  }

  /**
   * The recording failed at `stage`: counted (`aricrm_recording_failures_total{stage}`), logged
   * at error with `fields`, `failed` written to the store, then settled. A recording already
   * `stored` or `failed` is left as it is.
   */
  fail(
    entry: Entry,
    stage: RecordingFailureStage,
    err: unknown,
    fields: Record<string, unknown> = {},
  ): void {
    if (entry.status === 'failed' || entry.status === 'stored') return;
    entry.status = 'failed';
    this.metrics.failures.inc({ stage });
    entry.log.error('recording failed', { stage, ...fields, err });
    void persist(this, entry, 'failed');
    this.settle(entry);
  }

  /**
   * The recording is settled: let go of the call; forget the entry once its final status is in
   * the store (which answers from then on), or after `retainMs` when that is set. Nothing of a
   * settled recording stays in memory (`npm run bench`: no heap growth over 50 000 calls).
   */
  settle(entry: Entry): void {
    entry.call = undefined;
    clearFinishTimers(entry);
    if (this.stopped) return;
    const retainMs = this.deps.options.retainMs;
    if (retainMs === undefined) {
      void entry.writes.then(() => this.forget(entry));
      return;
    }
    const timer = setTimeout(() => {
      this.evictions.delete(timer);
      this.forget(entry);
    }, retainMs);
    timer.unref();
    this.evictions.add(timer);
  }

  /** Drop the entry from memory (unless a newer entry took its call or name). */
  forget(entry: Entry): void {
    if (this.byCall.get(entry.callId) === entry) this.byCall.delete(entry.callId);
    if (this.byName.get(entry.name) === entry) this.byName.delete(entry.name);
  }

  /** Resolves after `ms` (a retry delay), or at once when the engine stops. Never rejects. */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return this.sleeps.sleep(ms);
  }

  /**
   * Engine stop: from now on nothing starts; retry delays end at once (their loops see
   * {@link stopped} and give up), timers are cleared, and each recording not settled is logged
   * as left in Asterisk. Idempotent.
   */
  stop(): void {
    this.stopped = true;
    this.sleeps.wakeAll();
    for (const timer of this.evictions) clearTimeout(timer);
    this.evictions.clear();
    for (const entry of this.byCall.values()) {
      clearFinishTimers(entry);
      if (entry.status !== 'stored' && entry.status !== 'failed')
        entry.log.warn('engine stopping: recording left in Asterisk', { status: entry.status });
    }
  }
}
