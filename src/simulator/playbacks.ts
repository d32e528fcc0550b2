/**
 * Playbacks on channels and bridges (`POST /channels/{id}/play`, `POST /bridges/{id}/play`,
 * `/playbacks/{id}`). A playback starts right after the HTTP answer (201, state `queued`) with
 * PlaybackStarted; a list of media reports PlaybackContinuing between items (autocall-playback
 * trace); PlaybackFinished ends it `done` (played, stopped, or its channel hung up), `failed`
 * (unknown scheme, missing recording) or `canceled` (stopped while queued). A channel plays one
 * playback at a time; a bridge playback adds an announcer participant to the bridge.
 */
import { ariError } from './errors.ts';
import type { Scope } from './events.ts';
import { splitUri, type MediaHost } from './host.ts';
import { httpMediaUrl, mediaDurationMs } from './media.ts';
import { wavDurationMs } from './wav.ts';

/** How long a `sound:http://…` fetch may take before the playback fails (real ms). */
const HTTP_MEDIA_TIMEOUT_MS = 10_000;
import { playbackJson, type SimBridge, type SimChannel, type SimPlayback } from './model.ts';

export class Playbacks {
  private readonly byId = new Map<string, SimPlayback>();

  /** @param recordingMs length in simulated ms of a stored recording (`recording:` media), undefined when missing. */
  constructor(
    private readonly host: MediaHost,
    private readonly recordingMs: (name: string) => number | undefined,
  ) {}

  get(id: string): SimPlayback | undefined {
    return this.byId.get(id);
  }

  /** Queue a playback on a channel or bridge; {@link kick} it after the HTTP answer. 409 for a duplicate id. */
  queue(
    target: { channel: SimChannel } | { bridge: SimBridge },
    media: string[],
    language: string,
    playbackId: string | undefined,
  ): SimPlayback {
    if (playbackId !== undefined && this.byId.has(playbackId))
      throw ariError(409, 'Playback with this ID already exists');
    const pb: SimPlayback = {
      id: playbackId ?? this.host.ids.uuid(),
      media,
      index: 0,
      targetUri:
        'channel' in target ? `channel:${target.channel.id}` : `bridge:${target.bridge.id}`,
      language,
      state: 'queued',
      timer: null,
    };
    this.byId.set(pb.id, pb);
    if ('channel' in target) target.channel.playbacks.push(pb);
    return pb;
  }

  /** Start a queued playback if its target is free (channel playbacks play one at a time). */
  kick(pb: SimPlayback): void {
    if (pb.state !== 'queued') return;
    const scope = this.scope(pb);
    if (!scope) return;
    if (scope.channels) {
      const ch = scope.channels[0];
      if (!ch || ch.playbacks[0] !== pb) return;
    } else if (scope.bridge) {
      pb.announcer = { kind: 'announcer', name: 'Announcer/ARI' };
      scope.bridge.internal.push(pb.announcer);
      this.host.refreshTechnology(scope.bridge);
    }
    this.play(pb);
  }

  /** End a playback with PlaybackFinished and start the channel's next queued one. */
  end(pb: SimPlayback, state: 'done' | 'failed' | 'canceled'): void {
    if (!this.byId.has(pb.id)) return;
    pb.timer?.cancel();
    pb.timer = null;
    const scope = this.scope(pb);
    pb.state = state;
    this.byId.delete(pb.id);
    if (scope) this.host.events.emit('PlaybackFinished', { playback: playbackJson(pb) }, scope);
    const [kind, id] = splitUri(pb.targetUri);
    if (kind === 'channel') {
      const ch = this.host.channels.get(id);
      if (ch) {
        ch.playbacks = ch.playbacks.filter((p) => p !== pb);
        const next = ch.playbacks[0];
        if (next && ch.phase === 'alive') setImmediate(() => this.kick(next));
      }
    } else {
      const bridge = this.host.bridges.get(id);
      if (bridge && pb.announcer) {
        bridge.internal = bridge.internal.filter((p) => p !== pb.announcer);
        this.host.refreshTechnology(bridge);
      }
    }
  }

  /** `DELETE /playbacks/{id}`: a playing playback ends `done`, a queued one `canceled`. */
  stop(pb: SimPlayback): void {
    this.end(pb, pb.state === 'queued' ? 'canceled' : 'done');
  }

  /** The channel hangs up or leaves Stasis: its playback ends `done`, queued ones are dropped silently. */
  stopForChannel(ch: SimChannel): void {
    const [current, ...queued] = ch.playbacks;
    for (const pb of queued) {
      pb.state = 'canceled';
      this.byId.delete(pb.id);
    }
    ch.playbacks = current ? [current] : [];
    if (!current) return;
    if (current.state === 'queued') {
      current.state = 'canceled';
      this.byId.delete(current.id);
      ch.playbacks = [];
    } else this.end(current, 'done');
  }

  /** The bridge empties or is destroyed: its playbacks end `done`. */
  endForBridge(bridge: SimBridge): void {
    for (const pb of [...this.byId.values()])
      if (pb.targetUri === `bridge:${bridge.id}`) this.end(pb, 'done');
  }

  private scope(pb: SimPlayback): Scope | undefined {
    const [kind, id] = splitUri(pb.targetUri);
    if (kind === 'channel') {
      const ch = this.host.channels.get(id);
      return ch ? { channels: [ch] } : undefined;
    }
    const bridge = this.host.bridges.get(id);
    return bridge ? { bridge } : undefined;
  }

  private play(pb: SimPlayback): void {
    const scope = this.scope(pb);
    if (!scope) return;
    pb.state = 'playing';
    this.host.events.emit('PlaybackStarted', { playback: playbackJson(pb) }, scope);
    const uri = pb.media[pb.index] ?? '';
    const url = httpMediaUrl(uri);
    if (url) {
      void this.fetchAndPlay(pb, uri, url);
      return;
    }
    const ms = mediaDurationMs(uri, this.recordingMs);
    if (ms === undefined) {
      this.end(pb, 'failed');
      return;
    }
    if (Number.isFinite(ms)) pb.timer = this.host.clock.after(ms, () => this.mediaDone(pb));
  }

  /**
   * `sound:http(s)://…` (res_http_media_cache): Asterisk fetches the URL after PlaybackStarted,
   * every time when the server sends no caching headers, and plays the file for its length; a
   * server that cannot be reached or answers an error ends the playback `failed` at once
   * (play-http-media trace). The fetch takes real time; the file plays on the simulated clock.
   */
  private async fetchAndPlay(pb: SimPlayback, uri: string, url: string): Promise<void> {
    let ms: number | undefined;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_MEDIA_TIMEOUT_MS) });
      const body = Buffer.from(await res.arrayBuffer());
      ms = res.ok ? wavDurationMs(body) : undefined;
    } catch {
      ms = undefined;
    }
    // Stopped, hung up or moved on while the file was being fetched.
    if (pb.state !== 'playing' || pb.media[pb.index] !== uri || !this.byId.has(pb.id)) return;
    if (ms === undefined) {
      this.end(pb, 'failed');
      return;
    }
    pb.timer = this.host.clock.after(ms, () => this.mediaDone(pb));
  }

  private mediaDone(pb: SimPlayback): void {
    pb.timer = null;
    if (pb.state !== 'playing') return;
    if (pb.index < pb.media.length - 1) {
      const scope = this.scope(pb);
      if (!scope) return;
      pb.state = 'continuing';
      this.host.events.emit('PlaybackContinuing', { playback: playbackJson(pb) }, scope);
      pb.index++;
      this.play(pb);
      return;
    }
    this.end(pb, 'done');
  }
}
