/**
 * The close codes of the live stream's sockets (`GET /v1/stream`, src/stream/server.ts), shared by
 * the server and its per-socket sessions (src/stream/connection.ts, src/stream/feed.ts).
 * Reference: docs/stream.md.
 */

/** Close codes of the stream. */
export const STREAM_CLOSE = {
  /** The engine stops (reconnect to another instance or later). */
  goingAway: 1001,
  /** The engine could not read its stored events (reconnect with `?after=`). */
  internalError: 1011,
  /**
   * An operator token authenticated (first message) while the operators' places are all taken
   * (the rest are kept for admin streams, STREAM_ADMIN_RESERVE), or the store did not commit
   * within STREAM_COMMIT_WAIT_MS before the replay (an outage): reconnect later, with a back-off.
   * The WebSocket registry's "Try Again Later".
   */
  tryAgainLater: 1013,
  /** A message that is not JSON, or of an unknown type. */
  badMessage: 4000,
  /** The operator token expired (renew before it does, or reconnect with a new token). */
  tokenExpired: 4001,
  /** No credentials within the time allowed after opening. */
  authTimeout: 4002,
  /** The token or API key is not valid (or a renewal is for another extension). */
  forbidden: 4003,
  /** The client did not read fast enough: its send buffer went over STREAM_MAX_BUFFERED_BYTES. */
  slowConsumer: 4008,
} as const;
