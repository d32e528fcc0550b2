/**
 * What Asterisk showed when the engine listed it after a (re)connect (`GET /channels`,
 * `GET /bridges`), and the pure reading of its channels the reconciliation and the recovery of
 * calls rely on: whether a channel is in the Stasis app, its Stasis arguments, whether a caller's
 * channel is still up, which channels of the app belong to no call.
 */
import type { AriBridge, AriChannel } from '../ari/types.ts';

/** What Asterisk showed when listed: the app name, channels by id, bridges. */
export interface AriView {
  /** The Stasis app (`crm-app`). */
  app: string;
  channels: ReadonlyMap<string, AriChannel>;
  bridges: readonly AriBridge[];
}

/** Build an {@link AriView} from `GET /channels` and `GET /bridges`. */
export function ariView(app: string, channels: AriChannel[], bridges: AriBridge[]): AriView {
  return { app, channels: new Map(channels.map((ch) => [ch.id, ch])), bridges };
}

/**
 * Whether a channel is in the Stasis app `app`: its dialplan application is `Stasis` with `app`
 * as first argument (ARI `Channel.dialplan`, trace ws-reconnect).
 */
export function inStasisOf(channel: AriChannel, app: string): boolean {
  const data = channel.dialplan?.app_data ?? '';
  return channel.dialplan?.app_name === 'Stasis' && (data === app || data.startsWith(`${app},`));
}

/**
 * The Stasis arguments of a channel in Stasis, from `dialplan.app_data` without the app name:
 * `crm-app,inbound,74951234567` → `['inbound', '74951234567']`; none for a channel outside
 * Stasis.
 */
export function stasisArgsOf(channel: AriChannel): string[] {
  if (channel.dialplan?.app_name !== 'Stasis') return [];
  const data = channel.dialplan.app_data ?? '';
  return data === '' ? [] : data.split(',').slice(1);
}

/**
 * States of a caller's channel that a call can still be made of: `Ring` (an incoming call not
 * answered yet), `Ringing`, `Up`. Not `Down` or `Busy`, nor anything hanging up.
 */
const CALLER_UP_STATES: ReadonlySet<string> = new Set(['Ring', 'Ringing', 'Up']);

/** Whether a caller's channel is still up or ringing (see {@link CALLER_UP_STATES}). */
export function isCallerUp(channel: AriChannel): boolean {
  return CALLER_UP_STATES.has(channel.state);
}

/**
 * The channels in the Stasis app `app` that belong to no call the engine tracks (`isTracked`,
 * by channel id): the caller of a call the store has as ended whose hang-up never reached
 * Asterisk (the engine stopping closed ARI first), a leg of a call forgotten before its channel
 * went. Channels outside Stasis (an originate still ringing, a channel handed to the dialplan,
 * a recorder) are not the app's.
 */
export function strayChannels(
  channels: readonly AriChannel[],
  app: string,
  isTracked: (channelId: string) => boolean,
): AriChannel[] {
  return channels.filter((ch) => inStasisOf(ch, app) && !isTracked(ch.id));
}
