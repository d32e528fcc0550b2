/**
 * The live stream's keep-alive pings, spread over the ping interval.
 *
 * Every socket is pinged once per STREAM_PING_INTERVAL_MS (a WebSocket ping frame, RFC 6455
 * §5.5.2) and closed when it did not answer the previous one. Pinging every socket in one timer
 * tick would stall the engine's event loop once per interval for as long as those writes take
 * (35-70 ms for 1 000 consoles, measured on a two-core virtual machine, and the pongs
 * come back in one burst too), and a call ringing then would pop up that much later. So the
 * sockets are dealt round-robin into slots, one slot per tick of at least
 * {@link PING_TICK_MS}, and each tick pings one slot: a few sockets at a time, each still once
 * per interval.
 */

/** What the wheel pings. */
export interface Pingable {
  /** Send a ping (or close the socket when the previous one went unanswered). */
  ping(): void;
}

/** Shortest time between two ticks of the wheel, ms. */
export const PING_TICK_MS = 100;

/** Most slots of a wheel (an interval of 30 s has 300: a tick every 100 ms). */
export const MAX_PING_SLOTS = 300;

/** Pings its members, each once per interval, a slot of them per tick. */
export class PingWheel<T extends Pingable> {
  private readonly slots: Set<T>[];
  private readonly slotOf = new Map<T, number>();
  /** Slot of the next member (round-robin, so members joining together are spread). */
  private nextSlot = 0;
  /** Slot the next tick pings. */
  private turn = 0;
  private readonly timer: NodeJS.Timeout;

  /**
   * Start ticking (the timer does not keep the process alive).
   *
   * @param intervalMs How often each member is pinged, ms (≥ 1). Intervals shorter than two
   *   ticks ping every member at once, once per interval.
   */
  constructor(intervalMs: number) {
    const count = Math.max(1, Math.min(MAX_PING_SLOTS, Math.floor(intervalMs / PING_TICK_MS)));
    this.slots = Array.from({ length: count }, () => new Set<T>());
    this.timer = setInterval(() => this.tick(), Math.max(1, Math.round(intervalMs / count)));
    this.timer.unref();
  }

  /** Members on the wheel. */
  get size(): number {
    return this.slotOf.size;
  }

  /** Put `member` on the wheel (its first ping comes within one interval). */
  add(member: T): void {
    if (this.slotOf.has(member)) return;
    const slot = this.nextSlot;
    this.nextSlot = (slot + 1) % this.slots.length;
    this.slots[slot]!.add(member);
    this.slotOf.set(member, slot);
  }

  /** Take `member` off the wheel (no more pings). */
  delete(member: T): void {
    const slot = this.slotOf.get(member);
    if (slot === undefined) return;
    this.slots[slot]!.delete(member);
    this.slotOf.delete(member);
  }

  /** Stop ticking. */
  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const slot = this.slots[this.turn]!;
    this.turn = (this.turn + 1) % this.slots.length;
    // A ping may close its socket, which takes it off the wheel: a Set's iteration allows that.
    for (const member of slot) member.ping();
  }
}
