/**
 * Identifier formats of Asterisk 22 as seen in the traces: UniqueIDs `<unix seconds>.<sequence>`
 * (e.g. `1795277133.60`), channel names `PJSIP/<resource>-<8 hex digits>` with one counter shared by
 * all channels (e.g. `PJSIP/101-00000037`), UUIDs for bridges, playbacks and outgoing SIP Call-IDs.
 */
import { randomUUID } from 'node:crypto';
import type { SimClock } from './clock.ts';

export class IdFactory {
  private uniqueSeq = 0;
  private channelSeq = 0;
  private callSeq = 0;
  private recorderSeq = 0;

  constructor(private readonly clock: SimClock) {}

  /** A new UniqueID: simulated unix seconds, a dot and a global sequence number. */
  uniqueId(): string {
    return `${Math.floor(this.clock.nowMs() / 1000)}.${this.uniqueSeq++}`;
  }

  /** A new channel name for `PJSIP/<resource>`, e.g. `PJSIP/client-trunk-0000003f`. */
  channelName(tech: string, resource: string): string {
    const seq = (this.channelSeq++).toString(16).padStart(8, '0');
    return `${tech}/${resource}-${seq}`;
  }

  /** A pseudo-channel name for a bridge recorder (`Recorder/ARI-00000003`). */
  recorderName(): string {
    return `Recorder/ARI-${(this.recorderSeq++).toString(16).padStart(8, '0')}`;
  }

  /** A SIP Call-ID as SIPp sends for inbound calls (`1-14792@127.0.0.1`). */
  inboundCallId(): string {
    return `${++this.callSeq}-${process.pid}@127.0.0.1`;
  }

  /** A random UUID (bridges, playbacks, outgoing Call-IDs). */
  uuid(): string {
    return randomUUID();
  }
}
