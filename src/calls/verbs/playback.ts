/**
 * Playing media on the verb's channel, one ARI playback per media item (so a failing item is
 * known by its index and the others still play): `POST /channels/{id}/play` with a
 * client-generated playback id, listened for before the request is sent (Asterisk may send
 * PlaybackStarted before it answers the request: the play-http-media trace). A `sound:http://…`
 * URL that Asterisk cannot fetch answers 201 and then PlaybackFinished `failed`: the item fails,
 * not the call. Stopping (a hang-up, or a digit during a gather prompt) is `DELETE
 * /playbacks/{id}`, after which Asterisk finishes the playback `done`.
 */
import { AriNotFoundError, AriNotInStasisError } from '../../ari/errors.ts';
import { newPlaybackId } from '../../ari/gateway.ts';
import { describeError } from '../../http/outbound.ts';
import { mediaUri } from './schema.ts';
import type { FailedMedia, PlayDetails, VerbChannel } from './types.ts';

/** How long a stopped playback's PlaybackFinished is awaited (for its timestamp), ms. */
export const STOP_WAIT_MS = 1000;

/** How one media item ended. */
export interface ItemOutcome {
  /**
   * `done`: played to its end; `failed`: Asterisk could not play it; `stopped`: cut by `stop`;
   * `gone`: the channel no longer exists or left Stasis (ARI 404/422 to the play request).
   */
  state: 'done' | 'failed' | 'stopped' | 'gone';
  playedMs: number;
  detail?: string;
}

/**
 * Asterisk's `2026-12-06T05:27:06.002+0000` in ms since the epoch (undefined when unparsable).
 * Event timestamps use Asterisk's clock, so durations measured with them hold on the simulator
 * too (whose clock may run faster than the engine's).
 */
export function ariTime(timestamp: string | undefined): number | undefined {
  if (!timestamp) return undefined;
  const ms = Date.parse(timestamp.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Play one media item (`sound:NAME` or an http(s) URL) and resolve when it ended. `stop`
 * aborting (a hang-up or a barge-in) stops the playback through ARI; the outcome is then
 * `stopped`. Never rejects.
 */
export function playItem(
  channel: VerbChannel,
  item: string,
  stop: AbortSignal,
): Promise<ItemOutcome> {
  const playbackId = newPlaybackId();
  return new Promise<ItemOutcome>((resolve) => {
    let startedAt: number | undefined;
    let startedLocal: number | undefined;
    let stopRequested = false;
    let settled = false;
    let stopTimer: NodeJS.Timeout | undefined;
    const finish = (state: ItemOutcome['state'], endedAt?: number, detail?: string): void => {
      if (settled) return;
      settled = true;
      off();
      stop.removeEventListener('abort', onStop);
      clearTimeout(stopTimer);
      let playedMs = 0;
      if (startedAt !== undefined && endedAt !== undefined)
        playedMs = Math.max(0, endedAt - startedAt);
      else if (startedLocal !== undefined) playedMs = Math.max(0, Date.now() - startedLocal);
      resolve({
        state: stopRequested ? 'stopped' : state,
        playedMs,
        ...(detail ? { detail } : {}),
      });
    };
    const off = channel.onEvent((event) => {
      if (event.type === 'PlaybackStarted' && event.playback.id === playbackId) {
        startedAt = ariTime(event.timestamp);
        startedLocal = Date.now();
      } else if (event.type === 'PlaybackFinished' && event.playback.id === playbackId) {
        const failed = event.playback.state === 'failed';
        finish(
          failed ? 'failed' : 'done',
          ariTime(event.timestamp),
          failed ? 'Asterisk could not play it (PlaybackFinished failed)' : undefined,
        );
      } else if (
        event.type === 'ChannelDestroyed' ||
        (event.type === 'StasisEnd' && stopRequested)
      ) {
        // No PlaybackFinished will come for a channel that is gone.
        finish('stopped', ariTime(event.timestamp));
      }
    });
    const onStop = (): void => {
      if (settled || stopRequested) return;
      stopRequested = true;
      channel.stopPlayback(playbackId).catch(() => undefined); // gone already: fine
      stopTimer = setTimeout(() => finish('stopped'), STOP_WAIT_MS);
    };
    if (stop.aborted) {
      stopRequested = true;
      finish('stopped');
      return;
    }
    stop.addEventListener('abort', onStop, { once: true });
    channel.play(playbackId, mediaUri(item)).catch((err: unknown) => {
      const gone = err instanceof AriNotFoundError || err instanceof AriNotInStasisError;
      finish(gone ? 'gone' : 'failed', undefined, `play refused: ${describeError(err)}`);
    });
  });
}

/** The result of {@link playList}. */
export interface PlayListResult extends PlayDetails {
  /** True when `stop` cut the list short. */
  stopped: boolean;
}

/**
 * Play `items` in order, the whole list `loop` times, stopping when `stop` aborts. A failed
 * item is reported and the next one plays.
 */
export async function playList(
  channel: VerbChannel,
  items: readonly string[],
  loop: number,
  stop: AbortSignal,
): Promise<PlayListResult> {
  const result: PlayListResult = { playedItems: 0, playedMs: 0, failedMedia: [], stopped: false };
  for (let round = 0; round < loop; round++) {
    for (const [index, item] of items.entries()) {
      if (stop.aborted) {
        result.stopped = true;
        return result;
      }
      const outcome = await playItem(channel, item, stop);
      result.playedMs += outcome.playedMs;
      if (outcome.state === 'done') result.playedItems += 1;
      else if (outcome.state === 'failed') {
        const failed: FailedMedia = { index, media: item, detail: outcome.detail ?? 'failed' };
        if (!result.failedMedia.some((f) => f.index === index)) result.failedMedia.push(failed);
      } else {
        result.stopped = true;
        return result;
      }
    }
  }
  return result;
}
