import { expect } from 'chai';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { createWebhookDispatcher } from '../../src/events/dispatcher.ts';
import type { QueuedEvent } from '../../src/events/queue.ts';
import type { LifecycleEvent } from '../../src/events/types.ts';
import { createStore, DurableEventQueue, type Store } from '../../src/store/index.ts';
import { postFromFetch } from '../support/outbound.ts';
import { callEvents, callId, endedCall, forEachDialect, logger, tempDir } from './helpers.ts';

const SECRET = 'webhook-secret-0123456789abcdef';
const entry = (event: LifecycleEvent, attempts = 0): QueuedEvent => ({
  event,
  body: JSON.stringify(event),
  enqueuedAt: Date.now(),
  attempts,
});

forEachDialect('store: durable event queue', ({ store }) => {
  afterEach(() => sinon.restore());

  it('opens with the pending events: per-call FIFOs in sequence order, calls by oldest event', async () => {
    const a = callId();
    const b = callId();
    const [a1, a2] = callEvents(a, 2);
    const [b1] = callEvents(b, 1);
    await store().events.appendEvents([a1!, b1!, a2!]);
    const queue = await DurableEventQueue.open(store().events, { logger });
    expect(queue.calls()).to.deep.equal([a, b]);
    expect(queue.size()).to.equal(3);
    expect(queue.head(a)?.event).to.deep.equal(a1);
    expect(queue.head(a)?.body).to.equal(JSON.stringify(a1));
    queue.removeHead(a, a2!.id); // not the head: ignored
    expect(queue.size()).to.equal(3);
  });

  it('persists appends, retries, attempts and each kind of settlement write-behind, in order', async () => {
    const queue = await DurableEventQueue.open(store().events, {
      logger,
      url: 'https://user:pw@crm.example/hook',
    });
    const id = callId();
    const [e1, e2, e3, e4] = callEvents(id, 4);
    for (const e of [e1!, e2!, e3!, e4!]) queue.append(entry(e));
    const head = queue.head(id)!;
    head.attempts = 1;
    queue.recordAttempt(head, {
      at: Date.now(),
      outcome: 'failed',
      statusCode: 503,
      error: 'HTTP 503',
      durationMs: 5,
    });
    queue.update(head, { nextAttemptAt: Date.now() + 60_000, error: 'HTTP 503', status: 503 });
    await queue.flush();
    expect(await store().events.getEvent(e1!.id)).to.deep.include({
      status: 'pending',
      attempts: 1,
      lastStatus: 503,
    });
    head.attempts = 2;
    queue.recordAttempt(head, {
      at: Date.now(),
      outcome: 'delivered',
      statusCode: 200,
      durationMs: 4,
    });
    queue.removeHead(id, e1!.id, { kind: 'delivered', status: 200 });
    queue.removeHead(id, e2!.id, { kind: 'rejected', status: 410, error: 'HTTP 410' });
    queue.removeHead(id, e3!.id, { kind: 'dead', reason: 'older than 1 h' });
    queue.removeHead(id, e4!.id); // the current dispatcher's call: no outcome given
    expect(queue.size()).to.equal(0);
    expect(queue.calls()).to.deep.equal([]);
    await queue.flush();
    const status = async (e: LifecycleEvent): Promise<unknown> =>
      (await store().events.getEvent(e.id))?.status;
    expect([
      await status(e1!),
      await status(e2!),
      await status(e3!),
      await status(e4!),
    ]).to.deep.equal(['delivered', 'rejected', 'dead', 'delivered']);
    expect((await store().events.getEvent(e1!.id))?.attempts).to.equal(2);
    const log = await store().events.deliveries({ limit: 10 });
    expect(log.items.map((d) => [d.attempt, d.outcome, d.statusCode, d.url])).to.deep.equal([
      [2, 'delivered', 200, 'https://crm.example/hook'],
      [1, 'failed', 503, 'https://crm.example/hook'],
    ]);
    expect(queue.writeFailures).to.equal(0);
  });

  it('with a transaction, commits the writes of one turn together; a bad write costs only itself', async () => {
    const transaction = sinon.spy((fn: (events: Store['events']) => Promise<void>) =>
      store().transaction((repos) => fn(repos.events)),
    );
    const queue = await DurableEventQueue.open(store().events, { logger, transaction });
    const id = callId();
    const [e1, e2, e3] = callEvents(id, 3);
    for (const e of [e1!, e2!, e3!]) queue.append(entry(e));
    for (const e of [e1!, e2!, e3!]) {
      const head = queue.head(id)!;
      head.attempts = 1;
      queue.recordAttempt(head, {
        at: Date.now(),
        outcome: 'delivered',
        statusCode: 204,
        durationMs: 3,
      });
      queue.removeHead(id, e.id, { kind: 'delivered', status: 204 });
    }
    await queue.flush();
    // Three appends, three attempts, three settlements: one transaction.
    expect(transaction.callCount).to.equal(1);
    const events = await Promise.all([e1!, e2!, e3!].map((e) => store().events.getEvent(e.id)));
    expect(events.map((e) => [e?.status, e?.attempts, e?.lastStatus])).to.deep.equal([
      ['delivered', 1, 204],
      ['delivered', 1, 204],
      ['delivered', 1, 204],
    ]);

    // A batch holding a write that fails (an attempt of an event the outbox lacks) is retried
    // write by write: the good ones land, the bad one is logged and counted.
    const [e4, e5] = callEvents(callId(), 2);
    queue.append(entry(e4!));
    queue.recordAttempt(entry(e5!, 1), { at: Date.now(), outcome: 'failed', durationMs: 1 });
    queue.removeHead(e4!.callId, e4!.id, { kind: 'delivered', status: 200 });
    await queue.flush();
    expect((await store().events.getEvent(e4!.id))?.status).to.equal('delivered');
    expect(queue.writeFailures).to.equal(1);
  });

  it('an event already written in the call transaction is not duplicated by append', async () => {
    const call = endedCall();
    const events = callEvents(call.id, 2);
    await store().transaction(async (tx) => {
      await tx.calls.upsertCall(call);
      await tx.events.appendEvents(events);
    });
    const queue = await DurableEventQueue.open(store().events, { logger });
    const fresh = await DurableEventQueue.open(store().events, { logger });
    for (const e of events) fresh.append(entry(e));
    await fresh.flush();
    expect(await store().events.pending()).to.equal(2);
    expect(queue.size()).to.equal(2);
  });

  it('a failed write is logged and counted, and the queue keeps working from memory', async () => {
    const errors = sinon.stub(logger, 'error') as unknown as sinon.SinonSpy;
    const failing = {
      ...store().events,
      appendEvents: () => Promise.reject(new Error('disk full')),
    };
    const queue = await DurableEventQueue.open(failing, { logger });
    const [e1] = callEvents(callId(), 1);
    queue.append(entry(e1!));
    await queue.flush();
    expect(queue.writeFailures).to.equal(1);
    expect(
      errors.calledWithMatch('event outbox write failed', { op: 'append', eventId: e1!.id }),
    ).to.equal(true);
    expect(queue.head(e1!.callId)?.event.id).to.equal(e1!.id);
  });

  it('drives the existing webhook dispatcher unchanged: per-call order, settled in the store', async () => {
    const queue = await DurableEventQueue.open(store().events, { logger });
    const bodies: LifecycleEvent[] = [];
    let calls = 0;
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      calls++;
      if (calls % 3 === 1) return new Response('busy', { status: 503 });
      bodies.push(JSON.parse(String(init.body)) as LifecycleEvent);
      return new Response(null, { status: 204 });
    }) as typeof fetch;
    const dispatcher = createWebhookDispatcher({
      url: 'http://crm.test/hook',
      secret: SECRET,
      timeoutMs: 1000,
      retry: { initialDelayMs: 1, maxDelayMs: 2, maxAgeMs: 60_000 },
      logger,
      registry: new Registry(),
      post: postFromFetch(fetchImpl),
      queue,
    });
    const a = callEvents(callId(), 4);
    const b = callEvents(callId(), 3);
    for (let i = 0; i < 4; i++) {
      dispatcher.enqueue(a[i]!);
      if (b[i]) dispatcher.enqueue(b[i]!);
    }
    expect(await dispatcher.drain(5000)).to.equal(true);
    dispatcher.stop();
    await queue.flush();
    const order = (callIdOf: string): number[] =>
      bodies.filter((e) => e.callId === callIdOf).map((e) => e.sequence);
    expect(order(a[0]!.callId)).to.deep.equal([1, 2, 3, 4]);
    expect(order(b[0]!.callId)).to.deep.equal([1, 2, 3]);
    expect(await store().events.pending()).to.equal(0);
    const feed = await store().events.feed({ limit: 100 });
    expect(feed.items.every((i) => i.status === 'delivered')).to.equal(true);
    expect(feed.items).to.have.length(7);
  });
});

