/**
 * The verb model: a call script is a list of verbs run in order on one channel by the runner
 * (`runner.ts`); each verb is a class of its own implementing {@link Verb}, after
 * jambonz-feature-server's tasks. A verb gets a {@link VerbContext} (the channel through a
 * narrow interface over the ARI gateway, the CRM client, the call's flow) and an `AbortSignal`
 * that fires when the channel hangs up (or leaves Stasis): it then stops its playback or
 * recording and resolves with outcome `hangup`. A verb never throws for a telephony or CRM
 * failure: it resolves with outcome `failed` and a reason.
 *
 * Reference: docs/verbs.md.
 */
import type { AriEvent } from '../../ari/types.ts';
import type { Logger } from '../../logging/logger.ts';
import type { DialVerb, ScriptVerb, TransferVerb, VerbName } from './schema.ts';

/** What the verb module needs from `POST /channels/{id}/record` (ARI parameter names in docs). */
export interface VerbRecordParams {
  /** Recording name (client-chosen, unique): Asterisk stores `<name>.wav`. */
  name: string;
  /** ARI `maxDurationSeconds`. */
  maxDurationSec: number;
  /** ARI `maxSilenceSeconds` (absent: no limit). */
  maxSilenceSec?: number;
  /** ARI `beep`: a beep before recording starts. */
  beep?: boolean;
  /** ARI `terminateOn`: the DTMF key that ends the recording (`any`, `*` or `#`). */
  terminateOn?: 'any' | '*' | '#';
}

/**
 * The channel a verb runs on: a narrow view of the ARI gateway (src/ari/gateway.ts), so verbs
 * never touch ari-client. Every method rejects with the gateway's `AriError` subclasses.
 * Implemented over the gateway by `gatewayVerbChannel` (`channel.ts`); tests use a fake.
 */
export interface VerbChannel {
  /** The ARI channel id. */
  readonly id: string;
  /**
   * Subscribe to the events about this channel (`AriGateway.onChannel`): its state and hang-up
   * events, `ChannelDtmfReceived`, and the Playback and Recording events whose target is the
   * channel. Returns the unsubscribe function.
   */
  onEvent(listener: (event: AriEvent) => void): () => void;
  /** `POST /channels/{id}/play` of one media URI with the client-generated `playbackId`. */
  play(playbackId: string, media: string): Promise<void>;
  /** `DELETE /playbacks/{playbackId}`: the playback finishes (`PlaybackFinished`). */
  stopPlayback(playbackId: string): Promise<void>;
  /** `POST /channels/{id}/record` in format `wav`, `ifExists: fail`. */
  record(params: VerbRecordParams): Promise<void>;
  /** `POST /recordings/live/{name}/stop`: the recording finishes (`RecordingFinished`). */
  stopRecording(name: string): Promise<void>;
  /** `DELETE /channels/{id}` (reason normal). */
  hangup(): Promise<void>;
}

/** What the engine sends to the CRM for `gather.actionUrl` and `redirect.url` (JSON body). */
export interface VerbCrmRequest {
  /** Engine call id (UUID), as in the call's webhooks. */
  callId: string;
  /** The ARI channel the script runs on. */
  channelId: string;
  /** The verb that asks. */
  verb: 'gather' | 'redirect';
  /** The latest `record` verb result of the script run (with its link once stored). */
  recording?: RecordDetails;
  /** gather: the digits pressed (without the finishOnKey), possibly ''. */
  digits?: string;
  /** gather: why the gather ended. */
  reason?: GatherEndReason;
  /** Facts about the call the flow gave the runner (e.g. `from`, `to`), sent as is. */
  call?: Readonly<Record<string, string>>;
}

/** Why a CRM request for verbs gave nothing usable. */
export type VerbCrmFailureReason =
  'not_configured' | 'timeout' | 'connection' | 'http_status' | 'invalid_body';

/** The CRM's answer to a {@link VerbCrmRequest}. Never a throw. */
export type VerbCrmAnswer =
  | { ok: true; verbs: ScriptVerb[]; durationMs: number }
  | { ok: false; reason: VerbCrmFailureReason; detail: string; durationMs: number };

