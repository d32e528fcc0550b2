/**
 * The download of a finished bridge recording, steps 3 to 5 of the flow in
 * src/recordings/service.ts:
 *
 * - RecordingFinished (or RecordingFailed) of the recording, or `finishTimeoutMs` after the
 *   call's end without it ({@link RecordingDownloads.armFinishTimer}), starts the download;
 * - each try fetches the file (`GET /recordings/stored/{name}/file`), checks it ({@link verifyWav})
 *   and keeps it in the {@link RecordingStorage}; a failed try is retried with doubling delays
 *   (`aricrm_recording_download_retries_total{stage}`), a recording Asterisk does not have fails
 *   at once ({@link RecordingDownloads.missing}), ARI unreachable waits for the reconnect;
 * - once the file is stored and `call.ended` went out, `recording.ready` goes out through the
 *   call notifier on the call's own `Call`, then `stored` is written in the journal's commit of
 *   that event, and only then is Asterisk's copy deleted (`DELETE /recordings/stored/{name}`).
 *
 * The downloads in progress are tracked so that a shutdown can wait for them
 * ({@link RecordingDownloads.finishDownloads}). Nothing here throws into the call flows.
 */
import { computeBackoffDelay } from '../ari/backoff.ts';
import { AriConnectionError, AriNotFoundError } from '../ari/errors.ts';
import type { AriEventOf } from '../ari/types.ts';
import { locateRecording, type AsteriskLocation } from './asterisk.ts';
import {
  clearFinishTimers,
  RECORDING_FORMAT,
  type Entry,
  type RecordingFailureStage,
} from './entry.ts';
import type { RecordingRuntime } from './runtime.ts';
import type { RecordingStorage } from './storage.ts';
import { persist } from './store.ts';
import { verifyWav } from './wav.ts';

/** A failed download try, with the stage it failed at. */
class StageError extends Error {
  constructor(
    readonly stage: RecordingFailureStage,
    readonly reason: unknown,
  ) {
    super(reason instanceof Error ? reason.message : String(reason));
  }
}

/** Waiting for the file, fetching it, `recording.ready`, and the clean-up in Asterisk. */
export class RecordingDownloads {
  /**
   * Downloads in progress ({@link finishDownloads}): each try in flight, then the `stored` write,
   * `recording.ready` and the clean-up in Asterisk that follow a stored file.
   */
  private readonly busy = new Set<Promise<unknown>>();

  constructor(private readonly rt: RecordingRuntime) {}

  /** RecordingFinished or RecordingFailed of the recording: failed, or download it. */
  recordingEnded(
    entry: Entry,
    event: AriEventOf<'RecordingFinished'> | AriEventOf<'RecordingFailed'>,
  ): void {
    const rec = event.recording;
    entry.finished = true;
    clearFinishTimers(entry);
    if (event.type === 'RecordingFailed' || rec.state === 'failed' || rec.state === 'canceled') {
      this.rt.fail(entry, 'asterisk', new Error(`Asterisk says the recording ${rec.state}`), {
        cause: rec.cause,
      });
      return;
    }
    if (typeof rec.duration === 'number') entry.durationSec = rec.duration;
    entry.log.info('recording finished in Asterisk', { durationSec: rec.duration });
    this.download(entry);
  }

  /** After the call's end: fetch the file anyway if no RecordingFinished came by then. */
  armFinishTimer(entry: Entry): void {
    if (this.rt.stopped) return;
    if (entry.finishTimer) clearTimeout(entry.finishTimer);
    const waitMs = this.rt.deps.options.finishTimeoutMs ?? 30_000;
    entry.finishTimer = setTimeout(() => {
      entry.finishTimer = undefined;
      if (entry.finished || this.rt.stopped) return;
      entry.log.warn('no RecordingFinished after the call ended; fetching the recording', {
        waitedMs: waitMs,
      });
      this.download(entry);
    }, waitMs);
    entry.finishTimer.unref();
  }

  /** Start the download loop of a recording still waiting for it (`starting` or `recording`). */
  download(entry: Entry): void {
    if (this.rt.stopped || (entry.status !== 'starting' && entry.status !== 'recording')) return;
    clearFinishTimers(entry);
    entry.status = 'downloading';
    void this.downloadLoop(entry);
  }

