/**
 * Which extensions are operators (whose presence the engine follows): OPERATOR_EXTENSIONS, or,
 * unset, what the rest of the configuration names as operator phones.
 */
import type { Config } from '../config/schema.ts';
import { parseRouteSpec } from '../crm/route.ts';

/**
 * OPERATOR_EXTENSIONS when set; else the extensions of FALLBACK_ROUTE and OPERATOR_IP_MAP, plus
 * SIM_EXTENSIONS when the engine runs on the built-in simulator (`onSimulator`). In that order,
 * without duplicates.
 */
export function operatorExtensions(
  config: Pick<
    Config,
    | 'OPERATOR_EXTENSIONS'
    | 'FALLBACK_ROUTE'
    | 'RING_TIMEOUT_SEC'
    | 'OPERATOR_IP_MAP'
    | 'SIM_EXTENSIONS'
  >,
  onSimulator: boolean,
): string[] {
  if (config.OPERATOR_EXTENSIONS) return [...new Set(config.OPERATOR_EXTENSIONS)];
  const out = new Set<string>();
  try {
    const route = parseRouteSpec(config.FALLBACK_ROUTE, config.RING_TIMEOUT_SEC);
    if (route.action.type === 'dial') for (const ext of route.action.extensions) out.add(ext);
  } catch {
    // A bad FALLBACK_ROUTE is reported by the start-up checks.
  }
  for (const entry of config.OPERATOR_IP_MAP) out.add(entry.extension);
  if (onSimulator) for (const ext of config.SIM_EXTENSIONS) out.add(ext);
  return [...out];
}
