/**
 * "The outside world" of the engine for benchmarks, in its own process (a real Asterisk and a
 * real CRM are never in the engine's process): the PBX simulator, a CRM stub (route lookup and
 * webhook receiver) and the load driver that places calls and times them. Driven over IPC by
 * bench/run.ts and bench/api.ts.
 *
 * parent → child ({@link Command}):
 * - `{type:'load', id, ...}` ({@link LoadOrder}): place `calls` inbound calls, at a fixed rate or
 *   keeping `concurrency` in flight; each is done at its `call.ended` webhook, or at its
 *   `call.answered` webhook when `hold` is set (the call then stays up until `release`). Answered
 *   with a {@link LoadReport}.
 * - `{type:'release', id}`: the callers of every held call hang up; answered with a
 *   {@link LoadReport} once every `call.ended` webhook arrived.
 * - `{type:'pop-samples', id}`: answered with `{type:'pop-samples', id, samples}`: the
 *   {@link PopSample}s of the last load (to split the latency with the engine's own timestamps).
 * - `{type:'profile', id, action:'start'|'stop', file?}`: CPU profile of this process; `stop`
 *   writes it to `file`. Answered with `{type:'profile', id}`.
 * - `{type:'webhooks', id}`: answered with `{type:'webhooks', id, total}`: every webhook the CRM
 *   stub received since the process started (bench/api.ts, whose calls are not placed here).
 * - `{type:'close'}`: stop and exit.
 *
 * child → parent: `{type:'ready', url, username, password, crmUrl}` first.
 *
 * Screen-pop latency is measured here, on one clock: from the simulator handing the operator
 * leg's `Dial RINGING` event to its WebSocket to the `call.ringing` webhook of that call arriving
 * at the CRM stub. Calls are told apart by the caller's number, which the engine puts on the
 * operator leg (CALLERID(num)) and in every webhook (`data.from`).
 *
 * Environment: BENCH_EXTENSIONS (comma-separated operator extensions), BENCH_TIME_SCALE (0.01),
 * BENCH_CUSTOMER_BEHAVIOUR (JSON {@link PhoneBehaviour} of customers behind the trunk).
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { startSimulator, type PhoneBehaviour } from '../src/simulator/index.ts';

/** What a load order asks for. Durations are real milliseconds unless named `Sim`. */
export interface LoadOrder {
  type: 'load';
  id: number;
  /** How many calls to place. */
  calls: number;
  /** Calls per second (open loop); with `concurrency` instead, a closed loop. */
  rate?: number;
  /** Calls in flight (closed loop: a new call as soon as one is done). */
  concurrency?: number;
  /** How long the caller talks after the answer, simulated ms; ignored with `hold`. */
  talkSimMs: number;
  /** Keep the calls up after `call.answered` (done then) until `release`. */
  hold?: boolean;
  /** Give up when no call made progress for this long (default 30 000). */
  stallMs?: number;
}

/** The outcome of a load order or a release. Times in real milliseconds. */
export interface LoadReport {
  type: 'report';
  id: number;
  /** Calls placed. */
  placed: number;
  /** Calls done (their `call.ended`, or `call.answered` when held). */
  done: number;
  /** Calls whose `call.ended` said anything but `answered`. */
  failed: number;
  /** Calls placed that the simulator refused (no Stasis app). */
  refused: number;
  /** From the first call placed to the last one done. */
  elapsedMs: number;
  /**
   * From the first call done to the last one done: the window over which calls completed (its
   * calls per second are the throughput; `elapsedMs` adds one call's own duration).
   */
  completingMs: number;
  /** Screen-pop latency of each call of this order that rang, ms. */
  popMs: number[];
  /** Calls of this order that rang but got no `call.ringing` webhook. */
  popMissing: number;
  /** Webhooks received during the order, by event type. */
  webhooks: Record<string, number>;
  /** Calls whose `call.ended` carried a `recordingUrl`. */
  recorded: number;
  /** Route lookups the CRM stub answered during the order. */
  routeLookups: number;
  /** CPU time of this process during the order, ms (user + system). */
  cpuMs: number;
  /** Event-loop delay of this process during the order: p50/p99/max, ms (1 ms timer, minus it). */
  lagMs: { p50: number; p99: number; max: number };
  /** Calls held up after this order. */
  held: number;
  /** This process's memory at the end of the order, bytes. */
  memory: { rss: number; heapUsed: number };
  /** True when the order stopped because nothing moved for `stallMs`. */
  stalled: boolean;
  /**
   * ARI events of the order: addressed to the engine's app (`offered`: what Asterisk sends
   * without an event filter) and written to its WebSocket (`delivered`: after the engine's filter);
   * when no call is held, up to the moment the simulator has no channel left.
   */
  events: { offered: number; delivered: number };
}

