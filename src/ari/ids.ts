/**
 * Client-generated ARI ids (fixtures fact 15): the engine names its channels, bridges and
 * playbacks itself, so it can listen for their events before Asterisk has created them, and a
 * request sent twice (its first answer lost) names the same object. Re-exported by `gateway.ts`.
 */
import { randomUUID } from 'node:crypto';

const ID_PREFIX = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * A client-generated channel id (fixtures fact 15): `<prefix>-<uuid v4>`, e.g.
 * `ch-3f0c…`. Asterisk keeps it in every event, so listeners can be registered before the
 * channel exists. `prefix` must be 1–32 of `[A-Za-z0-9_-]` (default `ch`); throws TypeError.
 */
export function newChannelId(prefix = 'ch'): string {
  if (!ID_PREFIX.test(prefix))
    throw new TypeError(`invalid channel id prefix: ${JSON.stringify(prefix)}`);
  return `${prefix}-${randomUUID()}`;
}

/** A client-generated bridge id, `br-<uuid v4>` (for `POST /bridges/{bridgeId}`). */
export function newBridgeId(): string {
  return `br-${randomUUID()}`;
}

/** A client-generated playback id, `pb-<uuid v4>` (ARI `playbackId`). */
export function newPlaybackId(): string {
  return `pb-${randomUUID()}`;
}
