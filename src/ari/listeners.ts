/**
 * The per-channel listener registry behind `AriGateway.onChannel` (instead of ari-client's
 * per-instance listeners, which are never removed).
 *
 * Which channels an event concerns ({@link channelIdsOf}): its `channel`, `replace_channel`,
 * Dial's `peer`/`caller`/`forwarded`, the `channel:<id>` target of a playback or recording, and
 * the members of the bridge the event is about (`bridge.channels`, or the last known members
 * for `bridge:<id>` playback/recording targets).
 *
 * Cleanup: a channel's listeners are dropped right after its `ChannelDestroyed` has been
 * delivered, or `graceMs` after its `StasisEnd` when no `ChannelDestroyed` follows (a channel
 * that went back to the dialplan, fixtures fact 7). A new `StasisStart` cancels the pending drop.
 */
import type { AriEvent, AriEventListener } from './types.ts';

/** Timer functions (tests may pass fake ones). */
export interface RegistryTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Options of {@link ChannelListenerRegistry}. */
export interface ChannelListenerRegistryOptions {
  /** How long after StasisEnd (without ChannelDestroyed) listeners are kept, in ms. */
  graceMs: number;
  /** Called with the number of registered listeners whenever it changes (metrics gauge). */
  onCountChange?: (count: number) => void;
  timers?: RegistryTimers;
}

interface Entry {
  listener: AriEventListener;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)
    : undefined;
}