describe('store: crash safety (SQLite file)', () => {
  let dir: { dir: string; cleanup: () => void };
  let stores: Store[];
  beforeEach(() => {
    dir = tempDir();
    stores = [];
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
    dir.cleanup();
  });
  const open = async (): Promise<Store> => {
    const s = createStore({ url: `sqlite:${join(dir.dir, 'ari-crm.sqlite')}`, logger });
    stores.push(s);
    await s.migrate();
    return s;
  };

  it('calls and pending events written by one store are there after reopening the file', async () => {
    const first = await open();
    const call = endedCall();
    const events = callEvents(call.id, 3);
    await first.transaction(async (tx) => {
      await tx.calls.upsertCall(call);
      await tx.events.appendEvents(events);
    });
    await first.events.markDelivered(events[0]!.id, 200);
    await first.close();

    const second = await open();
    expect((await second.migrate()).applied).to.deep.equal([]);
    expect((await second.calls.getCall(call.id))?.disposition).to.equal('answered');
    expect((await second.events.loadPending()).map((e) => e.event)).to.deep.equal(events.slice(1));
  });

  it('undelivered events resume on a new dispatcher after a restart, none lost', async () => {
    const first = await open();
    const queue1 = await DurableEventQueue.open(first.events, { logger });
    const down = (() =>
      Promise.reject(new TypeError('fetch failed: ECONNREFUSED'))) as typeof fetch;
    const options = {
      url: 'http://crm.test/hook',
      secret: SECRET,
      timeoutMs: 1000,
      retry: { initialDelayMs: 1000, maxDelayMs: 1000, maxAgeMs: 60_000 },
      logger,
    };
    const d1 = createWebhookDispatcher({
      ...options,
      registry: new Registry(),
      post: postFromFetch(down),
      queue: queue1,
    });
    const events = callEvents(callId(), 3);
    for (const e of events) d1.enqueue(e);
    expect(await d1.drain(50)).to.equal(false);
    d1.stop();
    await queue1.flush();
    await first.close();

    const second = await open();
    const queue2 = await DurableEventQueue.open(second.events, { logger });
    expect(queue2.size()).to.equal(3);
    const got: number[] = [];
    const up = (async (_url: string, init: RequestInit) => {
      got.push((JSON.parse(String(init.body)) as LifecycleEvent).sequence);
      return new Response(null, { status: 200 });
    }) as typeof fetch;
    const d2 = createWebhookDispatcher({
      ...options,
      registry: new Registry(),
      post: postFromFetch(up),
      queue: queue2,
    });
    expect(await d2.drain(5000)).to.equal(true);
    d2.stop();
    await queue2.flush();
    expect(got).to.deep.equal([1, 2, 3]);
    expect(await second.events.pending()).to.equal(0);
  });

  for (const persistAppends of [false, true]) {
    const how = persistAppends
      ? 'appended by the queue itself'
      : 'committed by the caller first, as the engine does';
    it(`an event enqueued after the dispatcher stopped (${how}) stays pending, not dead, and the next start delivers it once`, async () => {
      const first = await open();
      const queue1 = await DurableEventQueue.open(first.events, { logger, persistAppends });
      const registry = new Registry();
      const options = {
        url: 'http://crm.test/hook',
        secret: SECRET,
        timeoutMs: 1000,
        retry: { initialDelayMs: 1000, maxDelayMs: 1000, maxAgeMs: 60_000 },
        logger,
      };
      const d1 = createWebhookDispatcher({ ...options, registry, queue: queue1 });
      d1.stop();
      const [event] = callEvents(callId(), 1);
      if (!persistAppends) await first.events.appendEvents([event!]);
      d1.enqueue(event!);
      await d1.flush();
      const dead = (await registry.getSingleMetric('aricrm_webhook_deliveries_total')!.get())
        .values;
      expect(dead.find((v) => v.labels.outcome === 'dead')?.value).to.equal(0);
      expect(await first.events.getEvent(event!.id)).to.deep.include({ status: 'pending' });
      await first.close();

      const second = await open();
      const queue2 = await DurableEventQueue.open(second.events, { logger });
      const got: string[] = [];
      const up = (async (_url: string, init: RequestInit) => {
        got.push((JSON.parse(String(init.body)) as LifecycleEvent).id);
        return new Response(null, { status: 200 });
      }) as typeof fetch;
      const d2 = createWebhookDispatcher({
        ...options,
        registry: new Registry(),
        post: postFromFetch(up),
        queue: queue2,
      });
      expect(await d2.drain(5000)).to.equal(true);
      d2.stop();
      await queue2.flush();
      expect(got).to.deep.equal([event!.id]);
      expect(await second.events.getEvent(event!.id)).to.deep.include({ status: 'delivered' });
    });
  }
});
