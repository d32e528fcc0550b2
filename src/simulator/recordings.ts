/**
 * Live and stored recordings (`POST /bridges/{id}/record`, `POST /channels/{id}/record`,
 * `/recordings/...`). RecordingStarted is sent before the HTTP answer (201, state `queued`; the
 * event says `recording`), as in the inbound-answered trace. A bridge recording adds a recorder
 * participant to the bridge (softmix with two channels) and ends when the bridge empties or is
 * destroyed, when `maxDurationSeconds` is reached or on `stop`; RecordingFinished then carries
 * `duration` in whole seconds of simulated time and the file is stored (20 ms frames of 8 kHz
 * audio, faint noise: 3 s → 48044-byte WAV). `cancel` ends it `canceled` without a file.
 *
 * `maxDurationSeconds` is counted as Asterisk counts it (`ast_play_and_record_full`: `time()` at
 * the start, and the recording stops once `maxtime < now - start` in whole seconds of the clock):
 * it ends at the second tick after the limit, so a recording of `maxDurationSeconds: 3` holds
 * between 3 and 4 s of audio, its `duration` 3. The kit's Asterisk shows it (3.2 to 3.9 s files).
 */
import { ariError } from './errors.ts';
import type { Scope } from './events.ts';
import { splitUri, type MediaHost } from './host.ts';
import {
  liveRecordingJson,
  type SimBridge,
  type SimChannel,
  type SimLiveRecording,
  type StoredRecording,
} from './model.ts';
import { framesIn } from './wav.ts';

/** Options of a recording. `maxDurationSec` 0 = no limit. */
export interface RecordOptions {
  name: string;
  format: string;
  maxDurationSec: number;
  ifExists: 'fail' | 'overwrite' | 'append';
  /** DTMF that ends a channel recording: `none` (default), `any`, `*` or `#`. */
  terminateOn?: 'none' | 'any' | '*' | '#';
}

export class Recordings {
  /** Recordings in progress by name. */
  readonly live = new Map<string, SimLiveRecording>();
  /** Finished recordings by name. */
  readonly stored = new Map<string, StoredRecording>();

  constructor(private readonly host: MediaHost) {}

  /** Start recording a bridge or a channel; 400 for a bad name, 409 when the name is taken. */
  start(
    target: { channel: SimChannel } | { bridge: SimBridge },
    opts: RecordOptions,
  ): SimLiveRecording {
    if (/(^|\/)\.\.(\/|$)/.test(opts.name) || opts.name.startsWith('/'))
      throw ariError(400, 'Recording name invalid');
    if (this.live.has(opts.name) || (opts.ifExists === 'fail' && this.stored.has(opts.name))) {
      throw ariError(409, `Recording '${opts.name}' already exists and can not be overwritten`);
    }
    const rec: SimLiveRecording = {
      name: opts.name,
      format: opts.format,
      targetUri:
        'channel' in target ? `channel:${target.channel.id}` : `bridge:${target.bridge.id}`,
      state: 'recording',
      startedAtMs: this.host.clock.nowMs(),
      maxDurationSec: opts.maxDurationSec,
      ifExists: opts.ifExists,
      ...(opts.terminateOn ? { terminateOn: opts.terminateOn } : {}),
      timer: null,
    };
    this.live.set(rec.name, rec);
    const scope: Scope =
      'channel' in target ? { channels: [target.channel] } : { bridge: target.bridge };
    this.host.events.emit('RecordingStarted', { recording: liveRecordingJson(rec) }, scope);
    if (opts.maxDurationSec > 0) {
      rec.timer = this.host.clock.after(maxLengthMs(rec), () =>
        this.finish(rec, 'done', true, true),
      );
    }
    if ('bridge' in target) {
      rec.recorder = { kind: 'recorder', name: this.host.ids.recorderName() };
      target.bridge.internal.push(rec.recorder);
      this.host.settleBridge(target.bridge);
    }
    return rec;
  }

  /**
   * End a live recording: `done` stores the file (whole 20 ms frames of the simulated elapsed
   * time, capped by `maxDurationSeconds` as Asterisk counts it, see {@link maxLengthMs}) and sends
   * RecordingFinished with `duration`; `canceled` discards it. `settle` re-evaluates the bridge
   * the recorder leaves. `reachedMax`: the `maxDurationSeconds` timer ended it, so it is exactly
   * that long (a timer may fire a fraction of a millisecond before the clock reads the limit).
   */
  finish(
    rec: SimLiveRecording,
    state: 'done' | 'canceled',
    settle: boolean,
    reachedMax = false,
  ): void {
    if (this.live.get(rec.name) !== rec) return;
    this.live.delete(rec.name);
    rec.timer?.cancel();
    rec.timer = null;
    let frames = reachedMax
      ? framesIn(maxLengthMs(rec))
      : framesIn(this.host.clock.nowMs() - rec.startedAtMs);
    if (rec.maxDurationSec > 0) frames = Math.min(frames, framesIn(maxLengthMs(rec)));
    rec.state = state;
    rec.durationSec = Math.floor((frames * 20) / 1000);
    if (state === 'done') {
      const existing = this.stored.get(rec.name);
      const total =
        rec.ifExists === 'append' && existing && existing.format === rec.format
          ? existing.frames + frames
          : frames;
      this.stored.set(rec.name, { name: rec.name, format: rec.format, frames: total });
    }
    const [kind, id] = splitUri(rec.targetUri);
    const bridge = kind === 'bridge' ? this.host.bridges.get(id) : undefined;
    const ch = kind === 'channel' ? this.host.channels.get(id) : undefined;
    const scope: Scope = bridge ? { bridge } : ch ? { channels: [ch] } : {};
    this.host.events.emit('RecordingFinished', { recording: liveRecordingJson(rec) }, scope);
    if (bridge && rec.recorder) {
      bridge.internal = bridge.internal.filter((p) => p !== rec.recorder);
      if (settle) this.host.settleBridge(bridge);
      else this.host.refreshTechnology(bridge);
    }
  }

  /** End every recording of a target (`channel:<id>` hung up, `bridge:<id>` emptied or destroyed). */
  finishFor(targetUri: string): void {
    for (const rec of [...this.live.values()])
      if (rec.targetUri === targetUri) this.finish(rec, 'done', false);
  }

  /**
   * A DTMF digit ended on channel `channelId` (after its ChannelDtmfReceived): each recording of
   * that channel whose `terminateOn` matches (`any`, or the digit) ends `done`, as Asterisk's
   * recording stops on its terminate key.
   */
  dtmf(channelId: string, digit: string): void {
    for (const rec of [...this.live.values()]) {
      if (rec.targetUri !== `channel:${channelId}`) continue;
      if (rec.terminateOn === 'any' || (rec.terminateOn !== undefined && rec.terminateOn === digit))
        this.finish(rec, 'done', false);
    }
  }

  /** Length of a stored recording in simulated ms (for `recording:` playback). */
  lengthMs(name: string): number | undefined {
    const rec = this.stored.get(name);
    return rec ? rec.frames * 20 : undefined;
  }
}

/**
 * How long a recording with `maxDurationSeconds` lasts, in simulated ms: until the clock's whole
 * second is more than `maxDurationSec` past the whole second it started in (Asterisk compares
 * `time()` values), i.e. between `maxDurationSec` and `maxDurationSec + 1` seconds.
 */
export function maxLengthMs(rec: Pick<SimLiveRecording, 'startedAtMs' | 'maxDurationSec'>): number {
  const startSec = Math.floor(rec.startedAtMs / 1000);
  return (startSec + rec.maxDurationSec + 1) * 1000 - rec.startedAtMs;
}
