/** Configuration of the asterisk.fcgi compatibility path and of the operators' workstations. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { splitList } from './fields.ts';

/** One entry of `OPERATOR_IP_MAP`. */
export interface WorkstationEntry {
  /** IPv4 or IPv6 address of the operator's computer. */
  ip: string;
  /** The operator's extension. */
  extension: string;
}

/** `OPERATOR_IP_MAP`: `10.0.0.5=101,10.0.0.6=102`. */
const workstationMap = z.string().transform((s, ctx) => {
  const entries: WorkstationEntry[] = [];
  for (const part of splitList(s)) {
    const eq = part.lastIndexOf('=');
    const ip = part.slice(0, Math.max(0, eq)).trim();
    const extension = part.slice(eq + 1).trim();
    if (eq <= 0 || isIP(ip) === 0 || !/^\d{2,10}$/.test(extension)) {
      ctx.addIssue({
        code: 'custom',
        message: `bad entry "${part}": expected ip=extension, e.g. 10.0.0.5=101`,
      });
      return z.NEVER;
    }
    if (entries.some((e) => e.ip === ip)) {
      ctx.addIssue({ code: 'custom', message: `${ip} is mapped twice` });
      return z.NEVER;
    }
    entries.push({ ip, extension });
  }
  return entries;
});

/** OPERATOR_IP_MAP and COMPAT_PATH. */
export const compatFields = {
  OPERATOR_IP_MAP: workstationMap
    .default([])
    .describe(
      "Operators' workstations: ip=extension,… (e.g. 10.0.0.5=101). Resolves GET /v1/operators/me/current-call and the compat path's operator from the requester's address.",
    ),
  COMPAT_PATH: z
    .string()
    .regex(/^\/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$/, 'expected a URL path like /asterisk.fcgi')
    .refine(
      (p) => !/^\/(v1|sim|healthz|readyz|metrics|openapi\.json)(\/|$)/.test(p),
      "must not overlap the engine's own routes",
    )
    .default('/asterisk.fcgi')
    .describe(
      'Path of the API compatible with the asterisk.fcgi FastCGI daemon (?makecall=, ?get_uniqueid_callerid, ?transfer=&dest=), e.g. /fcgi-bin/asterisk.fcgi to keep existing client URLs.',
    ),
};
