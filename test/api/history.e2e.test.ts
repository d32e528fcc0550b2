/**
 * Call history and the event feed end to end (call details filters and pagination;
 * the pull feed returns the same events the webhooks carried): the engine with its store, the
 * PBX simulator through the real ari-client, a real local CRM receiving signed webhooks, and the
 * API over real HTTP. Four calls are placed through the simulator, then listed, filtered, paged
 * and read back. On SQLite (the engine's default file in a temporary DATA_DIR) and, when
 * TEST_DATABASE_URL is set, on PostgreSQL (a throwaway schema).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { sql } from 'kysely';
import type { LifecycleEvent } from '../../src/events/types.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { createStore } from '../../src/store/index.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import type { ReceivedWebhook } from '../support/fake-crm.ts';
import { DIALECTS, PG_URL } from '../store/helpers.ts';

type Json = Record<string, unknown>;
type CallJson = Json & { id: string; legs: Json[] };
type CallPageJson = { items: CallJson[]; nextCursor?: string };
type FeedJson = {
  items: Array<{ cursor: string; webhookStatus: string; event: LifecycleEvent }>;
  nextCursor: string;
};
type DeliveryJson = Json & { eventId: string; attempt: number; outcome: string };
type DeliveriesJson = { items: DeliveryJson[]; nextCursor?: string };

const DID = '74951234567';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const WAIT_MS = 10_000;

/** A fresh PostgreSQL schema, migrated, as a DATABASE_URL whose connections use it. */
async function pgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `h_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = createStore({ url: PG_URL!, logger: createSilentLogger(), schema, poolSize: 1 });
  await admin.migrate();
  const separator = PG_URL!.includes('?') ? '&' : '?';
  return {
    url: `${PG_URL!}${separator}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db);
      await admin.close();
    },
  };
}

