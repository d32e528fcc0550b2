/**
 * Typed view of the Asterisk REST Interface (ARI) as used by ari-crm.
 *
 * Shapes follow Asterisk 22's ARI models (`/ari/api-docs/*.json`) as seen in the recorded traces
 * under `shared/fixtures/ari/traces/`. Only the fields the engine reads are declared; Asterisk may
 * send more. Times are ISO 8601 strings exactly as Asterisk sends them
 * (`2026-11-21T16:05:33.356+0000`).
 */

/** ARI `Channel.state`. */
export type ChannelState =
  | 'Down'
  | 'Rsrvd'
  | 'OffHook'
  | 'Dialing'
  | 'Ring'
  | 'Ringing'
  | 'Up'
  | 'Busy'
  | 'Dialing Offhook'
  | 'Pre-ring'
  | 'Unknown';

/** ARI `CallerID`. */
export interface AriCallerId {
  name: string;
  number: string;
}

/** ARI `DialplanCEP`: where the channel is in the dialplan. */
export interface AriDialplan {
  context: string;
  exten: string;
  priority: number;
  app_name?: string;
  app_data?: string;
}

/** ARI `Channel`. `id` is Asterisk's UniqueID (or the client-chosen `channelId`). */
export interface AriChannel {
  id: string;
  name: string;
  state: ChannelState;
  protocol_id?: string;
  caller: AriCallerId;
  connected: AriCallerId;
  accountcode: string;
  dialplan: AriDialplan;
  creationtime: string;
  language: string;
  channelvars?: Record<string, string>;
}

/** ARI `Bridge`. */
export interface AriBridge {
  id: string;
  technology: string;
  bridge_type: string;
  bridge_class: string;
  creator: string;
  name: string;
  channels: string[];
  creationtime?: string;
  video_mode?: string;
}

/** ARI `Playback`. `state` is queued | playing | continuing | done | failed. */
export interface AriPlayback {
  id: string;
  media_uri: string;
  next_media_uri?: string;
  target_uri: string;
  language?: string;
  state: string;
}

/** ARI `LiveRecording`. `duration` is in seconds and present once finished. */
export interface AriLiveRecording {
  name: string;
  format: string;
  state: string;
  target_uri: string;
  duration?: number;
  talking_duration?: number;
  silence_duration?: number;
  cause?: string;
}

/** ARI `StoredRecording`. */
export interface AriStoredRecording {
  name: string;
  format: string;
}

/** ARI `Endpoint`. */
export interface AriEndpoint {
  technology: string;
  resource: string;
  state?: string;
  channel_ids: string[];
}

/** ARI `DeviceState`. */
export interface AriDeviceState {
  name: string;
  state: string;
}

/** ARI `Application`. */
export interface AriApplication {
  name: string;
  channel_ids: string[];
  bridge_ids: string[];
  endpoint_ids: string[];
  device_names: string[];
  /** Event types sent to the application (`[{type}]`; empty: all), Asterisk 13.26+. */
  events_allowed?: Array<{ type: string }>;
  /** Event types not sent to the application (`[{type}]`), Asterisk 13.26+. */
  events_disallowed?: Array<{ type: string }>;
}

/**
 * An application event filter (`PUT /applications/{app}/eventFilter`): a list given replaces the
 * application's; an event is sent when its type is not disallowed and the allowed list is empty
 * or holds it. Asterisk 22 honours it (recorded on the real thing: the event-filter trace).
 */
export interface AriEventFilter {
  allowed?: readonly AriEventType[];
  disallowed?: readonly AriEventType[];
}

// ---------------------------------------------------------------------------------------------
// Events (ARI `events.json`). Every event carries `type`, `timestamp`, `application` and usually
// `asterisk_id`.
// ---------------------------------------------------------------------------------------------

interface EventBase {
  timestamp: string;
  application: string;
  asterisk_id?: string;
}

