/**
 * Configuration rules of the security settings that span several variables (strong
 * secrets): API keys are required in production; destination patterns must compile.
 */
import type { ConfigCheck } from '../config/load.ts';
import { DestinationPolicy } from './destinations.ts';

/**
 * Problems of the security settings, one line each (empty when fine): `API_KEYS` unset with
 * `NODE_ENV=production`; a `DESTINATION_ALLOWLIST` pattern that does not compile.
 */
export const securityConfigCheck: ConfigCheck = (config) => {
  const problems: string[] = [];
  if (config.NODE_ENV === 'production' && config.API_KEYS.length === 0) {
    problems.push(
      'API_KEYS: required when NODE_ENV=production (name:key,… with keys of at least 24 characters)',
    );
  }
  try {
    new DestinationPolicy(config.DESTINATION_ALLOWLIST, config.DEFAULT_REGION);
  } catch (err) {
    problems.push(`DESTINATION_ALLOWLIST: ${err instanceof Error ? err.message : String(err)}`);
  }
  return problems;
};
