/**
 * Delays for the gateway's two retry loops: the connection (capped exponential backoff with
 * jitter, forever) and the 409 "Channel not in Stasis application" command retry (short, capped
 * number of tries, doubling; fixtures fact 2). {@link computeBackoffDelay} with `jitter: 0` is
 * also the call journal's store-write retry, the recording download and store-write retries, and
 * the reconciliation's channel/bridge listing. {@link CancellableSleeps}: retry waits that a stop
 * cuts short.
 */

/** Reconnect backoff settings, in milliseconds. */
export interface BackoffOptions {
  /** Delay before the first retry (default 500 ms). */
  initialDelayMs: number;
  /** Upper bound of any delay (default 10 000 ms). */
  maxDelayMs: number;
  /**
   * Fraction of the delay that is randomised, 0…1 (default 0.2: the delay is drawn uniformly
   * from [0.8·d, d]), so many engines do not reconnect to a restarted Asterisk in lockstep.
   */
  jitter?: number;
}

/**
 * The delay before reconnect attempt number `attempt` (0 for the first retry):
 * `min(maxDelayMs, initialDelayMs · 2^attempt)`, then reduced by up to `jitter` of itself.
 *
 * @param random a source of numbers in [0, 1) (tests pass a fixed one).
 * @returns milliseconds, an integer ≥ 0 and ≤ maxDelayMs.
 */
export function computeBackoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const initial = Math.max(0, options.initialDelayMs);
  const max = Math.max(initial, options.maxDelayMs);
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.2));
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30);
  const base = Math.min(max, initial * 2 ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.max(0, Math.round(base * (1 - jitter * r)));
}

/** Settings of the "Channel not in Stasis application" retry. */
export interface NotInStasisRetryOptions {
  /** Total tries including the first one (default 6). */
  attempts: number;
  /** Delay before the second try (default 25 ms), doubled before each further try. */
  delayMs: number;
}

/**
 * Delay before retry number `retry` (1 for the first retry, i.e. the second try):
 * `delayMs · 2^(retry-1)`. With the defaults: 25, 50, 100, 200, 400 ms (775 ms in all).
 */
export function notInStasisRetryDelay(retry: number, options: NotInStasisRetryOptions): number {
  return Math.max(0, options.delayMs) * 2 ** Math.max(0, retry - 1);
}

/**
 * Retry delays that a stop can cut short: {@link sleep} resolves after `ms`, or at once when
 * {@link wakeAll} runs (the owner stopping: its loops then see that they must give up). Used by
 * the ARI connection (reconnect backoff, command retries) and the recordings (download and
 * look-up retries). Never rejects.
 */
export class CancellableSleeps {
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  /** @param unref do not keep the process alive for these timers */
  constructor(private readonly unref = false) {}

  /** Resolves after `ms` milliseconds, or when {@link wakeAll} runs first. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
        resolve,
      };
      if (this.unref) sleeper.timer.unref();
      this.sleepers.add(sleeper);
    });
  }

  /** Clear every pending timer and resolve its sleep now. */
  wakeAll(): void {
    for (const sleeper of this.sleepers) {
      clearTimeout(sleeper.timer);
      sleeper.resolve();
    }
    this.sleepers.clear();
  }
}
