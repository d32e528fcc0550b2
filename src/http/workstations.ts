/**
 * Operators' workstations (OPERATOR_IP_MAP): the extension of the operator sitting at a client
 * address: as with the asterisk.fcgi daemon, the IP address of the computer the client came from
 * identifies the operator.
 */
import type { WorkstationEntry } from '../config/schema.ts';
import { canonicalIp } from '../security/ip.ts';

/** Address → extension. */
export class WorkstationMap {
  private readonly byIp = new Map<string, string>();

  /** @param entries parsed OPERATOR_IP_MAP */
  constructor(entries: readonly WorkstationEntry[]) {
    for (const entry of entries) this.byIp.set(canonicalIp(entry.ip) ?? entry.ip, entry.extension);
  }

  /** The extension at `ip` (as Express reports it, e.g. `::ffff:10.0.0.5`), or undefined. */
  extensionOf(ip: string | undefined): string | undefined {
    const canonical = canonicalIp(ip);
    return canonical === undefined ? undefined : this.byIp.get(canonical);
  }

  /** Every mapped extension, without repeats. */
  extensions(): string[] {
    return [...new Set(this.byIp.values())];
  }
}
