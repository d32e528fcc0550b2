/**
 * The simulator's internal objects (channels, bridges, playbacks, recordings) and their ARI JSON
 * snapshots, shaped exactly like Asterisk 22 sends them in the traces (same keys, same order).
 */
import type {
  AriBridge,
  AriCallerId,
  AriChannel,
  AriLiveRecording,
  AriPlayback,
  ChannelState,
} from '../ari/types.ts';
import type { AmdSettings } from './amd.ts';
import type { SimTimer } from './clock.ts';
import type { DtmfPlan, PhoneBehaviour } from './types.ts';

/** An empty caller ID / connected line (`{name: '', number: ''}`). */
export const EMPTY_CALLER_ID: AriCallerId = { name: '', number: '' };

/** Who is behind a channel. */
export type Party =
  | { kind: 'operator'; extension: string }
  | { kind: 'customer'; number: string }
  | { kind: 'pstn'; number: string };

/**
 * How the channel came to be: `inbound` from the dialplan (fixtures fact 7: no ChannelDestroyed
 * after its StasisEnd), `created` by `POST /channels/create`, `originated` by `POST /channels`.
 */
export type ChannelKind = 'inbound' | 'created' | 'originated';

/** An outgoing leg being dialled (ARI `dial` of a created channel, or an originate). */
export interface DialAttempt {
  via: 'dial' | 'originate';
  behaviour: PhoneBehaviour;
  /** Dial string Asterisk reports in Dial events (`101`, `79161234567@client-trunk`). */
  device: string;
  answered: boolean;
  timers: SimTimer[];
  /** What an originated channel does once answered. */
  onAnswer?: { app: string; args: string[] } | { context: string; exten: string; priority: number };
}

/** Cancel the timers of a dial attempt (ring, answer, refusal, timeout). */
export function clearDialTimers(attempt: DialAttempt): void {
  for (const t of attempt.timers) t.cancel();
  attempt.timers = [];
}

/** A dialplan location plus the application running there. */
export interface DialplanState {
  context: string;
  exten: string;
  priority: number;
  app_name: string;
  app_data: string;
}

export interface SimChannel {
  id: string;
  name: string;
  state: ChannelState;
  protocolId: string;
  caller: AriCallerId;
  connected: AriCallerId;
  accountcode: string;
  dialplan: DialplanState;
  creationtime: string;
  language: string;

  kind: ChannelKind;
  party: Party;
  /** Endpoint `<tech>/<resource>` the channel belongs to, e.g. `PJSIP/101`, `PJSIP/client-trunk`. */
  endpoint: string;
  /** For ARI-created channels: what follows `PJSIP/` in the endpoint (Asterisk's saved dial string). */
  dialstring: string | null;
  vars: Map<string, string>;
  /** In Stasis: the app and its args. */
  stasis: { app: string; args: string[] } | null;
  /** Apps explicitly subscribed (ARI create/originate/originator, `applications/subscribe`). */
  subscribers: Set<string>;
  bridgeId: string | null;
  /** `alive` → `terminating` (hang-up requested, events in flight) → `gone`. */
  phase: 'alive' | 'terminating' | 'gone';
  dial: DialAttempt | null;
  /** Timers owned by the channel (caller hang-up, dialplan steps), cancelled when it goes. */
  timers: Set<SimTimer>;
  /** Race (b): channel commands still to refuse with 409 after the last StasisStart. */
  notInStasisBudget: number;
  /**
   * Stasis() sessions of an originated channel that returned (`continue`) and the channel came
   * back into Stasis from the dialplan: each sets STASISSTATUS=SUCCESS again at the hang-up.
   */
  stasisReturns: number;
  /** Simulated ms of the last StasisStart (race (b) probability window). */
  stasisStartedAtMs: number;
  /**
   * `AMD()` listening in the dialplan: its settings, when it started (simulated ms), its pending
   * verdict and the dialplan step after it. Absent otherwise.
   */
  amd?: { settings: AmdSettings; startedAtMs: number; timer?: SimTimer; next: () => void };
  /** Playbacks targeting this channel, the first one playing. */
  playbacks: SimPlayback[];
  /** Inbound calls: the app the dialplan sends them to and the caller's hang-up plans (simulated ms). */
  inbound?: { app: string; hangupAfterMs?: number; abandonAfterMs?: number; dtmf?: DtmfPlan };
  /** Hang-up cause Asterisk keeps on the channel (`ast_channel_hangupcause`). */
  hangupCause: number;
  /** Technology cause (SIP status) if the far end gave one. */
  techCause?: number;
  /** Simulated ms when the channel went Up (media flowing: RTPAUDIOQOS counts from there). */
  answeredAtMs?: number;
  /** RTP SSRC of the channel's media (RTPAUDIOQOS). */
  ssrc?: number;
}

