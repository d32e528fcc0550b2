/**
 * A fake {@link VerbChannel} for the runner's unit tests: it records the ARI operations the
 * verbs make and answers them with the events a real Asterisk 22 sends (the dtmf-received and
 * play-http-media traces): a playback is PlaybackStarted then PlaybackFinished `done` (or
 * `failed` for a media the test marks unreachable) after `playMs`; a stopped playback finishes
 * `done`; a hang-up is ChannelHangupRequest, StasisEnd, ChannelDestroyed.
 */
import { AriNotFoundError } from '../../../../src/ari/errors.ts';
import type { AriEvent } from '../../../../src/ari/types.ts';
import type { VerbChannel, VerbRecordParams } from '../../../../src/calls/verbs/types.ts';

export type FakeOp =
  | { op: 'play'; playbackId: string; media: string }
  | { op: 'stopPlayback'; playbackId: string }
  | { op: 'record'; params: VerbRecordParams }
  | { op: 'stopRecording'; name: string }
  | { op: 'hangup' };

const CHANNEL = {
  id: 'ch-1',
  name: 'PJSIP/client-trunk-00000001',
  state: 'Up' as const,
  caller: { name: '', number: '79161234567' },
  connected: { name: '', number: '' },
  accountcode: '',
  dialplan: { context: 'from-pstn', exten: '74951234567', priority: 2 },
  creationtime: '2026-12-06T05:27:06.002+0000',
  language: 'en',
};

/** Asterisk's timestamp format (`…+0000`). */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

export class FakeChannel implements VerbChannel {
  readonly id = CHANNEL.id;
  readonly ops: FakeOp[] = [];
  /** How long every playback lasts, real ms. */
  playMs = 20;
  /** Media URIs that finish `failed` at once (an unreachable URL). */
  readonly unreachable = new Set<string>();
  /** Media URIs that play until stopped. */
  readonly endless = new Set<string>();
  /** Set: `play` rejects with a 404 (the channel is gone). */
  gone = false;
  /** Seconds a recording lasts before Asterisk ends it (undefined: until stopped or maxSec). */
  recordSec: number | undefined;
  private readonly listeners = new Set<(event: AriEvent) => void>();
  private readonly playing = new Map<
    string,
    { media: string; startedAt: number; timer?: NodeJS.Timeout }
  >();
  private readonly recording = new Map<string, { startedAt: number; timer?: NodeJS.Timeout }>();
  private hungUp = false;

  onEvent(listener: (event: AriEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  emit(event: Record<string, unknown> & { type: AriEvent['type'] }): void {
    const full = { timestamp: stamp(Date.now()), application: 'crm-app', ...event } as AriEvent;
    for (const l of [...this.listeners]) l(full);
  }

  play(playbackId: string, media: string): Promise<void> {
    this.ops.push({ op: 'play', playbackId, media });
    if (this.gone)
      return Promise.reject(new AriNotFoundError('channels.play', 'Channel not found'));
    const startedAt = Date.now();
    const entry: { media: string; startedAt: number; timer?: NodeJS.Timeout } = {
      media,
      startedAt,
    };
    this.playing.set(playbackId, entry);
    // Asterisk may send PlaybackStarted before it answers the request (play-http-media trace).
    this.emit({ type: 'PlaybackStarted', playback: this.playback(playbackId, media, 'playing') });
    if (this.unreachable.has(media)) {
      setImmediate(() => this.finishPlayback(playbackId, 'failed'));
    } else if (!this.endless.has(media)) {
      entry.timer = setTimeout(() => this.finishPlayback(playbackId, 'done'), this.playMs);
    }
    return Promise.resolve();
  }

  stopPlayback(playbackId: string): Promise<void> {
    this.ops.push({ op: 'stopPlayback', playbackId });
    if (!this.playing.has(playbackId))
      return Promise.reject(new AriNotFoundError('playbacks.stop', 'Playback not found'));
    setImmediate(() => this.finishPlayback(playbackId, 'done'));
    return Promise.resolve();
  }

  record(params: VerbRecordParams): Promise<void> {
    this.ops.push({ op: 'record', params });
    const entry: { startedAt: number; timer?: NodeJS.Timeout } = { startedAt: Date.now() };
    this.recording.set(params.name, entry);
    this.emit({ type: 'RecordingStarted', recording: this.rec(params.name, 'recording') });
    const sec = this.recordSec ?? params.maxDurationSec;
    entry.timer = setTimeout(() => this.finishRecording(params.name, sec), sec * 10);
    return Promise.resolve();
  }

  stopRecording(name: string): Promise<void> {
    this.ops.push({ op: 'stopRecording', name });
    const entry = this.recording.get(name);
    if (!entry) return Promise.reject(new AriNotFoundError('recordings.stopLive', 'not found'));
    setImmediate(() => this.finishRecording(name, 1));
    return Promise.resolve();
  }

  hangup(): Promise<void> {
    this.ops.push({ op: 'hangup' });
    setImmediate(() => this.farEndHangup(32));
    return Promise.resolve();
  }

  /** The customer hangs up: ChannelHangupRequest, then Asterisk ends playbacks, StasisEnd, ChannelDestroyed. */
  farEndHangup(cause = 16): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.emit({ type: 'ChannelHangupRequest', channel: CHANNEL, cause });
    setTimeout(() => {
      for (const id of [...this.playing.keys()]) this.finishPlayback(id, 'done');
      for (const name of [...this.recording.keys()]) this.finishRecording(name, 1);
      this.emit({ type: 'StasisEnd', channel: CHANNEL });
      this.emit({
        type: 'ChannelDestroyed',
        channel: CHANNEL,
        cause,
        cause_txt: 'Normal Clearing',
      });
    }, 5);
  }

  /** The customer presses `digit`. */
  press(digit: string): void {
    this.emit({ type: 'ChannelDtmfReceived', channel: CHANNEL, digit, duration_ms: 280 });
  }

  /** The media of the `play` operations, in order. */
  played(): string[] {
    return this.ops.flatMap((o) => (o.op === 'play' ? [o.media] : []));
  }

  /** Resolves when a play of `media` has been requested (n-th time, 1-based). */
  async playing_(media: string, n = 1): Promise<void> {
    while (this.played().filter((m) => m === media).length < n)
      await new Promise((r) => setTimeout(r, 2));
  }

  private finishPlayback(playbackId: string, state: 'done' | 'failed'): void {
    const entry = this.playing.get(playbackId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.playing.delete(playbackId);
    this.emit({
      type: 'PlaybackFinished',
      playback: this.playback(playbackId, entry.media, state),
    });
  }

  private finishRecording(name: string, durationSec: number): void {
    const entry = this.recording.get(name);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.recording.delete(name);
    this.emit({
      type: 'RecordingFinished',
      recording: { ...this.rec(name, 'done'), duration: durationSec },
    });
  }

  private playback(id: string, media: string, state: string) {
    return { id, media_uri: media, target_uri: `channel:${this.id}`, language: 'en', state };
  }

  private rec(name: string, state: string) {
    return { name, format: 'wav', state, target_uri: `channel:${this.id}` };
  }
}
