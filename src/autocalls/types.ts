/**
 * Notification-call shapes shared by the store, the scheduler and the API: the script of a job,
 * a job with its attempts, a campaign. Times are ISO 8601 UTC strings, durations whole seconds.
 */
import type {
  AmdStatus,
  AttemptResult,
  AutocallDialStatus,
  AutocallStatus,
  CallingWindow,
} from './model.ts';

/**
 * The confirm step (the daemon's "Notification from company X. Press 1 to hear the message"):
 * `prompt` plays, the customer has `timeoutSec` to press `digit`; the prompt is played
 * `repeats` times in all. The files play only after the digit; without it the attempt is
 * `not_confirmed`.
 */
export interface AutocallConfirm {
  /** One DTMF key: 0-9, `*` or `#`. */
  digit: string;
  /** Sounds of the prompt (as {@link AutocallScript.files}). */
  prompt: string[];
  /** Seconds to wait for the digit after each prompt. */
  timeoutSec: number;
  /** Times the prompt is played in all (1-5). */
  repeats: number;
}

/**
 * Answering-machine detection of a notification call (Asterisk's `AMD()`, run by the
 * `[crm-amd]` dialplan context once the customer answered). Absent or `enabled: false`: none.
 * The `…Ms` settings override amd.conf for this call (each optional).
 */
export interface AutocallAmd {
  enabled: boolean;
  /**
   * What to do when a machine answers: `hangup` (default: the attempt is `machine`, nothing
   * plays) or `message` (the message plays at once, without the confirm prompt, and the attempt
   * is `machine` all the same).
   */
  onMachine?: 'hangup' | 'message';
  /** Silence before the greeting after which it is a machine (amd.conf initial_silence). */
  initialSilenceMs?: number;
  /** A greeting longer than this is a machine (greeting). */
  greetingMs?: number;
  /** Silence after the greeting after which it is a person (after_greeting_silence). */
  afterGreetingSilenceMs?: number;
  /** Longest time AMD listens, then NOTSURE (total_analysis_time). */
  totalAnalysisTimeMs?: number;
  /** More words than this is a machine (maximum_number_of_words). */
  maximumNumberOfWords?: number;
}

/** One verb of a call script: `{verb: 'play', …}` (the verbs are the call-script verbs). */
export interface AutocallVerb {
  verb: string;
  [field: string]: unknown;
}

/**
 * What a notification call runs once answered: `files` (1-10 sounds: `sound:NAME`, a bare
 * Asterisk sound name, or an `http(s)://` WAV Asterisk fetches), played in order; or `verbs`, a
 * call script. `confirm` goes first when set.
 */
export interface AutocallScript {
  files?: string[];
  verbs?: AutocallVerb[];
  confirm?: AutocallConfirm;
  /** Answering-machine detection first, when enabled. */
  amd?: AutocallAmd;
}

/** One attempt of a job as the API shows it. */
export interface AutocallAttemptView {
  /** 1-based. */
  attempt: number;
  startedAt: string;
  endedAt: string;
  dialStatus: AutocallDialStatus;
  cause?: number;
  causeText?: string;
  answeredAt?: string;
  /** DTMF digits pressed, in order. */
  digits: string;
  /** Whole seconds of the message that played. */
  playedSec: number;
  outcome: AttemptResult;
  /** The engine's call id of the attempt, when a call was created. */
  callId?: string;
  /** Answering-machine detection's verdict (AMDSTATUS), when it ran. */
  amdStatus?: AmdStatus;
  /** Its reason (AMDCAUSE), e.g. `LONGGREETING-1500-1500`. */
  amdCause?: string;
}

/** A job as `GET /v1/autocalls/{id}` answers it. */
export interface AutocallJobView {
  /** 1..2^32-1; also the asterisk.fcgi AutoCallID. */
  id: number;
  campaignId?: number;
  status: AutocallStatus;
  to: string;
  script: AutocallScript;
  callerId?: string;
  variables?: Record<string, string>;
  tries: number;
  triesPeriodSec: number;
  /** Attempts made so far. */
  attemptsMade: number;
  /** When the next attempt is due (queued jobs). */
  nextAttemptAt?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** Every attempt, oldest first (absent in list pages). */
  attempts?: AutocallAttemptView[];
}

/** A campaign's state: `active` places calls (inside its window), `paused` and `canceled` do not. */
export type CampaignState = 'active' | 'paused' | 'canceled';

/** What a campaign's jobs get unless they set it. */
export interface CampaignDefaults {
  files?: string[];
  verbs?: AutocallVerb[];
  confirm?: AutocallConfirm;
  amd?: AutocallAmd;
  tries?: number;
  triesPeriodSec?: number;
  callerId?: string;
  /** Numbers and booleans become strings on the jobs. */
  variables?: Record<string, string | number | boolean>;
}

/** A campaign as the API shows it. */
export interface CampaignView {
  id: number;
  name: string;
  /** Calls of the campaign in progress at once, at most (1-256). */
  maxConcurrent: number;
  /** New calls per second, at most. */
  callsPerSecond: number;
  window?: CallingWindow;
  defaults?: CampaignDefaults;
  state: CampaignState;
  createdAt: string;
  updatedAt: string;
  /** Jobs per status (every status listed, 0 when none); `GET /v1/campaigns/{id}` only. */
  counts?: Record<AutocallStatus, number>;
}

/** A job to create (validated, number normalised, trunk chosen). */
export interface NewAutocallJob {
  to: string;
  endpoint: string;
  script: AutocallScript;
  callerId?: string;
  variables?: Record<string, string>;
  tries: number;
  triesPeriodSec: number;
  campaignId?: number;
  requestedBy?: string;
}

/** A campaign to create. */
export interface NewCampaign {
  name: string;
  maxConcurrent: number;
  callsPerSecond: number;
  window?: CallingWindow;
  defaults?: CampaignDefaults;
  requestedBy?: string;
}