/** One screen pop, absolute times (performance.timeOrigin + now, ms), for the split. */
export interface PopSample {
  /** The caller's number (key of the call). */
  from: string;
  /** The simulator handed `Dial RINGING` of the operator leg to the WebSocket. */
  ringingAt: number;
  /** The `call.ringing` webhook arrived. */
  webhookAt: number;
}

type Command =
  | LoadOrder
  | { type: 'release'; id: number }
  | { type: 'pop-samples'; id: number }
  | { type: 'profile'; id: number; action: 'start' | 'stop'; file?: string }
  | { type: 'webhooks'; id: number }
  | { type: 'close' };

interface TrackedCall {
  from: string;
  order: ActiveOrder;
  channelId?: string;
  ringingAt?: number;
  popAt?: number;
  /** Stays up until `release`. */
  held: boolean;
  /** Already counted done for its current order. */
  counted: boolean;
}

interface ActiveOrder {
  id: number;
  report: LoadReport;
  startedAt: number;
  /** When the first call of the order was done; undefined before. */
  firstDoneAt: number | undefined;
  lastDoneAt: number;
  lastProgressAt: number;
  cpuStart: NodeJS.CpuUsage;
  /** The simulator's event counts when the order started. */
  eventsStart: { offered: number; delivered: number };
  pops: PopSample[];
  /** Calls of this order not done yet. */
  outstanding: number;
  /** After each call done: place the next call of a closed loop, or finish. */
  onDone: () => void;
  finish: () => void;
}

const absNow = (): number => performance.timeOrigin + performance.now();
const DID = '74951234567';

const extensions = (process.env.BENCH_EXTENSIONS ?? '101').split(',');
const sim = await startSimulator({
  timeScale: Number(process.env.BENCH_TIME_SCALE ?? 0.01),
  extensions,
  requestLogLimit: 0,
});
for (const ext of extensions) sim.phones.set(ext, { mode: 'answer', answerAfterMs: 1000 });
// Customers behind the trunk (bench/api.ts: answer and hang up so click-to-calls end).
if (process.env.BENCH_CUSTOMER_BEHAVIOUR)
  sim.customers.set('*', JSON.parse(process.env.BENCH_CUSTOMER_BEHAVIOUR) as PhoneBehaviour);

/** Live calls placed by load orders, by caller number. */
const calls = new Map<string, TrackedCall>();
let nextNumber = 79_160_000_000;
let current: ActiveOrder | undefined;
let lastPops: PopSample[] = [];
let routeLookups = 0;
let nextExtension = 0;
const lag = monitorEventLoopDelay({ resolution: 1 });

sim.onEvent(
  (event) => {
    if ((event as { dialstatus?: string }).dialstatus !== 'RINGING') return;
    const from = (event as { peer?: { caller?: { number?: string } } }).peer?.caller?.number;
    const call = from === undefined ? undefined : calls.get(from);
    if (call && call.ringingAt === undefined) call.ringingAt = absNow();
  },
  ['Dial'],
);

// ---------------------------------------------------------------------------------------------
// The CRM stub: route lookups and webhooks.
// ---------------------------------------------------------------------------------------------

interface WebhookBody {
  type: string;
  callId: string;
  data: { from?: string; disposition?: string; recordingUrl?: string };
}

/** Calls by engine call id, from their `call.started` (the first webhook of a call). */
const byCallId = new Map<string, TrackedCall>();

function readJson(req: IncomingMessage, done: (body: unknown) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      done(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch {
      done(undefined);
    }
  });
}

/**
 * The route answer: ring one operator (in turn), record the call. Held calls are not recorded:
 * at time scale 0.05 a call held for 20 s is a 400 s recording (6.4 MB), and downloading
 * thousands of those after the release would measure recording downloads, not live calls.
 */
