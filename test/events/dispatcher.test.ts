import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import {
  createWebhookDispatcher,
  parseRetryAfter,
  type WebhookDispatcher,
  type WebhookDispatcherOptions,
} from '../../src/events/dispatcher.ts';
import { MemoryEventQueue, type QueuedEvent } from '../../src/events/queue.ts';
import { verifyWebhookSignature } from '../../src/events/signature.ts';
import { createEventEnvelope, type LifecycleEvent } from '../../src/events/types.ts';
import { sharedOutboundPost, type OutboundPost } from '../../src/http/outbound.ts';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { postFromFetch } from '../support/outbound.ts';
import { metricValue, Receiver } from './receiver.ts';

const SECRET = 'webhook-secret-0123456789abcdef';
const CALL_A = '0a0a0a0a-0000-4000-8000-00000000000a';
const CALL_B = '0b0b0b0b-0000-4000-8000-00000000000b';

/** The fields object of a logger call (`logger.warn(message, fields)`). */
const fieldsOf = (call: sinon.SinonSpyCall): Record<string, unknown> =>
  (call.args as unknown[])[1] as Record<string, unknown>;

/** Events 1..n of a call: started, ringing…, ended. */
function callEvents(callId: string, count: number): LifecycleEvent[] {
  const events: LifecycleEvent[] = [];
  for (let sequence = 1; sequence <= count; sequence++) {
    events.push(
      sequence === 1
        ? createEventEnvelope('call.started', callId, sequence, {
            direction: 'in',
            from: '79161234567',
            to: '74951234567',
            did: '74951234567',
          })
        : createEventEnvelope('call.ringing', callId, sequence, {
            extension: String(100 + sequence),
            from: '79161234567',
            to: '74951234567',
          }),
    );
  }
  return events;
}

