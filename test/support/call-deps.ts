/**
 * The call runtime's dependencies for unit tests (src/calls/context.ts `CallServiceDeps`): no CRM
 * (a route lookup fails, so the fallback route would apply), a silent logger, a registry of its
 * own, and the options of a plain single-company set-up (operators `PJSIP/<extension>`, 20 s
 * ring time, no trunk).
 */
import { Registry } from 'prom-client';
import type { AriGateway } from '../../src/ari/types.ts';
import type { CallServiceDeps } from '../../src/calls/context.ts';
import { CallNotifier } from '../../src/calls/notifier.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';

/** `gateway` as given; the rest defaulted unless given in `extra`. */
export function unitCallDeps(
  gateway: AriGateway,
  extra: Partial<Omit<CallServiceDeps, 'gateway'>> & { companyCallerId?: string } = {},
): CallServiceDeps {
  const { companyCallerId = '74950000000', ...rest } = extra;
  const logger = rest.logger ?? createSilentLogger();
  return {
    gateway,
    routes: { lookup: () => Promise.reject(new Error('no CRM in this test')) },
    notifier: new CallNotifier([], logger),
    registry: new Registry(),
    options: {
      operatorEndpoint: 'PJSIP/{extension}',
      callerIdPrefix: '',
      defaultRingTimeoutSec: 20,
      outboundRingTimeoutSec: 40,
      trunks: [],
      companyCallerId,
    },
    ...rest,
    logger,
  };
}
