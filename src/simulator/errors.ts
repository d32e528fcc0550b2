/**
 * Errors of the PBX simulator: the ARI HTTP errors it answers (bodies exactly as Asterisk 22 sends
 * them, fixtures fact 10) and the errors of its programmatic API.
 */

/**
 * An ARI error answer. Asterisk answers `{"message": "..."}` for 4xx and most 5xx, and
 * `{"error": "Allocation failed"}` for allocation failures (unknown endpoint/technology).
 */
export class AriHttpError extends Error {
  override readonly name = 'AriHttpError';
  constructor(
    readonly status: number,
    readonly body: { message: string } | { error: string },
  ) {
    super('message' in body ? body.message : body.error);
  }
}

/** `{"message": text}` with the given status. */
export function ariError(status: number, message: string): AriHttpError {
  return new AriHttpError(status, { message });
}

/** 500 `{"error":"Allocation failed"}` (Asterisk's `ast_ari_response_alloc_failed`). */
export function allocationFailed(): AriHttpError {
  return new AriHttpError(500, { error: 'Allocation failed' });
}

/**
 * Thrown by `injectInboundCall` when the call never reaches the app: `app_not_connected` when
 * `Stasis(app)` fails because the app has no WebSocket (fixtures fact 14), `no_such_extension`
 * when the DID matches no extension of `from-pstn` (`_X.`: two digits or more).
 */
export class SimCallRejectedError extends Error {
  override readonly name = 'SimCallRejectedError';
  constructor(
    readonly app: string,
    readonly channelId: string,
    readonly reason: 'app_not_connected' | 'no_such_extension' = 'app_not_connected',
  ) {
    super(
      reason === 'app_not_connected'
        ? `Stasis app '${app}' is not registered (no WebSocket): the call was rejected`
        : `no extension of from-pstn matches the dialled number: the call was rejected`,
    );
  }
}
