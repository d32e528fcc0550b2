/**
 * The live stream across a crash of the engine, end to end: a real engine process on the
 * simulator (which runs in the test process, so its calls outlive the engine) streams the events
 * of ringing calls to consoles; while another connection holds SQLite's write lock the events
 * leave as soon as they are in the journal log, uncommitted; the process is killed (SIGKILL) and a
 * new one starts on the same DATA_DIR. Each console reconnects with `?after=<the last cursor it
 * got>` and must get exactly what it had not seen, in order, none twice; `GET /v1/events` after
 * the same cursor must say the same; and every event a console got live before the crash must be
 * in the outbox at the cursor it was announced with.
 */
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { apiRequest } from '../support/api.ts';
import { CrashBed } from '../support/crash-bed.ts';
import { TEST_API_KEY } from '../support/engine.ts';
import { StreamClient, type StreamMessage } from '../support/stream-client.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
const EXTENSIONS = ['101', '102', '103', '104', '105', '106', '107', '108'];

/** One event as a console or the pull feed shows it. */
interface Seen {
  cursor: string;
  id: string;
  type: string;
  callId: string;
}

/** Every event of `GET /v1/events` after `after` (from the start when undefined), to its end. */
async function readFeed(baseUrl: string, after?: string): Promise<Seen[]> {
  const out: Seen[] = [];
  let cursor = after;
  for (;;) {
    const query = new URLSearchParams({ limit: '500' });
    if (cursor !== undefined) query.set('after', cursor);
    const page = await apiRequest<{
      items: Array<{ cursor: string; event: { id: string; type: string; callId: string } }>;
      nextCursor: string;
    }>(baseUrl, `/v1/events?${query.toString()}`);
    expect(page.status, page.text).to.equal(200);
    for (const item of page.body.items)
      out.push({
        cursor: item.cursor,
        id: item.event.id,
        type: item.event.type,
        callId: item.event.callId,
      });
    if (page.body.items.length < 500) return out;
    cursor = page.body.nextCursor;
  }
}

/** The event messages of a console, as {@link Seen}. */
function seen(messages: readonly StreamMessage[]): Seen[] {
  return messages
    .filter((m) => m.id !== undefined && m.cursor !== undefined)
    .map((m) => ({ cursor: m.cursor!, id: m.id!, type: m.type, callId: m.callId! }));
}

describe('live stream across a kill -9 of the engine (e2e, real process)', function () {
  this.timeout(90_000);
  let bed: CrashBed | undefined;
  const clients: StreamClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.ws.terminate();
    await bed?.close();
    bed = undefined;
  });

  async function admin(baseUrl: string, after?: string): Promise<StreamClient> {
    const client = await StreamClient.open(baseUrl, {
      headers: { authorization: `Bearer ${TEST_API_KEY}` },
      ...(after === undefined ? {} : { after }),
    });
    clients.push(client);
    await client.next((m) => m.type === 'stream.synced', 'stream.synced');
    return client;
  }

  it('a console reconnecting after the crash gets exactly the events it had not seen, in order; the feed agrees', async () => {
    // Real time: the phones ring for the whole test.
    bed = await CrashBed.start(
      { timeScale: 1, extensions: EXTENSIONS },
      { OPERATOR_EXTENSIONS: 'none' },
    );
    const { sim, crm, dataDir } = bed;
    for (const extension of EXTENSIONS) sim.phones.set(extension, { mode: 'ring' });
    // Each caller rings an extension of its own (the last digit of its number).
    crm.onRoute((req) => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        extensions: [`10${req.from.slice(-1)}`],
        ringTimeoutSec: 500,
      },
    }));
    const { engine: first, httpUrl: firstUrl } = await bed.startProcess();
    const channels: string[] = [];
    const ring = async (console: StreamClient, n: number): Promise<void> => {
      const from = `7926000000${n}`;
      const { channelId } = await sim.injectInboundCall({ from, to: DID });
      channels.push(channelId);
      await console.next(
        (m) => m.type === 'call.ringing' && m.data?.from === from,
        `call.ringing of caller ${n}`,
      );
    };

    // Three consoles from the start (the outbox is empty: they see everything live).
    const early = await admin(firstUrl); // leaves before the crash, with committed events only
    const middle = await admin(firstUrl); // leaves with events that are only in the journal log
    const late = await admin(firstUrl); // connected until the kill

    // Two calls ring and commit.
    await ring(late, 1);
    await ring(late, 2);
    await until(
      async () => (await readFeed(firstUrl)).filter((e) => e.type === 'call.ringing').length === 2,
      'the first calls committed',
    );
    await until(() => seen(early.messages).length === 4, 'the early console got them');
    early.ws.terminate();

    // From now on nothing commits: another connection holds the write lock (the journal's
    // writes wait for it up to the store's busy timeout, 5 s; the kill comes before).
    const other = new Database(join(dataDir, 'ari-crm.sqlite'));
    try {
      other.exec('BEGIN IMMEDIATE');
      await ring(late, 3);
      await ring(late, 4);
      await until(() => seen(middle.messages).length === 8, 'the middle console got calls 3-4');
      middle.ws.terminate();
      await ring(late, 5);
      await ring(late, 6);
      // Streamed, and not committed: only the journal log holds them.
      expect(
        other.prepare("SELECT count(*) AS n FROM events WHERE type = 'call.ringing'").get(),
      ).to.deep.equal({ n: 2 });
      await first.kill();
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    expect(statSync(join(dataDir, 'ari-crm.sqlite.journal-log')).size).to.be.greaterThan(0);
    const before = new Map([
      [early, seen(early.messages)],
      [middle, seen(middle.messages)],
      [late, seen(late.messages)],
    ]);
    expect(before.get(late)!.map((e) => e.type)).to.deep.equal(
      Array.from({ length: 6 }, () => ['call.started', 'call.ringing']).flat(),
    );

    // The next engine on the same data: it replays the journal log and adopts the ringing calls.
    const { httpUrl: url } = await bed.startProcess();
    const again = new Map<StreamClient, StreamClient>();
    for (const [client, events] of before)
      again.set(client, await admin(url, events.at(-1)!.cursor));
    // The calls end; the outbox then holds every event of this test.
    for (const channelId of channels) sim.hangup(channelId);
    let feed: Seen[] = [];
    await until(async () => {
      feed = await readFeed(url);
      return feed.filter((e) => e.type === 'call.ended').length === channels.length;
    }, 'every call ended in the outbox');
    const types = new Map<string, number>();
    for (const e of feed) types.set(e.type, (types.get(e.type) ?? 0) + 1);
    expect(Object.fromEntries(types)).to.deep.equal({
      'call.started': 6,
      'call.ringing': 6,
      'call.recovered': 6,
      'call.ended': 6,
    });
    expect(new Set(feed.map((e) => e.id)).size, 'no event stored twice').to.equal(feed.length);

    for (const [client, events] of before) {
      const reconnected = again.get(client)!;
      const last = feed.at(-1)!.cursor;
      await until(
        () => seen(reconnected.messages).at(-1)?.cursor === last,
        'the reconnected console got up to the end of the outbox',
      );
      // What it got before the crash, at the same cursors, then exactly the rest.
      expect(events, 'announced where the outbox keeps them').to.deep.equal(
        feed.slice(0, events.length),
      );
      expect(seen(reconnected.messages), 'the rest, in order, exactly once').to.deep.equal(
        feed.slice(events.length),
      );
      expect(await readFeed(url, events.at(-1)!.cursor), 'GET /v1/events agrees').to.deep.equal(
        feed.slice(events.length),
      );
    }
  });
});