/** A channel entered the Stasis app. `args` are the `Stasis(app,arg1,arg2,…)` arguments. */
export interface StasisStartEvent extends EventBase {
  type: 'StasisStart';
  args: string[];
  channel: AriChannel;
  replace_channel?: AriChannel;
}
/** A channel left the Stasis app (hung up, or continued in the dialplan). */
export interface StasisEndEvent extends EventBase {
  type: 'StasisEnd';
  channel: AriChannel;
}
export interface ChannelStateChangeEvent extends EventBase {
  type: 'ChannelStateChange';
  channel: AriChannel;
}
/**
 * A hang-up was requested. `cause` is the Q.850 cause (absent when the far end simply hung up,
 * 127/17 etc. from the phone, 32 with `soft: true` when Asterisk or the app asked for it).
 */
export interface ChannelHangupRequestEvent extends EventBase {
  type: 'ChannelHangupRequest';
  channel: AriChannel;
  cause?: number;
  soft?: boolean;
  tech_cause?: number;
}
/** The channel is gone. `cause`/`cause_txt` are the final Q.850 cause, e.g. 17 "User busy". */
export interface ChannelDestroyedEvent extends EventBase {
  type: 'ChannelDestroyed';
  channel: AriChannel;
  cause: number;
  cause_txt: string;
  tech_cause?: number;
}
/**
 * Dial progress of `peer`. `dialstatus` is '' at the start, then RINGING, ANSWER, BUSY,
 * NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL…
 */
export interface DialEvent extends EventBase {
  type: 'Dial';
  dialstatus: string;
  dialstring?: string;
  forward?: string;
  peer: AriChannel;
  caller?: AriChannel;
  forwarded?: AriChannel;
}
export interface ChannelVarsetEvent extends EventBase {
  type: 'ChannelVarset';
  variable: string;
  value: string;
  channel?: AriChannel;
}
export interface ChannelCallerIdEvent extends EventBase {
  type: 'ChannelCallerId';
  caller_presentation: number;
  caller_presentation_txt: string;
  channel: AriChannel;
}
export interface ChannelConnectedLineEvent extends EventBase {
  type: 'ChannelConnectedLine';
  channel: AriChannel;
}
export interface ChannelDialplanEvent extends EventBase {
  type: 'ChannelDialplan';
  channel: AriChannel;
  dialplan_app: string;
  dialplan_app_data: string;
}
export interface ChannelDtmfReceivedEvent extends EventBase {
  type: 'ChannelDtmfReceived';
  channel: AriChannel;
  digit: string;
  duration_ms: number;
}
export interface ChannelEnteredBridgeEvent extends EventBase {
  type: 'ChannelEnteredBridge';
  bridge: AriBridge;
  channel: AriChannel;
}
export interface ChannelLeftBridgeEvent extends EventBase {
  type: 'ChannelLeftBridge';
  bridge: AriBridge;
  channel: AriChannel;
}
export interface BridgeCreatedEvent extends EventBase {
  type: 'BridgeCreated';
  bridge: AriBridge;
}
export interface BridgeDestroyedEvent extends EventBase {
  type: 'BridgeDestroyed';
  bridge: AriBridge;
}
export interface PlaybackStartedEvent extends EventBase {
  type: 'PlaybackStarted';
  playback: AriPlayback;
}
export interface PlaybackContinuingEvent extends EventBase {
  type: 'PlaybackContinuing';
  playback: AriPlayback;
}
export interface PlaybackFinishedEvent extends EventBase {
  type: 'PlaybackFinished';
  playback: AriPlayback;
}
export interface RecordingStartedEvent extends EventBase {
  type: 'RecordingStarted';
  recording: AriLiveRecording;
}
export interface RecordingFinishedEvent extends EventBase {
  type: 'RecordingFinished';
  recording: AriLiveRecording;
}
export interface RecordingFailedEvent extends EventBase {
  type: 'RecordingFailed';
  recording: AriLiveRecording;
}
export interface DeviceStateChangedEvent extends EventBase {
  type: 'DeviceStateChanged';
  device_state: AriDeviceState;
}
export interface EndpointStateChangeEvent extends EventBase {
  type: 'EndpointStateChange';
  endpoint: AriEndpoint;
}

