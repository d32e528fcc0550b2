/**
 * Public types of the PBX simulator: a faithful in-process stand-in for Asterisk 22's ARI
 * (REST + WebSocket) that the real ari-client connects to. Behaviour is checked against the traces
 * in `shared/fixtures/ari/traces/` (see `test/simulator/`).
 */
import type { Router } from 'express';
import type { Logger } from 'winston';
import type { AriChannel } from '../ari/types.ts';

/** Options of {@link import('./index.ts').startSimulator}. */
export interface SimulatorOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; `0` (default) picks an ephemeral port (see {@link PbxSimulator.url}). */
  port?: number;
  /** ARI user (basic auth or `api_key=user:pass`). Default `asterisk`. */
  username?: string;
  /** ARI password. Default `asterisk`. */
  password?: string;
  /** Operator extensions, each reachable as endpoint `PJSIP/<ext>`. Default `['101','102','103']`. */
  extensions?: string[];
  /** Name of the PJSIP trunk customers are dialled through (`PJSIP/<number>@<trunk>`). Default `client-trunk`. */
  trunk?: string;
  /**
   * Simulated-time factor. `1` = real time; `0.01` makes every simulated duration (answer delays,
   * dial timeouts, playback lengths, caller hang-up delays, recording lengths) 100x shorter in
   * real time. Event timestamps, `creationtime`, UniqueIDs and recording durations/WAV lengths all
   * follow the simulated clock, so a 3 s call at `0.01` still shows 3 s between timestamps and a
   * 3 s (48044-byte) recording. Simulated time stands still while a due timer waits for a busy
   * event loop, so a loaded machine slows the simulation down rather than stretching the
   * durations it shows. Default `1`.
   */
  timeScale?: number;
  /**
   * How much later each operator phone answers than the one before it in `extensions`, in
   * simulated ms: by default the n-th extension (0-based) answers after 1000 + n × this, so on a
   * ring-all call one operator answers first and the others' phones stop ringing, as with real
   * people. Whole ms, 0 to 60 000. Default `0`: every phone answers after 1000 ms (test beds
   * rely on it). Phones set through {@link PbxSimulator.phones} keep what they were given.
   */
  operatorAnswerStaggerMs?: number;
  /** Where the simulator logs (debug level for every REST request and event). Default: silent. */
  logger?: Logger;
  /** At most this many entries are kept in {@link PbxSimulator.requests} (oldest dropped), so a long-running demo does not grow without bound. Default 10000. */
  requestLogLimit?: number;
}

/**
 * How a simulated phone reacts when it is dialled (operator extension or customer number).
 * All durations are in simulated milliseconds (divided by nothing, multiplied by `timeScale`).
 *
 * - `answer`: rings (180), answers after `answerAfterMs`; with `hangupAfterMs` it hangs up (BYE)
 *   that long after answering, or, with `hangupSpreadMs`, at a uniformly random moment between
 *   `hangupAfterMs` and `hangupAfterMs + hangupSpreadMs` (talk times of real calls vary: with one
 *   fixed talk time, calls started together all end together).
 * - `busy`: answers 486 after `afterMs` (default 0) without ringing: `Dial ""`, then
 *   `ChannelHangupRequest` cause 17 tech_cause 486, `ChannelDestroyed` 17 "User busy" (fixtures fact 4).
 * - `ring`: rings until the app hangs up or the dial timeout expires (fixtures facts 5, 6).
 * - `unavailable`: the PJSIP endpoint has no contact: `POST /channels/create` and originate answer
 *   500 `{"error":"Allocation failed"}` like Asterisk 22 (`ast_request` fails in chan_pjsip), and
 *   the endpoint is listed `offline`.
 * - `congestion`: answers 503 after `afterMs`: cause 34 "Circuit/channel congestion", tech_cause 503.
 *
 * An answering phone can press digits (`dtmf`), see {@link DtmfPlan}.
 */
export type PhoneBehaviour =
  | {
      mode: 'answer';
      answerAfterMs: number;
      hangupAfterMs?: number;
      hangupSpreadMs?: number;
      /** Digits the phone presses once it has answered (RFC 2833, like SIPp `uas_answer_dtmf1`). */
      dtmf?: DtmfPlan;
      /** What Asterisk's `AMD()` hears once it answered (see {@link AnswerVoice}); default `none`. */
      voice?: AnswerVoice;
    }
  | { mode: 'busy'; afterMs?: number }
  | { mode: 'ring' }
  | { mode: 'unavailable' }
  | { mode: 'congestion'; afterMs?: number };

