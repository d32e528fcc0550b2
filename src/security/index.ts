/**
 * Security: API keys, operator tokens, the IP allow-list and the toll-fraud guard (destination
 * policy, rate limit, live-call cap), with their counters. Reference: docs/api.md
 * (Authentication, IP allow-list, Toll-fraud guard).
 *
 * `main.ts` builds the objects the engine's domains share with {@link createSecurity} once: the
 * HTTP API (src/http/api.ts), the live stream, the call service and notification calls use them.
 */
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import { ApiKeyRing } from './api-keys.ts';
import { DestinationPolicy } from './destinations.ts';
import { OperatorDialGuard } from './guard.ts';
import { IpAllowList } from './ip.ts';
import { createSecurityMetrics } from './metrics.ts';

export { securityConfigCheck } from './config.ts';
export { ApiKeyRing } from './api-keys.ts';
export { DestinationPolicy } from './destinations.ts';
export { OperatorDialGuard } from './guard.ts';
export { IpAllowList } from './ip.ts';
export { OperatorTokens } from './operator-tokens.ts';

/** The security objects several domains share. */
export interface Security {
  /**
   * The toll-fraud guard's destination policy (DESTINATION_ALLOWLIST, DESTINATION_DENIED_TYPES):
   * numbers operators dial from their phones and notification calls' numbers.
   */
  destinations: DestinationPolicy;
  /**
   * The toll-fraud guard of numbers operators dial from their phones (refusals logged and
   * counted in `aricrm_call_guard_refusals_total{source="operator_phone"}`).
   */
  operatorDialGuard: OperatorDialGuard;
  /** API_KEYS (the live stream accepts them besides operator tokens). */
  apiKeys: ApiKeyRing;
  /** HTTP_ALLOWED_CIDRS; `enabled` false when empty (every address allowed). */
  allowList: IpAllowList;
}

/** What {@link createSecurity} needs. */
export interface CreateSecurityDeps {
  config: Pick<
    Config,
    | 'DESTINATION_ALLOWLIST'
    | 'DEFAULT_REGION'
    | 'DESTINATION_DENIED_TYPES'
    | 'API_KEYS'
    | 'HTTP_ALLOWED_CIDRS'
  >;
  /** Where the guard's refusals are logged. */
  logger: Logger;
  /** The engine's registry: the security counters go there. */
  registry: Registry;
}

/** Build the shared security objects from the configuration (checked by `securityConfigCheck`). */
export function createSecurity(deps: CreateSecurityDeps): Security {
  const { config } = deps;
  const destinations = new DestinationPolicy(
    config.DESTINATION_ALLOWLIST,
    config.DEFAULT_REGION,
    config.DESTINATION_DENIED_TYPES,
  );
  return {
    destinations,
    operatorDialGuard: new OperatorDialGuard({
      destinations,
      region: config.DEFAULT_REGION,
      logger: deps.logger,
      metrics: createSecurityMetrics(deps.registry),
    }),
    apiKeys: new ApiKeyRing(config.API_KEYS),
    allowList: new IpAllowList(config.HTTP_ALLOWED_CIDRS),
  };
}