  private async downloadLoop(entry: Entry): Promise<void> {
    const { rt } = this;
    const { attempts, initialDelayMs, maxDelayMs } = rt.deps.options.download;
    for (let attempt = 1; !rt.stopped; attempt++) {
      try {
        await this.track(this.fetchAndStore(entry));
        return;
      } catch (err) {
        const stage = err instanceof StageError ? err.stage : 'download';
        const cause = err instanceof StageError ? err.reason : err;
        if (rt.stopped) return;
        if (cause instanceof AriNotFoundError && (await this.notInAsterisk(entry))) return;
        if (rt.stopped) return;
        if (cause instanceof AriConnectionError && !rt.deps.gateway.isConnected()) {
          // Not the recording's fault: try again once ARI is back (recovery.ts, connected), without
          // using up tries however long the outage lasts.
          entry.status = 'recording';
          entry.log.warn('Asterisk unreachable; the recording is fetched when ARI reconnects', {
            err: cause,
          });
          return;
        }
        if (attempt >= attempts) {
          rt.fail(entry, stage, cause, { attempts: attempt });
          return;
        }
        const delayMs = computeBackoffDelay(attempt - 1, { initialDelayMs, maxDelayMs, jitter: 0 });
        rt.metrics.retries.inc({ stage });
        entry.log.warn('recording download failed; retrying', {
          stage,
          attempt,
          attempts,
          retryInMs: delayMs,
          err: cause,
        });
        await rt.sleep(delayMs);
      }
    }
  }

  /** One try: fetch, verify, keep in the storage; then `recording.ready` when the call ended. */
  private async fetchAndStore(entry: Entry): Promise<void> {
    const { gateway, storage } = this.rt.deps;
    let file: Buffer;
    try {
      // No metadata request first: a file that is not the WAV asked for fails verifyWav below.
      file = await gateway.recordings.getStoredFile(entry.name);
    } catch (err) {
      throw new StageError('download', err);
    }
    let durationSec: number;
    try {
      durationSec = verifyWav(file, entry.durationSec).durationSec;
    } catch (err) {
      throw new StageError('verify', err);
    }
    try {
      await storage.put(entry.key, file);
    } catch (err) {
      throw new StageError('storage', err);
    }
    this.complete(entry, file.length, durationSec);
  }

  /**
   * The file is in the engine's storage. `durationSec` is the file's length in whole seconds,
   * rounded down as Asterisk rounds its RecordingFinished `duration` (`WavInfo.durationSec`):
   * it is used only when no RecordingFinished gave the length, so a recording reports the same
   * `durationSec` whether or not its event came.
   */
  private complete(entry: Entry, bytes: number, durationSec: number): void {
    if (entry.status === 'stored' || entry.status === 'failed') return;
    entry.status = 'stored';
    entry.finished = true;
    entry.bytes = bytes;
    entry.durationSec ??= durationSec;
    clearFinishTimers(entry);
    this.rt.metrics.stored.inc();
    entry.log.info('recording stored', {
      bytes: entry.bytes,
      durationSec: entry.durationSec,
      key: entry.key,
      storage: this.rt.deps.storage.description,
    });
    this.maybeReady(entry);
  }

  /**
   * Once the file is stored and `call.ended` went out: send `recording.ready` (unless an earlier
   * run did), then, once the journal committed it, {@link finalize}.
   */
  maybeReady(entry: Entry): void {
    if (entry.status !== 'stored' || !entry.callEnded || entry.finalizing) return;
    const { deps } = this.rt;
    if (!entry.readySent) {
      if (!entry.call) return;
      const link = deps.links.sign(entry.callId);
      deps.notifier.recordingReady(entry.call, {
        recordingUrl: link.url,
        expiresAt: new Date(link.expiresAtSec * 1000).toISOString(),
        bytes: entry.bytes ?? 0,
        durationSec: entry.durationSec ?? 0,
        format: RECORDING_FORMAT,
      });
      entry.readySent = true;
      entry.log.info('recording ready', { bytes: entry.bytes, durationSec: entry.durationSec });
    }
    entry.finalizing = true;
    entry.call = undefined;
    // Through the journal, `stored` is recorded in this turn: it commits with `recording.ready`.
    const stored = deps.journal?.recordRecording ? persist(this.rt, entry, 'stored') : undefined;
    const journal = deps.journal;
    if (!journal) {
      void this.track(this.finalize(entry, stored));
      return;
    }
    // Tracked from now (within the try that stored the file): a shutdown waits for the commit too.
    let finalized!: () => void;
    void this.track(new Promise<void>((resolve) => (finalized = resolve)));
    journal.whenCommitted(
      entry.callId,
      () => void this.finalize(entry, stored).then(finalized, finalized),
    );
  }

  /**
   * `recording.ready` is committed: write `stored` (unless `stored` is that write, recorded with
   * it through the journal), then delete Asterisk's copy.
   */
  private async finalize(entry: Entry, stored?: Promise<boolean>): Promise<void> {
    const { rt } = this;
    if (rt.stopped) {
      entry.log.info(
        stored
          ? "engine stopping: the recording is stored; Asterisk's copy is deleted at the next start"
          : 'engine stopping: the recording is marked stored at the next start',
      );
      return;
    }
    const written = await (stored ?? persist(rt, entry, 'stored'));
    if (!written) {
      entry.log.error('recording stored but the store does not say so; kept in Asterisk');
    } else if (rt.deps.options.deleteFromAsterisk && !rt.stopped) {
      try {
        await rt.deps.gateway.recordings.deleteStored(entry.name);
      } catch (err) {
        rt.metrics.cleanupFailures.inc();
        entry.log.warn('stored recording could not be deleted from Asterisk', { err });
      }
    }
    rt.settle(entry);
  }