/**
 * What answers a call, as Asterisk's answering-machine detection (`AMD()` in a dialplan the
 * channel was continued to) judges it; the verdict comes back as `AMDSTATUS`/`AMDCAUSE`:
 * - `none`: the phone sends no audio (like the kit's SIPp `uas_answer`): `NOTSURE`,
 *   `TOOLONG-<ms analysed>` once the total analysis time is over (recorded: amd-continue);
 * - `human`: a short "hello" (500 ms) then silence: `HUMAN`,
 *   `HUMAN-<afterGreetingSilence>-<afterGreetingSilence>` after 500 ms + the after-greeting silence;
 * - `machine`: a long recorded greeting: `MACHINE`, `LONGGREETING-<greeting>-<greeting>` after
 *   `greeting` ms of voice.
 * A verdict that would come after the total analysis time is `NOTSURE` (`TOOLONG-…`).
 */
export type AnswerVoice = 'none' | 'human' | 'machine';

/**
 * Digits a phone presses after its call is answered (RFC 2833 telephone-events). Each digit is
 * reported when it ends, as Asterisk does: `ChannelDtmfReceived {digit, duration_ms}` on the
 * phone's channel. A real Asterisk sees no DTMF from a channel in a two-channel `native_rtp`
 * bridge (the RTP is relayed without being decoded: a bridge needs the `dtmf_events` type for
 * that); neither does the simulator. Durations in simulated milliseconds.
 */
export interface DtmfPlan {
  /** Digits to press, `0-9`, `*`, `#`, `A-D`, e.g. `1` or `42#`. */
  digits: string;
  /** When the first digit is pressed, after the answer. */
  afterMs: number;
  /** How long each digit is held (`duration_ms` of the event). Default 280 (SIPp's recording). */
  durationMs?: number;
  /** Pause between two digits. Default 200. */
  gapMs?: number;
}

/** An inbound call from the PSTN (endpoint `pstn-in`, context `from-pstn`). */
export interface InboundCall {
  /** Caller's number (CALLERID(num)), e.g. `79161234567`. */
  from: string;
  /** Dialled number (DID), e.g. `74951234567`; becomes `EXTEN` and the Stasis arg. */
  to: string;
  /** CALLERID(name); defaults to `from` like the trace. */
  callerName?: string;
  /** Stasis app the dialplan sends the call to. Default `crm-app`. */
  app?: string;
  /** The caller hangs up (BYE) this long after the channel is answered (simulated ms). */
  hangupAfterMs?: number;
  /** The caller hangs up (CANCEL, cause 127/487) this long after the call starts if not answered by then (simulated ms). */
  abandonAfterMs?: number;
  /** Digits the caller presses once the call is answered. */
  dtmf?: DtmfPlan;
}

/** An operator dialling a customer from their phone (endpoint `PJSIP/<ext>`, context `from-internal`). */
export interface OperatorCall {
  /** The operator's extension, e.g. `101`. */
  extension: string;
  /** Dialled customer number (5+ digits); becomes `EXTEN` and the Stasis arg of `outbound`. */
  to: string;
  /** Stasis app the dialplan sends the call to. Default `crm-app`. */
  app?: string;
  /** The operator hangs up (BYE) this long after the channel is answered (simulated ms). */
  hangupAfterMs?: number;
  /** The operator hangs up (CANCEL) this long after dialling if not answered by then (simulated ms). */
  abandonAfterMs?: number;
  /** Digits the operator presses once the call is answered. */
  dtmf?: DtmfPlan;
}

/** One ARI REST request as the simulator served it (api-docs fetches are not recorded). */
export interface RecordedRequest {
  method: string;
  /** Path without the `/ari` prefix, e.g. `/channels/1795277133.61/dial`. */
  path: string;
  /** Query string parameters as received. */
  query: Record<string, string>;
  /** Parsed JSON (or form) body, `undefined` when none. */
  body: unknown;
  status: number;
  /**
   * JSON answer; for non-JSON answers a summary like the traces use:
   * `{contentType, bytes, head}` (`head` = first 12 bytes as hex).
   */
  response: unknown;
  /** Wall-clock time the answer was sent (epoch ms). */
  at: number;
}