describe('webhook dispatcher', () => {
  let registry: Registry;
  let receiver: Receiver | undefined;
  let dispatcher: WebhookDispatcher | undefined;

  beforeEach(() => {
    registry = new Registry();
  });

  afterEach(async () => {
    dispatcher?.stop();
    dispatcher = undefined;
    sinon.restore();
    await receiver?.close();
    receiver = undefined;
  });

  function create(overrides: Partial<WebhookDispatcherOptions> = {}): WebhookDispatcher {
    dispatcher = createWebhookDispatcher({
      url: receiver?.url,
      secret: SECRET,
      timeoutMs: 2000,
      retry: { initialDelayMs: 10, maxDelayMs: 50, maxAgeMs: 60_000 },
      logger: createSilentLogger(),
      registry,
      ...overrides,
    });
    return dispatcher;
  }

  const deliveries = (outcome: string): Promise<number> =>
    metricValue(registry, 'aricrm_webhook_deliveries_total', { outcome });

  describe('against a real receiver', () => {
    it('POSTs the event JSON with a verifiable X-Signature and the id/type/user-agent headers', async () => {
      receiver = await Receiver.start();
      const d = create();
      const [event] = callEvents(CALL_A, 1);
      d.enqueue(event!);
      const [got] = await receiver.waitForDelivered(1);

      expect(JSON.parse(got!.raw)).to.deep.equal(event);
      expect(got!.headers['content-type']).to.equal('application/json');
      expect(got!.headers['x-event-id']).to.equal(event!.id);
      expect(got!.headers['x-event-type']).to.equal('call.started');
      expect(got!.headers['user-agent']).to.match(/^ari-crm\/\d+\.\d+\.\d+/);

      const header = String(got!.headers['x-signature']);
      expect(verifyWebhookSignature(SECRET, header, got!.raw)).to.equal(true);
      expect(verifyWebhookSignature('another-secret-0123456789', header, got!.raw)).to.equal(false);

      // Independently of our code: HMAC-SHA256(secret, "<t>.<raw body>") in hex.
      const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
      expect(match, header).to.not.equal(null);
      const expected = createHmac('sha256', SECRET)
        .update(`${match![1]}.${got!.raw}`)
        .digest('hex');
      expect(match![2]).to.equal(expected);
      expect(Math.abs(Number(match![1]) - Date.now() / 1000)).to.be.below(5);

      expect(await d.drain(1000)).to.equal(true);
      expect(d.pending()).to.equal(0);
      expect(await deliveries('delivered')).to.equal(1);
      expect(await metricValue(registry, 'aricrm_webhook_queue_depth')).to.equal(0);
    });

    it('keeps per-call order while the receiver fails: 500, then connection refused, then success', async () => {
      receiver = await Receiver.start();
      const r = receiver;
      let refused = 0;
      r.handle((req, res) => {
        if (req.index === 0) {
          // First attempt: stop listening, then answer 500 on the open connection.
          r.stopListening();
          res.writeHead(500, { connection: 'close' }).end('try later');
          return;
        }
        res.writeHead(200).end();
      });
      // The real outbound client; on the refused connection the receiver comes back on the same
      // port before the dispatcher learns of the failure, so the retry (after backoff) gets through.
      const realPost = sharedOutboundPost();
      const post: OutboundPost = async (url, init) => {
        try {
          return await realPost(url, init);
        } catch (err) {
          refused++;
          await r.open();
          throw err;
        }
      };
      const d = create({ post, random: () => 1 });
      const events = callEvents(CALL_A, 3);
      for (const event of events) d.enqueue(event);
      expect(d.pending()).to.equal(3);

      await r.waitForDelivered(3);
      expect(await d.drain(1000)).to.equal(true);

      expect(refused).to.equal(1);
      expect(r.requests.map((q) => q.event.sequence)).to.deep.equal([1, 1, 2, 3]);
      expect(r.delivered.map((q) => q.event.id)).to.deep.equal(events.map((e) => e.id));
      // The same event (same id = idempotency key) was re-sent, re-signed.
      expect(r.requests[1]!.headers['x-event-id']).to.equal(r.requests[0]!.headers['x-event-id']);
      expect(
        verifyWebhookSignature(
          SECRET,
          String(r.requests[1]!.headers['x-signature']),
          r.requests[1]!.raw,
        ),
      ).to.equal(true);
      expect(await deliveries('retried')).to.equal(2);
      expect(await deliveries('delivered')).to.equal(3);
    });

    it('delivers different calls concurrently: call B is not held up by call A', async () => {
      receiver = await Receiver.start();
      let releaseA: (() => void) | undefined;
      receiver.handle((req, res) => {
        if (req.event.callId === CALL_A && req.event.sequence === 1) {
          releaseA = () => res.writeHead(200).end();
          return;
        }
        res.writeHead(200).end();
      });
      const d = create();
      const [a1, a2] = callEvents(CALL_A, 2);
      const [b1, b2] = callEvents(CALL_B, 2);
      d.enqueue(a1!);
      d.enqueue(a2!);
      d.enqueue(b1!);
      d.enqueue(b2!);

      // Both B events arrive while A's first request is still unanswered.
      await receiver.waitForDelivered(2);
      expect(receiver.delivered.map((q) => [q.event.callId, q.event.sequence])).to.deep.equal([
        [CALL_B, 1],
        [CALL_B, 2],
      ]);
      expect(
        receiver.requests.filter((q) => q.event.callId === CALL_A).map((q) => q.event.sequence),
      ).to.deep.equal([1]);

      releaseA!();
      await receiver.waitForDelivered(4);
      expect(
        receiver.delivered.filter((q) => q.event.callId === CALL_A).map((q) => q.event.sequence),
      ).to.deep.equal([1, 2]);
      expect(await d.drain(1000)).to.equal(true);
    });

    it('never has more than `concurrency` requests in flight', async () => {
      receiver = await Receiver.start();
      let inFlight = 0;
      let maxInFlight = 0;
      const held: Array<() => void> = [];
      receiver.handle((_req, res) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        held.push(() => {
          inFlight--;
          res.writeHead(200).end();
        });
      });
      const d = create({ concurrency: 2 });
      for (let i = 0; i < 5; i++) d.enqueue(callEvents(`call-${i}`, 1)[0]!);
      for (let answered = 0; answered < 5; answered++) {
        await receiver.waitForRequests(Math.min(answered + 2, 5));
        held.shift()!();
      }
      expect(await d.drain(2000)).to.equal(true);
      expect(maxInFlight).to.equal(2);
    });

    it('rejects on a 4xx other than 408/429 without retrying, and moves on to the next event', async () => {
      receiver = await Receiver.start((req, res) => {
        res.writeHead(req.event.sequence === 1 ? 400 : 200).end('{"error":"unknown call"}');
      });
      const logger = createSilentLogger();
      const warn = sinon.spy(logger, 'warn');
      const d = create({ logger });
      for (const event of callEvents(CALL_A, 2)) d.enqueue(event);

      await receiver.waitForDelivered(1);
      expect(await d.drain(1000)).to.equal(true);
      expect(receiver.requests.map((q) => q.event.sequence)).to.deep.equal([1, 2]);
      expect(await deliveries('rejected')).to.equal(1);
      expect(await deliveries('retried')).to.equal(0);
      expect(await deliveries('delivered')).to.equal(1);
      const rejection = warn.getCalls().find((c) => /rejected/.test(String(c.args[0])));
      expect(rejection).not.to.equal(undefined);
      expect(fieldsOf(rejection!)).to.include({ status: 400, sequence: 1, callId: CALL_A });
      expect(String(fieldsOf(rejection!).detail)).to.include('unknown call');
    });

    it('logs the start of a large error answer and retries (the body is not read whole)', async () => {
      receiver = await Receiver.start((req, res) => {
        if (req.index === 0) res.writeHead(503).end(`busy\n  now ${'x'.repeat(200_000)}`);
        else res.writeHead(200).end();
      });
      const logger = createSilentLogger();
      const warn = sinon.spy(logger, 'warn');
      const d = create({ logger });
      d.enqueue(callEvents(CALL_A, 1)[0]!);
      await receiver.waitForDelivered(1);
      const retry = warn.getCalls().find((c) => /will retry/.test(String(c.args[0])));
      expect(retry).not.to.equal(undefined);
      const detail = String(fieldsOf(retry!).detail);
      expect(detail).to.match(/^HTTP 503: busy now x+$/);
      expect(detail).to.have.length('HTTP 503: '.length + 200);
      expect(await deliveries('retried')).to.equal(1);
    });

    it('retries 408 and a timed-out attempt', async () => {
      receiver = await Receiver.start((req, res) => {
        if (req.index === 0) res.writeHead(408).end();
        else if (req.index === 1)
          return; // never answer: the attempt times out
        else res.writeHead(200).end();
      });
      const d = create({ timeoutMs: 150 });
      d.enqueue(callEvents(CALL_A, 1)[0]!);
      await receiver.waitForDelivered(1);
      expect(receiver.requests).to.have.length(3);
      expect(await deliveries('retried')).to.equal(2);
      expect(await d.drain(1000)).to.equal(true);
    });

    it('drain resolves true at once when empty, false when events cannot be delivered in time', async () => {
      receiver = await Receiver.start((_req, res) => res.writeHead(503).end());
      const d = create();
      expect(await d.drain(10)).to.equal(true);
      d.enqueue(callEvents(CALL_A, 1)[0]!);
      await receiver.waitForRequests(2);
      expect(await d.drain(20)).to.equal(false);
      expect(d.pending()).to.equal(1);
      receiver.handle((_req, res) => res.writeHead(200).end());
      expect(await d.drain(2000)).to.equal(true);
    });

    it('stop() aborts requests in flight and keeps undelivered events queued', async () => {
      receiver = await Receiver.start(() => {
        /* hold every request */
      });
      const d = create();
      d.enqueue(callEvents(CALL_A, 1)[0]!);
      await receiver.waitForRequests(1);
      const draining = d.drain(5000);
      d.stop();
      expect(await draining).to.equal(false);
      expect(d.pending()).to.equal(1);
      d.enqueue(callEvents(CALL_B, 1)[0]!);
      expect(d.pending()).to.equal(1);
      expect(await deliveries('dead')).to.equal(1);
    });

    it('an event enqueued after stop(): lost and counted dead with a queue in memory; left queued for the next start, not dead, with a durable one', async () => {
      receiver = await Receiver.start();
      const logger = createSilentLogger();
      const error = sinon.spy(logger, 'error');
      const info = sinon.spy(logger, 'info');
      const inMemory = create({ logger });
      inMemory.stop();
      const [lost] = callEvents(CALL_A, 1);
      inMemory.enqueue(lost!);
      expect(inMemory.pending()).to.equal(0);
      expect(await deliveries('dead')).to.equal(1);
      expect(error.calledOnce).to.equal(true);
      expect(error.lastCall.args[0]).to.equal('webhook dispatcher stopped, event is dead');
      expect(fieldsOf(error.lastCall)).to.include({ eventId: lost!.id, eventType: 'call.started' });

      /** Stands in for the store's outbox queue (src/store/durable-queue.ts). */
      class OutboxQueue extends MemoryEventQueue {
        override readonly durable = true;
      }
      const queue = new OutboxQueue();
      const append = sinon.spy(queue, 'append');
      registry = new Registry();
      error.resetHistory();
      const durable = create({ logger, queue });
      durable.stop();
      const [kept] = callEvents(CALL_B, 1);
      durable.enqueue(kept!);
      expect(append.calledOnce).to.equal(true);
      expect(queue.head(CALL_B)?.event).to.deep.equal(kept);
      expect(durable.pending()).to.equal(1);
      expect(await deliveries('dead')).to.equal(0);
      expect(error.called).to.equal(false);
      const left = info.getCalls().filter((c) => fieldsOf(c)?.eventId === kept!.id);
      expect(left.map((c) => c.args[0])).to.deep.equal([
        'webhook dispatcher stopped, event left in the outbox for the next start',
      ]);
      // Not sent by this dispatcher: the next start's delivers it.
      expect(await durable.drain(1000)).to.equal(false);
    });
  });

  describe('without a URL', () => {
    it('enqueue does not throw, logs at debug and sends nothing', async () => {
      const logger = createSilentLogger();
      const debug = sinon.spy(logger, 'debug');
      const post = sinon.spy(postFromFetch(fetch));
      const d = create({ url: undefined, secret: '', post, logger });
      const [event] = callEvents(CALL_A, 1);
      expect(() => d.enqueue(event!)).not.to.throw();
      expect(d.pending()).to.equal(0);
      expect(await d.drain(10)).to.equal(true);
      expect(post.called).to.equal(false);
      expect(debug.calledOnce).to.equal(true);
    });
  });

  describe('robustness', () => {
    it('requires a secret when a URL is set', () => {
      expect(() => create({ url: 'http://127.0.0.1:1/hooks', secret: '' })).to.throw(/secret/);
    });

    it('enqueue never throws, even when the queue does', () => {
      class BrokenQueue extends MemoryEventQueue {
        override append(_entry: QueuedEvent): void {
          throw new Error('disk full');
        }
      }
      const d = create({ url: 'http://127.0.0.1:1/hooks', queue: new BrokenQueue() });
      expect(() => d.enqueue(callEvents(CALL_A, 1)[0]!)).not.to.throw();
    });

    it('resumes events a queue already holds at start-up', async () => {
      receiver = await Receiver.start();
      const queue = new MemoryEventQueue();
      for (const event of callEvents(CALL_A, 2)) {
        queue.append({ event, body: JSON.stringify(event), enqueuedAt: Date.now(), attempts: 0 });
      }
      create({ queue });
      await receiver.waitForDelivered(2);
      expect(receiver.delivered.map((q) => q.event.sequence)).to.deep.equal([1, 2]);
    });
  });

  describe('backoff (fake timers, stubbed fetch)', () => {
    const URL = 'http://crm.invalid/hooks';
    let clock: sinon.SinonFakeTimers;

    beforeEach(() => {
      clock = sinon.useFakeTimers({
        now: Date.UTC(2025, 0, 31, 9, 0, 0),
        toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'],
      });
    });

    /** A fetch stub answering `status(callIndex, eventSequence)`; records call times. */
    function stubFetch(status: (call: number, sequence: number) => number | Response) {
      const calls: Array<{ at: number; sequence: number }> = [];
      const fetchImpl: typeof fetch = async (_input, init) => {
        const event = JSON.parse(String(init?.body)) as LifecycleEvent;
        calls.push({ at: Date.now(), sequence: event.sequence });
        const answer = status(calls.length - 1, event.sequence);
        return typeof answer === 'number' ? new Response(null, { status: answer }) : answer;
      };
      return { calls, fetchImpl };
    }

    it('backs off exponentially up to maxDelayMs (full jitter bound)', async () => {
      const { calls, fetchImpl } = stubFetch(() => 503);
      const d = create({
        url: URL,
        post: postFromFetch(fetchImpl),
        random: () => 0.999999,
        retry: { initialDelayMs: 500, maxDelayMs: 4000, maxAgeMs: 3_600_000 },
      });
      d.enqueue(callEvents(CALL_A, 1)[0]!);
      await clock.tickAsync(20_000);
      const gaps = calls.slice(1, 7).map((c, i) => c.at - calls[i]!.at);
      expect(gaps).to.deep.equal([499, 999, 1999, 3999, 3999, 3999]);
    });

    it('full jitter: delays are random below the bound', async () => {
      const { calls, fetchImpl } = stubFetch((call) => (call < 3 ? 503 : 200));
      const randoms = [0.5, 0.25, 0];
      const d = create({
        url: URL,
        post: postFromFetch(fetchImpl),
        random: () => randoms.shift() ?? 0,
        retry: { initialDelayMs: 1000, maxDelayMs: 30_000, maxAgeMs: 3_600_000 },
      });
      d.enqueue(callEvents(CALL_A, 1)[0]!);
      await clock.tickAsync(10_000);
      expect(calls.map((c, i) => (i === 0 ? 0 : c.at - calls[i - 1]!.at))).to.deep.equal([
        0, 500, 500, 0,
      ]);
      expect(d.pending()).to.equal(0);
    });

    it('honours Retry-After on 429 (seconds and HTTP date)', async () => {
      const start = Date.now();
      const { calls, fetchImpl } = stubFetch((call) => {
        if (call === 0)
          return new Response(null, { status: 429, headers: { 'retry-after': '10' } });
        if (call === 1) {
          return new Response(null, {
            status: 503,
            headers: { 'retry-after': new Date(start + 40_000).toUTCString() },
          });
        }
        return 200;
      });
      const d = create({
        url: URL,
        post: postFromFetch(fetchImpl),
        random: () => 0,
        retry: { initialDelayMs: 500, maxDelayMs: 30_000, maxAgeMs: 3_600_000 },
      });
      d.enqueue(callEvents(CALL_A, 1)[0]!);
      await clock.tickAsync(9_999);
      expect(calls).to.have.length(1);
      await clock.tickAsync(1);
      expect(calls).to.have.length(2);
      await clock.tickAsync(29_999);
      expect(calls).to.have.length(2);
      await clock.tickAsync(1);
      expect(calls).to.have.length(3);
      expect(await d.drain(0)).to.equal(true);
    });

    it('marks an event dead after maxAgeMs (logged at error, counted) and delivers the next one', async () => {
      const { calls, fetchImpl } = stubFetch((_call, sequence) => (sequence === 1 ? 503 : 200));
      const logger = createSilentLogger();
      const error = sinon.spy(logger, 'error');
      const d = create({
        url: URL,
        post: postFromFetch(fetchImpl),
        logger,
        random: () => 0.5,
        retry: { initialDelayMs: 500, maxDelayMs: 30_000, maxAgeMs: 60_000 },
      });
      const start = Date.now();
      for (const event of callEvents(CALL_A, 2)) d.enqueue(event);

      await clock.tickAsync(59_999);
      expect(await deliveries('dead')).to.equal(0);
      expect(calls.every((c) => c.sequence === 1)).to.equal(true);
      await clock.tickAsync(1);

      expect(await deliveries('dead')).to.equal(1);
      const lastTry = calls.filter((c) => c.sequence === 1).at(-1)!;
      expect(lastTry.at - start).to.equal(60_000); // one last attempt exactly at the deadline
      expect(error.calledOnce).to.equal(true);
      expect(fieldsOf(error.firstCall)).to.include({ callId: CALL_A, sequence: 1 });
      expect(calls.at(-1)!.sequence).to.equal(2);
      expect(await deliveries('delivered')).to.equal(1);
      expect(d.pending()).to.equal(0);
    });

    it('an attempt times out after timeoutMs even if fetch ignores the signal', async () => {
      let attempts = 0;
      const fetchImpl: typeof fetch = () => {
        attempts++;
        return attempts === 1
          ? new Promise<Response>(() => undefined)
          : Promise.resolve(new Response(null, { status: 200 }));
      };
      const d = create({
        url: URL,
        post: postFromFetch(fetchImpl),
        timeoutMs: 5000,
        random: () => 0,
      });
      d.enqueue(callEvents(CALL_A, 1)[0]!);
      await clock.tickAsync(4_999);
      expect(attempts).to.equal(1);
      await clock.tickAsync(1);
      expect(attempts).to.equal(2);
      expect(d.pending()).to.equal(0);
    });

    it('reports the queue depth', async () => {
      const { fetchImpl } = stubFetch(() => 503);
      const d = create({ url: URL, post: postFromFetch(fetchImpl) });
      for (const event of callEvents(CALL_A, 3)) d.enqueue(event);
      d.enqueue(callEvents(CALL_B, 1)[0]!);
      await clock.tickAsync(0);
      expect(await metricValue(registry, 'aricrm_webhook_queue_depth')).to.equal(4);
    });
  });

  describe('parseRetryAfter', () => {
    it('parses delta-seconds and HTTP dates', () => {
      const now = Date.UTC(2025, 0, 1);
      expect(parseRetryAfter('120', now)).to.equal(120_000);
      expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).to.equal(5000);
      expect(parseRetryAfter(new Date(now - 5000).toUTCString(), now)).to.equal(0);
      expect(parseRetryAfter(null, now)).to.equal(undefined);
      expect(parseRetryAfter('soon', now)).to.equal(undefined);
    });
  });
});
