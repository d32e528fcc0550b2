import { expect } from 'chai';
import { createEventEnvelope } from '../../src/events/types.ts';
import { InvalidCursorError, StoreConflictError } from '../../src/store/index.ts';
import { callEvents, callId, forEachDialect } from './helpers.ts';

const NOW = Date.UTC(2025, 0, 31, 9, 0, 0);
const at = (ms: number): string => new Date(NOW + ms).toISOString();

forEachDialect('store: event outbox', ({ store }) => {
  const events = () => store().events;

  it('appends events with their exact body, pending and due now; idempotent on the event id', async () => {
    const [e1, e2] = callEvents(callId(), 2);
    await events().appendEvents([e1!, e2!], NOW);
    await events().appendEvents([e1!], NOW + 5);
    expect(await events().pending()).to.equal(2);
    const stored = await events().getEvent(e1!.id);
    expect(stored).to.deep.include({
      status: 'pending',
      attempts: 0,
      nextAttemptAt: at(0),
      createdAt: at(0),
      body: JSON.stringify(e1),
    });
    expect(stored?.event).to.deep.equal(e1);
    expect(await events().getEvent('missing')).to.equal(undefined);
  });

  it('stores events recorded without a webhook URL as skipped: never due, never pending, in the feed', async () => {
    const quiet = callId();
    const loud = callId();
    const [q1, q2] = callEvents(quiet, 2);
    await events().appendEvents([q1!, q2!], NOW, { skipDelivery: true });
    await events().appendEvents(callEvents(loud, 1), NOW + 10);
    expect(await events().getEvent(q1!.id)).to.deep.include({
      status: 'skipped',
      attempts: 0,
      createdAt: at(0),
      settledAt: at(0),
      body: JSON.stringify(q1),
    });
    expect(await events().pending()).to.equal(1);
    expect((await events().loadPending()).map((e) => e.event.callId)).to.deep.equal([loud]);
    expect((await events().claimDue(NOW + 60_000, 10)).map((e) => e.event.callId)).to.deep.equal([
      loud,
    ]);
    // A skipped event is settled: nothing settles it again.
    expect(await events().markDelivered(q1!.id, 200, NOW + 20)).to.equal(false);
    const feed = await events().feed({ limit: 10 });
    expect(feed.items.map((i) => [i.event.id, i.status])).to.deep.equal([
      [q1!.id, 'skipped'],
      [q2!.id, 'skipped'],
      [feed.items[2]!.event.id, 'pending'],
    ]);
  });

  it('refuses a different event with a stored (call, sequence)', async () => {
    const id = callId();
    await events().appendEvents(callEvents(id, 1), NOW);
    let error: unknown;
    await events()
      .appendEvents(callEvents(id, 1), NOW)
      .catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(StoreConflictError);
  });

  it('claimDue returns only the lowest pending sequence of each call, oldest first, and leases it', async () => {
    const a = callId();
    const b = callId();
    const [a1, a2, a3] = callEvents(a, 3);
    const [b1, b2] = callEvents(b, 2);
    await events().appendEvents([a1!, b1!], NOW);
    await events().appendEvents([a2!, a3!, b2!], NOW);

    const first = await events().claimDue(NOW, 10, 30_000);
    expect(first.map((e) => e.event.id)).to.deep.equal([a1!.id, b1!.id]);
    expect(first[0]?.nextAttemptAt).to.equal(at(30_000));
    // Leased: nothing of a or b is due until the lease ends or the head is settled.
    expect(await events().claimDue(NOW + 1000, 10)).to.deep.equal([]);

    expect(await events().markDelivered(a1!.id, 200, NOW + 1000)).to.equal(true);
    const second = await events().claimDue(NOW + 1000, 10);
    expect(second.map((e) => e.event.id)).to.deep.equal([a2!.id]);

    // The lease of b1 expires: it is due again (the claimer died), still before b2.
    const third = await events().claimDue(NOW + 31_000, 10);
    expect(third.map((e) => e.event.id)).to.deep.equal([b1!.id]);
  });

  it('concurrent claimers never get the same event nor two events of one call', async () => {
    const ids = Array.from({ length: 12 }, () => callId());
    for (const id of ids) await events().appendEvents(callEvents(id, 2), NOW);
    const claims = await Promise.all([0, 1, 2, 3].map(() => events().claimDue(NOW, 5)));
    const claimed = claims.flat().map((e) => e.event);
    expect(new Set(claimed.map((e) => e.id)).size).to.equal(claimed.length);
    expect(new Set(claimed.map((e) => e.callId)).size).to.equal(claimed.length);
    expect(claimed.every((e) => e.sequence === 1)).to.equal(true);
    expect(claimed).to.have.length(12);
  });

  it('claimDue honours the limit and next_attempt_at, and rejects bad arguments', async () => {
    const ids = [callId(), callId(), callId()];
    for (const id of ids) await events().appendEvents(callEvents(id, 1), NOW);
    expect(await events().claimDue(NOW - 1, 10)).to.deep.equal([]);
    expect(await events().claimDue(NOW, 2, 0)).to.have.length(2);
    let error: unknown;
    await events()
      .claimDue(NOW, 0)
      .catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(RangeError);
    error = undefined;
    await events()
      .claimDue(NOW, 1, -1)
      .catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(RangeError);
  });

  it('retry keeps the event pending and blocks its call until it is due again', async () => {
    const id = callId();
    const [e1, e2] = callEvents(id, 2);
    await events().appendEvents([e1!, e2!], NOW);
    await events().claimDue(NOW, 10);
    expect(await events().markRetry(e1!.id, NOW + 10_000, 'HTTP 500: oops', 500, 1)).to.equal(true);
    expect(await events().getEvent(e1!.id)).to.deep.include({
      status: 'pending',
      attempts: 1,
      lastError: 'HTTP 500: oops',
      lastStatus: 500,
      nextAttemptAt: at(10_000),
    });
    expect(await events().claimDue(NOW + 9_999, 10)).to.deep.equal([]);
    expect((await events().claimDue(NOW + 10_000, 10)).map((e) => e.event.id)).to.deep.equal([
      e1!.id,
    ]);
  });

  it('dead and rejected settle an event for good and unblock the next one of its call', async () => {
    const id = callId();
    const [e1, e2, e3] = callEvents(id, 3);
    await events().appendEvents([e1!, e2!, e3!], NOW);
    expect(await events().markDead(e1!.id, 'too old', NOW + 1)).to.equal(true);
    expect(await events().markDelivered(e1!.id, 200)).to.equal(false);
    expect(await events().markRetry(e1!.id, NOW, 'x')).to.equal(false);
    expect(await events().getEvent(e1!.id)).to.deep.include({
      status: 'dead',
      lastError: 'too old',
      settledAt: at(1),
    });
    expect((await events().claimDue(NOW, 10, 0)).map((e) => e.event.id)).to.deep.equal([e2!.id]);
    expect(await events().markRejected(e2!.id, 422, 'HTTP 422: bad', NOW + 2)).to.equal(true);
    expect(await events().markRejected(e2!.id, 422, 'again')).to.equal(false);
    expect(await events().getEvent(e2!.id)).to.deep.include({
      status: 'rejected',
      lastStatus: 422,
    });
    expect((await events().claimDue(NOW, 10, 0)).map((e) => e.event.id)).to.deep.equal([e3!.id]);
    expect(await events().markDelivered(e3!.id, 204, NOW + 3)).to.equal(true);
    expect(await events().getEvent(e3!.id)).to.deep.include({
      status: 'delivered',
      lastStatus: 204,
      deliveredAt: at(3),
    });
    expect(await events().pending()).to.equal(0);
    expect(await events().markDead('missing', 'x')).to.equal(false);
  });

  it('loadPending returns pending events in outbox order; setAttempts only raises', async () => {
    const [a1, a2] = callEvents(callId(), 2);
    const [b1] = callEvents(callId(), 1);
    await events().appendEvents([a1!, b1!, a2!], NOW);
    await events().markDelivered(b1!.id, 200);
    expect(await events().setAttempts(a1!.id, 3)).to.equal(true);
    expect(await events().setAttempts(a1!.id, 2)).to.equal(false);
    const pending = await events().loadPending();
    expect(pending.map((e) => e.event.id)).to.deep.equal([a1!.id, a2!.id]);
    expect(pending[0]?.attempts).to.equal(3);
  });

  it('markDelivered with an attempt count settles and raises the count in one write, never lowering it', async () => {
    const [a1, a2] = callEvents(callId(), 2);
    await events().appendEvents([a1!, a2!], NOW);
    // The attempt logged without raising the count (the settle that follows writes it).
    await events().recordAttempt({
      eventId: a1!.id,
      attempt: 2,
      outcome: 'delivered',
      statusCode: 200,
      durationMs: 3,
      raiseAttempts: false,
    });
    expect((await events().getEvent(a1!.id))?.attempts).to.equal(0);
    expect(await events().markDelivered(a1!.id, 200, NOW, 2)).to.equal(true);
    expect(await events().getEvent(a1!.id)).to.include({ status: 'delivered', attempts: 2 });
    expect(await events().setAttempts(a2!.id, 5)).to.equal(true);
    expect(await events().markDelivered(a2!.id, 204, NOW, 1)).to.equal(true);
    expect(await events().getEvent(a2!.id)).to.include({ status: 'delivered', attempts: 5 });
    expect(await events().markDelivered(a2!.id, 204, NOW, 9)).to.equal(false);
  });

  it('the pull feed returns every event in order, with cursors that resume exactly', async () => {
    const a = callId();
    const b = callId();
    const all = [...callEvents(a, 3), ...callEvents(b, 2)];
    await events().appendEvents(all.slice(0, 2), NOW);
    await events().appendEvents(all.slice(2), NOW);
    await events().markDelivered(all[0]!.id, 200);

    const page1 = await events().feed({ limit: 2 });
    expect(page1.items.map((i) => i.event)).to.deep.equal(all.slice(0, 2));
    expect(page1.items[0]?.status).to.equal('delivered');
    expect(page1.nextCursor).to.equal(page1.items[1]?.cursor);
    const page2 = await events().feed({ after: page1.nextCursor, limit: 10 });
    expect(page2.items.map((i) => i.event.id)).to.deep.equal(all.slice(2).map((e) => e.id));
    const empty = await events().feed({ after: page2.nextCursor, limit: 10 });
    expect(empty).to.deep.equal({ items: [], nextCursor: page2.nextCursor });

    const later = callEvents(a, 1, 4);
    await events().appendEvents(later, NOW);
    const page3 = await events().feed({ after: empty.nextCursor, limit: 10 });
    expect(page3.items.map((i) => i.event)).to.deep.equal(later);

    let error: unknown;
    await events()
      .feed({ after: 'nope', limit: 1 })
      .catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(InvalidCursorError);
  });

  it("tells the live stream after each commit that appended events, and gives the feed's end and a call's events", async () => {
    const a = callId();
    const b = callId();
    let told = 0;
    const stop = store().onEventsAppended(() => told++);
    const start = await events().head();
    expect((await events().feed({ after: start, limit: 10 })).items).to.deep.equal([]);
    const [a1, a2] = callEvents(a, 2);
    await events().appendEvents([a1!], NOW);
    expect(told, 'a store-bound append').to.equal(1);
    await store().writeBatch(async (repos) => {
      await repos.events.appendEvents(callEvents(b, 1), NOW);
      await repos.events.appendEvents([a2!], NOW);
    });
    expect(told, 'one batch').to.equal(2);
    await store().transaction(async (repos) => repos.events.markDelivered(a1!.id, 200));
    expect(told, 'a transaction that appended nothing').to.equal(2);
    const head = await events().head();
    const feed = await events().feed({ after: start, limit: 10 });
    expect(head).to.equal(feed.nextCursor);
    const ofA = await events().callEvents([a]);
    expect(ofA.map((item) => item.event.id)).to.deep.equal([a1!.id, a2!.id]);
    expect(ofA.map((item) => item.cursor)).to.deep.equal(
      feed.items.filter((item) => item.event.callId === a).map((item) => item.cursor),
    );
    stop();
    await events().appendEvents(callEvents(b, 1, 2), NOW);
    expect(told).to.equal(2);
  });

  it('the delivery log records attempts, filters failed/delivered and paginates newest first', async () => {
    const id = callId();
    const ended = createEventEnvelope('call.transferred', id, 1, { to: '500', kind: 'service' });
    await events().appendEvents([ended], NOW);
    const base = { eventId: ended.id, url: 'https://crm.example/hook' };
    await events().recordAttempt({
      ...base,
      attempt: 1,
      at: NOW,
      outcome: 'failed',
      error: 'ECONNREFUSED',
      durationMs: 3.4,
    });
    await events().recordAttempt({
      ...base,
      attempt: 2,
      at: NOW + 1000,
      outcome: 'failed',
      statusCode: 500,
      error: 'HTTP 500',
      durationMs: 12,
    });
    await events().recordAttempt({
      ...base,
      attempt: 3,
      at: NOW + 3000,
      outcome: 'delivered',
      statusCode: 200,
      durationMs: 8,
    });
    expect((await events().getEvent(ended.id))?.attempts).to.equal(3);

    const failed = await events().deliveries({ status: 'failed', limit: 1 });
    expect(failed.items).to.deep.equal([
      {
        eventId: ended.id,
        callId: id,
        eventType: 'call.transferred',
        attempt: 2,
        url: 'https://crm.example/hook',
        at: at(1000),
        outcome: 'failed',
        statusCode: 500,
        error: 'HTTP 500',
        durationMs: 12,
      },
    ]);
    const failed2 = await events().deliveries({
      status: 'failed',
      limit: 1,
      cursor: failed.nextCursor,
    });
    expect(
      failed2.items.map((d) => [d.attempt, d.error, d.statusCode, d.durationMs]),
    ).to.deep.equal([[1, 'ECONNREFUSED', undefined, 3]]);
    expect(failed2.nextCursor).to.equal(undefined);
    const delivered = await events().deliveries({ status: 'delivered', limit: 10 });
    expect(delivered.items.map((d) => d.attempt)).to.deep.equal([3]);
    expect((await events().deliveries({ limit: 10 })).items.map((d) => d.attempt)).to.deep.equal([
      3, 2, 1,
    ]);

    let error: unknown;
    await events()
      .recordAttempt({ eventId: 'missing', attempt: 1, outcome: 'failed', durationMs: 1 })
      .catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(Error);
  });
});
