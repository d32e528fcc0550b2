/**
 * Route building shared by CRM connectors: "the responsible manager's extension first, then the
 * fallback route" as a call script of `dial` verbs, with the customer the CRM recognised.
 */
import { EXTENSION_PATTERN } from '../crm/index.ts';
import type { Route } from '../crm/types.ts';
import type { DialVerb, ScriptVerb } from '../calls/verbs/schema.ts';

/**
 * The fallback route with `extension` rung first (ringall, the fallback dial's ring timeout or
 * `defaultRingTimeoutSec`), then the fallback's other extensions with its strategy, as a call
 * script: the fallback's greeting plays first, and when nobody answers the call takes the
 * no-answer path of a dial route (NO_ANSWER_DIALPLAN, else hang up), as the fallback route
 * itself would. The fallback alone when `extension` is absent or not an extension. `customer`
 * is set when given.
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
  const verbs: ScriptVerb[] = [];
  if (route.greeting && route.greeting.media.length > 0)
    verbs.push({ verb: 'play', media: route.greeting.media });
  delete route.greeting;
  const rest = fallbackDial?.extensions.filter((ext) => ext !== extension) ?? [];
  const dials: DialVerb[] = [
    { verb: 'dial', extensions: [extension], strategy: 'ringall', ringTimeoutSec, noAnswer: 'end' },
  ];
  if (fallbackDial && rest.length > 0) {
    dials[0]!.noAnswer = 'continue';
    dials.push({
      verb: 'dial',
      extensions: rest,
      strategy: fallbackDial.strategy,
      ringTimeoutSec: fallbackDial.ringTimeoutSec,
      noAnswer: 'end',
    });
  }
  verbs.push(...dials);
  route.action = { type: 'verbs', verbs };
  return route;
}
