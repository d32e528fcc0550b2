/**
 * Shared fixtures of the store tests: run one test body on every available dialect (SQLite
 * always; PostgreSQL when TEST_DATABASE_URL is set, in a throwaway schema truncated per test).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Call, CallSnapshot, Leg } from '../../src/calls/model.ts';
import { createEventEnvelope, type LifecycleEvent } from '../../src/events/types.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { createStore, type Store, type StoreDialect } from '../../src/store/index.ts';

export const logger = createSilentLogger();

/** PostgreSQL URL of the throwaway test database, if any. */
export const PG_URL = process.env.TEST_DATABASE_URL?.trim() || undefined;

/** The dialects to test on. */
export const DIALECTS: StoreDialect[] = PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];

/** Run `body` once per dialect inside `describe("<title> [<dialect>]")`, with a fresh store per test. */
export function forEachDialect(
  title: string,
  body: (ctx: { store: () => Store; dialect: StoreDialect }) => void,
): void {
  for (const dialect of DIALECTS) {
    describe(`${title} [${dialect}]`, function () {
      let store: Store | undefined;
      const get = (): Store => {
        if (!store) throw new Error('store not open');
        return store;
      };
      if (dialect === 'sqlite') {
        beforeEach(async () => {
          store = createStore({ url: 'sqlite::memory:', logger });
          await store.migrate();
        });
        afterEach(async () => {
          await store?.close();
          store = undefined;
        });
      } else {
        const schema = `t_${process.pid}_${randomBytes(4).toString('hex')}`;
        before(async () => {
          store = createStore({ url: PG_URL!, logger, schema, poolSize: 4 });
          await store.migrate();
        });
        beforeEach(async () => {
          await truncate(get());
        });
        after(async () => {
          if (!store) return;
          await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(store.db);
          await store.close();
          store = undefined;
        });
      }
      body({ store: get, dialect });
    });
  }
}

/** Delete every row (children first). */
export async function truncate(store: Store): Promise<void> {
  await store.db.deleteFrom('autocall_attempts').execute();
  await store.db.deleteFrom('autocall_jobs').execute();
  await store.db.deleteFrom('autocall_campaigns').execute();
  await store.db.deleteFrom('webhook_deliveries').execute();
  await store.db.deleteFrom('call_legs').execute();
  await store.db.deleteFrom('events').execute();
  await store.db.deleteFrom('calls').execute();
  await store.db.deleteFrom('connector_state').execute();
  await store.db.deleteFrom('operators').execute();
}

/** A temporary directory removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ari-crm-store-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let callCounter = 0;

/** A deterministic, sortable call id (UUID-shaped). */
export function callId(n = ++callCounter): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** An ended inbound/outbound call snapshot; override any field. */
export function endedCall(overrides: Partial<CallSnapshot> = {}): CallSnapshot {
  return {
    id: callId(),
    direction: 'in',
    state: 'ended',
    from: '79161234567',
    to: '74951234567',
    did: '74951234567',
    answeredBy: '101',
    disposition: 'answered',
    hangupBy: 'caller',
    startedAt: '2025-01-31T09:15:00.000Z',
    answeredAt: '2025-01-31T09:15:07.000Z',
    endedAt: '2025-01-31T09:16:07.000Z',
    waitSec: 7,
    talkSec: 60,
    legs: [
      { channelId: `in-${callCounter}`, role: 'caller' },
      {
        channelId: `op-${callCounter}`,
        role: 'operator',
        extension: '101',
        endpoint: 'PJSIP/101',
        outcome: 'answered',
      },
    ],
    ...overrides,
  };
}

/** Events 1..count of a call (started, then ringing). */
export function callEvents(id: string, count: number, start = 1): LifecycleEvent[] {
  const events: LifecycleEvent[] = [];
  for (let sequence = start; sequence < start + count; sequence++) {
    events.push(
      sequence === 1
        ? createEventEnvelope('call.started', id, sequence, {
            direction: 'in',
            from: '79161234567',
            to: '74951234567',
            did: '74951234567',
          })
        : createEventEnvelope('call.ringing', id, sequence, {
            extension: String(100 + sequence),
            from: '79161234567',
            to: '74951234567',
          }),
    );
  }
  return events;
}

/** A leg of the call model (src/calls/model.ts), created at `extra.createdAt` or 2025-01-31. */
export function modelLeg(channelId: string, role: Leg['role'], extra: Partial<Leg> = {}): Leg {
  return {
    channelId,
    role,
    createdByEngine: role !== 'caller',
    created: true,
    inStasis: true,
    dialed: false,
    ringing: false,
    answered: false,
    ended: false,
    hangupRequested: false,
    createdAt: Date.UTC(2025, 0, 31, 9, 15, 0),
    ...extra,
  };
}

/**
 * A live inbound call of the call model with one caller leg (`<id>` + `-caller`… unless `legs`
 * is given): customer 79161234567 calling the DID 74951234567.
 */
export function modelInboundCall(id: string, overrides: Partial<Call> = {}): Call {
  const startedAt = overrides.startedAt ?? Date.UTC(2025, 0, 31, 9, 15, 0);
  return {
    id,
    direction: 'in',
    from: '79161234567',
    to: '74951234567',
    did: '74951234567',
    phase: 'routing',
    legs: new Map([['in-1', modelLeg('in-1', 'caller', { createdAt: startedAt })]]),
    callerChannelId: 'in-1',
    startedAt,
    nextSequence: 1,
    ...overrides,
  };
}

/** A store whose transactions and write batches fail ("disk I/O error") while `failing` is true. */
export function flakyStore(store: Store): Store & { failing: boolean } {
  const wrapper = Object.create(store) as Store & { failing: boolean };
  wrapper.failing = false;
  wrapper.transaction = (fn) =>
    wrapper.failing ? Promise.reject(new Error('disk I/O error')) : store.transaction(fn);
  wrapper.writeBatch = (fn, options) =>
    wrapper.failing ? Promise.reject(new Error('disk I/O error')) : store.writeBatch(fn, options);
  return wrapper;
}

/** A store whose write batches wait until {@link HeldStore.release} (a busy SQLite thread); reads go through. */
export type HeldStore = Store & { release(): void };

/** `store` held as {@link HeldStore} describes until `release()` is called. */
export function heldStore(store: Store): HeldStore {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const wrapper = Object.create(store) as HeldStore;
  wrapper.writeBatch = async (fn, options) => {
    await gate;
    return store.writeBatch(fn, options);
  };
  wrapper.release = () => open();
  return wrapper;
}