/** Every ARI event type the engine understands. Other types are logged, counted and dropped. */
export type AriEvent =
  | StasisStartEvent
  | StasisEndEvent
  | ChannelStateChangeEvent
  | ChannelHangupRequestEvent
  | ChannelDestroyedEvent
  | DialEvent
  | ChannelVarsetEvent
  | ChannelCallerIdEvent
  | ChannelConnectedLineEvent
  | ChannelDialplanEvent
  | ChannelDtmfReceivedEvent
  | ChannelEnteredBridgeEvent
  | ChannelLeftBridgeEvent
  | BridgeCreatedEvent
  | BridgeDestroyedEvent
  | PlaybackStartedEvent
  | PlaybackContinuingEvent
  | PlaybackFinishedEvent
  | RecordingStartedEvent
  | RecordingFinishedEvent
  | RecordingFailedEvent
  | DeviceStateChangedEvent
  | EndpointStateChangeEvent;

export type AriEventType = AriEvent['type'];

/** The event of the given `type`. */
export type AriEventOf<T extends AriEventType> = Extract<AriEvent, { type: T }>;

/** Every event type name in {@link AriEvent}, for runtime checks. */
export const ARI_EVENT_TYPES: readonly AriEventType[] = [
  'StasisStart',
  'StasisEnd',
  'ChannelStateChange',
  'ChannelHangupRequest',
  'ChannelDestroyed',
  'Dial',
  'ChannelVarset',
  'ChannelCallerId',
  'ChannelConnectedLine',
  'ChannelDialplan',
  'ChannelDtmfReceived',
  'ChannelEnteredBridge',
  'ChannelLeftBridge',
  'BridgeCreated',
  'BridgeDestroyed',
  'PlaybackStarted',
  'PlaybackContinuing',
  'PlaybackFinished',
  'RecordingStarted',
  'RecordingFinished',
  'RecordingFailed',
  'DeviceStateChanged',
  'EndpointStateChange',
];

// ---------------------------------------------------------------------------------------------
// Command parameters. Units are in the names: `timeoutSec` is seconds (ARI's `timeout`).
// ---------------------------------------------------------------------------------------------

/** `POST /channels/create`: a channel that enters Stasis at once, state Down, not yet dialled. */
export interface CreateChannelParams {
  /** e.g. `PJSIP/101` or `PJSIP/74957654321@client-trunk`. */
  endpoint: string;
  /** Client-generated id (fixtures fact 15); required so no event can precede our knowledge. */
  channelId: string;
  /** Stasis args, joined with ',' (ARI `appArgs`). */
  appArgs: string[];
  /** Channel the new one is "originated by" (ARI `originator`), for linkedid/codecs. */
  originator?: string;
  /** Channel variables set at creation, e.g. `{"CALLERID(name)": "CRM: Ivan"}` (fixtures fact 3). */
  variables?: Record<string, string>;
}

/** `POST /channels`: originate; the channel enters Stasis only when answered (fixtures fact 8). */
export interface OriginateParams {
  endpoint: string;
  channelId: string;
  appArgs: string[];
  /** `"Name" <number>` or a bare number. */
  callerId?: string;
  /** Ring timeout in seconds (ARI `timeout`, default 30). */
  timeoutSec?: number;
  originator?: string;
  variables?: Record<string, string>;
}

/** `POST /channels/{id}/dial`. */
export interface DialParams {
  /** The channel this dial is made on behalf of (ARI `caller`), used for connected line. */
  caller?: string;
  /** Seconds to ring before Asterisk gives up (ARI `timeout`, 0 = forever). */
  timeoutSec?: number;
}

/** `POST /channels/{id}/continue`. */
export interface ContinueParams {
  context: string;
  extension: string;
  priority?: number;
  label?: string;
}

/** `POST /channels/{id}/play` and `POST /bridges/{id}/play`. */
export interface PlayParams {
  /** One or more media URIs, e.g. `sound:hello-world`, played in order. */
  media: string[];
  lang?: string;
  /** Client-generated playback id. */
  playbackId: string;
}

