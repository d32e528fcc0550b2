/**
 * Ordered write streams (`Store.writeBatch(fn, { stream })`): the call journal keeps several
 * write batches in flight without waiting for each commit's answer, and still needs what a
 * strictly sequential writer gives it:
 *
 * - **order**: batches of one stream commit in the order `writeBatch` was called;
 * - **no gap**: once a batch of a stream fails, the later batches of that stream fail too
 *   ({@link StreamBrokenError}) without writing anything, until one is sent with `resume: true`.
 *   Without this, a batch holding a call's later state and events could commit after an earlier
 *   one failed, and the retried earlier events would reach the outbox after later ones.
 *
 * {@link WriteStreams} keeps the order (each batch takes its place synchronously when the write
 * is asked for, and waits for the previous batch of its stream to be handed over) and the engine
 * thread's record of broken streams. How a batch is "handed over" depends on the dialect: SQLite
 * hands it to its thread, which runs messages in arrival order and keeps its own record of
 * broken streams for batches already queued there (src/store/sqlite-thread.js); PostgreSQL hands
 * it over once it has committed or failed (a pool gives no order between connections).
 */
import { StoreError } from './errors.ts';

/**
 * A write batch of a stream was refused without writing anything, because an earlier batch of
 * the same stream failed and no batch with `resume: true` has been written since.
 */
export class StreamBrokenError extends StoreError {
  override name = 'StreamBrokenError';
  /** The stream's name. */
  readonly stream: string;
  constructor(stream: string) {
    super(`an earlier write of stream "${stream}" failed; written again only with resume`);
    this.stream = stream;
  }
}

/** A batch's place in its stream (see {@link WriteStreams.enter}). */
export interface StreamPlace {
  /** Resolves once every earlier batch of the stream was handed over. Never rejects. */
  readonly turn: Promise<void>;
  /** This batch was handed over (or failed before): the next one may go. Idempotent. */
  handedOver(): void;
}

/** Order and broken state of the write streams of one store (engine thread side). */
export class WriteStreams {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly broken = new Set<string>();

  /** Take the next place in `stream`, now (synchronously): places are served in call order. */
  enter(stream: string): StreamPlace {
    const turn = this.tails.get(stream) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.tails.set(stream, mine);
    let done = false;
    return {
      turn,
      handedOver: () => {
        if (done) return;
        done = true;
        release();
        if (this.tails.get(stream) === mine) this.tails.delete(stream);
      },
    };
  }

  /**
   * Called right before a batch of `stream` is handed over: a `resume` batch clears the broken
   * state, any other batch of a broken stream is refused.
   *
   * @throws StreamBrokenError when the stream is broken and `resume` is false
   */
  admit(stream: string, resume: boolean): void {
    if (resume) this.broken.delete(stream);
    else if (this.broken.has(stream)) throw new StreamBrokenError(stream);
  }

  /** A batch of `stream` failed (or may not have been written): later ones are refused. */
  markBroken(stream: string): void {
    this.broken.add(stream);
  }
}
