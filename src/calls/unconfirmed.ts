/**
 * The channels the engine may have left in Asterisk, a part of the call runtime
 * (src/calls/runtime.ts holds one {@link UnconfirmedChannels}):
 *
 * - an engine leg whose create or originate (`POST /channels/create`, `POST /channels`) got no
 *   answer from ARI (AriConnectionError: the connection dropped, or no answer within the command
 *   timeout) was given up on, but Asterisk may have carried the request out all the same (an
 *   originate then rings the phone). Its channel is hung up by its client-generated id
 *   (`DELETE /channels/{id}`) now when ARI is connected, and again at every connect until
 *   Asterisk answers; a hang-up that got no answer while ARI stays connected (the command
 *   timeout) is sent again every {@link RETRY_MS};
 * - a 404 to that hang-up does not prove the channel never comes: Asterisk may still be working
 *   through the request that timed out and create the channel afterwards. The id is remembered
 *   for {@link CHASE_MS}; the first event of that channel reaching the engine (its state change,
 *   its `Dial`, its StasisStart once the phone is answered) has it hung up
 *   ({@link UnconfirmedChannels.chase}).
 *
 * What is still unconfirmed when the engine stops is not kept: the next start finds such a
 * channel in Asterisk and hangs it up (src/calls/recovery.ts, leftover engine legs).
 */
import { AriConnectionError } from '../ari/errors.ts';
import type { AriGateway } from '../ari/types.ts';
import type { Logger } from '../logging/logger.ts';
import { isGone } from './legs.ts';

/**
 * How long the id of a channel whose hang-up Asterisk answered 404 is remembered, in ms: a
 * channel with that id showing up meanwhile (created late by the request that got no answer) is
 * hung up. Ten minutes, far beyond any command timeout.
 */
export const CHASE_MS = 10 * 60_000;

/**
 * How long after a hang-up that got no answer while ARI stayed connected (the command timeout)
 * it is sent again, in ms (a reconnect sends it at once).
 */
export const RETRY_MS = 5000;

/** The channels of engine legs given up on, hung up until Asterisk confirms (see the header). */
export class UnconfirmedChannels {
  /** Not hung up yet, by channel id, with their call's logger. */
  private readonly pending = new Map<string, Logger>();
  /** Answered 404, by channel id: their call's logger and until when (epoch ms) to chase them. */
  private readonly notFound = new Map<string, { log: Logger; untilMs: number }>();
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly gateway: Pick<AriGateway, 'channels' | 'isConnected'>,
    private readonly now: () => number,
  ) {}

  /**
   * Make sure no channel `channelId` stays in Asterisk: `DELETE /channels/{id}` now if ARI is
   * connected, and again at every connect ({@link retryAll}) or {@link RETRY_MS} later while
   * connected until Asterisk answers: hung up (logged at info), or 404 (then chased for
   * {@link CHASE_MS}, see {@link chase}). Never throws.
   */
  hangUp(log: Logger, channelId: string): void {
    this.notFound.delete(channelId);
    this.pending.set(channelId, log);
    if (this.gateway.isConnected()) void this.tryHangup(channelId);
  }

  /**
   * ARI connected (again): hang up the channels still waiting ({@link hangUp}). Resolves once
   * each was tried; never rejects.
   */
  async retryAll(): Promise<void> {
    await Promise.all([...this.pending.keys()].map((id) => this.tryHangup(id)));
  }

  /** Engine shutdown: no hang-up is sent again from now on (the next start sweeps). */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /**
   * An event of a channel no call tracks arrived: when it is a channel given up on whose
   * hang-up Asterisk answered 404 (created since, by the request that got no answer), hang it
   * up ({@link hangUp}) and answer true. False for any other channel, and for a
   * `ChannelDestroyed` (nothing left to hang up).
   */
  chase(channelId: string, eventType: string): boolean {
    this.prune();
    const entry = this.notFound.get(channelId);
    if (!entry || eventType === 'ChannelDestroyed') return false;
    entry.log.warn('a channel given up on showed up after all; hanging it up', {
      legChannelId: channelId,
      eventType,
    });
    this.hangUp(entry.log, channelId);
    return true;
  }

  private async tryHangup(channelId: string): Promise<void> {
    const log = this.pending.get(channelId);
    if (!log) return;
    try {
      await this.gateway.channels.hangup(channelId);
      this.pending.delete(channelId);
      log.info('hung up the channel of a leg whose creation got no answer from Asterisk', {
        legChannelId: channelId,
      });
    } catch (err) {
      if (err instanceof AriConnectionError) {
        // Tried again at the next connect, or soon while ARI stays connected.
        this.retrySoon();
        return;
      }
      this.pending.delete(channelId);
      if (isGone(err)) {
        // Not there (yet): the request that got no answer may still create it.
        this.prune();
        this.notFound.set(channelId, { log, untilMs: this.now() + CHASE_MS });
        return;
      }
      log.warn('could not hang up the channel of a leg whose creation got no answer', {
        legChannelId: channelId,
        err,
      });
    }
  }

  /** Send the hang-ups still waiting again in {@link RETRY_MS}, if ARI is connected then. */
  private retrySoon(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped && this.gateway.isConnected()) void this.retryAll();
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  /** Forget the 404 channels chased long enough (oldest first: the map stays small). */
  private prune(): void {
    const now = this.now();
    for (const [id, entry] of this.notFound) {
      if (entry.untilMs > now) return;
      this.notFound.delete(id);
    }
  }
}
