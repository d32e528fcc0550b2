/**
 * {@link VerbChannel} over the ARI gateway (src/ari/gateway.ts), so verbs never touch ari-client:
 * events through `gateway.onChannel`, and the channel, playback and recording operations.
 */
import type { AriGateway } from '../../ari/types.ts';
import type { VerbChannel } from './types.ts';

/** The verb channel `channelId` (an answered channel in the engine's Stasis app). */
export function gatewayVerbChannel(gateway: AriGateway, channelId: string): VerbChannel {
  return {
    id: channelId,
    onEvent: (listener) => gateway.onChannel(channelId, listener),
    play: async (playbackId, media) => {
      await gateway.channels.play(channelId, { media: [media], playbackId });
    },
    stopPlayback: (playbackId) => gateway.playbacks.stop(playbackId),
    record: async (p) => {
      await gateway.channels.record(channelId, {
        name: p.name,
        format: 'wav',
        maxDurationSec: p.maxDurationSec,
        ifExists: 'fail',
        ...(p.maxSilenceSec !== undefined ? { maxSilenceSec: p.maxSilenceSec } : {}),
        ...(p.beep !== undefined ? { beep: p.beep } : {}),
        ...(p.terminateOn !== undefined ? { terminateOn: p.terminateOn } : {}),
      });
    },
    stopRecording: (name) => gateway.recordings.stopLive(name),
    hangup: () => gateway.channels.hangup(channelId, { reason: 'normal' }),
  };
}