function idOf(value: unknown): string | undefined {
  const id = record(value)?.id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** `channel:<id>` / `bridge:<id>` of a playback or recording `target_uri`. */
export function parseTargetUri(uri: unknown): { kind: string; id: string } | undefined {
  if (typeof uri !== 'string') return undefined;
  const colon = uri.indexOf(':');
  if (colon <= 0 || colon === uri.length - 1) return undefined;
  return { kind: uri.slice(0, colon), id: uri.slice(colon + 1) };
}

/**
 * Channel ids an event is about (see the module comment). `bridgeMembers` resolves `bridge:<id>`
 * targets. Tolerates malformed events (never throws).
 */
export function channelIdsOf(
  event: AriEvent,
  bridgeMembers: (bridgeId: string) => readonly string[] | undefined = () => undefined,
): Set<string> {
  const ids = new Set<string>();
  const e = event as unknown as Record<string, unknown>;
  for (const key of ['channel', 'replace_channel', 'peer', 'caller', 'forwarded']) {
    const id = idOf(e[key]);
    if (id) ids.add(id);
  }
  const bridge = record(e.bridge);
  if (bridge) {
    const members = bridge.channels;
    if (Array.isArray(members)) {
      for (const m of members) if (typeof m === 'string' && m) ids.add(m);
    }
  }
  const media = record(e.playback) ?? record(e.recording);
  if (media) {
    const target = parseTargetUri(media.target_uri);
    if (target?.kind === 'channel') ids.add(target.id);
    if (target?.kind === 'bridge') for (const m of bridgeMembers(target.id) ?? []) ids.add(m);
  }
  return ids;
}

/** Channel id → listeners, with automatic cleanup after the channel is gone. */
export class ChannelListenerRegistry {
  private readonly byChannel = new Map<string, Set<Entry>>();
  private readonly pendingRemoval = new Map<string, unknown>();
  private readonly bridges = new Map<string, string[]>();
  private total = 0;
  private readonly timers: RegistryTimers;

  constructor(private readonly options: ChannelListenerRegistryOptions) {
    this.timers = options.timers ?? {
      setTimeout: (fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return t;
      },
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    };
  }

  /** Register `listener` for `channelId`; returns the unsubscribe function (idempotent). */
  add(channelId: string, listener: AriEventListener): () => void {
    const entry: Entry = { listener };
    let set = this.byChannel.get(channelId);
    if (!set) {
      set = new Set();
      this.byChannel.set(channelId, set);
    }
    set.add(entry);
    this.setTotal(this.total + 1);
    return () => {
      const current = this.byChannel.get(channelId);
      if (!current?.delete(entry)) return;
      this.setTotal(this.total - 1);
      if (current.size === 0) this.dropChannel(channelId);
    };
  }

  /** Number of registered listeners (all channels). */
  count(): number {
    return this.total;
  }

  /** Number of channels with at least one listener. */
  channelCount(): number {
    return this.byChannel.size;
  }

  /** Whether `channelId` has listeners. */
  has(channelId: string): boolean {
    return this.byChannel.has(channelId);
  }

  /**
   * The listeners `event` must be delivered to, each once (deduplicated by function), in
   * registration order per channel. A snapshot: listeners added while it is delivered do not
   * receive it.
   */
  listenersFor(event: AriEvent): AriEventListener[] {
    this.trackBridge(event);
    if (this.byChannel.size === 0) return [];
    const out: AriEventListener[] = [];
    const seen = new Set<AriEventListener>();
    for (const id of channelIdsOf(event, (b) => this.bridges.get(b))) {
      const set = this.byChannel.get(id);
      if (!set) continue;
      for (const { listener } of set) {
        if (seen.has(listener)) continue;
        seen.add(listener);
        out.push(listener);
      }
    }
    return out;
  }

  /** Lifecycle bookkeeping once `event` has been delivered (see the module comment). */
  afterDelivery(event: AriEvent): void {
    const id = idOf((event as unknown as Record<string, unknown>).channel);
    if (!id) return;
    switch (event.type) {
      case 'ChannelDestroyed':
        this.forgetChannelInBridges(id);
        this.dropChannel(id);
        break;
      case 'StasisEnd':
        if (this.byChannel.has(id) && !this.pendingRemoval.has(id)) {
          const handle = this.timers.setTimeout(() => {
            this.pendingRemoval.delete(id);
            this.dropChannel(id);
          }, this.options.graceMs);
          this.pendingRemoval.set(id, handle);
        }
        break;
      case 'StasisStart':
        this.cancelRemoval(id);
        break;
      default:
        break;
    }
  }

  /** Drop every listener and timer (gateway stop). */
  clear(): void {
    for (const handle of this.pendingRemoval.values()) this.timers.clearTimeout(handle);
    this.pendingRemoval.clear();
    this.byChannel.clear();
    this.bridges.clear();
    this.setTotal(0);
  }

  private trackBridge(event: AriEvent): void {
    const bridge = record((event as unknown as Record<string, unknown>).bridge);
    const bridgeId = idOf(bridge);
    if (!bridge || !bridgeId) return;
    if (event.type === 'BridgeDestroyed') {
      this.bridges.delete(bridgeId);
      return;
    }
    const members = Array.isArray(bridge.channels)
      ? bridge.channels.filter((m): m is string => typeof m === 'string')
      : [];
    if (members.length === 0) this.bridges.delete(bridgeId);
    else this.bridges.set(bridgeId, members);
  }

  private forgetChannelInBridges(channelId: string): void {
    for (const [bridgeId, members] of this.bridges) {
      if (!members.includes(channelId)) continue;
      const rest = members.filter((m) => m !== channelId);
      if (rest.length === 0) this.bridges.delete(bridgeId);
      else this.bridges.set(bridgeId, rest);
    }
  }

  private cancelRemoval(channelId: string): void {
    const handle = this.pendingRemoval.get(channelId);
    if (handle === undefined) return;
    this.timers.clearTimeout(handle);
    this.pendingRemoval.delete(channelId);
  }

  private dropChannel(channelId: string): void {
    this.cancelRemoval(channelId);
    const set = this.byChannel.get(channelId);
    if (!set) return;
    this.byChannel.delete(channelId);
    if (set.size > 0) this.setTotal(this.total - set.size);
  }

  private setTotal(value: number): void {
    if (value === this.total) return;
    this.total = value;
    this.options.onCountChange?.(value);
  }
}
