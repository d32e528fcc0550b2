/**
 * Operators: presence learned from Asterisk and the engine's calls, the status each operator
 * chooses, `operator.state` events and the `/v1/operators` API. Reference: docs/operators.md.
 */
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
