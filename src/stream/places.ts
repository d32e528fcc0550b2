/**
 * The places of the live stream's sockets (src/stream/server.ts): at most `maxSockets` sockets
 * open at once (STREAM_MAX_SOCKETS), authenticated or not, from the upgrade until the TCP
 * connection is closed; of them, operator sockets hold at most `maxSockets - adminReserve`
 * places (STREAM_ADMIN_RESERVE), so consoles cannot lock out the API key streams (the CRM's
 * server, wallboards). A socket is an operator's from the moment its credential is known to be
 * an operator token: at the upgrade, or at its first message. Sockets turned away at the cap are
 * logged at most once a minute.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../logging/logger.ts';
import type { StreamMetrics } from './metrics.ts';

/** Least time between two warnings that upgrades are refused at the cap, ms. */
const FULL_WARNING_INTERVAL_MS = 60_000;

/** The count of the stream's sockets against its cap and the operators' places. */
export class StreamPlaces {
  /** Upgraded sockets whose TCP connection is not closed yet (what `maxSockets` caps). */
  private sockets = 0;
  /** Of {@link sockets}, those known to be operators' (what {@link operatorPlaces} caps). */
  private operatorSockets = 0;
  /** Places operator sockets may hold: `maxSockets` less the admin reserve. */
  readonly operatorPlaces: number;
  /**
   * Sockets turned away at the cap since the last warning (`refused`: 503 `stream_full` at the
   * upgrade; `closed`: operators closed with 1013 at their first message), and when that warning
   * was.
   */
  private turnedAway = { refused: 0, closed: 0 };
  private lastFullWarningMs = -Infinity;

  /**
   * @param maxSockets STREAM_MAX_SOCKETS
   * @param adminReserve STREAM_ADMIN_RESERVE, from 0 to `maxSockets - 1` (the server checks it)
   */
  constructor(
    private readonly maxSockets: number,
    adminReserve: number,
    private readonly metrics: Pick<StreamMetrics, 'connections' | 'operatorConnections'>,
    private readonly logger: Logger,
  ) {
    this.operatorPlaces = maxSockets - adminReserve;
  }

  /** Sockets open (upgraded, TCP connection not closed yet). */
  get size(): number {
    return this.sockets;
  }

  /**
   * Why a new socket cannot open (the message of the 503 `stream_full`), counted for the warning;
   * undefined when it can. `operator`: its credential is known to be an operator token.
   */
  refusal(operator: boolean): string | undefined {
    const full = this.sockets >= this.maxSockets;
    if (!full && (!operator || this.operatorPlaceFree())) return undefined;
    this.warnFull('refused');
    return full
      ? `the live stream has its ${this.maxSockets} sockets open (STREAM_MAX_SOCKETS): retry later`
      : `the live stream has its ${this.operatorPlaces} places for operators taken (STREAM_MAX_SOCKETS less STREAM_ADMIN_RESERVE): retry later`;
  }

  /**
   * Take a place for the upgraded `socket` (and an operator's when `operator`) until its TCP
   * connection is closed (a socket closing still holds it). Returns the function that takes an
   * operator's place for it later (its first message was an operator token): true when taken
   * (or held already), false when they are all taken.
   */
  hold(socket: Duplex, operator: boolean): () => boolean {
    this.sockets += 1;
    this.metrics.connections.set(this.sockets);
    let operatorPlace = false;
    const takeOperatorPlace = (): boolean => {
      if (operatorPlace) return true;
      if (!this.operatorPlaceFree()) {
        this.warnFull('closed');
        return false;
      }
      operatorPlace = true;
      this.operatorSockets += 1;
      this.metrics.operatorConnections.set(this.operatorSockets);
      return true;
    };
    if (operator) takeOperatorPlace();
    socket.once('close', () => {
      this.sockets -= 1;
      this.metrics.connections.set(this.sockets);
      if (!operatorPlace) return;
      this.operatorSockets -= 1;
      this.metrics.operatorConnections.set(this.operatorSockets);
    });
    return takeOperatorPlace;
  }

  /** True while operator sockets hold fewer than their places (the cap less the admin reserve). */
  private operatorPlaceFree(): boolean {
    return this.operatorSockets < this.operatorPlaces;
  }

  /**
   * Log that sockets are turned away at the cap (`refused` at the upgrade, or an operator
   * `closed` at its first message), at most once a minute, with how many of each.
   */
  private warnFull(how: 'refused' | 'closed'): void {
    this.turnedAway[how] += 1;
    const now = Date.now();
    if (now - this.lastFullWarningMs < FULL_WARNING_INTERVAL_MS) return;
    this.logger.warn(
      'live stream full: upgrades refused with 503 stream_full, operators past their places closed with 1013',
      {
        maxSockets: this.maxSockets,
        adminReserve: this.maxSockets - this.operatorPlaces,
        sockets: this.sockets,
        operatorSockets: this.operatorSockets,
        refused: this.turnedAway.refused,
        closed: this.turnedAway.closed,
      },
    );
    this.turnedAway = { refused: 0, closed: 0 };
    this.lastFullWarningMs = now;
  }
}
