/**
 * `npm run bench`: inbound-call throughput and screen-pop latency of the whole engine against the
 * PBX simulator running in its own process (as Asterisk would), on this machine, then the API
 * benchmark of bench/api.ts (`POST /v1/calls` latency at a sustained rate). Prints figures;
 * asserts nothing.
 *
 * Each call: route (fallback ring-all), operator leg created and dialled, answered, bridged,
 * hung up by the caller, four signed webhooks delivered to a local receiver.
 * Screen-pop latency: from the simulator sending the operator leg's first ringing event to the
 * `call.ringing` webhook arriving at the receiver.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/load.ts';
import { createSilentLogger } from '../src/logging/logger.ts';
import { startEngine } from '../src/main.ts';
import { runApiBenchmark } from './api.ts';

const TOTAL_CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 100);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const ringingSentAt = new Map<string, number>();
  const popLatenciesMs: number[] = [];
  /** When the engine's gateway received each operator leg's first ringing event (absolute ms). */
  const ringingReceivedAt = new Map<string, number>();
  const wsLatenciesMs: number[] = [];
  /** When the engine handed each call's `call.ringing` to the webhook dispatcher (absolute ms). */
  const ringingQueuedAt = new Map<string, number>();
  const flowLatenciesMs: number[] = [];
  let webhooks = 0;
  const endedCallIds = new Set<string>();
  let onEnded: (() => void) | undefined;
  const engineRef: { engine?: Awaited<ReturnType<typeof startEngine>> } = {};

  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(204).end();
      webhooks++;
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        type: string;
        callId: string;
      };
      if (event.type === 'call.ringing') {
        const call = engineRef.engine?.calls.getCall(event.callId);
        const leg = call?.legs.find((l) => l.role === 'operator');
        const sentAt = leg ? ringingSentAt.get(leg.channelId) : undefined;
        const now = performance.timeOrigin + performance.now();
        if (sentAt !== undefined) popLatenciesMs.push(now - sentAt);
        const receivedAt = leg ? ringingReceivedAt.get(leg.channelId) : undefined;
        if (sentAt !== undefined && receivedAt !== undefined)
          wsLatenciesMs.push(receivedAt - sentAt);
        const queuedAt = ringingQueuedAt.get(event.callId);
        if (receivedAt !== undefined && queuedAt !== undefined)
          flowLatenciesMs.push(queuedAt - receivedAt);
      } else if (event.type === 'call.ended') {
        endedCallIds.add(event.callId);
        onEnded?.();
      }
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const receiverPort = (receiver.address() as AddressInfo).port;

  const extensions = Array.from({ length: 10 }, (_, i) => String(101 + i));
  const child = fork(new URL('./sim-process.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_EXTENSIONS: extensions.join(','), BENCH_TIME_SCALE: '0.01' },
  });
  const [ready] = (await once(child, 'message')) as [
    { url: string; username: string; password: string },
  ];
  child.on('message', (message: { type: string; channelId: string; atMs: number }) => {
    if (message.type === 'ringing') ringingSentAt.set(message.channelId, message.atMs);
  });

  const config = loadConfig({
    NODE_ENV: 'test',
    HTTP_PORT: '0',
    LOG_LEVEL: 'error',
    CRM_WEBHOOK_URL: `http://127.0.0.1:${receiverPort}/hooks`,
    WEBHOOK_SECRET: 'bench-secret-0123456789abcdef',
    FALLBACK_ROUTE: 'sequential:101',
    ARI_URL: ready.url,
    ARI_USERNAME: ready.username,
    ARI_PASSWORD: ready.password,
  });
  const engine = await startEngine(config, {
    logger: createSilentLogger(),
    eventSinks: [
      {
        enqueue(event) {
          if (event.type === 'call.ringing' && !ringingQueuedAt.has(event.callId)) {
            ringingQueuedAt.set(event.callId, performance.timeOrigin + performance.now());
          }
        },
      },
    ],
  });
  engineRef.engine = engine;
  engine.gateway.onEvent((event) => {
    const id =
      event.type === 'Dial' && event.dialstatus === 'RINGING'
        ? event.peer.id
        : event.type === 'ChannelStateChange' && event.channel.state === 'Ringing'
          ? event.channel.id
          : undefined;
    if (id && !ringingReceivedAt.has(id))
      ringingReceivedAt.set(id, performance.timeOrigin + performance.now());
  });

  const lag = monitorEventLoopDelay({ resolution: 10 });
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  lag.enable();
  const started = performance.now();
  let injected = 0;
  const done = new Promise<void>((resolve) => {
    onEnded = () => {
      if (endedCallIds.size >= TOTAL_CALLS) resolve();
      else if (injected < TOTAL_CALLS && injected - endedCallIds.size < CONCURRENCY) inject();
    };
  });
  const inject = (): void => {
    injected++;
    const from = String(79160000000 + injected);
    child.send({ type: 'inject', from, to: '74951234567', hangupAfterMs: 2000 });
  };
  for (let i = 0; i < CONCURRENCY && injected < TOTAL_CALLS; i++) inject();
  await done;
  const elapsedSec = (performance.now() - started) / 1000;
  lag.disable();
  await engine.calls.settled();
  gc?.();
  const heapAfter = process.memoryUsage().heapUsed;

  const sortedPop = [...popLatenciesMs].sort((a, b) => a - b);
  const sortedWs = [...wsLatenciesMs].sort((a, b) => a - b);
  const sortedFlow = [...flowLatenciesMs].sort((a, b) => a - b);
  const lines = [
    `inbound calls: ${TOTAL_CALLS} (concurrency ${CONCURRENCY}; simulator in its own process, time scale 0.01: 10 ms ring, 20 ms talk)`,
    `  full calls per second:          ${(TOTAL_CALLS / elapsedSec).toFixed(1)}`,
    `  webhooks delivered:             ${webhooks}`,
    `  screen-pop latency p50 / p99:   ${percentile(sortedPop, 50).toFixed(2)} ms / ${percentile(sortedPop, 99).toFixed(2)} ms (${sortedPop.length} samples)`,
    `    of which simulator → engine:  ${percentile(sortedWs, 50).toFixed(2)} ms / ${percentile(sortedWs, 99).toFixed(2)} ms (WebSocket, event parsing)`,
    `    of which engine event → queued: ${percentile(sortedFlow, 50).toFixed(2)} ms / ${percentile(sortedFlow, 99).toFixed(2)} ms (per-call handling before the webhook is queued)`,
    `  event-loop lag p50 / p99:       ${(lag.percentile(50) / 1e6).toFixed(2)} ms / ${(lag.percentile(99) / 1e6).toFixed(2)} ms`,
    `  engine heap before / after:     ${(heapBefore / 1048576).toFixed(1)} MiB / ${(heapAfter / 1048576).toFixed(1)} MiB`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  await engine.stop();
  child.send({ type: 'close' });
  await once(child, 'exit');
  receiver.closeAllConnections();
  receiver.close();
}

await main();

// Then POST /v1/calls latency at a sustained rate (issue 3): bench/api.ts.
await runApiBenchmark();
