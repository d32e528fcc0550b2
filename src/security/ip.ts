/**
 * Client addresses: canonical forms for comparison, and the optional global allow-list
 * (`HTTP_ALLOWED_CIDRS`) over node:net's BlockList.
 */
import { BlockList, isIP } from 'node:net';
import type { RequestHandler } from 'express';
import type { CidrEntry } from '../config/schema.ts';
import { HttpError } from '../http/errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { SecurityMetrics } from './metrics.ts';

/**
 * Canonical text of an IP address: IPv4 as is; IPv4-mapped IPv6 (`::ffff:10.0.0.5`, what a
 * dual-stack socket reports) as the IPv4 address; other IPv6 compressed and lower-case, without
 * a zone (`fe80::1%eth0` → `fe80::1`). Returns undefined for anything that is not an address.
 */
export function canonicalIp(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  if (isIP(ip) === 4) return ip;
  const bare = ip.replace(/%.*$/, '');
  if (isIP(bare) !== 6) return undefined;
  const compressed = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return compressed;
}

/** The global client allow-list. Empty: every address is allowed. */
export class IpAllowList {
  private readonly list = new BlockList();
  /** True when at least one CIDR is configured. */
  readonly enabled: boolean;

  /** @param cidrs parsed `HTTP_ALLOWED_CIDRS` entries */
  constructor(cidrs: readonly CidrEntry[]) {
    for (const cidr of cidrs) {
      const address =
        cidr.family === 'ipv6' ? (canonicalIp(cidr.address) ?? cidr.address) : cidr.address;
      this.list.addSubnet(address, cidr.prefix, cidr.family);
    }
    this.enabled = cidrs.length > 0;
  }

  /** Whether `ip` (as Express reports it, e.g. `::ffff:127.0.0.1`) may use the API. */
  allows(ip: string | undefined): boolean {
    if (!this.enabled) return true;
    const canonical = canonicalIp(ip);
    if (!canonical) return false;
    return this.list.check(canonical, isIP(canonical) === 6 ? 'ipv6' : 'ipv4');
  }
}

/** Options of {@link allowListFilter}. */
export interface AllowListFilterOptions {
  allowList: { enabled: boolean; allows(ip: string | undefined): boolean };
  logger: Logger;
  metrics: SecurityMetrics;
}

/** Middleware: 403 `ip_not_allowed` for clients outside HTTP_ALLOWED_CIDRS. */
export function allowListFilter(options: AllowListFilterOptions): RequestHandler {
  const { allowList, logger, metrics } = options;
  return (req, _res, next) => {
    if (allowList.allows(req.ip)) {
      next();
      return;
    }
    metrics.authRefusals.inc({ reason: 'ip_not_allowed' });
    logger.warn('API request refused', {
      reason: 'ip_not_allowed',
      ip: canonicalIp(req.ip) ?? req.ip,
      path: req.path,
    });
    next(new HttpError(403, 'ip_not_allowed', 'this client address is not allowed'));
  };
}