/** Poll `read` until `done` holds (the store settles deliveries write-behind). */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`never settled: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

for (const dialect of DIALECTS) {
  describe(`API call history and event feed (e2e) [${dialect}]`, function () {
    this.timeout(60_000);
    let bed: TestBed;
    let dropDatabase: (() => Promise<void>) | undefined;
    /** The four calls, oldest first, by name. */
    const ids: Record<'inAnswered' | 'inMissed' | 'outAnswered' | 'outBusy', string> = {
      inAnswered: '',
      inMissed: '',
      outAnswered: '',
      outBusy: '',
    };
    const ended: Record<string, ReceivedWebhook> = {};

    const get = <T = Json>(path: string) => apiRequest<T>(bed.engine.httpUrl, path);
    const list = async (query: string): Promise<string[]> => {
      const res = await get<CallPageJson>(`/v1/calls?${query}`);
      expect(res.status, query).to.equal(200);
      return res.body.items.map((c) => c.id);
    };

    async function inbound(from: string, hangupAfterMs?: number): Promise<string> {
      await bed.sim.injectInboundCall({
        from,
        to: DID,
        ...(hangupAfterMs ? { hangupAfterMs } : {}),
      });
      const started = await bed.crm.waitForWebhook(
        (w) => w.body.type === 'call.started' && w.body.data.from === from,
        WAIT_MS,
      );
      ended[started.body.callId] = await bed.crm.waitForEnded(started.body.callId, WAIT_MS);
      return started.body.callId;
    }

    async function clickToCall(operator: string, to: string): Promise<string> {
      const res = await apiRequest<{ id: string }>(bed.engine.httpUrl, '/v1/calls', {
        method: 'POST',
        body: { operator, to, tries: 1 },
      });
      expect(res.status).to.equal(202);
      return res.body.id;
    }

    before(async () => {
      const env: Record<string, string> = {
        WEBHOOK_RETRY_INITIAL_DELAY_MS: '50',
        WEBHOOK_RETRY_MAX_DELAY_MS: '200',
      };
      if (dialect === 'postgres') {
        const db = await pgDatabase();
        env.DATABASE_URL = db.url;
        dropDatabase = db.drop;
      }
      bed = await startTestBed(env);
      bed.crm.onRoute((req) => ({
        body: {
          action: 'dial',
          strategy: 'ringall',
          extensions: [req.from === '79161234567' ? '101' : '102'],
          ringTimeoutSec: 5,
        },
      }));
      bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300 });
      bed.sim.phones.set('102', { mode: 'ring' });
      bed.sim.phones.set('103', { mode: 'answer', answerAfterMs: 300 });

      // One after the other, so their start times order them.
      ids.inAnswered = await inbound('79161234567', 1500);
      ids.inMissed = await inbound('89990000001');

      bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 300, hangupAfterMs: 1000 });
      ids.outAnswered = await clickToCall('101', '+7 495 765-43-21');
      ended[ids.outAnswered] = await bed.crm.waitForEnded(ids.outAnswered, WAIT_MS);

      // The CRM fails while the last call runs: its webhooks are retried, and logged.
      bed.sim.customers.set('*', { mode: 'busy' });
      bed.crm.webhookStatus = 500;
      const engineEnded = new Promise<void>((resolve) =>
        bed.engine.calls.once('ended', () => resolve()),
      );
      ids.outBusy = await clickToCall('103', '8 (812) 555-01-02');
      await engineEnded;
      await eventually(
        () => get<DeliveriesJson>('/v1/webhooks/deliveries?status=failed'),
        (res) => res.body.items.length >= 2,
      );
      bed.crm.webhookStatus = 200;
      ended[ids.outBusy] = await bed.crm.waitForEnded(ids.outBusy, WAIT_MS);
    });

    after(async () => {
      await bed?.stop();
      await dropDatabase?.();
    });

    it('lists the calls placed through the simulator, newest first, with their CDR fields', async () => {
      const res = await get<CallPageJson>('/v1/calls');
      expect(res.status).to.equal(200);
      expect(res.body.items.map((c) => c.id)).to.deep.equal([
        ids.outBusy,
        ids.outAnswered,
        ids.inMissed,
        ids.inAnswered,
      ]);
      expect(res.body).to.not.have.property('nextCursor');
      const byId = new Map(res.body.items.map((c) => [c.id, c]));
      expect(byId.get(ids.inAnswered)).to.include({
        direction: 'in',
        state: 'ended',
        from: '79161234567',
        to: DID,
        answeredBy: '101',
        disposition: 'answered',
      });
      expect(byId.get(ids.inMissed)).to.include({
        direction: 'in',
        disposition: 'no_answer',
        talkSec: 0,
      });
      expect(byId.get(ids.outAnswered)).to.include({
        direction: 'out',
        from: '101',
        to: '+74957654321',
        disposition: 'answered',
      });
      expect(byId.get(ids.outBusy)).to.include({ direction: 'out', disposition: 'busy' });
      // The stored CDR is the one the CRM got in call.ended.
      for (const call of res.body.items) {
        const cdr = ended[call.id]!.body.data;
        for (const key of ['startedAt', 'endedAt', 'waitSec', 'talkSec', 'disposition'])
          expect(call[key], `${key} of ${call.id}`).to.deep.equal(cdr[key]);
        expect(call.startedAt).to.match(ISO);
        expect(Number.isInteger(call.waitSec) && Number.isInteger(call.talkSec)).to.equal(true);
      }
    });

    it('filters by number in any format, extension, direction, disposition and time', async () => {
      expect(await list(`number=${encodeURIComponent('+7 916 123-45-67')}`)).to.deep.equal([
        ids.inAnswered,
      ]);
      // Stored as +74957654321 by click-to-call; the CRM writes it the local way.
      expect(await list(`number=${encodeURIComponent('8 (495) 765-43-21')}`)).to.deep.equal([
        ids.outAnswered,
      ]);
      expect(await list(`number=${DID}`)).to.deep.equal([ids.inMissed, ids.inAnswered]);
      expect(await list('extension=101')).to.deep.equal([ids.outAnswered, ids.inAnswered]);
      expect(await list('extension=102')).to.deep.equal([ids.inMissed]);
      expect(await list('direction=out')).to.deep.equal([ids.outBusy, ids.outAnswered]);
      expect(await list('disposition=busy,no_answer')).to.deep.equal([ids.outBusy, ids.inMissed]);
      expect(await list('direction=in&disposition=answered')).to.deep.equal([ids.inAnswered]);
      const split = String(ended[ids.inMissed]!.body.data.startedAt);
      expect(await list(`since=${split}`)).to.deep.equal([
        ids.outBusy,
        ids.outAnswered,
        ids.inMissed,
      ]);
      expect(await list(`until=${split}`)).to.deep.equal([ids.inAnswered]);
      const bad = await get<Json>('/v1/calls?since=today');
      expect(bad.status).to.equal(400);
      expect(bad.body).to.include({ code: 'invalid_query', field: 'since' });
    });

    it('pages with a cursor through the same calls, filters kept', async () => {
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const res: { body: CallPageJson } = await get<CallPageJson>(
          `/v1/calls?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
        );
        pages.push(res.body.items.map((c) => c.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(pages).to.deep.equal([
        [ids.outBusy],
        [ids.outAnswered],
        [ids.inMissed],
        [ids.inAnswered],
      ]);
      const first = await get<CallPageJson>('/v1/calls?direction=in&limit=1');
      const second = await get<CallPageJson>(
        `/v1/calls?direction=in&limit=1&cursor=${first.body.nextCursor}`,
      );
      expect([...first.body.items, ...second.body.items].map((c) => c.id)).to.deep.equal([
        ids.inMissed,
        ids.inAnswered,
      ]);
      expect(second.body).to.not.have.property('nextCursor');
    });

    it('answers an ended call from the store, legs with their times', async () => {
      const res = await get<CallJson>(`/v1/calls/${ids.outAnswered}`);
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ id: ids.outAnswered, state: 'ended', disposition: 'answered' });
      expect(res.body.updatedAt).to.match(ISO);
      const legs = res.body.legs;
      expect(legs).to.have.length(2);
      for (const leg of legs) {
        expect(leg.createdAt).to.match(ISO);
        expect(leg.answeredAt).to.match(ISO);
        expect(leg.endedAt).to.match(ISO);
      }
      const customer = legs.find((l) => l.role === 'customer')!;
      expect(customer).to.include({ outcome: 'answered' });
      expect(customer.endpoint).to.be.a('string');
      expect(Date.parse(String(customer.createdAt))).to.be.at.least(
        Date.parse(String(legs.find((l) => l !== customer)!.createdAt)),
      );
      const missing = await get<Json>('/v1/calls/00000000-0000-4000-8000-000000000000');
      expect(missing.status).to.equal(404);
      expect(missing.body).to.include({ code: 'call_not_found' });
    });

    it('the pull feed returns the same events, in the same order, as the webhooks carried', async () => {
      const feed: FeedJson['items'] = [];
      let after: string | undefined;
      for (;;) {
        const res: { status: number; body: FeedJson } = await get<FeedJson>(
          `/v1/events?limit=3${after ? `&after=${after}` : ''}`,
        );
        expect(res.status).to.equal(200);
        if (res.body.items.length === 0) {
          expect(res.body.nextCursor).to.equal(after);
          break;
        }
        feed.push(...res.body.items);
        after = res.body.nextCursor;
      }
      const received = bed.crm.webhooks;
      expect(feed.map((i) => i.event.id).sort()).to.deep.equal(
        received.map((w) => w.body.id).sort(),
      );
      // Byte for byte the body each webhook carried.
      const raw = new Map(received.map((w) => [w.body.id, w.rawBody]));
      for (const item of feed) expect(JSON.stringify(item.event)).to.equal(raw.get(item.event.id));
      // Per call, the same order (sequence 1, 2, 3, …); calls one after the other overall.
      for (const callId of Object.values(ids)) {
        const fromFeed = feed.filter((i) => i.event.callId === callId).map((i) => i.event.id);
        expect(fromFeed, callId).to.deep.equal(bed.crm.eventsOf(callId).map((w) => w.body.id));
        expect(fromFeed.length).to.be.greaterThan(1);
      }
      expect([...new Set(feed.map((i) => i.event.callId))]).to.deep.equal([
        ids.inAnswered,
        ids.inMissed,
        ids.outAnswered,
        ids.outBusy,
      ]);
      // Every event was delivered by webhook; the feed says so once the store settled it.
      const settled = await eventually(
        () => get<FeedJson>(`/v1/events?limit=1000`),
        (res) => res.body.items.every((i) => i.webhookStatus === 'delivered'),
      );
      expect(settled.body.items).to.have.length(feed.length);
    });

    it('the delivery log shows the failed attempts with status code, and the delivery that followed', async () => {
      const failed = await get<DeliveriesJson>('/v1/webhooks/deliveries?status=failed');
      expect(failed.status).to.equal(200);
      expect(failed.body.items.length).to.be.at.least(2);
      const started = bed.crm.eventsOf(ids.outBusy)[0]!.body;
      for (const attempt of failed.body.items) {
        expect(attempt).to.include({
          // Per-call order: only the call's first event is tried while the CRM fails.
          eventId: started.id,
          callId: ids.outBusy,
          eventType: 'call.started',
          url: bed.crm.webhookUrl,
          outcome: 'failed',
          statusCode: 500,
        });
        expect(attempt.at).to.match(ISO);
        expect(attempt.durationMs).to.be.a('number');
      }
      // Newest first: attempt numbers go down.
      const attempts = failed.body.items.map((d) => d.attempt);
      expect(attempts).to.deep.equal([...attempts].sort((a, b) => b - a));
      const delivered = await eventually(
        () => get<DeliveriesJson>('/v1/webhooks/deliveries?status=delivered&limit=1000'),
        (res) => res.body.items.length === bed.crm.webhooks.length,
      );
      const retried = delivered.body.items.find((d) => d.eventId === started.id)!;
      expect(retried).to.include({ outcome: 'delivered', statusCode: 200 });
      expect(retried.attempt).to.equal(Math.max(...attempts) + 1);
    });
  });
}
