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

/** Thrown by `injectInboundCall` when `Stasis(app)` fails because the app has no WebSocket (fixtures fact 14). */
export class SimCallRejectedError extends Error {
  override readonly name = 'SimCallRejectedError';
  constructor(
    readonly app: string,
    readonly channelId: string,
  ) {
    super(`Stasis app '${app}' is not registered (no WebSocket): the call was rejected`);
  }
}