/** A non-channel participant of a bridge (recorder, announcer): counts for technology, hidden from `channels`. */
export interface InternalParticipant {
  kind: 'recorder' | 'announcer';
  name: string;
}

export interface SimBridge {
  id: string;
  technology: string;
  bridgeType: 'mixing' | 'holding';
  /** Features from `type` (dtmf_events, proxy_media, video_sfu…). */
  features: Set<string>;
  name: string;
  channels: string[];
  internal: InternalParticipant[];
  creationtime: string;
  videoMode: string;
  subscribers: Set<string>;
  vars: Map<string, string>;
  /** Participants (channel ids, internal names) when BRIDGEPEER was last announced. */
  peerKey?: string[];
}

export interface SimPlayback {
  id: string;
  media: string[];
  index: number;
  targetUri: string;
  language: string;
  state: 'queued' | 'playing' | 'continuing' | 'done' | 'failed' | 'canceled';
  timer: SimTimer | null;
  /** The bridge announcer participant, for bridge playbacks. */
  announcer?: InternalParticipant;
}

export interface SimLiveRecording {
  name: string;
  format: string;
  targetUri: string;
  state: 'queued' | 'recording' | 'paused' | 'done' | 'failed' | 'canceled';
  /** Simulated ms when recording started. */
  startedAtMs: number;
  maxDurationSec: number;
  ifExists: 'fail' | 'overwrite' | 'append';
  /** ARI `terminateOn`: the DTMF that ends a channel recording (`none` by default). */
  terminateOn?: 'none' | 'any' | '*' | '#';
  timer: SimTimer | null;
  /** Bridge recorder participant, for bridge recordings. */
  recorder?: InternalParticipant;
  durationSec?: number;
}

export interface StoredRecording {
  name: string;
  format: string;
  /** Audio frames of 20 ms (8 kHz) stored so far. */
  frames: number;
}

/** ARI `Channel` JSON of a channel (key order as Asterisk sends it). */
export function channelJson(ch: SimChannel): AriChannel {
  return {
    id: ch.id,
    name: ch.name,
    state: ch.state,
    protocol_id: ch.protocolId,
    caller: { ...ch.caller },
    connected: { ...ch.connected },
    accountcode: ch.accountcode,
    dialplan: { ...ch.dialplan },
    creationtime: ch.creationtime,
    language: ch.language,
  };
}

/** ARI `Bridge` JSON. */
export function bridgeJson(bridge: SimBridge): AriBridge {
  return {
    id: bridge.id,
    technology: bridge.technology,
    bridge_type: bridge.bridgeType,
    bridge_class: 'stasis',
    creator: 'Stasis',
    name: bridge.name,
    channels: [...bridge.channels],
    creationtime: bridge.creationtime,
    video_mode: bridge.videoMode,
  };
}

/** ARI `Playback` JSON (`next_media_uri` only while there is a next media). */
export function playbackJson(pb: SimPlayback): AriPlayback {
  const json: AriPlayback = { id: pb.id, media_uri: pb.media[pb.index] ?? '' } as AriPlayback;
  const next = pb.media[pb.index + 1];
  if (next !== undefined) json.next_media_uri = next;
  json.target_uri = pb.targetUri;
  json.language = pb.language;
  json.state = pb.state;
  return json;
}

/** ARI `LiveRecording` JSON (`duration` once finished). */
export function liveRecordingJson(rec: SimLiveRecording): AriLiveRecording {
  const json: AriLiveRecording = {
    name: rec.name,
    format: rec.format,
    state: rec.state,
    target_uri: rec.targetUri,
  };
  if (rec.durationSec !== undefined) json.duration = rec.durationSec;
  return json;
}
