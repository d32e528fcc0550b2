/**
 * The read API over the store (call details, the pull feed, the delivery log):
 * `GET /v1/calls` filters and cursor pages, `GET /v1/calls/{id}` live or stored,
 * `GET /v1/events`, `GET /v1/webhooks/deliveries`, and their 400s naming the parameter. Real
 * HTTP against the app as the engine builds it (createApi + createHttpApp), the store populated
 * directly, on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { CallSnapshot } from '../../src/calls/model.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createEventEnvelope, type LifecycleEvent } from '../../src/events/types.ts';
import { createApi, type ApiDeps } from '../../src/http/api.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { createSecurity } from '../../src/security/index.ts';
import { apiRequest } from '../support/api.ts';
import { TEST_API_KEY } from '../support/engine.ts';
import { callEvents, callId, endedCall, forEachDialect } from '../store/helpers.ts';
import { FakeCallControl } from './support/fake-control.ts';

type Json = Record<string, unknown>;
type CallJson = Json & { id: string; legs: Json[]; recording?: Json };
type CallPageJson = { items: CallJson[]; nextCursor?: string };
type FeedJson = {
  items: Array<{ cursor: string; webhookStatus: string; event: LifecycleEvent }>;
  nextCursor: string;
};
type DeliveriesJson = { items: Json[]; nextCursor?: string };
type ErrorJson = { code: string; message: string; field?: string };

interface HistoryApp {
  url: string;
  control: FakeCallControl;
  close(): Promise<void>;
}

/** The API with `store`, a fake CallControl and optional extras, on 127.0.0.1. */
async function startHistoryApp(
  store: ApiDeps['store'],
  extra: Pick<ApiDeps, 'recordingUrl'> = {},
): Promise<HistoryApp> {
  const logger = createSilentLogger();
  const config = loadConfig({ NODE_ENV: 'test', API_KEYS: `test:${TEST_API_KEY}` });
  const registry = new Registry();
  const control = new FakeCallControl();
  const app = createHttpApp({
    logger,
    registry,
    readiness: {},
    ...createApi({
      config,
      control,
      registry,
      logger,
      store,
      security: createSecurity({ config, logger, registry }),
      ...extra,
    }),
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    control,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const minute = (m: number): string =>
  new Date(Date.UTC(2025, 0, 31, 9, 0) + m * 60_000).toISOString();
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

forEachDialect('API call history and event feed', ({ store }) => {
  let app: HistoryApp;
  // One app per suite, reading whichever store the current test has.
  const current: ApiDeps['store'] = {
    calls: {
      getCall: (id) => store().calls.getCall(id),
      listCalls: (filter) => store().calls.listCalls(filter),
    },
    events: {
      feed: (options) => store().events.feed(options),
      deliveries: (options) => store().events.deliveries(options),
    },
  };
  /** Calls whose recording the (test) recording storage cannot serve. */
  const notDownloadable = new Set<string>();
  before(async () => {
    app = await startHistoryApp(current, {
      recordingUrl: (id) => (notDownloadable.has(id) ? undefined : `https://rec.example/${id}.wav`),
    });
  });
  after(async () => {
    await app?.close();
  });

  const get = <T = Json>(path: string) => apiRequest<T>(app.url, path);
  const ids = (page: CallPageJson): string[] => page.items.map((c) => c.id);

  describe('GET /v1/calls', () => {
    let calls: Record<string, CallSnapshot>;
    beforeEach(async () => {
      calls = {
        inAnswered: endedCall({
          startedAt: minute(0),
          answeredAt: minute(0.1),
          endedAt: minute(1),
        }),
        inMissed: endedCall({
          startedAt: minute(1),
          answeredAt: undefined,
          endedAt: minute(1.5),
          from: '89990000001',
          answeredBy: undefined,
          disposition: 'no_answer',
          hangupBy: 'caller',
          talkSec: 0,
          legs: [
            { channelId: 'm-in', role: 'caller' },
            { channelId: 'm-op', role: 'operator', extension: '102', outcome: 'no_answer' },
          ],
        }),
        outBusy: endedCall({
          direction: 'out',
          startedAt: minute(2),
          from: '103',
          to: '+79161234567',
          did: undefined,
          answeredBy: '103',
          disposition: 'busy',
          legs: [{ channelId: 'o-op', role: 'caller', extension: '103' }],
        }),
        outAnswered: endedCall({
          direction: 'out',
          startedAt: minute(3),
          from: '101',
          to: '+79995556677',
          did: undefined,
          answeredBy: '101',
        }),
        live: endedCall({
          state: 'bridged',
          startedAt: minute(4),
          disposition: undefined,
          hangupBy: undefined,
          endedAt: undefined,
          answeredBy: '104',
          legs: [{ channelId: 'l-op', role: 'operator', extension: '104', outcome: 'answered' }],
        }),
      };
      for (const snapshot of Object.values(calls)) {
        await store().calls.upsertCall(snapshot, {
          legs: snapshot.legs.map((leg, i) => ({
            ...leg,
            createdAt: Date.parse(snapshot.startedAt) + i * 1000,
            ...(leg.outcome === 'answered' ? { answeredAt: snapshot.answeredAt } : {}),
            ...(snapshot.endedAt ? { endedAt: snapshot.endedAt } : {}),
          })),
        });
      }
      await store().calls.setRecording(calls.outAnswered!.id, {
        name: 'rec-out',
        path: '2025/01/31/rec-out.wav',
        status: 'stored',
        bytes: 960_044,
        durationSec: 60,
      });
    });

    it('lists stored calls newest first with legs, times in ISO 8601 UTC and whole seconds', async () => {
      const res = await get<CallPageJson>('/v1/calls');
      expect(res.status).to.equal(200);
      expect(ids(res.body)).to.deep.equal(
        ['live', 'outAnswered', 'outBusy', 'inMissed', 'inAnswered'].map((k) => calls[k]!.id),
      );
      expect(res.body).to.not.have.property('nextCursor');
      const answered = res.body.items.find((c) => c.id === calls.inAnswered!.id)!;
      expect(answered).to.include({
        direction: 'in',
        state: 'ended',
        from: '79161234567',
        to: '74951234567',
        disposition: 'answered',
        answeredBy: '101',
        startedAt: minute(0),
        endedAt: minute(1),
        waitSec: 7,
        talkSec: 60,
      });
      expect(answered.updatedAt).to.match(ISO);
      expect(answered.legs.map((l) => [l.role, l.extension, l.outcome])).to.deep.equal([
        ['caller', undefined, undefined],
        ['operator', '101', 'answered'],
      ]);
      expect(answered.legs[1]).to.include({
        createdAt: new Date(Date.parse(minute(0)) + 1000).toISOString(),
        answeredAt: minute(0.1),
        endedAt: minute(1),
      });
      const live = res.body.items[0]!;
      expect(live).to.include({ state: 'bridged' });
      expect(live).to.not.have.property('disposition');
    });

    it('shows the stored recording with its download link', async () => {
      const res = await get<CallPageJson>(`/v1/calls?direction=out&limit=1`);
      expect(res.body.items[0]!.recording).to.deep.equal({
        name: 'rec-out',
        path: '2025/01/31/rec-out.wav',
        status: 'stored',
        bytes: 960_044,
        durationSec: 60,
        url: `https://rec.example/${calls.outAnswered!.id}.wav`,
      });
      const others = await get<CallPageJson>(`/v1/calls?direction=in`);
      for (const call of others.body.items) expect(call).to.not.have.property('recording');
    });

    it('filters by time range: since inclusive, until exclusive, offsets and dates accepted', async () => {
      const res = await get<CallPageJson>(
        `/v1/calls?since=${minute(1)}&until=${encodeURIComponent('2025-01-31T12:03:00+03:00')}`,
      );
      expect(ids(res.body)).to.deep.equal([calls.outBusy!.id, calls.inMissed!.id]);
      const day = await get<CallPageJson>('/v1/calls?since=2025-01-31&until=2025-02-01');
      expect(day.body.items).to.have.length(5);
      const before = await get<CallPageJson>('/v1/calls?until=2025-01-31');
      expect(before.body.items).to.deep.equal([]);
    });

    it('filters by a number on either side, whatever format the CRM writes it in', async () => {
      // Stored as 79161234567 (inbound caller) and +79161234567 (click-to-call).
      for (const written of ['+7 916 123-45-67', '8 (916) 123-45-67', '79161234567']) {
        const res = await get<CallPageJson>(`/v1/calls?number=${encodeURIComponent(written)}`);
        expect(ids(res.body), written).to.deep.equal([
          calls.live!.id,
          calls.outBusy!.id,
          calls.inAnswered!.id,
        ]);
      }
      // Stored as 89990000001 (national prefix, as the trunk sent it).
      const missed = await get<CallPageJson>(
        `/v1/calls?number=${encodeURIComponent('+79990000001')}`,
      );
      expect(ids(missed.body)).to.deep.equal([calls.inMissed!.id]);
      // The DID, on the called side.
      const did = await get<CallPageJson>('/v1/calls?number=74951234567&direction=in');
      expect(did.body.items).to.have.length(3);
      const partial = await get<CallPageJson>('/v1/calls?number=7916');
      expect(partial.body.items).to.deep.equal([]);
    });

    it('filters by extension, direction and disposition, combined', async () => {
      expect(ids((await get<CallPageJson>('/v1/calls?extension=101')).body)).to.deep.equal([
        calls.outAnswered!.id,
        calls.inAnswered!.id,
      ]);
      expect(ids((await get<CallPageJson>('/v1/calls?extension=102')).body)).to.deep.equal([
        calls.inMissed!.id,
      ]);
      expect(
        ids((await get<CallPageJson>('/v1/calls?direction=in&disposition=answered')).body),
      ).to.deep.equal([calls.inAnswered!.id]);
      const several = [calls.outBusy!.id, calls.inMissed!.id];
      expect(
        ids((await get<CallPageJson>('/v1/calls?disposition=busy,no_answer')).body),
      ).to.deep.equal(several);
      expect(
        ids((await get<CallPageJson>('/v1/calls?disposition=busy&disposition=no_answer')).body),
      ).to.deep.equal(several);
    });

    it('pages with a cursor: no duplicates or skips, filters kept, new calls do not shift pages', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const res = await get<CallPageJson>(
          `/v1/calls?limit=1&extension=101${cursor ? `&cursor=${cursor}` : ''}` +
            '&since=2025-01-01T00:00:00Z',
        );
        expect(res.status).to.equal(200);
        seen.push(...ids(res.body));
        cursor = res.body.nextCursor;
        if (++pages === 1) {
          // A newer call answered by 101 arrives while the CRM pages.
          await store().calls.upsertCall(endedCall({ startedAt: minute(10) }));
        }
      } while (cursor);
      expect(seen).to.deep.equal([calls.outAnswered!.id, calls.inAnswered!.id]);
      expect(pages).to.equal(2);

      const all: string[] = [];
      cursor = undefined;
      do {
        const res: { body: CallPageJson } = await get<CallPageJson>(
          `/v1/calls?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(res.body.items.length).to.be.at.most(2);
        all.push(...ids(res.body));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(all).to.have.length(6);
      expect(new Set(all).size).to.equal(6);
      expect(all.slice(1)).to.deep.equal(
        ['live', 'outAnswered', 'outBusy', 'inMissed', 'inAnswered'].map((k) => calls[k]!.id),
      );
    });

    it('answers 400 naming the parameter for a bad filter, limit, time or cursor', async () => {
      const cases: Array<[string, string, string]> = [
        ['limit=0', 'invalid_query', 'limit'],
        ['limit=501', 'invalid_query', 'limit'],
        ['limit=ten', 'invalid_query', 'limit'],
        ['limit=1&limit=2', 'invalid_query', 'limit'],
        ['since=yesterday', 'invalid_query', 'since'],
        ['since=2025-01-31T09:00:00', 'invalid_query', 'since'],
        ['until=2025-02-30', 'invalid_query', 'until'],
        [`since=${minute(2)}&until=${minute(1)}`, 'invalid_query', 'until'],
        ['direction=sideways', 'invalid_query', 'direction'],
        ['disposition=answered,lost', 'invalid_query', 'disposition'],
        ['extension=1O1', 'invalid_query', 'extension'],
        ['number=call-me', 'invalid_query', 'number'],
        ['dispositon=busy', 'invalid_query', 'dispositon'],
        ['cursor=not%20a%20cursor', 'invalid_cursor', 'cursor'],
        ['cursor=garbage', 'invalid_cursor', 'cursor'],
      ];
      const feed = await get<FeedJson>('/v1/events');
      cases.push([`cursor=${feed.body.nextCursor}`, 'invalid_cursor', 'cursor']);
      for (const [query, code, field] of cases) {
        const res = await get<ErrorJson>(`/v1/calls?${query}`);
        expect(res.status, query).to.equal(400);
        expect(res.body, query).to.include({ code, field });
        expect(res.body.message, query).to.match(new RegExp(`^${field}: `));
      }
    });

    it('requires the API key', async () => {
      const res = await apiRequest(app.url, '/v1/calls', { key: null });
      expect(res.status).to.equal(401);
    });
  });

  describe('GET /v1/calls/{id}', () => {
    it('answers a live call from the engine and an ended one from the store, with leg times and recording', async () => {
      const snapshot = endedCall({ id: callId(2) });
      await store().calls.upsertCall(snapshot, {
        legs: snapshot.legs.map((leg) => ({ ...leg, createdAt: snapshot.startedAt })),
        recording: { name: 'r2', status: 'stored', durationSec: 60 },
      });
      const stored = await get<CallJson>(`/v1/calls/${snapshot.id}`);
      expect(stored.status).to.equal(200);
      expect(stored.body).to.include({ id: snapshot.id, state: 'ended', disposition: 'answered' });
      expect(stored.body.legs[0]).to.include({ channelId: snapshot.legs[0]!.channelId });
      expect(stored.body.legs[0]!.createdAt).to.equal(snapshot.startedAt);
      expect(stored.body.recording).to.deep.equal({
        name: 'r2',
        status: 'stored',
        durationSec: 60,
        url: `https://rec.example/${snapshot.id}.wav`,
      });

      // Nothing to download: no url.
      const noUrl = endedCall({ id: callId(0x11) });
      notDownloadable.add(noUrl.id);
      await store().calls.upsertCall(noUrl, { recording: { status: 'failed' } });
      const failed = await get<CallJson>(`/v1/calls/${noUrl.id}`);
      expect(failed.body.recording).to.deep.equal({ status: 'failed' });

      // A live call: the engine's snapshot wins over the (older) stored state.
      const live: CallSnapshot = { ...endedCall({ id: callId(3) }), state: 'bridged' };
      delete live.disposition;
      delete live.endedAt;
      await store().calls.upsertCall({ ...live, state: 'operator_ringing' });
      app.control.calls.set(live.id, live);
      const answer = await get<CallJson>(`/v1/calls/${live.id}`);
      expect(answer.body).to.include({ state: 'bridged' });
      expect(answer.body).to.not.have.property('updatedAt');

      // Ended in memory but the store is a tick behind: the fresher snapshot.
      app.control.calls.set(live.id, { ...live, state: 'ended', disposition: 'answered' });
      const lagging = await get<CallJson>(`/v1/calls/${live.id}`);
      expect(lagging.body).to.include({ state: 'ended', disposition: 'answered' });
      // Once stored as ended, the stored record (legs with times).
      await store().calls.upsertCall({ ...live, state: 'ended', disposition: 'answered' });
      const caughtUp = await get<CallJson>(`/v1/calls/${live.id}`);
      expect(caughtUp.body).to.include({ state: 'ended' });
      expect(caughtUp.body).to.have.property('updatedAt');
      app.control.calls.delete(live.id);
    });

    it('answers 404 call_not_found for a call neither live nor stored', async () => {
      const res = await get<ErrorJson>(`/v1/calls/${callId(0xdead)}`);
      expect(res.status).to.equal(404);
      expect(res.body.code).to.equal('call_not_found');
    });
  });

  describe('GET /v1/events (pull feed)', () => {
    it('returns every event in order, exactly as the webhook body, and resumes after a cursor', async () => {
      const a = callId();
      const b = callId();
      const all = [...callEvents(a, 3), ...callEvents(b, 2)];
      await store().events.appendEvents(all.slice(0, 2));
      await store().events.appendEvents(all.slice(2));
      await store().events.markDelivered(all[0]!.id, 200);

      const first = await get<FeedJson>('/v1/events?limit=2');
      expect(first.status).to.equal(200);
      expect(first.body.items.map((i) => i.event)).to.deep.equal(all.slice(0, 2));
      expect(first.body.items.map((i) => i.webhookStatus)).to.deep.equal(['delivered', 'pending']);
      expect(first.body.nextCursor).to.equal(first.body.items[1]!.cursor);
      const rest = await get<FeedJson>(`/v1/events?after=${first.body.nextCursor}`);
      expect(rest.body.items.map((i) => i.event)).to.deep.equal(all.slice(2));
      const empty = await get<FeedJson>(`/v1/events?after=${rest.body.nextCursor}&limit=10`);
      expect(empty.body).to.deep.equal({ items: [], nextCursor: rest.body.nextCursor });

      const ended = createEventEnvelope('call.transferred', a, 4, { to: '500', kind: 'service' });
      await store().events.appendEvents([ended]);
      const later = await get<FeedJson>(`/v1/events?after=${empty.body.nextCursor}`);
      expect(later.body.items.map((i) => i.event)).to.deep.equal([ended]);
      // Resuming from an item's own cursor skips exactly what was processed.
      const fromItem = await get<FeedJson>(`/v1/events?after=${first.body.items[0]!.cursor}`);
      expect(fromItem.body.items.map((i) => i.event.id)).to.deep.equal(
        [...all.slice(1), ended].map((e) => e.id),
      );
    });

    it('answers 400 for a bad cursor or limit', async () => {
      await store().calls.upsertCall(endedCall());
      await store().calls.upsertCall(endedCall());
      const page = await get<CallPageJson>('/v1/calls?limit=1');
      const cases: Array<[string, string, string]> = [
        ['after=nope', 'invalid_cursor', 'after'],
        ['after=%2B%2B', 'invalid_cursor', 'after'],
        [`after=${page.body.nextCursor}`, 'invalid_cursor', 'after'],
        ['limit=1001', 'invalid_query', 'limit'],
        ['limit=-1', 'invalid_query', 'limit'],
        ['cursor=x', 'invalid_query', 'cursor'],
      ];
      for (const [query, code, field] of cases) {
        const res = await get<ErrorJson>(`/v1/events?${query}`);
        expect(res.status, query).to.equal(400);
        expect(res.body, query).to.include({ code, field });
      }
      expect((await apiRequest(app.url, '/v1/events', { key: null })).status).to.equal(401);
    });
  });

  describe('GET /v1/webhooks/deliveries', () => {
    it('shows each attempt with status code and error, failed ones on their own, newest first', async () => {
      const id = callId();
      const [started, ringing] = callEvents(id, 2);
      await store().events.appendEvents([started!, ringing!]);
      const url = 'https://crm.example/hooks';
      const t0 = Date.parse(minute(0));
      await store().events.recordAttempt({
        eventId: started!.id,
        attempt: 1,
        url,
        at: t0,
        outcome: 'failed',
        error: 'connect ECONNREFUSED 10.0.0.5:443',
        durationMs: 3,
      });
      await store().events.recordAttempt({
        eventId: started!.id,
        attempt: 2,
        url,
        at: t0 + 1000,
        outcome: 'failed',
        statusCode: 503,
        error: 'HTTP 503',
        durationMs: 41,
      });
      await store().events.recordAttempt({
        eventId: started!.id,
        attempt: 3,
        url,
        at: t0 + 3000,
        outcome: 'delivered',
        statusCode: 204,
        durationMs: 9,
      });
      await store().events.recordAttempt({
        eventId: ringing!.id,
        attempt: 1,
        url,
        at: t0 + 3100,
        outcome: 'rejected',
        statusCode: 410,
        error: 'HTTP 410',
        durationMs: 7,
      });

      const failed = await get<DeliveriesJson>('/v1/webhooks/deliveries?status=failed&limit=2');
      expect(failed.status).to.equal(200);
      expect(failed.body.items).to.deep.equal([
        {
          eventId: ringing!.id,
          callId: id,
          eventType: 'call.ringing',
          attempt: 1,
          url,
          at: new Date(t0 + 3100).toISOString(),
          outcome: 'rejected',
          statusCode: 410,
          error: 'HTTP 410',
          durationMs: 7,
        },
        {
          eventId: started!.id,
          callId: id,
          eventType: 'call.started',
          attempt: 2,
          url,
          at: new Date(t0 + 1000).toISOString(),
          outcome: 'failed',
          statusCode: 503,
          error: 'HTTP 503',
          durationMs: 41,
        },
      ]);
      const more = await get<DeliveriesJson>(
        `/v1/webhooks/deliveries?status=failed&limit=2&cursor=${failed.body.nextCursor}`,
      );
      expect(more.body.items.map((d) => [d.attempt, d.error])).to.deep.equal([
        [1, 'connect ECONNREFUSED 10.0.0.5:443'],
      ]);
      expect(more.body).to.not.have.property('nextCursor');
      const delivered = await get<DeliveriesJson>('/v1/webhooks/deliveries?status=delivered');
      expect(delivered.body.items.map((d) => [d.eventId, d.statusCode])).to.deep.equal([
        [started!.id, 204],
      ]);
      const all = await get<DeliveriesJson>('/v1/webhooks/deliveries');
      expect(all.body.items).to.have.length(4);

      for (const [query, code, field] of [
        ['status=lost', 'invalid_query', 'status'],
        ['cursor=garbage', 'invalid_cursor', 'cursor'],
        ['after=x', 'invalid_query', 'after'],
      ] as const) {
        const res = await get<ErrorJson>(`/v1/webhooks/deliveries?${query}`);
        expect(res.status, query).to.equal(400);
        expect(res.body, query).to.include({ code, field });
      }
      expect((await apiRequest(app.url, '/v1/webhooks/deliveries', { key: null })).status).to.equal(
        401,
      );
    });
  });
});

describe('API call history without a store', () => {
  it('answers 503 store_not_configured, and still serves live calls', async () => {
    const app = await startHistoryApp(undefined);
    try {
      for (const path of ['/v1/calls', '/v1/events', '/v1/webhooks/deliveries']) {
        const res = await apiRequest<ErrorJson>(app.url, path);
        expect(res.status, path).to.equal(503);
        expect(res.body.code).to.equal('store_not_configured');
      }
      const live = endedCall({ id: callId(7), state: 'bridged' });
      app.control.calls.set(live.id, live);
      expect((await apiRequest(app.url, `/v1/calls/${live.id}`)).status).to.equal(200);
      expect((await apiRequest(app.url, `/v1/calls/${callId(8)}`)).status).to.equal(404);
    } finally {
      await app.close();
    }
  });
});
