/**
 * ARI `asterisk` resource of the simulator: `GET /asterisk/info` (all of it, or the parts named
 * by `only`) and `GET /asterisk/ping`.
 */
import { ASTERISK_ID } from '../events.ts';
import type { Handler } from './handler-result.ts';

/** The `asterisk.*` operations. */
export const ASTERISK_HANDLERS: Record<string, Handler> = {
  'asterisk.getInfo': (p, pbx) => {
    const info = pbx.asteriskInfo();
    const only = p.list('only');
    if (only.length === 0) return { status: 200, body: info };
    const filtered: Record<string, unknown> = {};
    for (const key of only) if (key in info) filtered[key] = info[key];
    return { status: 200, body: filtered };
  },
  'asterisk.ping': (_p, pbx) => ({
    status: 200,
    body: { asterisk_id: ASTERISK_ID, ping: 'pong', timestamp: pbx.clock.timestamp() },
  }),
};
