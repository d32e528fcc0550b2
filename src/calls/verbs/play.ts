/**
 * `play {media, loop?}`: the media items in order (`loop` times), one ARI playback each. An item
 * Asterisk cannot play (an unreachable URL: PlaybackFinished `failed`) fails the verb with
 * reason `media_failed` and the failing items in `play.failedMedia`, after the other items
 * played; the call goes on. A hang-up stops the playback (`DELETE /playbacks/{id}`).
 */
import { playList } from './playback.ts';
import type { PlayVerb } from './schema.ts';
import type { Verb, VerbContext, VerbResult } from './types.ts';

export class Play implements Verb {
  readonly name = 'play' as const;

  constructor(private readonly spec: PlayVerb) {}

  async exec(ctx: VerbContext, signal: AbortSignal): Promise<VerbResult> {
    const played = await playList(ctx.channel, this.spec.media, this.spec.loop ?? 1, signal);
    const { stopped, ...details } = played;
    if (stopped || signal.aborted) return { outcome: 'hangup', play: details };
    if (details.failedMedia.length > 0) {
      return {
        outcome: 'failed',
        reason: 'media_failed',
        detail: details.failedMedia.map((f) => `media[${f.index}] ${f.detail}`).join('; '),
        play: details,
      };
    }
    return { outcome: 'completed', play: details };
  }
}
