/**
 * Typed ARI errors. ari-client rejects REST calls with a plain `Error` whose message is
 * Asterisk's raw JSON body (`{"message":"Channel not found"}`, or `{"error":"Allocation failed"}`
 * for a 500) and no HTTP status (fixtures fact 10). The gateway turns those into these classes.
 */

/** What kind of failure an ARI command met. `status` is the HTTP status Asterisk answered. */
export type AriErrorKind =
  | 'not_found'
  | 'not_in_stasis'
  | 'conflict'
  | 'bad_request'
  | 'unprocessable'
  | 'server_error'
  | 'connection'
  | 'unknown';

/** Base class of every error the gateway throws. */
export class AriError extends Error {
  override readonly name: string = 'AriError';
  constructor(
    /** Machine-readable kind, used for metrics labels and retry decisions. */
    readonly kind: AriErrorKind,
    /** HTTP status Asterisk answered (inferred from its body; undefined for connection errors). */
    readonly status: number | undefined,
    /** The gateway operation, e.g. `channels.dial`. */
    readonly operation: string,
    /** Asterisk's own message (`message` or `error` of its JSON body), or the transport error. */
    readonly asteriskMessage: string,
    options?: { cause?: unknown },
  ) {
    super(`ARI ${operation} failed (${status ?? kind}): ${asteriskMessage}`, options);
  }
}

/** 404: the channel, bridge, playback or recording does not exist (any more). */
export class AriNotFoundError extends AriError {
  override readonly name = 'AriNotFoundError';
  constructor(operation: string, asteriskMessage: string, options?: { cause?: unknown }) {
    super('not_found', 404, operation, asteriskMessage, options);
  }
}

/**
 * 409 "Channel not in Stasis application": commonly seen right after StasisStart under load
 * (fixtures fact 2); the gateway retries these briefly before throwing.
 */
export class AriNotInStasisError extends AriError {
  override readonly name = 'AriNotInStasisError';
  /**
   * `options.status` is 409 by default; `bridges.addChannel` reports the same race as
   * 422 "Channel not in Stasis application" (res/ari/resource_bridges.c `find_channel_control`).
   */
  constructor(
    operation: string,
    asteriskMessage: string,
    options?: { cause?: unknown; status?: 409 | 422 },
  ) {
    super('not_in_stasis', options?.status ?? 409, operation, asteriskMessage, options);
  }
}

/**
 * Other 409s (e.g. "Bridge not in Stasis application", "Channel with given unique ID already
 * exists") and 412 "Channel in invalid state" (`options.status: 412`): the resource exists but
 * its state does not allow the command.
 */
export class AriConflictError extends AriError {
  override readonly name = 'AriConflictError';
  constructor(
    operation: string,
    asteriskMessage: string,
    options?: { cause?: unknown; status?: 409 | 412 },
  ) {
    super('conflict', options?.status ?? 409, operation, asteriskMessage, options);
  }
}

/** 400 (missing or invalid parameter) or 422 (e.g. unknown dialplan location). */
export class AriBadRequestError extends AriError {
  override readonly name = 'AriBadRequestError';
  constructor(
    operation: string,
    asteriskMessage: string,
    status: 400 | 422 = 400,
    options?: { cause?: unknown },
  ) {
    super(
      status === 422 ? 'unprocessable' : 'bad_request',
      status,
      operation,
      asteriskMessage,
      options,
    );
  }
}

/**
 * 500 (e.g. `{"error":"Allocation failed"}` for an unknown endpoint) or other server failures
 * (`options.status`: another 5xx, or 403 "The recording file could not be opened").
 */
export class AriServerError extends AriError {
  override readonly name = 'AriServerError';
  constructor(
    operation: string,
    asteriskMessage: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super('server_error', options?.status ?? 500, operation, asteriskMessage, options);
  }
}

/** Asterisk could not be reached (connection refused, reset, timeout). */
export class AriConnectionError extends AriError {
  override readonly name = 'AriConnectionError';
  constructor(operation: string, message: string, options?: { cause?: unknown }) {
    super('connection', undefined, operation, message, options);
  }
}
