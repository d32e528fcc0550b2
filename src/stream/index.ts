/**
 * The live stream domain: operator tokens' HTTP route, the outbox-following hub and the
 * WebSocket server of `GET /v1/stream`. Reference: docs/stream.md.
 */
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import type { ApiKeyRing } from '../security/api-keys.ts';
import { OperatorTokens } from '../security/operator-tokens.ts';
import type { EventRepository } from '../store/index.ts';
import type { LiveOutbox } from '../store/outbox-positions.ts';
import { StreamHub } from './hub.ts';
import { StreamServer } from './server.ts';

export { StreamHub, type StreamItem, type StreamSubscriber } from './hub.ts';
export { STREAM_CLOSE } from './close-codes.ts';
export { STREAM_PATH, StreamServer, type StreamServerOptions } from './server.ts';
export { createStreamRoutes, tokenRequestSchema, type TokenView } from './routes.ts';

/**
 * The operator token signer of the configuration: OPERATOR_TOKEN_SECRET's keys; unset outside
 * production, a random key for this run (logged as a warning: tokens die on restart); unset in
 * production, none (tokens are refused).
 */
export function operatorTokensFromConfig(
  config: Pick<Config, 'OPERATOR_TOKEN_SECRET' | 'NODE_ENV'>,
  logger: Logger,
): OperatorTokens {
  if (config.OPERATOR_TOKEN_SECRET && config.OPERATOR_TOKEN_SECRET.length > 0)
    return new OperatorTokens({ secrets: config.OPERATOR_TOKEN_SECRET });
  if (config.NODE_ENV === 'production') {
    logger.warn(
      'OPERATOR_TOKEN_SECRET is not set: operator tokens are refused (the live stream takes API keys only)',
    );
    return new OperatorTokens({ secrets: [] });
  }
  logger.warn(
    'OPERATOR_TOKEN_SECRET is not set: operator tokens use a random key of this run and stop working on restart',
  );
  return new OperatorTokens({ secrets: [randomBytes(32).toString('hex')] });
}

/** What {@link createStream} needs. */
export interface StreamDeps {
  config: Pick<
    Config,
    | 'STREAM_ALLOWED_ORIGINS'
    | 'STREAM_PING_INTERVAL_MS'
    | 'STREAM_MAX_BUFFERED_BYTES'
    | 'STREAM_MAX_SOCKETS'
    | 'STREAM_ADMIN_RESERVE'
    | 'STREAM_POLL_INTERVAL_MS'
    | 'STREAM_COMMIT_WAIT_MS'
    | 'PUBLIC_URL'
    | 'TRUST_PROXY'
  >;
  tokens: OperatorTokens;
  apiKeys: ApiKeyRing;
  store: {
    events: Pick<EventRepository, 'feed' | 'head' | 'callEvents'>;
    onEventsAppended(listener: () => void): () => void;
    /** SQLite: the engine's outbox numbering (see `StreamHubDeps.live`). */
    outboxPositions?: LiveOutbox;
  };
  /** See {@link StreamServerOptions.liveCalls}. */
  liveCalls: (extension: string | undefined) => string[];
  /** The extensions a call involves (live or stored), undefined for an unknown call. */
  callExtensions: (callId: string) => Promise<readonly string[] | undefined>;
  allowsIp?: (ip: string | undefined) => boolean;
  isShuttingDown?: () => boolean;
  logger: Logger;
  registry: Registry;
}

/** Build the hub and the WebSocket server (attach it to the HTTP server with `attach`). */
export function createStream(deps: StreamDeps): { hub: StreamHub; server: StreamServer } {
  const hub = new StreamHub({
    events: deps.store.events,
    onAppended: (listener) => deps.store.onEventsAppended(listener),
    ...(deps.store.outboxPositions ? { live: deps.store.outboxPositions } : {}),
    callExtensions: deps.callExtensions,
    pollIntervalMs: deps.config.STREAM_POLL_INTERVAL_MS,
    commitWaitMs: deps.config.STREAM_COMMIT_WAIT_MS,
    logger: deps.logger,
  });
  const server = new StreamServer({
    hub,
    tokens: deps.tokens,
    apiKeys: deps.apiKeys,
    allowedOrigins: deps.config.STREAM_ALLOWED_ORIGINS,
    ...(deps.config.PUBLIC_URL ? { publicUrl: deps.config.PUBLIC_URL } : {}),
    pingIntervalMs: deps.config.STREAM_PING_INTERVAL_MS,
    maxBufferedBytes: deps.config.STREAM_MAX_BUFFERED_BYTES,
    maxSockets: deps.config.STREAM_MAX_SOCKETS,
    adminReserve: streamAdminReserve(deps.config),
    liveCalls: deps.liveCalls,
    ...(deps.allowsIp ? { allowsIp: deps.allowsIp } : {}),
    ...(deps.isShuttingDown ? { isShuttingDown: deps.isShuttingDown } : {}),
    trustProxy: deps.config.TRUST_PROXY,
    logger: deps.logger,
    registry: deps.registry,
  });
  return { hub, server };
}

/**
 * The places of STREAM_MAX_SOCKETS kept for admin (API key) streams: STREAM_ADMIN_RESERVE, or
 * unset a tenth of the cap, at most 10 (so a small cap set before the reserve existed still
 * leaves its operators their places).
 */
export function streamAdminReserve(
  config: Pick<Config, 'STREAM_ADMIN_RESERVE' | 'STREAM_MAX_SOCKETS'>,
): number {
  return config.STREAM_ADMIN_RESERVE ?? Math.min(10, Math.floor(config.STREAM_MAX_SOCKETS / 10));
}