/** Switchable races real Asterisk shows (fixtures facts 1 and 2). */
export interface SimulatorRaces {
  /** (a) StasisStart (and the events before it) of a `POST /channels/create` is sent on the WebSocket before the HTTP answer. Default false. */
  stasisStartBeforeCreateResponse?: boolean;
  /** (b) The first N channel commands sent after each StasisStart answer `409 {"message":"Channel not in Stasis application"}`. Default 0. */
  notInStasisAfterStasisStart?: number;
  /** (b') Probability (0..1) that a channel command answers that 409 while the channel is within its first 100 simulated ms after StasisStart. Default 0. */
  notInStasisProbability?: number;
}

/**
 * Answers held back by {@link PbxSimulator.holdResponses}: the requests it matches are carried
 * out at once, their HTTP answers are written once it is released.
 */
export interface ResponseHold {
  /** How many answers are held now. */
  readonly held: number;
  /** Resolves once `count` (default 1) matching requests have been held since the hold began. */
  whenHeld(count?: number): Promise<void>;
  /**
   * Write the held answers (in the order the requests came) and stop holding: requests from now
   * on are answered at once. Idempotent.
   */
  release(): void;
}

/** A simulated phone line and what it does when dialled. */
export interface PhoneInfo {
  extension: string;
  behaviour: PhoneBehaviour;
  /** The phone is registered (see `phones.setRegistered`). */
  registered: boolean;
  /** Live channels on endpoint `PJSIP/<extension>`. */
  channelIds: string[];
}

/** An event as sent on an app WebSocket. */
export type SimEvent = Record<string, unknown> & { type: string };

