/**
 * What the playback and recording controllers need from the PBX model: the clock, ids, the event
 * bus, the live channels and bridges, and bridge re-evaluation after a recorder or announcer joins
 * or leaves (technology, connected line).
 */
import type { SimClock } from './clock.ts';
import type { EventBus } from './events.ts';
import type { IdFactory } from './ids.ts';
import type { SimBridge, SimChannel } from './model.ts';

export interface MediaHost {
  readonly clock: SimClock;
  readonly ids: IdFactory;
  readonly events: EventBus;
  readonly channels: ReadonlyMap<string, SimChannel>;
  readonly bridges: ReadonlyMap<string, SimBridge>;
  /** Re-evaluate a bridge whose participants changed (technology, connected line, lonely participants). */
  settleBridge(bridge: SimBridge): void;
  /** Re-evaluate only the bridge technology. */
  refreshTechnology(bridge: SimBridge): void;
}

/** `channel:<id>` / `bridge:<id>` → [kind, id]. */
export function splitUri(uri: string): [string, string] {
  const colon = uri.indexOf(':');
  return [uri.slice(0, colon), uri.slice(colon + 1)];
}