/** Asks the CRM for the next verbs (`crm.ts`). */
export interface VerbCrm {
  /**
   * POST `request` to `url` and validate the answer `{"verbs": [...]}`. Never throws and never
   * takes longer than its timeout; `signal` (the channel hung up) cuts it short.
   */
  fetchVerbs(url: string, request: VerbCrmRequest, signal: AbortSignal): Promise<VerbCrmAnswer>;
}

/** What a {@link VerbHost} answers for a `dial` or `transfer`. */
export interface HostVerbResult {
  /** `completed`: done (dialled, whatever the dial status; transferred); `failed`: could not. */
  outcome: VerbOutcome;
  /** Machine-readable reason when `failed` (or a dial status such as `NOANSWER`). */
  reason?: string;
  /** A short human detail (log-safe). */
  detail?: string;
  /** dial: the final dial status (`ANSWER`, `BUSY`, `NOANSWER`, `CHANUNAVAIL`, …). */
  dialStatus?: string;
  /** dial: the extension that answered. */
  answeredExtension?: string;
  /**
   * The channel is no longer the script's (transferred to the dialplan, or the call ended in
   * the flow): the script stops after this verb.
   */
  end?: boolean;
}

/**
 * The call flow that runs the script (inbound, notification call…) and owns what the verbs
 * cannot do alone. Every method resolves (never rejects for a call failure) once the verb is
 * over; `signal` fires when the channel hangs up.
 */
export interface VerbHost {
  /**
   * `dial`: ring `verb.extensions` with `verb.strategy`, each for `verb.ringTimeoutSec`, the
   * answering operator bridged with the channel (recorded when `verb.record`, else the engine's
   * default), as an inbound call's dial action does today. Resolves when nobody answered (the
   * script goes on: e.g. a voicemail `record`) or when the bridged conversation ended
   * (`end: true` if the channel was hung up by then).
   */
  dial(verb: DialVerb, channelId: string, signal: AbortSignal): Promise<HostVerbResult>;
  /**
   * `transfer`: `to: "service"` continues the channel in the dialplan at the service context
   * (`POST /channels/{id}/continue`); an extension is a blind transfer to it. Resolves with
   * `end: true` once the channel left the script.
   */
  transfer(verb: TransferVerb, channelId: string, signal: AbortSignal): Promise<HostVerbResult>;
}

/**
 * A call script recording the engine took from Asterisk and keeps, served like call
 * recordings (src/recordings/verb-recordings.ts).
 */
export interface KeptRecording {
  /** Asterisk's recording name (`vrec-<uuid>`). */
  name: string;
  /** Signed link to `GET /v1/calls/{id}/recordings/{name}` (no API key needed). */
  url: string;
  /** When `url` stops working, ISO 8601 UTC. */
  expiresAt: string;
  /** File size, bytes. */
  bytes: number;
  /** Length, seconds. */
  durationSec: number;
}

/** Everything a verb may use. */
export interface VerbContext {
  /** Engine call id (UUID), for logs and CRM requests. */
  readonly callId: string;
  /** The channel the script runs on. */
  readonly channel: VerbChannel;
  /** The CRM client for `gather.actionUrl` and `redirect`; absent: those fail `not_configured`. */
  readonly crm?: VerbCrm;
  /** The call's flow for `dial` and `transfer`; absent: those fail `not_supported`. */
  readonly host?: VerbHost;
  /** Facts about the call sent along with CRM requests (e.g. `{from, to}`). */
  readonly call?: Readonly<Record<string, string>>;
  /**
   * Keep a finished `record` verb recording (fetch it from Asterisk, verify, store, sign a
   * link); `durationSec` as Asterisk reported it. Rejects when it could not be kept. Absent:
   * the result names the recording in Asterisk only.
   */
  readonly keepRecording?: (name: string, durationSec?: number) => Promise<KeptRecording>;
  /**
   * The latest `record` result of this script run (set by the runner): sent along with the
   * next CRM request (`gather.actionUrl`, `redirect`) as `recording`.
   */
  readonly lastRecording?: RecordDetails;
  readonly logger: Logger;
}