  // -------------------------------------------------------------------------------------------
  // Asterisk does not have the file
  // -------------------------------------------------------------------------------------------

  /**
   * `GET /recordings/stored/{name}/file` answered 404: find out why. True when the
   * download loop is done with (the recording is still live, or missing); false to try again
   * (it is stored after all, or Asterisk could not be asked).
   */
  private async notInAsterisk(entry: Entry): Promise<boolean> {
    let where: AsteriskLocation;
    try {
      where = await locateRecording(this.rt.deps.gateway.recordings, entry.name);
    } catch {
      return false;
    }
    if (this.rt.stopped) return true;
    if (where === 'stored') return false;
    if (where === 'missing') {
      await this.missing(entry);
      return true;
    }
    // Still being recorded: fetched too early (the timer after call.ended). Wait again.
    entry.status = 'recording';
    entry.finished = false;
    if (entry.callEnded) {
      const err = await this.stopLive(entry);
      if (err !== undefined && !this.rt.stopped) this.onStopFailed(entry, err);
    }
    return true;
  }

  /**
   * A stop of a live recording asked for by the download ({@link stopLive}) failed: the service
   * wires this to the recovery, which tries it again (`RecordingRecovery.stopFailed`).
   */
  onStopFailed: (entry: Entry, err: unknown) => void = () => undefined;

  /**
   * The call has ended but Asterisk still records it (its bridge was not destroyed): stop the
   * recording (`POST /recordings/live/{name}/stop`; RecordingFinished follows) and wait for it as
   * after any `call.ended`. Resolves undefined when Asterisk stopped it, or answered 404 (it
   * finished meanwhile: its RecordingFinished, or the timer, fetches it); otherwise resolves the
   * gateway's error (a 5xx, no answer, ARI dropped), for the caller to try again. Never rejects.
   */
  async stopLive(entry: Entry): Promise<unknown> {
    entry.log.warn('the call has ended but Asterisk still records it; stopping the recording');
    if (!entry.finishTimer) this.armFinishTimer(entry);
    try {
      await this.rt.deps.gateway.recordings.stopLive(entry.name);
      return undefined;
    } catch (err) {
      return err instanceof AriNotFoundError ? undefined : err;
    }
  }

  /**
   * Asterisk has no such recording (deleted from its spool, Asterisk lost it): if the engine's
   * storage already holds the file (an earlier run stored it but did not get to record that),
   * it is the recording; otherwise the recording failed (`stage="missing"`).
   */
  async missing(entry: Entry): Promise<void> {
    const { storage } = this.rt.deps;
    let kept: Buffer | undefined;
    try {
      if (await storage.stat(entry.key)) kept = await readAll(storage, entry.key);
    } catch (err) {
      entry.log.warn('could not read the recording from the storage', { err });
    }
    if (kept) {
      try {
        const info = verifyWav(kept);
        entry.log.info('Asterisk no longer has the recording; the storage already holds it');
        this.complete(entry, kept.length, info.durationSec);
        return;
      } catch (err) {
        entry.log.warn('the file in the storage is not a complete recording', { err });
      }
    }
    this.rt.fail(
      entry,
      'missing',
      new Error(`Asterisk has no recording ${entry.name}, neither live nor stored`),
    );
  }

  // -------------------------------------------------------------------------------------------
  // Downloads in progress (shutdown)
  // -------------------------------------------------------------------------------------------

  /** `work` counts as a download in progress until it settles ({@link finishDownloads}). */
  private track<T>(work: Promise<T>): Promise<T> {
    this.busy.add(work);
    const done = (): void => void this.busy.delete(work);
    work.then(done, done);
    return work;
  }

  /**
   * Engine shutdown, before the service stops: wait until the downloads in progress are done (a
   * try in flight, then the storing of the file, `recording.ready` once committed and the
   * deletion from Asterisk), those that start meanwhile included. A download waiting for its
   * retry delay is not waited for (it stays in Asterisk for the next start). Resolves true when
   * none is left in progress, false when `timeoutMs` (ms) passed first. Never rejects.
   */
  async finishDownloads(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.busy.size > 0) {
      const leftMs = deadline - Date.now();
      if (leftMs <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled([...this.busy]).then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), leftMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) return this.busy.size === 0;
    }
    return true;
  }
}

/** The whole file under `key` in the storage. */
async function readAll(storage: RecordingStorage, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of storage.read(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
