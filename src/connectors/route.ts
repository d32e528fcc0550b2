/**
 * Route building shared by CRM connectors: "the responsible manager's extension first, then the
 * fallback route" as a call script of `dial` verbs, with the customer the CRM recognised.
 */
import { EXTENSION_PATTERN } from '../crm/index.ts';
import type { Route } from '../crm/types.ts';
import type { ScriptVerb } from '../calls/verbs/schema.ts';

/**
 * The fallback route with `extension` rung first (ringall, the fallback dial's ring timeout or
 * `defaultRingTimeoutSec`), then the fallback's other extensions with its strategy; the fallback
 * alone when `extension` is absent or not an extension. `customer` is set when given.
 */
export function ringFirst(
  fallback: Route,
  extension: string | undefined,
  customer: Route['customer'],
  defaultRingTimeoutSec: number,
): Route {
  const route: Route = structuredClone(fallback);
  if (customer && Object.keys(customer).length > 0) route.customer = customer;
  if (!extension || !EXTENSION_PATTERN.test(extension)) return route;
  const fallbackDial = fallback.action.type === 'dial' ? fallback.action : undefined;
  const ringTimeoutSec = fallbackDial?.ringTimeoutSec ?? defaultRingTimeoutSec;
  const verbs: ScriptVerb[] = [
    { verb: 'dial', extensions: [extension], strategy: 'ringall', ringTimeoutSec },
  ];
  const rest = fallbackDial?.extensions.filter((ext) => ext !== extension) ?? [];
  if (fallbackDial && rest.length > 0)
    verbs.push({
      verb: 'dial',
      extensions: rest,
      strategy: fallbackDial.strategy,
      ringTimeoutSec: fallbackDial.ringTimeoutSec,
    });
  route.action = { type: 'verbs', verbs };
  return route;
}
