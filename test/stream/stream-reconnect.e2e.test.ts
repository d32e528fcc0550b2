/**
 * Reconnects during heavy call traffic, end to end: the engine on the simulator takes many calls
 * at once while operators change their status (events written by other transactions than the
 * call journal's, committing in between; a campaign of notification calls is cancelled with
 * hundreds of jobs queued), and consoles keep dropping their socket and coming
 * back with `?after=<the last cursor they got>`. Put together, what a console received must be
 * exactly the outbox (`GET /v1/events` read to its end after the traffic): no gap, no duplicate,
 * in order.
 */
import { expect } from 'chai';
import { feedPosition as position } from '../../src/store/index.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, TEST_API_KEY, type TestBed } from '../support/engine.ts';
import { StreamClient, type StreamMessage } from '../support/stream-client.ts';
import { until } from '../support/until.ts';

const SECRET = 'stream-test-secret-0123456789abcdef0123456789';
const DID = '74951234567';
const CALLS = 150;
/** Notification jobs of a campaign cancelled during the traffic. */
const JOBS = 300;

/** One event as a console or the pull feed shows it. */
interface Seen {
  cursor: string;
  id: string;
  type: string;
  callId: string | undefined;
  extension: unknown;
}

function seenOf(m: {
  cursor: string;
  id: string;
  type: string;
  callId?: string;
  data?: unknown;
}): Seen {
  return {
    cursor: m.cursor,
    id: m.id,
    type: m.type,
    callId: m.callId,
    extension: (m.data as { extension?: unknown } | undefined)?.extension,
  };
}

/** Every event of `GET /v1/events` after `after`, to its end. */
async function readFeed(baseUrl: string, after: string): Promise<Seen[]> {
  const out: Seen[] = [];
  let cursor = after;
  for (;;) {
    const page = await apiRequest<{
      items: Array<{
        cursor: string;
        event: { id: string; type: string; callId?: string; data?: unknown };
      }>;
      nextCursor: string;
    }>(baseUrl, `/v1/events?after=${encodeURIComponent(cursor)}&limit=500`);
    expect(page.status, page.text).to.equal(200);
    for (const item of page.body.items) out.push(seenOf({ ...item.event, cursor: item.cursor }));
    if (page.body.items.length < 500) return out;
    cursor = page.body.nextCursor;
  }
}

/**
 * A console that drops its socket every few tens of milliseconds and reconnects with the last
 * cursor it got (an event's, or `stream.synced`'s), as docs/stream.md tells a page to.
 */
class FlakyConsole {
  /** Event messages of the sockets closed so far, in arrival order. */
  private readonly earlier: Seen[] = [];
  /** The last cursor of the sockets closed so far. */
  private cursor: string;
  connections = 0;
  private stopped = false;
  private running: Promise<void> | undefined;
  private current: StreamClient | undefined;

  constructor(
    private readonly baseUrl: string,
    private readonly credential: () => Promise<{
      token?: string;
      headers?: Record<string, string>;
    }>,
    start: string,
  ) {
    this.cursor = start;
  }

  /** Every event message received, over all its sockets, in arrival order. */
  get events(): Seen[] {
    return [...this.earlier, ...(this.current ? eventsOf(this.current.messages) : [])];
  }

  start(): void {
    this.running = this.loop();
  }

  /** Stop dropping: the last socket stays open. */
  async settle(): Promise<StreamClient> {
    this.stopped = true;
    await this.running;
    const client = await this.connect();
    await client.next((m) => m.type === 'stream.synced', 'stream.synced');
    return client;
  }

  close(): void {
    this.stopped = true;
    this.current?.ws.terminate();
  }

  private async connect(): Promise<StreamClient> {
    const client = await StreamClient.open(this.baseUrl, {
      ...(await this.credential()),
      after: this.cursor,
    });
    this.connections++;
    this.current = client;
    return client;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const client = await this.connect();
      // Dropped at any moment: during the replay, right after stream.synced, or while live.
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 60));
      client.ws.terminate();
      await client.closed;
      // What it got: its events, and the last cursor (an event's or stream.synced's).
      this.current = undefined;
      this.earlier.push(...eventsOf(client.messages));
      const last = client.messages.findLast((m) => m.cursor !== undefined);
      if (last) this.cursor = last.cursor!;
    }
  }
}

