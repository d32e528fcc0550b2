/**
 * Versioned schema migrations, run at start-up, provided in code
 * to Kysely's `Migrator` (no filesystem globbing, so bundling or a read-only install cannot lose
 * one). Migrations are append-only: never edit a released one, add `0002_…` instead. Names sort
 * in the order they run. The same migration builds the same tables on both dialects; only the
 * auto-increment id and 64-bit integer column types differ (docs/store.md).
 */
import {
  sql,
  type CreateTableBuilder,
  type Kysely,
  type Migration,
  type MigrationProvider,
} from 'kysely';

/** Which SQL dialect a store speaks. */
export type StoreDialect = 'sqlite' | 'postgres';

/** The migrations of a dialect, by name, in run order. */
export function storeMigrations(dialect: StoreDialect): Record<string, Migration> {
  const int64 = dialect === 'postgres' ? 'bigint' : 'integer';

  /** Add an auto-incrementing 64-bit primary key `id` (SQLite rowid alias; PostgreSQL bigserial). */
  const autoId = (table: CreateTableBuilder<string>): CreateTableBuilder<string, 'id'> =>
    dialect === 'postgres'
      ? table.addColumn('id', 'bigserial', (col) => col.primaryKey())
      : table.addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement());

  return {
    '0001_initial': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('calls')
          .addColumn('id', 'text', (col) => col.primaryKey())
          .addColumn('direction', 'text', (col) => col.notNull())
          .addColumn('from_number', 'text', (col) => col.notNull())
          .addColumn('to_number', 'text', (col) => col.notNull())
          .addColumn('did', 'text')
          .addColumn('customer_id', 'text')
          .addColumn('customer_name', 'text')
          .addColumn('state', 'text', (col) => col.notNull())
          .addColumn('disposition', 'text')
          .addColumn('answered_by', 'text')
          .addColumn('hangup_by', 'text')
          .addColumn('end_reason', 'text')
          .addColumn('started_at', 'text', (col) => col.notNull())
          .addColumn('answered_at', 'text')
          .addColumn('ended_at', 'text')
          .addColumn('wait_sec', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('talk_sec', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('variables', 'text')
          .addColumn('recording_name', 'text')
          .addColumn('recording_path', 'text')
          .addColumn('recording_status', 'text')
          .addColumn('recording_bytes', int64)
          .addColumn('recording_duration_sec', 'integer')
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .execute();
        // Keyset pagination, newest first, and the filters combined with a time range.
        await db.schema
          .createIndex('calls_started_idx')
          .on('calls')
          .columns(['started_at', 'id'])
          .execute();
        await db.schema
          .createIndex('calls_from_idx')
          .on('calls')
          .columns(['from_number', 'started_at'])
          .execute();
        await db.schema
          .createIndex('calls_to_idx')
          .on('calls')
          .columns(['to_number', 'started_at'])
          .execute();
        await db.schema
          .createIndex('calls_answered_by_idx')
          .on('calls')
          .columns(['answered_by', 'started_at'])
          .execute();
        await db.schema
          .createIndex('calls_direction_idx')
          .on('calls')
          .columns(['direction', 'started_at'])
          .execute();
        await db.schema
          .createIndex('calls_disposition_idx')
          .on('calls')
          .columns(['disposition', 'started_at'])
          .execute();
        // Restart reconciliation: the few calls not yet ended.
        await db.schema
          .createIndex('calls_unfinished_idx')
          .on('calls')
          .column('started_at')
          .where(sql.ref('state'), '<>', 'ended')
          .execute();

        await db.schema
          .createTable('call_legs')
          .addColumn('call_id', 'text', (col) =>
            col.notNull().references('calls.id').onDelete('cascade'),
          )
          .addColumn('channel_id', 'text', (col) => col.notNull())
          .addColumn('position', 'integer', (col) => col.notNull())
          .addColumn('role', 'text', (col) => col.notNull())
          .addColumn('extension', 'text')
          .addColumn('endpoint', 'text')
          .addColumn('outcome', 'text')
          .addColumn('cause', 'integer')
          .addColumn('cause_text', 'text')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('answered_at', 'text')
          .addColumn('ended_at', 'text')
          .addPrimaryKeyConstraint('call_legs_pk', ['call_id', 'channel_id'])
          .execute();
        await db.schema
          .createIndex('call_legs_extension_idx')
          .on('call_legs')
          .columns(['extension', 'call_id'])
          .execute();
        await db.schema
          .createIndex('call_legs_channel_idx')
          .on('call_legs')
          .column('channel_id')
          .execute();

        await autoId(db.schema.createTable('events'))
          .addColumn('event_id', 'text', (col) => col.notNull().unique())
          .addColumn('call_id', 'text', (col) => col.notNull())
          .addColumn('type', 'text', (col) => col.notNull())
          .addColumn('sequence', 'integer', (col) => col.notNull())
          .addColumn('occurred_at', 'text', (col) => col.notNull())
          .addColumn('payload', 'text', (col) => col.notNull())
          .addColumn('status', 'text', (col) => col.notNull().defaultTo('pending'))
          .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'text', (col) => col.notNull())
          .addColumn('last_error', 'text')
          .addColumn('last_status', 'integer')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('delivered_at', 'text')
          .addColumn('settled_at', 'text')
          .addUniqueConstraint('events_call_sequence_uq', ['call_id', 'sequence'])
          .execute();
        // claimDue: due pending events, and "is there an earlier pending event of this call".
        await db.schema
          .createIndex('events_due_idx')
          .on('events')
          .columns(['status', 'next_attempt_at'])
          .execute();
        await db.schema
          .createIndex('events_call_status_idx')
          .on('events')
          .columns(['call_id', 'status', 'sequence'])
          .execute();

        await autoId(db.schema.createTable('webhook_deliveries'))
          .addColumn('event_id', 'text', (col) =>
            col.notNull().references('events.event_id').onDelete('cascade'),
          )
          .addColumn('attempt', 'integer', (col) => col.notNull())
          .addColumn('url', 'text')
          .addColumn('at', 'text', (col) => col.notNull())
          .addColumn('outcome', 'text', (col) => col.notNull())
          .addColumn('status_code', 'integer')
          .addColumn('error', 'text')
          .addColumn('duration_ms', 'integer', (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('webhook_deliveries_event_idx')
          .on('webhook_deliveries')
          .column('event_id')
          .execute();
        await db.schema
          .createIndex('webhook_deliveries_outcome_idx')
          .on('webhook_deliveries')
          .columns(['outcome', 'id'])
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('webhook_deliveries').execute();
        await db.schema.dropTable('events').execute();
        await db.schema.dropTable('call_legs').execute();
        await db.schema.dropTable('calls').execute();
      },
    },
    // Idempotency-Key answers of POST /v1/calls survive a restart (the same key within
    // IDEMPOTENCY_TTL_MS returns the same call instead of dialling twice).
    '0002_idempotency_keys': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('idempotency_keys')
          .addColumn('scope', 'text', (col) => col.notNull())
          .addColumn('key', 'text', (col) => col.notNull())
          .addColumn('fingerprint', 'text', (col) => col.notNull())
          .addColumn('value', 'text', (col) => col.notNull())
          .addColumn('expires_at', 'text', (col) => col.notNull())
          .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'key'])
          .execute();
        await db.schema
          .createIndex('idempotency_keys_expires_idx')
          .on('idempotency_keys')
          .column('expires_at')
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('idempotency_keys').execute();
      },
    },
    // Start-up finds recordings still to fetch (`unsettledRecordings`, used by the recordings
    // service's `resume`) without a table scan.
    '0003_recording_status_index': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createIndex('calls_recording_pending_idx')
          .on('calls')
          .column('recording_status')
          .where(sql.ref('recording_status'), '=', 'recording')
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropIndex('calls_recording_pending_idx').execute();
      },
    },
    // The journal log (src/store/journal-log.ts): the sequence number of the last committed
    // journal transaction, committed with it, so start-up replays exactly the log entries the
    // store lacks. One row, id 1.
    '0004_journal_state': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('journal_state')
          .addColumn('id', 'integer', (col) => col.primaryKey())
          .addColumn('seq', int64, (col) => col.notNull())
          .execute();
        await db
          .insertInto('journal_state' as never)
          .values({ id: 1, seq: 0 })
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('journal_state').execute();
      },
    },
    // Notification calls (src/autocalls/): campaigns, jobs (one per number to call; the id is
    // also the asterisk.fcgi AutoCallID) and every attempt of a job. Due jobs are found through
    // `autocall_jobs_due_idx`; expired leases through `autocall_jobs_lease_idx`.
    '0005_autocalls': {
      async up(db: Kysely<unknown>): Promise<void> {
        await autoId(db.schema.createTable('autocall_campaigns'))
          .addColumn('name', 'text', (col) => col.notNull())
          .addColumn('max_concurrent', 'integer', (col) => col.notNull())
          .addColumn(
            'calls_per_second',
            dialect === 'postgres' ? 'double precision' : 'real',
            (col) => col.notNull(),
          )
          .addColumn('window', 'text')
          .addColumn('defaults', 'text')
          .addColumn('state', 'text', (col) => col.notNull())
          .addColumn('next_slot_at', 'text', (col) => col.notNull())
          .addColumn('requested_by', 'text')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .execute();
        await autoId(db.schema.createTable('autocall_jobs'))
          .addColumn('campaign_id', int64, (col) =>
            col.references('autocall_campaigns.id').onDelete('cascade'),
          )
          .addColumn('to_number', 'text', (col) => col.notNull())
          .addColumn('endpoint', 'text', (col) => col.notNull())
          .addColumn('script', 'text', (col) => col.notNull())
          .addColumn('caller_id', 'text')
          .addColumn('variables', 'text')
          .addColumn('tries', 'integer', (col) => col.notNull())
          .addColumn('tries_period_sec', 'integer', (col) => col.notNull())
          .addColumn('attempts_made', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('status', 'text', (col) => col.notNull())
          .addColumn('cancel_requested', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'text', (col) => col.notNull())
          .addColumn('attempt_started_at', 'text')
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'text')
          .addColumn('event_seq', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('requested_by', 'text')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .addColumn('finished_at', 'text')
          .execute();
        await db.schema
          .createIndex('autocall_jobs_due_idx')
          .on('autocall_jobs')
          .columns(['status', 'campaign_id', 'next_attempt_at'])
          .execute();
        await db.schema
          .createIndex('autocall_jobs_lease_idx')
          .on('autocall_jobs')
          .column('lease_until')
          .where(sql.ref('status'), '=', 'in_progress')
          .execute();
        await db.schema
          .createIndex('autocall_jobs_campaign_idx')
          .on('autocall_jobs')
          .columns(['campaign_id', 'id'])
          .execute();
        await db.schema
          .createTable('autocall_attempts')
          .addColumn('job_id', int64, (col) =>
            col.notNull().references('autocall_jobs.id').onDelete('cascade'),
          )
          .addColumn('attempt', 'integer', (col) => col.notNull())
          .addColumn('started_at', 'text', (col) => col.notNull())
          .addColumn('ended_at', 'text', (col) => col.notNull())
          .addColumn('call_id', 'text')
          .addColumn('dial_status', 'text', (col) => col.notNull())
          .addColumn('cause', 'integer')
          .addColumn('cause_text', 'text')
          .addColumn('answered_at', 'text')
          .addColumn('digits', 'text', (col) => col.notNull())
          .addColumn('played_sec', 'integer', (col) => col.notNull())
          .addColumn('outcome', 'text', (col) => col.notNull())
          .addPrimaryKeyConstraint('autocall_attempts_pk', ['job_id', 'attempt'])
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('autocall_attempts').execute();
        await db.schema.dropTable('autocall_jobs').execute();
        await db.schema.dropTable('autocall_campaigns').execute();
      },
    },
    // Answering-machine detection of notification calls: Asterisk's verdict on each attempt
    // (AMDSTATUS: MACHINE, HUMAN, NOTSURE; AMDCAUSE, e.g. LONGGREETING-1500-1500).
    '0006_autocalls_amd': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('autocall_attempts').addColumn('amd_status', 'text').execute();
        await db.schema.alterTable('autocall_attempts').addColumn('amd_cause', 'text').execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('autocall_attempts').dropColumn('amd_cause').execute();
        await db.schema.alterTable('autocall_attempts').dropColumn('amd_status').execute();
      },
    },
    // Operator presence (src/operators/): one row per operator extension, its status set through
    // the API (available, break, dnd), its last state and the sequence of its `operator.state`
    // events (outbox key `operator-<extension>`).
    '0007_operators': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('operators')
          .addColumn('extension', 'text', (col) => col.primaryKey())
          .addColumn('status', 'text', (col) => col.notNull().defaultTo('available'))
          .addColumn('state', 'text', (col) => col.notNull().defaultTo('offline'))
          .addColumn('since', 'text', (col) => col.notNull())
          .addColumn('call_id', 'text')
          .addColumn('event_seq', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('operators').execute();
      },
    },
    // CRM connectors (src/connectors/): each lifecycle event a connector translates for its
    // vendor has its own delivery state here, beside the webhook's in `events` (the same event
    // may be delivered to the webhook and rejected by the vendor). Attempts go to the
    // delivery log (`webhook_deliveries`, with the vendor URL).
    '0008_connectors_outbox': {
      async up(db: Kysely<unknown>): Promise<void> {
        await autoId(db.schema.createTable('connector_outbox'))
          .addColumn('connector', 'text', (col) => col.notNull())
          .addColumn('event_id', 'text', (col) =>
            col.notNull().references('events.event_id').onDelete('cascade'),
          )
          .addColumn('call_id', 'text', (col) => col.notNull())
          .addColumn('sequence', 'integer', (col) => col.notNull())
          .addColumn('status', 'text', (col) => col.notNull().defaultTo('pending'))
          .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'text', (col) => col.notNull())
          .addColumn('last_error', 'text')
          .addColumn('last_status', 'integer')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('settled_at', 'text')
          .addUniqueConstraint('connector_outbox_event_uq', ['connector', 'event_id'])
          .execute();
        await db.schema
          .createIndex('connector_outbox_pending_idx')
          .on('connector_outbox')
          .columns(['connector', 'status', 'id'])
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('connector_outbox').execute();
      },
    },
    // Call script recordings (the record verb) still to fetch from Asterisk: one row from
    // RecordingFinished until the file is stored, so that a download cut by an engine stop or
    // crash is completed at the next start (src/recordings/verb-recordings.ts).
    '0009_recordings_verb_downloads': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('verb_recording_downloads')
          .addColumn('name', 'text', (col) => col.primaryKey())
          .addColumn('call_id', 'text', (col) => col.notNull())
          .addColumn('duration_sec', 'integer')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('verb_recording_downloads').execute();
      },
    },
    // CRM connectors: state a connector keeps across restarts (src/store/connector-state.ts),
    // e.g. Bitrix24's refreshed OAuth tokens and the CALL_ID it registered for each call.
    '0010_connectors_bitrix24_state': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('connector_state')
          .addColumn('connector', 'text', (col) => col.notNull())
          .addColumn('key', 'text', (col) => col.notNull())
          .addColumn('value', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .addPrimaryKeyConstraint('connector_state_pk', ['connector', 'key'])
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('connector_state').execute();
      },
    },
    // The customer card's link (the customer's page in the CRM, from the route answer) kept with
    // the call, so a call adopted after an engine restart still shows it (API, live stream,
    // events emitted after the restart).
    '0011_calls_customer_link': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('calls').addColumn('customer_link', 'text').execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('calls').dropColumn('customer_link').execute();
      },
    },
    // Every leg of an ended call has an end time: the engine gives a leg still up when its call
    // ends the call's end time. Ended calls stored before it did may have legs without one (e.g.
    // a caller hung up while the engine was closing ARI): they get the call's end time too.
    // Data only: `down` leaves the times (the table is the same either way).
    '0012_call_legs_end_time': {
      async up(db: Kysely<unknown>): Promise<void> {
        await sql`update call_legs
          set ended_at = (select c.ended_at from calls c where c.id = call_legs.call_id)
          where ended_at is null
            and exists (select 1 from calls c where c.id = call_legs.call_id
              and c.state = 'ended' and c.ended_at is not null)`.execute(db);
      },
      async down(): Promise<void> {},
    },
  };
}

/** A Kysely `MigrationProvider` over {@link storeMigrations}. */
export function storeMigrationProvider(dialect: StoreDialect): MigrationProvider {
  return { getMigrations: () => Promise.resolve(storeMigrations(dialect)) };
}
