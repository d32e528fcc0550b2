/**
 * The call-control contract the HTTP API (and the asterisk.fcgi compatibility path) uses:
 * click-to-call, hang-up, transfer to a service number or an extension, and an operator's
 * current call. Implemented by {@link import('./service.ts').CallService}.
 */
import type { CallSnapshot } from './model.ts';

/** `POST /v1/calls`: ring the operator first, then dial the customer and bridge them. */
export interface ClickToCallRequest {
  /** Operator extension (digits), e.g. `101`. */
  operator: string;
  /** Customer number, already normalised to E.164 digits with a leading `+`, e.g. `+74957654321`. */
  to: string;
  /** CRM variables (deal id, text…) that travel with the call and its webhooks. */
  variables?: Record<string, string>;
  /** How many times the operator leg is tried when busy or not answering (1-3). */
  tries: number;
  /** Seconds between operator tries (1-10). */
  triesPeriodSec: number;
  /** Record the bridged conversation; absent: RECORD_CALLS decides. */
  record?: boolean;
  /** API key name that asked (logs only). */
  requestedBy?: string;
}

/** `POST /v1/calls/{id}/transfer`. */
export interface TransferRequest {
  /**
   * `service`: the customer leaves the bridge and continues in the dialplan at the service
   * context, extension `to`; the operator leg is hung up.
   * `extension`: blind transfer to another operator extension, still owned by the engine.
   */
  kind: 'service' | 'extension';
  /** Service number or extension (digits). */
  to: string;
}

/** What `GET /v1/operators/{extension}/current-call` answers. */
export interface CurrentCall {
  callId: string;
  /**
   * Asterisk UniqueID of the customer's channel (asterisk.fcgi `get_uniqueid_callerid`); empty
   * while
   * a click-to-call is still ringing the operator (no customer channel exists yet).
   */
  customerChannelId: string;
  /** The customer's caller ID as Asterisk knows it. */
  callerId: { number: string; name: string };
  direction: 'in' | 'out';
  /** Live state of the call (see {@link CallSnapshot.state}). */
  state: CallSnapshot['state'];
}

/**
 * The call-control side does not hold the call: it never existed, or it ended and only the store
 * knows it now (see {@link CallControl.getCall}). HTTP 404 `call_not_found`, or 409 `call_ended`
 * when the store has the call ended (src/calls/call-command-routes.ts).
 */
export class CallNotFoundError extends Error {
  override readonly name = 'CallNotFoundError';
  readonly code = 'call_not_found';
  constructor(readonly callId: string) {
    super(`call ${callId} not found`);
  }
}

/**
 * The call is in a state where the command makes no sense (already ended; transfer before the
 * call is bridged). HTTP 409 with `code`.
 */
export class CallStateError extends Error {
  override readonly name = 'CallStateError';
  constructor(
    readonly code:
      | 'call_ended'
      | 'call_not_bridged'
      | 'transfer_in_progress'
      | 'transfer_failed'
      | 'transfer_to_self',
    message: string,
  ) {
    super(message);
  }
}

/** The operations the API needs from the call domain. */
export interface CallControl {
  /** Start a click-to-call; returns at once with the new call (state `dialing_operator`). */
  startClickToCall(request: ClickToCallRequest): CallSnapshot;
  /**
   * A call held in memory: live, or ended but not yet committed to the store (the store lags the
   * call by an event-loop turn, longer while it fails); undefined otherwise. Ended calls are read
   * from the store (`store.calls.getCall`), as `GET /v1/calls/{id}` does.
   */
  getCall(callId: string): CallSnapshot | undefined;
  /**
   * Hang up every leg of a live call. Throws CallStateError('call_ended') for an ended call still
   * held, CallNotFoundError for a call not held (unknown, or ended and already stored).
   */
  hangupCall(callId: string): Promise<CallSnapshot>;
  /** Transfer a bridged call. Throws CallNotFoundError, CallStateError (as {@link hangupCall}). */
  transferCall(callId: string, request: TransferRequest): Promise<CallSnapshot>;
  /**
   * Follow a call: `listener` gets the call's snapshot after every step that may have changed it
   * (state, legs, end; the ended snapshot is the last one), until the returned function is
   * called. Nothing is called for an unknown or already ended call. Listeners must not throw.
   */
  watchCall(callId: string, listener: (call: CallSnapshot) => void): () => void;
  /**
   * The live call one of whose channels has this id (Asterisk UniqueID, or the engine's client
   * id), or undefined (asterisk.fcgi `transfer=UNIQUEID`).
   */
  findCallByChannel(channelId: string): CallSnapshot | undefined;
  /** The call the operator at `extension` is on (ringing or talking), or undefined. */
  currentCallOf(extension: string): CurrentCall | undefined;
  /** Calls the engine originated (click-to-call) that are not ended yet (toll-fraud cap). */
  liveOriginatedCalls(): number;
  /**
   * Resolves true once the store holds everything recorded of the call so far (for a new
   * click-to-call: the call and its `call.started`), false if that took longer than `timeoutMs`
   * (milliseconds; the journal keeps retrying, nothing is dropped). True at once without a store.
   * Never rejects. `POST /v1/calls` answers 202 only after this (nothing accepted is lost).
   */
  whenStored(callId: string, timeoutMs: number): Promise<boolean>;
  /**
   * True while the store's last write failed and is being retried (the same check as `/readyz`):
   * `POST /v1/calls` then refuses new calls with 503 `store_unavailable` instead of accepting
   * calls it cannot record.
   */
  storeFailing(): boolean;
  /**
   * True while the ARI connection to Asterisk is open (the `ari` check of `/readyz`). While it is
   * not (starting with Asterisk down, or during an outage), call commands (`POST /v1/calls`,
   * hang-up, transfer, compat `makecall`/`transfer`) answer 503 `ari_unavailable`.
   */
  ariConnected(): boolean;
}