/** The event messages among `messages`. */
function eventsOf(messages: readonly StreamMessage[]): Seen[] {
  return messages
    .filter((m) => m.id !== undefined && m.cursor !== undefined)
    .map((m) => seenOf(m as StreamMessage & { cursor: string; id: string }));
}

describe('live stream reconnects under heavy call traffic (e2e)', function () {
  this.timeout(120_000);
  let bed: TestBed | undefined;
  const consoles: FlakyConsole[] = [];
  const clients: StreamClient[] = [];

  afterEach(async () => {
    for (const c of consoles.splice(0)) c.close();
    for (const client of clients.splice(0)) client.ws.terminate();
    await bed?.stop();
    bed = undefined;
  });

  it('consoles that keep reconnecting with ?after= get the outbox exactly: no gap, no duplicate, in order', async () => {
    bed = await startTestBed({
      OPERATOR_TOKEN_SECRET: SECRET,
      OPERATOR_EXTENSIONS: '101,102,103',
      // Every call rings all three phones, whatever they are doing.
      OPERATOR_PRESENCE_ROUTING: 'false',
    });
    const { sim, crm, engine } = bed;
    const url = engine.httpUrl;
    crm.onRoute(() => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        extensions: ['101', '102', '103'],
        ringTimeoutSec: 30,
      },
    }));
    // Simulated time: 101 answers at once, 103 a little later, 102 only rings; talks are short.
    sim.phones.set('101', {
      mode: 'answer',
      answerAfterMs: 200,
      hangupAfterMs: 1000,
      hangupSpreadMs: 3000,
    });
    sim.phones.set('102', { mode: 'ring' });
    sim.phones.set('103', {
      mode: 'answer',
      answerAfterMs: 300,
      hangupAfterMs: 1000,
      hangupSpreadMs: 3000,
    });
    // A campaign of notification calls: its jobs' events are written by the scheduler's own
    // transactions, and cancelling it writes the queued jobs' `autocall.finished` in one.
    sim.customers.set('*', { mode: 'answer', answerAfterMs: 300 });
    const campaign = await apiRequest<{ id: number }>(url, '/v1/campaigns', {
      body: {
        name: 'reminders',
        maxConcurrent: 4,
        callsPerSecond: 20,
        defaults: { files: ['hello-world'], tries: 1 },
      },
    });
    expect(campaign.status, campaign.text).to.equal(201);
    await engine.journal.flush();
    const start = (await apiRequest<{ nextCursor: string }>(url, '/v1/events?limit=1000')).body
      .nextCursor;

    const admin = new FlakyConsole(
      url,
      () => Promise.resolve({ headers: { authorization: `Bearer ${TEST_API_KEY}` } }),
      start,
    );
    const operator = new FlakyConsole(
      url,
      async () => {
        const answer = await apiRequest<{ token: string }>(url, '/v1/operators/101/tokens', {
          body: { ttlSec: 600 },
        });
        return { token: answer.body.token };
      },
      start,
    );
    consoles.push(admin, operator);
    admin.start();
    operator.start();

    // The traffic: waves of calls, while operator 102 keeps changing status (each change is an
    // event of its own transaction, committing between the call journal's).
    let flipping = true;
    const flips = (async () => {
      const statuses = ['break', 'available', 'dnd', 'available'] as const;
      for (let i = 0; flipping; i++) {
        const answer = await apiRequest(url, '/v1/operators/102/status', {
          method: 'PUT',
          body: { status: statuses[i % statuses.length] },
        });
        expect(answer.status, answer.text).to.equal(200);
      }
    })();
    const jobs = await apiRequest<{ ids: number[] }>(
      url,
      `/v1/campaigns/${campaign.body.id}/jobs`,
      {
        body: {
          jobs: Array.from({ length: JOBS }, (_, i) => ({
            to: `+7495${String(i).padStart(7, '0')}`,
          })),
        },
      },
    );
    expect(jobs.status, jobs.text).to.equal(202);
    const injected: Array<Promise<unknown>> = [];
    for (let n = 0; n < CALLS; n++) {
      injected.push(sim.injectInboundCall({ from: String(79260000000 + n), to: DID }));
      if (n % 25 === 24) await new Promise((resolve) => setTimeout(resolve, 50));
      if (n === CALLS / 2) {
        // Cancelled while some of its jobs are being called (their attempts end afterwards).
        await until(
          () =>
            crm.webhooks.some(
              (w) => w.body.type === 'call.started' && w.body.data.direction === 'out',
            ),
          'the campaign calling',
          20_000,
        );
        const cancel = await apiRequest(url, `/v1/campaigns/${campaign.body.id}/cancel`, {
          method: 'POST',
        });
        expect(cancel.status, cancel.text).to.be.within(200, 299);
      }
    }
    await Promise.all(injected);
    await until(
      () =>
        new Set(
          crm.webhooks
            .filter((w) => w.body.type === 'call.ended' && w.body.data.direction === 'in')
            .map((w) => w.body.callId),
        ).size === CALLS,
      'every call ended',
      60_000,
    );
    await until(
      async () =>
        (await readFeed(url, start)).filter((e) => e.type === 'autocall.finished').length === JOBS,
      'every notification job finished',
      30_000,
    );
    flipping = false;
    await flips;
    await engine.calls.settled();
    await engine.journal.flush();
    // Presence follows the phones a moment after the calls (device states, its own writes):
    // every phone idle and every change stored before the outbox is read as final.
    await until(
      () => engine.presence.list().every((o) => o.state === 'idle'),
      'every phone idle again',
    );
    await engine.presence.flush();

    const feed = await readFeed(url, start);
    expect(new Set(feed.map((e) => e.id)).size, 'no event stored twice').to.equal(feed.length);
    expect(feed.filter((e) => e.type === 'call.started').length).to.be.at.least(CALLS);
    expect(feed.filter((e) => e.type === 'operator.state').length).to.be.greaterThan(10);
    expect(feed.filter((e) => e.type === 'autocall.attempt').length).to.be.greaterThan(0);
    const last = feed.at(-1)!.cursor;

    // Admin: every event, exactly once, in outbox order.
    const adminLast = await admin.settle();
    clients.push(adminLast);
    await until(() => admin.events.at(-1)?.cursor === last, 'the admin console at the end');
    expect(admin.connections, 'it reconnected many times').to.be.greaterThan(20);
    expect(admin.events.map((e) => e.cursor)).to.deep.equal(feed.map((e) => e.cursor));
    expect(admin.events).to.deep.equal(feed);

    // Operator 101: in order, none twice, only stored events, and every call that rang it.
    const operatorLast = await operator.settle();
    clients.push(operatorLast);
    const byCursor = new Map(feed.map((e) => [e.cursor, e]));
    const got = operator.events;
    for (let i = 1; i < got.length; i++)
      expect(position(got[i]!.cursor), `in order at ${i}`).to.be.greaterThan(
        position(got[i - 1]!.cursor),
      );
    for (const e of got) expect(byCursor.get(e.cursor), 'an event of the outbox').to.deep.equal(e);
    const rang101 = new Set(
      feed.filter((e) => e.type === 'call.ringing' && e.extension === '101').map((e) => e.callId),
    );
    expect(rang101.size).to.be.greaterThan(CALLS / 2);
    const expected = feed.filter(
      (e) =>
        (e.callId !== undefined &&
          rang101.has(e.callId) &&
          ['call.ringing', 'call.answered', 'call.ended'].includes(e.type) &&
          (e.type !== 'call.ringing' || e.extension === '101')) ||
        (e.type === 'operator.state' && e.extension === '101'),
    );
    const gotIds = new Set(got.map((e) => e.id));
    expect(
      expected.filter((e) => !gotIds.has(e.id)),
      'events of its calls it never got',
    ).to.deep.equal([]);
  });
});
