/**
 * What the fake CRM vendor servers (retailCRM, Bitrix24, amoCRM) share: the requests they
 * received, in order, a wait for one of them, and the server's shutdown. A subclass pushes each
 * request to `requests` and emits `request` with it.
 */
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';

export abstract class FakeVendor<R> extends EventEmitter {
  /** Every request received, oldest first. */
  readonly requests: R[] = [];

  protected constructor(
    protected readonly server: Server,
    /** The vendor's name, for timeout messages. */
    private readonly vendor: string,
  ) {
    super();
  }

  /**
   * Resolve with the first request (already received or coming) matching `predicate`; reject
   * after `timeoutMs` naming `what`.
   */
  waitFor(
    predicate: (r: R) => boolean,
    timeoutMs = 15_000,
    what = `a matching ${this.vendor} request`,
  ): Promise<R> {
    const seen = this.requests.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('request', listener);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (r: R): void => {
        if (!predicate(r)) return;
        clearTimeout(timer);
        this.off('request', listener);
        resolve(r);
      };
      this.on('request', listener);
    });
  }

  /** Stop the server, dropping open connections. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