/** The running simulator. */
export interface PbxSimulator {
  /** `http://127.0.0.1:PORT`; ARI lives under `url + '/ari'`. */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  /** The simulated-time factor in use (see {@link SimulatorOptions.timeScale}). */
  readonly timeScale: number;
  /** Operator phones (`PJSIP/<ext>`). Defaults: answer after 1000 ms. */
  phones: {
    /** Set the behaviour of an operator extension; throws `RangeError` for an unknown extension. A phone ringing in `ring` mode adopts the new behaviour at once. */
    set(extension: string, behaviour: PhoneBehaviour): void;
    get(extension: string): PhoneBehaviour;
    /** Every extension back to the default (answer after 1000 ms), registered. */
    reset(): void;
    list(): PhoneInfo[];
    /**
     * Register (`true`) or unregister (`false`) an operator's phone, as a SIP phone does with
     * REGISTER (and `Expires: 0`): unregistered, its endpoint is `offline`, its device state
     * `UNAVAILABLE` (DeviceStateChanged / EndpointStateChange to subscribed apps) and dialling it
     * fails as for mode `unavailable`. Every phone starts registered. RangeError for an unknown
     * extension.
     */
    setRegistered(extension: string, registered: boolean): void;
  };
  /** Customers behind the trunk, by dialled number or `*` (default: answer after 1000 ms). */
  customers: {
    set(numberOrDefault: string, behaviour: PhoneBehaviour): void;
    reset(): void;
  };
  /**
   * A call arrives from the PSTN and runs `from-pstn`: `Stasis(<app>,inbound,<DID>)` at priority 2.
   * Rejects with {@link import('./errors.ts').SimCallRejectedError} when the app has no WebSocket (fixtures fact 14).
   */
  injectInboundCall(call: InboundCall): Promise<{ channelId: string }>;
  /**
   * An operator dials out from their phone: `from-internal` runs `Stasis(<app>,outbound,<number>)`.
   * Rejects like {@link injectInboundCall}.
   */
  injectOperatorCall(call: OperatorCall): Promise<{ channelId: string }>;
  /** The far end of that channel hangs up (BYE when answered, CANCEL for an unanswered inbound call, 603 for a ringing outbound one). Throws `RangeError` for an unknown channel. */
  hangup(channelId: string): void;
  /**
   * The phone behind that channel presses digits (see {@link DtmfPlan}; `afterMs` counts from
   * now). Throws `RangeError` for an unknown channel.
   */
  pressDigits(channelId: string, plan: DtmfPlan): void;
  /**
   * The phone behind that channel starts sending audio now (see {@link AnswerVoice}: `human` a
   * short hello then silence, `machine` a long greeting), after sending none so far (`voice`
   * `none`). An `AMD()` listening to the channel judges it from now on, within what is left of
   * its total analysis time, so a test decides when the verdict comes. Nothing to observe when
   * no `AMD()` listens. Throws `RangeError` for an unknown channel.
   */
  speak(channelId: string, voice: AnswerVoice): void;
  /**
   * The event volume so far: events addressed to connected apps (`offered`, what Asterisk would
   * send without an event filter) and events written to their WebSockets (`delivered`, after
   * each app's `eventFilter`).
   */
  eventCounts(): { offered: number; delivered: number };
  /**
   * Every event sent on an app WebSocket (only those of the given `types` when set: the others
   * are then not turned into objects for the listener). Returns the unsubscribe function.
   */
  onEvent(listener: (event: SimEvent) => void, types?: readonly string[]): () => void;
  /** Send an arbitrary event to the app's WebSocket(s) (`application`/`timestamp` are filled in when missing). */
  emitRawEvent(app: string, event: Record<string, unknown>): void;
  /** Every ARI REST request served, oldest first (the last `requestLogLimit` ones). */
  readonly requests: RecordedRequest[];
  clearRequests(): void;
  setRaces(races: SimulatorRaces): void;
  /**
   * Hold back the HTTP answers of the ARI requests with this method and path (without `/ari`,
   * e.g. `POST /channels`, the originate), as a loaded Asterisk or a slow network does: each
   * such request is carried out at once (an originated channel is created and dialled, its
   * events go out on the WebSocket, its phone rings and may answer) but its answer is written
   * only on {@link ResponseHold.release} (or never, for a client that gives up first, or when
   * the connection is cut meanwhile). Asterisk itself answers an originate only once the channel
   * exists and its dial has been handed to its own thread, so the dial's events may come before
   * the answer. Several holds may be active; a request matching one is held by the first.
   */
  holdResponses(method: string, path: string): ResponseHold;
  /**
   * Close every app WebSocket (server side), e.g. for reconnect tests. Like a real Asterisk
   * (fixtures fact 13): the app's channels stay in Stasis and bridged, events meanwhile are
   * dropped and never replayed; REST keeps working and a new WebSocket resumes events at once.
   */
  dropWebSockets(): void;
  /**
   * The app WebSockets open now go silent without closing, as when the network between the
   * engine and Asterisk silently drops packets (a partition, a firewall or NAT forgetting the
   * connection) before either side notices: Asterisk still counts the app as connected, so a call
   * reaching `Stasis(<app>)` enters it and its StasisStart is sent, but every event written to
   * those WebSockets is lost (never replayed). REST keeps working. The simulator still answers
   * the app's WebSocket pings: end the silence with {@link dropWebSockets} (what the engine's
   * ping timeout does against a real Asterisk).
   */
  stallWebSockets(): void;
  /**
   * ARI outage: the simulated Asterisk's HTTP server becomes unreachable, as when the network
   * between the engine and Asterisk fails or Asterisk's HTTP server restarts (`module reload
   * http`). Every open HTTP and WebSocket connection is cut, and every new TCP connection is
   * reset at once (the client sees ECONNRESET): REST and WebSocket alike, since Asterisk serves
   * both on one HTTP server. The PBX keeps running meanwhile, exactly as with a dropped WebSocket
   * (fact 13): channels stay in their Stasis app and bridged, phones ring, answer and hang up,
   * dial timeouts expire, events are dropped; a call reaching `Stasis(<app>)` is rejected (the
   * app has no WebSocket, fact 14). With `forMs` (real milliseconds, not simulated) connections
   * are accepted again after that long; without it, until {@link acceptConnections}. The
   * in-process API (`injectInboundCall`, `hangup`, `phones`…) keeps working.
   */
  refuseConnections(forMs?: number): void;
  /** End an outage started by {@link refuseConnections}: new connections are served again. */
  acceptConnections(): void;
  /** True during an outage started by {@link refuseConnections}. */
  refusingConnections(): boolean;
  /** Snapshots of the live channels, as `GET /channels` shows them. */
  channels(): AriChannel[];
  /** Control API for demos and e2e tests (JSON): POST /calls, GET /phones, PUT /phones/:extension, PUT /customers/:number, GET /channels, POST /channels/:id/hangup, POST /ari/drop, POST /ari/refuse, POST /ari/accept. */
  controlRouter(): Router;
  close(): Promise<void>;
}