/** `POST /bridges/{id}/record` and `POST /channels/{id}/record`. */
export interface RecordParams {
  name: string;
  format: string;
  /** Maximum duration in seconds (0 = none). */
  maxDurationSec?: number;
  ifExists?: 'fail' | 'overwrite' | 'append';
  beep?: boolean;
  /** Seconds of silence that end the recording (ARI `maxSilenceSeconds`, 0 = none). */
  maxSilenceSec?: number;
  /** DTMF that ends the recording (ARI `terminateOn`: none, any, * or #). */
  terminateOn?: 'none' | 'any' | '*' | '#';
}

/** `POST /bridges/{id}` (create with a client id). */
export interface CreateBridgeParams {
  bridgeId: string;
  /** Comma-free list, e.g. ['mixing'] or ['mixing', 'dtmf_events']. */
  type?: string[];
  name?: string;
}

/** `DELETE /channels/{id}`: `reason` is ARI's hang-up reason (normal, busy, congestion, no_answer…). */
export interface HangupParams {
  reason?: 'normal' | 'busy' | 'congestion' | 'no_answer' | 'timeout' | 'rejected' | 'unallocated';
}

/** Gateway connection state, as reported to {@link AriGateway.onConnectionChange}. */
export type AriConnectionState = 'connecting' | 'connected' | 'disconnected' | 'stopped';

/** A listener for ARI events. It may be async; a throw or rejection is logged and counted. */
export type AriEventListener = (event: AriEvent) => void | Promise<void>;

/**
 * The ARI gateway: the only place that touches ari-client. All REST methods throw
 * {@link import('./errors.ts').AriError} subclasses on failure.
 */
export interface AriGateway {
  /** The Stasis application name (e.g. `crm-app`). */
  readonly app: string;
  /**
   * Load the API, open the event WebSocket and register the Stasis app. Resolves once connected
   * the first time; keeps reconnecting forever with capped exponential backoff afterwards.
   */
  start(): Promise<void>;
  /**
   * Close the WebSocket, stop reconnecting, drop listeners. REST commands still work afterwards
   * (each opens a new connection): call steps already under way when the engine stops finish
   * their commands (e.g. the hang-up of a route the CRM answers while ARI closes). {@link seal}
   * ends that.
   */
  stop(): Promise<void>;
  /**
   * Close the gateway for good (the engine's stop calls it last, once its call steps settled and
   * its call journal closed): stops it as {@link stop} does if it is not stopped yet; from then
   * on every REST command rejects with `AriConnectionError` ("the engine has stopped") without
   * reaching Asterisk, and {@link start} rejects with it too. Idempotent.
   */
  seal(): Promise<void>;
  /** True while the event WebSocket is open. */
  isConnected(): boolean;
  /**
   * Subscribe to every known event for the app. Returns the unsubscribe function.
   *
   * Delivery: each event is handed, synchronously and in arrival order, to every `onEvent`
   * listener, then to the `onChannel` listeners it concerns (a snapshot taken on arrival: a
   * listener added while an event is being delivered gets the next one). A listener's returned
   * promise is not awaited before the next event, so a slow listener never delays other calls;
   * its throw or rejection is logged, counted and passed to `onHandlerError`.
   */
  onEvent(listener: AriEventListener): () => void;
  /**
   * Subscribe to events about one channel (as `channel`, `peer`, or bridge membership). The
   * listener is removed automatically after the channel's ChannelDestroyed, or shortly after its
   * StasisEnd when no ChannelDestroyed follows (dialplan channels, fixtures fact 7).
   */
  onChannel(channelId: string, listener: AriEventListener): () => void;
  /** Connection state changes (connected after a (re)connect, disconnected when the WS drops). */
  onConnectionChange(listener: (state: AriConnectionState) => void): () => void;

