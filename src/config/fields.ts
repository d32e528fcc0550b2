/**
 * Parsers of configuration values several domains use (src/config/schema.ts composes the
 * domains' variables): booleans, ports, http(s) URLs and comma-separated lists.
 */
import { z } from 'zod';

/** `true`/`false`, `1`/`0` or `yes`/`no`, as a boolean. */
export const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A TCP port, 0-65535 (0 = any free port where a variable says so). */
export const port = z.coerce.number().int().min(0).max(65535);

/** An http(s) URL. */
export const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

/** Comma-separated list of operator extensions (digits). */
export const extensionList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^\d{2,10}$/, 'extensions are 2-10 digits')).min(1));

/** Split a comma-separated list, trimming entries and dropping empty ones. */
export const splitList = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
