/**
 * The single-connection mutex of the SQLite store (the worker driver's connection,
 * src/store/sqlite-worker.ts, and the write batches, src/store/write-batch.ts): first come first
 * served, with places that can be taken before they are used.
 */

/**
 * A place in a {@link ConnectionMutex}'s line, taken before its holder is ready to use the
 * connection: `acquire` resolves once every earlier place was released; `cancel` gives up a place
 * never acquired. Every place must be acquired (then unlocked) or cancelled, or the line stops.
 */
export interface MutexTicket {
  acquire(): Promise<void>;
  cancel(): void;
}

/**
 * A single-connection mutex, as in Kysely's SqliteDriver (also used by src/store/write-batch.ts),
 * first come first served: the connection goes to places in the order they were taken, so no
 * later `lock` can overtake an earlier one (write batches of a stream rely on their order). A
 * place can be taken ahead of use ({@link reserve}): the driver's line of batches does, so that
 * a batch asked for later (the webhook queue recording the delivery of an event the journal
 * handed on early) never reaches the thread before an earlier one still being collected.
 */
export class ConnectionMutex {
  private held = false;
  private readonly line: Array<{ grant?: () => void; cancelled: boolean }> = [];

  /** Take the next place in line now; use it later (see {@link MutexTicket}). */
  reserve(): MutexTicket {
    const place: { grant?: () => void; cancelled: boolean } = { cancelled: false };
    this.line.push(place);
    return {
      acquire: () =>
        new Promise<void>((resolve) => {
          place.grant = resolve;
          this.next();
        }),
      cancel: () => {
        if (place.grant) return; // acquired: unlock it instead
        place.cancelled = true;
        this.next();
      },
    };
  }

  lock(): Promise<void> {
    return this.reserve().acquire();
  }

  unlock(): void {
    this.held = false;
    this.next();
  }

  /** Hand the connection to the first place in line, once it asks for it. */
  private next(): void {
    if (this.held) return;
    while (this.line[0]?.cancelled) this.line.shift();
    const first = this.line[0];
    if (!first?.grant) return;
    this.line.shift();
    this.held = true;
    first.grant();
  }
}
