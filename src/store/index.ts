/**
 * The durable store: call details, the event outbox, the delivery
 * log and the pull feed, on SQLite or PostgreSQL. Reference: docs/store.md.
 */
export {
  createStore,
  parseStoreUrl,
  type MigrationReport,
  type Store,
  type StoreOptions,
  type StoreRepositories,
  type StoreTarget,
  type WriteBatchOptions,
} from './store.ts';
export { StreamBrokenError } from './write-streams.ts';
export {
  MAX_CALLS_PAGE,
  createCallRepository,
  type CallExtra,
  type CallFilter,
  type CallPage,
  type CallRecord,
  type CallRepository,
  type LegInput,
  type LegRecord,
  type RecordingFields,
  type TimeInput,
  type UnfinishedCallRecord,
} from './calls.ts';
export {
  DEFAULT_CLAIM_LEASE_MS,
  MAX_EVENTS_PAGE,
  createEventRepository,
  feedCursor,
  feedPosition,
  type AttemptInput,
  type AttemptOutcome,
  type DeliveryPage,
  type DeliveryRecord,
  type EventRepository,
  type FeedItem,
  type FeedPage,
  type OutboxEvent,
  type AppendEventsOptions,
  type OutboxStatus,
} from './events.ts';
export {
  createOperatorRepository,
  type OperatorRepository,
  type OperatorRow,
} from './operators.ts';
export { createConnectorOutbox, type ConnectorOutboxTarget } from './connector-outbox.ts';
export { createConnectorState, type ConnectorStateRepository } from './connector-state.ts';
export {
  DurableEventQueue,
  type OutboxRepository,
  type AttemptInfo,
  type DurableEventQueueOptions,
  type RetryInfo,
  type Settlement,
  type SettlingEventQueue,
} from './durable-queue.ts';
export { storeMigrations, storeMigrationProvider, type StoreDialect } from './migrations.ts';
export { toIsoTime, type Database } from './schema.ts';
export {
  InvalidCursorError,
  StoreConflictError,
  StoreError,
  StoreInUseError,
  StoreUrlError,
} from './errors.ts';
