/**
 * The durable store end to end: every state change of a call is in the store before
 * its webhook leaves; the event outbox survives a CRM outage (connection refused, then 500) and
 * an engine restart, delivering every event in per-call order, at least once; the delivery log
 * shows the failed attempts.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { createLogger } from '../../src/logging/logger.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import { apiRequest } from '../support/api.ts';
import { FakeCrm, type ReceivedWebhook } from '../support/fake-crm.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';

const LIFECYCLE = ['call.started', 'call.ringing', 'call.answered', 'call.ended'];

/** A port nothing listens on (yet): connections to it are refused. */
async function freePort(): Promise<number> {
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolve once `count` calls have ended on this engine. */
function callsEnded(engine: Engine, count: number): Promise<string[]> {
  const ids: string[] = [];
  return new Promise((resolve) => {
    engine.calls.on('ended', (snapshot) => {
      ids.push(snapshot.id);
      if (ids.length === count) resolve(ids);
    });
  });
}

/** Resolve with the `call.ended` webhooks of `callIds` once every one has arrived. */
function endedWebhooks(crm: FakeCrm, callIds: string[], timeoutMs = 15_000) {
  return Promise.all(
    callIds.map((id) =>
      crm.waitForWebhook((w) => w.body.type === 'call.ended' && w.body.callId === id, timeoutMs),
    ),
  );
}

function answeringPhones(bed: TestBed): void {
  bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
}

describe('durable store and event outbox (e2e)', function () {
  this.timeout(30_000);
  let bed: TestBed | undefined;
  let receiver: FakeCrm | undefined;
  let second: Engine | undefined;
  afterEach(async () => {
    await second?.stop();
    await bed?.stop();
    await receiver?.close();
    bed = receiver = second = undefined;
  });

  it('stores each state change of a call, with its legs, before the webhook about it leaves', async () => {
    bed = await startTestBed();
    answeringPhones(bed);
    const store = bed.engine.store;
    // What the store held at the moment each webhook arrived.
    const seen: Array<Promise<{ type: string; state?: string; legs: number }>> = [];
    bed.crm.on('webhook', (w: ReceivedWebhook) => {
      seen.push(
        store.calls.getCall(w.body.callId).then((record) => ({
          type: w.body.type,
          ...(record ? { state: record.state } : {}),
          legs: record?.legs.length ?? 0,
        })),
      );
    });
    const { channelId } = await bed.sim.injectInboundCall({
      from: '79165550001',
      to: '74951234567',
    });
    const ended = await bed.crm.waitForEnded(undefined, 10_000);
    const callId = ended.body.callId;
    const states = await Promise.all(seen);
    expect(states.map((s) => s.type)).to.deep.equal(LIFECYCLE);
    // Every webhook found its call in the store, at least as far as the event says.
    expect(states.every((s) => s.state !== undefined)).to.equal(true);
    expect(states[1]!.legs).to.be.at.least(2); // the operator leg rings: caller + operator
    expect(states[3]!.state).to.equal('ended');

    const record = await store.calls.getCall(callId);
    expect(record).to.include({
      direction: 'in',
      from: '79165550001',
      to: '74951234567',
      state: 'ended',
      disposition: 'answered',
      answeredBy: '101',
    });
    expect(record!.talkSec).to.equal(ended.body.data.talkSec);
    expect(record!.waitSec).to.equal(ended.body.data.waitSec);
    expect(record!.endedAt).to.equal(ended.body.data.endedAt);
    const caller = record!.legs.find((l) => l.role === 'caller');
    const operator = record!.legs.find((l) => l.role === 'operator');
    expect(caller?.channelId).to.equal(channelId);
    expect(operator).to.include({ extension: '101', outcome: 'answered' });
    expect(operator!.answeredAt, 'operator answer time').to.be.a('string');
    expect(operator!.endedAt, 'operator end time').to.be.a('string');
    expect(operator!.cause, 'Q.850 cause of the operator leg').to.be.a('number');

    // The outbox holds exactly the events the CRM received, and settles them as delivered.
    expect(await bed.engine.webhooks.drain(5000)).to.equal(true);
    await bed.engine.webhooks.flush();
    const feed = await store.events.feed({ limit: 100 });
    expect(feed.items.map((i) => i.event.id)).to.deep.equal(
      bed.crm.eventsOf(callId).map((w) => w.body.id),
    );
    expect(feed.items.map((i) => i.status)).to.deep.equal(LIFECYCLE.map(() => 'delivered'));
  });

  it('CRM refusing connections, then answering 500, then recovering: every event delivered, in per-call order, failures logged', async () => {
    const port = await freePort();
    bed = await startTestBed({
      CRM_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks`,
      WEBHOOK_RETRY_INITIAL_DELAY_MS: '20',
      WEBHOOK_RETRY_MAX_DELAY_MS: '100',
    });
    answeringPhones(bed);
    const ended = callsEnded(bed.engine, 3);
    for (const from of ['79165550001', '79165550002', '79165550003'])
      await bed.sim.injectInboundCall({ from, to: '74951234567' });
    const callIds = await ended;
    // Calls went on while nobody listened; their events are all waiting in the outbox.
    expect(bed.sim.channels()).to.have.length(0);
    await bed.engine.journal.flush();
    const pending = await bed.engine.store.events.feed({ limit: 100 });
    expect(pending.items).to.have.length(12);
    expect(pending.items.every((i) => i.status === 'pending')).to.equal(true);

    // The CRM comes up answering 500: attempts reach it and fail.
    receiver = await FakeCrm.start(bed.crm.secret, port);
    receiver.webhookStatus = 500;
    let failedAttempts = 0;
    await new Promise<void>((resolve) => {
      receiver!.on('attempt', () => {
        if (++failedAttempts === 3) resolve();
      });
    });
    expect(receiver.webhooks).to.have.length(0);

    // It recovers: everything arrives, each call's events in order, none twice.
    receiver.webhookStatus = 200;
    await endedWebhooks(receiver, callIds);
    for (const callId of callIds) {
      const events = receiver.eventsOf(callId);
      expect(events.map((w) => w.body.type)).to.deep.equal(LIFECYCLE);
      expect(events.map((w) => w.body.sequence)).to.deep.equal([1, 2, 3, 4]);
      expect(events.every((w) => w.signatureValid)).to.equal(true);
    }
    expect(new Set(receiver.webhooks.map((w) => w.body.id)).size).to.equal(12);

    // The delivery log shows the refused connections and the 500s; the outbox is settled.
    expect(await bed.engine.webhooks.drain(5000)).to.equal(true);
    await bed.engine.webhooks.flush();
    const failed = await bed.engine.store.events.deliveries({ status: 'failed', limit: 500 });
    expect(failed.items.some((d) => d.statusCode === 500)).to.equal(true);
    expect(
      failed.items.some((d) => d.statusCode === undefined && /refused/i.test(d.error ?? '')),
    ).to.equal(true);
    expect(failed.items.every((d) => d.url === `http://127.0.0.1:${port}/hooks`)).to.equal(true);
    const settled = await bed.engine.store.events.feed({ limit: 100 });
    expect(settled.items.every((i) => i.status === 'delivered')).to.equal(true);
  });

  it('delivers after a restart the events an engine stopped with, on the same store, none lost or reordered', async () => {
    bed = await startTestBed({
      SHUTDOWN_TIMEOUT_MS: '100',
      WEBHOOK_RETRY_INITIAL_DELAY_MS: '20',
      WEBHOOK_RETRY_MAX_DELAY_MS: '100',
    });
    answeringPhones(bed);
    // The CRM is down (503) until the restart: every event stays undelivered.
    bed.crm.webhookStatus = 503;
    const ended = callsEnded(bed.engine, 2);
    await bed.sim.injectInboundCall({ from: '79165550001', to: '74951234567' });
    await bed.sim.injectInboundCall({ from: '79165550002', to: '74951234567' });
    const callIds = await ended;
    await bed.engine.stop();
    expect(bed.crm.webhooks).to.have.length(0);

    // A new engine on the same data directory and the same Asterisk.
    bed.crm.webhookStatus = 200;
    const logs = new PassThrough();
    logs.resume();
    second = await startEngine(bed.engine.config, {
      logger: createLogger({ level: 'error', stream: logs }),
      simulator: bed.sim,
    });
    await endedWebhooks(bed.crm, callIds);
    for (const callId of callIds) {
      const events = bed.crm.eventsOf(callId);
      expect(events.map((w) => w.body.type)).to.deep.equal(LIFECYCLE);
      expect(events.map((w) => w.body.sequence)).to.deep.equal([1, 2, 3, 4]);
    }
    // The stored calls are complete, read by the new engine.
    for (const callId of callIds) {
      const record = await second.store.calls.getCall(callId);
      expect(record).to.include({ state: 'ended', disposition: 'answered', answeredBy: '101' });
    }
    expect(await second.webhooks.drain(5000)).to.equal(true);
    await second.webhooks.flush();
    const feed = await second.store.events.feed({ limit: 100 });
    expect(feed.items).to.have.length(8);
    expect(feed.items.every((i) => i.status === 'delivered')).to.equal(true);
  });

  it('a webhook URL configured later gets only the calls after it: events recorded without a URL stay in the pull feed, never sent', async () => {
    bed = await startTestBed({ CRM_WEBHOOK_URL: undefined });
    answeringPhones(bed);
    const ended = callsEnded(bed.engine, 1);
    await bed.sim.injectInboundCall({ from: '79165550003', to: '74951234567' });
    const [oldCall] = await ended;
    await bed.engine.stop();

    // The same store and Asterisk, now with the CRM's webhook URL.
    const logs = new PassThrough();
    logs.resume();
    second = await startEngine(
      { ...bed.engine.config, CRM_WEBHOOK_URL: bed.crm.webhookUrl },
      { logger: createLogger({ level: 'error', stream: logs }), simulator: bed.sim },
    );
    const newEnded = callsEnded(second, 1);
    await bed.sim.injectInboundCall({ from: '79165550004', to: '74951234567' });
    const [newCall] = await newEnded;
    const [newEnd] = await endedWebhooks(bed.crm, [newCall!]);
    expect(bed.crm.eventsOf(newCall!).map((w) => w.body.type)).to.deep.equal(LIFECYCLE);
    expect(await second.webhooks.drain(5000)).to.equal(true);
    // Everything the receiver got is about the new call: nothing of the old one, ever.
    expect(bed.crm.webhooks.map((w) => w.body.callId)).to.deep.equal(LIFECYCLE.map(() => newCall));
    expect(newEnd!.body.callId).to.equal(newCall);

    await second.webhooks.flush();
    const feed = await apiRequest<{
      items: Array<{ webhookStatus: string; event: { callId: string; type: string } }>;
    }>(second.httpUrl, '/v1/events?limit=100');
    expect(feed.status).to.equal(200);
    expect(
      feed.body.items.map((i) => [
        i.event.callId === oldCall ? 'old' : 'new',
        i.event.type,
        i.webhookStatus,
      ]),
    ).to.deep.equal([
      ...LIFECYCLE.map((type) => ['old', type, 'skipped']),
      ...LIFECYCLE.map((type) => ['new', type, 'delivered']),
    ]);
  });

  it('answers a repeated Idempotency-Key after a restart with the same call, dialling once', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 200 });
    const request = {
      body: { operator: '101', to: '+74957654321' },
      headers: { 'idempotency-key': 'crm-task-restart-1' },
    };
    const first = await apiRequest<{ id: string }>(bed.engine.httpUrl, '/v1/calls', request);
    expect(first.status).to.equal(202);
    await bed.crm.waitForEnded(first.body.id, 10_000);
    await bed.engine.stop();

    const logs = new PassThrough();
    logs.resume();
    second = await startEngine(bed.engine.config, {
      logger: createLogger({ level: 'error', stream: logs }),
      simulator: bed.sim,
    });
    const again = await apiRequest<{ id: string }>(second.httpUrl, '/v1/calls', request);
    expect(again.status).to.equal(202);
    expect(again.body).to.deep.equal(first.body);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    const conflict = await apiRequest(second.httpUrl, '/v1/calls', {
      ...request,
      body: { operator: '101', to: '+74957654322' },
    });
    expect(conflict.status).to.equal(409);
    expect(conflict.body).to.include({ code: 'idempotency_conflict' });
    const originates = bed.sim.requests.filter(
      (r) => r.method === 'POST' && r.path === '/channels',
    );
    expect(originates, 'operator legs originated').to.have.length(1);
  });
});

describe('engine start-up failure (e2e)', function () {
  this.timeout(30_000);

  it('closes what it opened when a start-up step fails: no ARI connection is left behind', async () => {
    // Occupy a port so the engine's HTTP listen fails after ARI and the store are open.
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { port } = blocker.address() as AddressInfo;
    const bed = await startTestBed();
    try {
      await bed.engine.stop();
      const logs = new PassThrough();
      logs.resume();
      const failed = await startEngine(
        { ...bed.engine.config, HTTP_PORT: port },
        { logger: createLogger({ level: 'error', stream: logs }), simulator: bed.sim },
      ).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failed).to.be.instanceOf(Error);
      expect((failed as NodeJS.ErrnoException).code).to.equal('EADDRINUSE');
      // Had the failed engine stayed connected, Asterisk would hand it this call.
      const rejected = await bed.sim
        .injectInboundCall({ from: '79165550009', to: '74951234567' })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(String(rejected)).to.match(/not registered/);
      expect(bed.crm.webhooks).to.have.length(0);
    } finally {
      await bed.stop();
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