function onRoute(res: ServerResponse, request: { from?: string } | undefined): void {
  routeLookups++;
  const extension = extensions[nextExtension++ % extensions.length]!;
  const held = request?.from !== undefined && calls.get(request.from)?.held === true;
  const body = JSON.stringify({
    customer: { id: String(routeLookups), name: 'Bench Customer' },
    action: 'dial',
    strategy: 'ringall',
    extensions: [extension],
    record: !held,
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/** Every webhook received (bench/api.ts reads it with `{type:'webhooks'}`). */
let webhooksReceived = 0;

function onWebhook(body: WebhookBody | undefined): void {
  webhooksReceived++;
  const order = current;
  if (order && body) order.report.webhooks[body.type] = (order.report.webhooks[body.type] ?? 0) + 1;
  if (!body) return;
  let call = byCallId.get(body.callId);
  if (!call && body.type === 'call.started' && body.data?.from !== undefined) {
    call = calls.get(body.data.from);
    if (call) byCallId.set(body.callId, call);
  }
  if (!call) return;
  const now = absNow();
  switch (body.type) {
    case 'call.ringing':
      if (call.popAt === undefined) call.popAt = now;
      break;
    case 'call.answered':
      if (call.held && !call.counted) callDone(call, now);
      break;
    case 'call.ended':
      calls.delete(call.from);
      byCallId.delete(body.callId);
      if (body.data.disposition !== 'answered') call.order.report.failed++;
      if (body.data.recordingUrl) call.order.report.recorded++;
      if (!call.counted) callDone(call, now);
      break;
  }
}

const crm = createServer((req, res) => {
  if (req.url === '/route') {
    readJson(req, (body) => onRoute(res, body as { from?: string } | undefined));
    return;
  }
  readJson(req, (body) => {
    res.writeHead(204).end();
    onWebhook(body as WebhookBody | undefined);
  });
});
crm.keepAliveTimeout = 60_000;
crm.listen(0, '127.0.0.1');
await once(crm, 'listening');
const crmUrl = `http://127.0.0.1:${(crm.address() as AddressInfo).port}`;

// ---------------------------------------------------------------------------------------------
// The load driver.
// ---------------------------------------------------------------------------------------------

function emptyReport(id: number): LoadReport {
  return {
    type: 'report',
    id,
    placed: 0,
    done: 0,
    failed: 0,
    refused: 0,
    elapsedMs: 0,
    completingMs: 0,
    popMs: [],
    popMissing: 0,
    webhooks: {},
    recorded: 0,
    routeLookups: 0,
    cpuMs: 0,
    lagMs: { p50: 0, p99: 0, max: 0 },
    held: 0,
    memory: { rss: 0, heapUsed: 0 },
    stalled: false,
    events: { offered: 0, delivered: 0 },
  };
}

function callDone(call: TrackedCall, now: number): void {
  const order = call.order;
  if (call.ringingAt !== undefined) {
    if (call.popAt !== undefined) {
      order.report.popMs.push(call.popAt - call.ringingAt);
      order.pops.push({
        from: call.from,
        ringingAt: call.ringingAt,
        webhookAt: call.popAt,
      });
    } else order.report.popMissing++;
  }
  // Sampled once per call: a held call is done at its answer, its end belongs to the release.
  call.ringingAt = undefined;
  call.counted = true;
  order.report.done++;
  order.outstanding--;
  order.firstDoneAt ??= now;
  order.lastDoneAt = now;
  order.lastProgressAt = now;
  order.onDone();
}

/** Resolves once the simulator has no channel left, or after 3 s. */
async function simulatorIdle(): Promise<void> {
  const deadline = Date.now() + 3000;
  while (sim.channels().length > 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 5));
}

function startOrder(id: number, finish: (order: ActiveOrder) => void): ActiveOrder {
  const routeLookupsBefore = routeLookups;
  lag.reset();
  lag.enable();
  const order: ActiveOrder = {
    id,
    report: emptyReport(id),
    startedAt: absNow(),
    firstDoneAt: undefined,
    lastDoneAt: absNow(),
    lastProgressAt: absNow(),
    cpuStart: process.cpuUsage(),
    eventsStart: sim.eventCounts(),
    pops: [],
    outstanding: 0,
    onDone: () => {
      if (order.outstanding === 0) order.finish();
    },
    finish: () => {
      if (current !== order) return;
      current = undefined;
      lag.disable();
      const cpu = process.cpuUsage(order.cpuStart);
      const r = order.report;
      r.cpuMs = (cpu.user + cpu.system) / 1000;
      r.elapsedMs = order.lastDoneAt - order.startedAt;
      r.completingMs = order.lastDoneAt - (order.firstDoneAt ?? order.lastDoneAt);
      r.routeLookups = routeLookups - routeLookupsBefore;
      r.lagMs = {
        p50: Math.max(0, lag.percentile(50) / 1e6 - 1),
        p99: Math.max(0, lag.percentile(99) / 1e6 - 1),
        max: Math.max(0, lag.max / 1e6 - 1),
      };
      r.held = [...calls.values()].filter((c) => c.held).length;
      const { rss, heapUsed } = process.memoryUsage();
      r.memory = { rss, heapUsed };
      lastPops = order.pops;
      // A call is done at its call.ended webhook; its last events (the other leg's hang-up, the
      // bridge, the recording) follow. Counted once every channel is gone (no call held).
      void (r.held === 0 ? simulatorIdle() : Promise.resolve()).then(() => {
        const events = sim.eventCounts();
        r.events = {
          offered: events.offered - order.eventsStart.offered,
          delivered: events.delivered - order.eventsStart.delivered,
        };
        finish(order);
      });
    },
  };
  current = order;
  const watchdog = setInterval(() => {
    if (current !== order) {
      clearInterval(watchdog);
      return;
    }
    if (absNow() - order.lastProgressAt > stallLimitMs) {
      order.report.stalled = true;
      clearInterval(watchdog);
      order.finish();
    }
  }, 500);
  return order;
}

let stallLimitMs = 30_000;

function placeCall(order: ActiveOrder, talkSimMs: number, hold: boolean): void {
  const from = String(nextNumber++);
  const call: TrackedCall = { from, order, held: hold, counted: false };
  calls.set(from, call);
  order.report.placed++;
  order.outstanding++;
  order.lastProgressAt = absNow();
  const request: Parameters<typeof sim.injectInboundCall>[0] = { from, to: DID };
  if (!hold) request.hangupAfterMs = talkSimMs;
  sim.injectInboundCall(request).then(
    ({ channelId }) => {
      call.channelId = channelId;
    },
    () => {
      calls.delete(from);
      order.report.refused++;
      call.counted = true;
      order.outstanding--;
      order.onDone();
    },
  );
}

function runLoad(o: LoadOrder): void {
  stallLimitMs = o.stallMs ?? 30_000;
  const hold = o.hold === true;
  const order = startOrder(o.id, (done) => process.send!(done.report));
  let placed = 0;
  const place = (): void => {
    placed++;
    placeCall(order, o.talkSimMs, hold);
  };
  if (o.rate !== undefined) {
    const rate = o.rate;
    const t0 = performance.now();
    order.onDone = () => {
      if (placed >= o.calls && order.outstanding === 0) order.finish();
    };
    const tick = (): void => {
      if (current !== order) return;
      const due = Math.min(o.calls, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      while (placed < due) place();
      if (placed < o.calls) setTimeout(tick, 1);
    };
    tick();
  } else {
    const concurrency = Math.max(1, o.concurrency ?? 100);
    order.onDone = () => {
      if (placed < o.calls) place();
      else if (order.outstanding === 0) order.finish();
    };
    while (placed < Math.min(concurrency, o.calls)) place();
  }
  if (o.calls === 0) order.finish();
}

function release(id: number): void {
  const held = [...calls.values()].filter((c) => c.held);
  const order = startOrder(id, (done) => process.send!(done.report));
  for (const call of held) {
    call.held = false;
    call.counted = false;
    call.order = order;
    order.outstanding++;
    order.report.placed++;
    try {
      if (call.channelId) sim.hangup(call.channelId);
    } catch {
      // already gone: its call.ended may still come
    }
  }
  if (held.length === 0) order.finish();
}

let session: Session | undefined;

/** CPU profile of this process (`start`, then `stop` writes the .cpuprofile to `file`). */
async function profile(action: 'start' | 'stop', file: string | undefined): Promise<void> {
  if (action === 'start') {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    return;
  }
  if (!session) return;
  const { profile: result } = await session.post('Profiler.stop');
  session.disconnect();
  session = undefined;
  if (file) writeFileSync(file, JSON.stringify(result));
}

process.on('message', (message: Command) => {
  switch (message.type) {
    case 'load':
      runLoad(message);
      break;
    case 'release':
      release(message.id);
      break;
    case 'pop-samples':
      process.send!({ type: 'pop-samples', id: message.id, samples: lastPops });
      break;
    case 'profile':
      void profile(message.action, message.file).then(() =>
        process.send!({ type: 'profile', id: message.id }),
      );
      break;
    case 'webhooks':
      process.send!({ type: 'webhooks', id: message.id, total: webhooksReceived });
      break;
    case 'close':
      crm.closeAllConnections();
      crm.close();
      void sim.close().then(() => process.exit(0));
      break;
  }
});
process.send!({
  type: 'ready',
  url: sim.url,
  username: sim.username,
  password: sim.password,
  crmUrl,
});