  channels: {
    list(): Promise<AriChannel[]>;
    get(channelId: string): Promise<AriChannel>;
    /**
     * `POST /channels/create`. When Asterisk answers 409 "already exists" for the engine's own
     * `channelId`, an earlier try of this create took effect and only its answer was lost: the
     * existing channel is answered (`GET /channels/{channelId}`) instead of an error.
     */
    create(params: CreateChannelParams): Promise<AriChannel>;
    /** `POST /channels` (originate); a 409 "already exists" for its `channelId` as for {@link create}. */
    originate(params: OriginateParams): Promise<AriChannel>;
    dial(channelId: string, params?: DialParams): Promise<void>;
    answer(channelId: string): Promise<void>;
    ring(channelId: string): Promise<void>;
    ringStop(channelId: string): Promise<void>;
    hangup(channelId: string, params?: HangupParams): Promise<void>;
    continueInDialplan(channelId: string, params: ContinueParams): Promise<void>;
    play(channelId: string, params: PlayParams): Promise<AriPlayback>;
    record(channelId: string, params: RecordParams): Promise<AriLiveRecording>;
    setVariable(channelId: string, variable: string, value: string): Promise<void>;
    getVariable(channelId: string, variable: string): Promise<string>;
  };
  bridges: {
    list(): Promise<AriBridge[]>;
    get(bridgeId: string): Promise<AriBridge>;
    /**
     * `POST /bridges/{bridgeId}` (createWithId). When Asterisk answers 409 "already exists" for
     * the engine's own `bridgeId`, an earlier try of this create took effect and only its answer
     * was lost (a connection cut, then the retry): the existing bridge is answered
     * (`GET /bridges/{bridgeId}`) instead of an error.
     */
    create(params: CreateBridgeParams): Promise<AriBridge>;
    destroy(bridgeId: string): Promise<void>;
    addChannel(bridgeId: string, channelIds: string[]): Promise<void>;
    removeChannel(bridgeId: string, channelIds: string[]): Promise<void>;
    record(bridgeId: string, params: RecordParams): Promise<AriLiveRecording>;
    play(bridgeId: string, params: PlayParams): Promise<AriPlayback>;
  };
  playbacks: {
    get(playbackId: string): Promise<AriPlayback>;
    stop(playbackId: string): Promise<void>;
  };
  recordings: {
    /** Every stored recording (`GET /recordings/stored`). */
    listStored(): Promise<AriStoredRecording[]>;
    getStored(name: string): Promise<AriStoredRecording>;
    /** The stored file's bytes (`GET /recordings/stored/{name}/file`). */
    getStoredFile(name: string): Promise<Buffer>;
    deleteStored(name: string): Promise<void>;
    /** A recording in progress (`GET /recordings/live/{name}`); AriNotFoundError when none. */
    getLive(name: string): Promise<AriLiveRecording>;
    /**
     * Stop a recording in progress and store it (`POST /recordings/live/{name}/stop`);
     * RecordingFinished follows. AriNotFoundError when it is not in progress.
     */
    stopLive(name: string): Promise<void>;
  };
  endpoints: {
    list(): Promise<AriEndpoint[]>;
    get(technology: string, resource: string): Promise<AriEndpoint>;
  };
  deviceStates: {
    list(): Promise<AriDeviceState[]>;
    /**
     * `GET /deviceStates/{deviceName}`: the current state of any device, e.g. `PJSIP/101` →
     * `NOT_INUSE`, `INUSE`, `RINGING`, `UNAVAILABLE` (no registered contact), `INVALID`.
     */
    get(deviceName: string): Promise<AriDeviceState>;
  };
  applications: {
    list(): Promise<AriApplication[]>;
    get(name: string): Promise<AriApplication>;
    /**
     * Set this gateway's application event filter (`PUT /applications/{app}/eventFilter`);
     * resolves with the application as Asterisk lists it. AriNotFoundError when the application
     * is not registered (no WebSocket and nothing in it).
     */
    setEventFilter(filter: AriEventFilter): Promise<AriApplication>;
    /**
     * Subscribe this gateway's application to event sources (`POST /applications/{app}/
     * subscription?eventSource=…`), e.g. `deviceState:PJSIP/101` (DeviceStateChanged) or
     * `endpoint:PJSIP/101` (EndpointStateChange, and every channel event of the endpoint).
     * Subscribing again to a subscribed source is harmless. AriError 400 for a bad scheme, 422
     * (AriUnprocessableError) for a source that does not exist (device-endpoint-state trace).
     */
    subscribe(eventSources: readonly string[]): Promise<AriApplication>;
  };
}
