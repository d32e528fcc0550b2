/**
 * Operators: presence learned from Asterisk and the engine's calls, the status each operator
 * chooses, `operator.state` events and the `/v1/operators` API. Reference: docs/operators.md.
 *
 * `main.ts` wires it with {@link createOperators}; the parts are exported for tests.
 */
import type { Registry } from 'prom-client';
import type { AriGateway } from '../ari/types.ts';
import type { EventSink } from '../calls/notifier.ts';
import type { CallService } from '../calls/service.ts';
import type { Config } from '../config/schema.ts';
import type { LifecycleEvent } from '../events/types.ts';
import { HttpError } from '../http/errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { Store } from '../store/store.ts';
import { operatorExtensions } from './config.ts';
import type { OperatorStatus } from './model.ts';
import { OperatorNotifier } from './notifier.ts';
import { OperatorNotFoundError, PresenceService } from './service.ts';
import { registerPresenceStasisHandlers } from './stasis.ts';
import { OperatorStore } from './store.ts';

export {
  deriveState,
  takesCalls,
  OPERATOR_STATES,
  OPERATOR_STATUSES,
  type Operator,
  type OperatorState,
  type OperatorStatus,
} from './model.ts';
export {
  createOperatorRoutes,
  type OperatorAction,
  type OperatorAuthorizer,
  type OperatorRoutesDeps,
} from './routes.ts';
export { OperatorNotifier } from './notifier.ts';
export { OperatorNotFoundError, PresenceService, type PresenceServiceDeps } from './service.ts';
export { registerPresenceStasisHandlers } from './stasis.ts';
export { OperatorStore, operatorEventKey, type OperatorChange } from './store.ts';

/** What {@link createOperators} needs. */
export interface CreateOperatorsDeps {
  config: Config;
  /**
   * The engine runs on its built-in PBX simulator (ARI_URL unset): the simulator's extensions
   * are the operators unless OPERATOR_EXTENSIONS says otherwise (see `operatorExtensions`).
   */
  onSimulator: boolean;
  gateway: AriGateway;
  /** The store, claimed and migrated: operators' statuses and their events. */
  store: Pick<Store, 'operators' | 'writeBatch'>;
  /** Where committed `operator.state` events go (the webhook dispatcher's `enqueue`). */
  deliver: (event: LifecycleEvent) => void;
  logger: Logger;
  registry: Registry;
}

/** The wired operators domain. */
export interface Operators {
  /** The state of every operator's phone and the status they chose, behind `/v1/operators`. */
  presence: PresenceService;
  /** Tells presence of every call event (give it to the call notifier's sinks). */
  callEvents: EventSink;
  /**
   * Engine start-up, before the gateway connects: read the stored statuses and states.
   *
   * @throws the store's error when it cannot be read
   */
  load(): Promise<void>;
  /**
   * Once the call service exists: presence reads the engine's live calls
   * ({@link CallService.operatorActivity}) and follows the operators' phones on the gateway
   * (device-state subscription and a fresh read at every (re)connect, src/operators/stasis.ts).
   */
  followCalls(calls: Pick<CallService, 'operatorActivity'>): void;
  /**
   * Set a status the CRM chose (retailCRM's `changeUserStatusUrl`), as
   * `PUT /v1/operators/{extension}/status` sets it.
   *
   * @throws HttpError 404 `operator_not_found` when the extension is not an operator
   */
  setStatusFromCrm: (extension: string, status: OperatorStatus) => Promise<void>;
}

/**
 * Build the domain: presence (statuses from the store, committed changes to the notifier) and
 * its notifier (`operator.state` events to `deliver`, metrics). Call {@link Operators.load} and
 * then {@link Operators.followCalls} before the gateway connects.
 */
export function createOperators(deps: CreateOperatorsDeps): Operators {
  const { config } = deps;
  const logger = deps.logger.child({ component: 'operators' });
  // The engine's calls, read through `engineCalls` once `followCalls` gave them.
  const engineCalls: { service?: Pick<CallService, 'operatorActivity'> } = {};
  const presence = new PresenceService({
    extensions: operatorExtensions(config, deps.onSimulator),
    store: new OperatorStore(deps.store, { skipDelivery: !config.CRM_WEBHOOK_URL }),
    logger,
    engineView: (extension) => engineCalls.service?.operatorActivity(extension),
    // Called once a change is committed, long after the notifier below exists.
    committed: (event) => notifier.committed(event),
  });
  const notifier = new OperatorNotifier(deps.registry, logger, () => presence.list(), deps.deliver);
  return {
    presence,
    callEvents: { enqueue: (event) => presence.callEvent(event) },
    load: () => presence.load(),
    followCalls(calls) {
      engineCalls.service = calls;
      // Subscribed to the operators' device states at every (re)connect, read afresh each time.
      registerPresenceStasisHandlers(deps.gateway, presence, {
        endpointTemplate: config.OPERATOR_ENDPOINT,
        logger,
      });
    },
    async setStatusFromCrm(extension, status) {
      try {
        await presence.setStatus(extension, status);
      } catch (err) {
        if (err instanceof OperatorNotFoundError)
          throw new HttpError(
            404,
            'operator_not_found',
            `extension ${extension} is not an operator of this engine`,
          );
        throw err;
      }
    },
  };
}
