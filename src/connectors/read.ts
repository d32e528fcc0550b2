/**
 * Reading vendors' JSON answers and the engine's stored calls, shared by the CRM connectors.
 */
import type { CallRecord } from '../store/index.ts';

/** The value at `path` inside nested objects (array indexes as strings), or undefined. */
export function dig(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** A non-empty trimmed string, or a finite number as a string; otherwise undefined. */
export function scalar(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() || undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** The extensions of a stored call's operator legs (every operator whose phone rang), in order, once each. */
export function rung(record: CallRecord | undefined): string[] {
  const out: string[] = [];
  for (const leg of record?.legs ?? [])
    if (leg.role === 'operator' && leg.extension && !out.includes(leg.extension))
      out.push(leg.extension);
  return out;
}