/** How a verb ended: `completed`, `failed` (with a reason; the script goes on) or `hangup`. */
export type VerbOutcome = 'completed' | 'failed' | 'hangup';

/** Why a `gather` ended. */
export type GatherEndReason = 'numDigits' | 'finishOnKey' | 'timeout' | 'hangup';

/** A media item of a `play` that did not play (`PlaybackFinished` state `failed`, or refused). */
export interface FailedMedia {
  /** Index in the verb's `media`. */
  index: number;
  /** The item as written in the script. */
  media: string;
  /** Why: `failed` (Asterisk could not play it: unreachable URL, unknown sound), or the ARI error. */
  detail: string;
}

/** The details of a `play` (also of a gather's prompts). */
export interface PlayDetails {
  /** Media items that played to their end (counting loops). */
  playedItems: number;
  /**
   * Milliseconds of media played, measured between Asterisk's PlaybackStarted and
   * PlaybackFinished timestamps (a playback cut by a hang-up or a digit counts until then).
   */
  playedMs: number;
  /** Items that failed. */
  failedMedia: FailedMedia[];
}

/** The details of a `gather`. */
export interface GatherDetails {
  /** The digits pressed, in order, without the finishOnKey. */
  digits: string;
  reason: GatherEndReason;
}

/** The details of a `record`. */
export interface RecordDetails {
  /** The recording's name in Asterisk (stored as `<name>.wav`). */
  name: string;
  format: 'wav';
  /** Seconds recorded, as Asterisk reported in RecordingFinished (absent when not reported). */
  durationSec?: number;
  /**
   * Why it ended: `maxSec`, `finishOnKey`, `silence` (Asterisk ended it before `maxSec`
   * with `maxSilenceSec` set), `hangup`, or `ended` (Asterisk ended it for another reason).
   */
  reason: 'maxSec' | 'finishOnKey' | 'silence' | 'hangup' | 'ended';
  /**
   * Signed link to the recording the engine stored (`GET /v1/calls/{id}/recordings/{name}`),
   * present once it is kept; absent when it could not be (`storeError` says why) or the engine
   * does not keep script recordings.
   */
  url?: string;
  /** When `url` stops working, ISO 8601 UTC. */
  expiresAt?: string;
  /** Size of the stored file, bytes. */
  bytes?: number;
  /** Why the recording could not be stored (it stays in Asterisk). */
  storeError?: string;
}

/** The details of a CRM request made by `gather.actionUrl` or `redirect`. */
export interface CrmDetails {
  url: string;
  /** `ok`, or why no verbs came (the script then goes on with its own rest). */
  result: 'ok' | VerbCrmFailureReason | 'hangup';
  /** How many verbs the CRM answered (they replace the rest of the script). */
  verbs?: number;
  durationMs: number;
}

/** What one verb's `exec` resolves with. */
export interface VerbResult {
  outcome: VerbOutcome;
  /** Machine-readable reason when not `completed` (e.g. `media_failed`, `not_supported`). */
  reason?: string;
  /** A short human detail, log-safe. */
  detail?: string;
  play?: PlayDetails;
  gather?: GatherDetails;
  record?: RecordDetails;
  crm?: CrmDetails;
  /** dial/transfer: the host's answer. */
  host?: HostVerbResult;
  /** New verbs that replace the rest of the script (gather with actionUrl, redirect). */
  next?: ScriptVerb[];
  /** The script ends after this verb (`hangup`, a transfer, a dial that ended the call). */
  end?: boolean;
}

/** One verb of a script, ready to run (one class per verb, see `index.ts`). */
export interface Verb {
  readonly name: VerbName;
  /**
   * Run the verb on `ctx.channel`. Resolves when the verb is over; when `signal` aborts (the
   * channel hung up) the verb stops what it started in Asterisk (playback, recording) and
   * resolves with outcome `hangup` soon after. Never rejects for a telephony or CRM failure.
   */
  exec(ctx: VerbContext, signal: AbortSignal): Promise<VerbResult>;
}
