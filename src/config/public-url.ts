/**
 * PUBLIC_URL and the absolute links the engine hands out: signed recording links (webhooks, the
 * API, CRM connectors) start with PUBLIC_URL, or without it with the HTTP listen address
 * (`http://HTTP_HOST:HTTP_PORT`). A wildcard listen address (`0.0.0.0`, `::`: every Docker
 * container) or a loopback one (`127.0.0.1`, `::1`, `localhost`) makes links nobody else can
 * open, so:
 * - in production the engine refuses to start when such links would be needed
 *   ({@link publicUrlConfigCheck}): calls are recorded (RECORD_CALLS), or the CRM connector has
 *   the CRM call the engine back (retailCRM's click-to-call, Bitrix24's events);
 * - otherwise it logs one warning at start ({@link publicUrlWarning}).
 * A specific address others may reach (`10.0.0.5`) makes links that work only where that address
 * does, over plain HTTP: not through a reverse proxy with TLS or a NAT, often how the CRM reaches
 * the engine. Production logs one warning at start for it too (development stays quiet).
 * Pure functions.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Config } from './schema.ts';

/** The configuration fields these checks read. */
export type PublicUrlSettings = Pick<
  Config,
  | 'NODE_ENV'
  | 'PUBLIC_URL'
  | 'HTTP_HOST'
  | 'RECORD_CALLS'
  | 'CRM_CONNECTOR'
  | 'BITRIX24_WEBHOOK_URL'
>;

/**
 * What kind of listen address `host` (HTTP_HOST, or the address the server is bound to) is:
 * `wildcard` (`0.0.0.0`, `::`, every interface), `loopback` (`127.0.0.0/8`, `::1`,
 * `localhost`, an IPv4-mapped loopback), or undefined (an address or name others may reach).
 */
export function listenAddressKind(host: string): 'wildcard' | 'loopback' | undefined {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.startsWith('::ffff:') && isIPv4(h.slice(7))) h = h.slice(7);
  if (h === '0.0.0.0' || h === '::' || h === '0:0:0:0:0:0:0:0') return 'wildcard';
  if (h === 'localhost' || h.endsWith('.localhost')) return 'loopback';
  if (isIPv4(h)) return h.startsWith('127.') ? 'loopback' : undefined;
  if (isIPv6(h) && (h === '::1' || h === '0:0:0:0:0:0:0:1')) return 'loopback';
  return undefined;
}

/**
 * The features of this configuration that hand the CRM (or its users) absolute links to the
 * engine, one phrase each naming the variable, e.g. `recording links (RECORD_CALLS=all)`;
 * empty when none does.
 */
export function absoluteLinkUses(config: PublicUrlSettings): string[] {
  const uses: string[] = [];
  if (config.RECORD_CALLS !== 'none')
    uses.push(`recording links (RECORD_CALLS=${config.RECORD_CALLS})`);
  if (config.CRM_CONNECTOR === 'retailcrm')
    uses.push("retailCRM's click-to-call and status callbacks (CRM_CONNECTOR=retailcrm)");
  if (config.CRM_CONNECTOR === 'bitrix24' && !config.BITRIX24_WEBHOOK_URL)
    uses.push("Bitrix24's click-to-call events (CRM_CONNECTOR=bitrix24)");
  return uses;
}

/**
 * Production refuses to start when PUBLIC_URL is unset, HTTP_HOST is a wildcard or loopback
 * address and {@link absoluteLinkUses} is not empty (a {@link import('./load.ts').ConfigCheck}): every such link would name an address the
 * CRM cannot reach (`http://0.0.0.0:3000/…`). One problem line naming PUBLIC_URL, or none.
 */
export function publicUrlConfigCheck(config: PublicUrlSettings): string[] {
  if (config.NODE_ENV !== 'production' || config.PUBLIC_URL) return [];
  const kind = listenAddressKind(config.HTTP_HOST);
  if (!kind) return [];
  const uses = absoluteLinkUses(config);
  if (uses.length === 0) return [];
  return [
    `PUBLIC_URL: required when NODE_ENV=production and HTTP_HOST is a ${kind} address (${config.HTTP_HOST}): ${uses.join(', ')} must name the address the CRM reaches the engine at, e.g. https://pbx-engine.example.com`,
  ];
}

/**
 * The warning the engine logs once at start when PUBLIC_URL is unset and its links start with
 * `listenUrl` (the HTTP listen address, e.g. `http://0.0.0.0:3000`), one line naming PUBLIC_URL
 * and the links (`uses`: {@link absoluteLinkUses}):
 * - a wildcard or loopback address: when a feature of {@link absoluteLinkUses} needs the links,
 *   or, without one, when the address is a wildcard (call script recordings still get links);
 * - any other address, in production only: links are plain `http://` to that address, which the
 *   CRM may not reach (a reverse proxy with TLS, a NAT); development stays quiet.
 * Undefined when there is nothing to say.
 */
export function publicUrlWarning(
  config: PublicUrlSettings,
  listenUrl: string,
): { message: string; uses: string[] } | undefined {
  if (config.PUBLIC_URL) return undefined;
  const kind = listenAddressKind(new URL(listenUrl).hostname);
  const uses = absoluteLinkUses(config);
  const what = uses.length > 0 ? uses.join(', ') : 'links to call script recordings';
  if (!kind) {
    if (config.NODE_ENV !== 'production') return undefined;
    return {
      message: `PUBLIC_URL is not set: ${what} start with the listen address, ${listenUrl}/v1/…, plain HTTP to this address; if the CRM reaches the engine another way (a reverse proxy with TLS, a NAT), set PUBLIC_URL to that address, e.g. PUBLIC_URL=https://pbx-engine.example.com`,
      uses,
    };
  }
  if (uses.length === 0 && kind !== 'wildcard') return undefined;
  const who = kind === 'wildcard' ? 'nobody can open' : 'only this machine can open';
  return {
    message: `PUBLIC_URL is not set: ${what} start with the listen address ${listenUrl}, which ${who}; set PUBLIC_URL to the address the CRM reaches the engine at`,
    uses,
  };
}
