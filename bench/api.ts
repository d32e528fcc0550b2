/**
 * API benchmark: `POST /v1/calls` latency at a sustained rate against the
 * engine on the PBX simulator (its own process, as Asterisk would be, with the CRM stub that
 * receives the webhooks: a CRM is never in the engine's process), load from the `loadtest`
 * package in a third process at an even rate, after a 3 s warm-up that is not measured
 * (bench/api-load.ts says why not autocannon). Operators and customers answer within ~10 ms.
 * Every accepted call must end: afterwards the engine must track no call and no channel, and have
 * ended every click-to-call it started. Prints figures; asserts nothing.
 *
 * Two scenarios:
 * 1. 500 requests/s for 10 s with the toll-fraud cap MAX_LIVE_ORIGINATED_CALLS=20 and customers
 *    talking 1 s on average: about 20 calls/s are placed, the other requests are refused with 429
 *    `too_many_calls`, as the guard is meant to do under a flood.
 * 2. 100 requests/s for 10 s, every request places a call (customers talk 200 ms on average):
 *    the cost of call creation while the engine is busy with calls.
 *
 * Talk times vary (uniformly, from half to one and a half times the average) as they do in real
 * traffic. With one fixed talk time (BENCH_API_FIXED_TALK=1) the 20 calls of scenario 1 that
 * started together end together, their 20 successors start together, and so on: the engine gets
 * all its call work in waves about a second apart, which no real PBX sees for long.
 *
 * Latency is given as the client measures it (request sent → response read, which on a 2-core
 * machine also holds the wait of the load generator and the simulator for a core) and as the
 * server measures it (request received → response handed to the socket).
 *
 * Environment: BENCH_API_RATE, BENCH_API_DURATION_SEC, BENCH_API_MAX_LIVE, BENCH_API_TALK_MS run
 * one custom scenario instead of the two; BENCH_API_FIXED_TALK=1 (see above); BENCH_API_STORE_WAIT_MS sets
 * the engine's API_STORE_WAIT_MS (`0`: the 202 does not wait for the store, to see what that
 * wait costs); BENCH_API_PROFILE=DIR writes a CPU profile of the engine under load to DIR and
 * prints its summary; BENCH_JOURNAL_LOG=false runs the engine without its journal log (the 202
 * then waits for the SQLite commit, docs/store.md "The journal log").
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.ts';
import { createSilentLogger } from '../src/logging/logger.ts';
import { startEngine } from '../src/main.ts';
import type { LoadOrder, LoadResult } from './api-load.ts';
import { summariseProfile } from './profile-summary.ts';

const TIME_SCALE = 0.01;
const API_KEY = 'bench-api-key-0123456789abcdef';
/** Unmeasured load at the scenario's rate before the measured run, s (cold code, connections). */
const WARMUP_SEC = 3;

/** One load scenario. */
export interface ApiScenario {
  /** Requests per second. */
  rate: number;
  durationSec: number;
  /** MAX_LIVE_ORIGINATED_CALLS. */
  maxLive: number;
  /**
   * How long customers talk before hanging up on average, real milliseconds: each call a
   * uniformly random time between half and one and a half times this (BENCH_API_FIXED_TALK=1:
   * exactly this).
   */
  talkMs: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const sorted = (values: number[]): number[] => [...values].sort((a, b) => a - b);
const ms = (v: number): string => `${v.toFixed(2)} ms`;
const p50p99 = (values: number[]): string => {
  const s = sorted(values);
  return `${ms(percentile(s, 50))} / ${ms(percentile(s, 99))}`;
};

/** Run one scenario against a fresh engine and simulator; returns the printed lines. */
export async function runApiScenario(scenario: ApiScenario): Promise<string[]> {
  const { rate, durationSec, maxLive, talkMs } = scenario;
  const fixedTalk = process.env.BENCH_API_FIXED_TALK === '1';
  const talk = fixedTalk ? `${talkMs} ms` : `${talkMs / 2}-${(talkMs * 3) / 2} ms`;

  const operators = Array.from({ length: 50 }, (_, i) => String(101 + i));
  const sim = fork(new URL('./sim-process.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      BENCH_EXTENSIONS: operators.join(','),
      BENCH_TIME_SCALE: String(TIME_SCALE),
      BENCH_CUSTOMER_BEHAVIOUR: JSON.stringify({
        mode: 'answer',
        answerAfterMs: 1000,
        ...(fixedTalk
          ? { hangupAfterMs: talkMs / TIME_SCALE }
          : { hangupAfterMs: talkMs / 2 / TIME_SCALE, hangupSpreadMs: talkMs / TIME_SCALE }),
      }),
    },
  });
  const [ready] = (await once(sim, 'message')) as [
    { url: string; username: string; password: string; crmUrl: string },
  ];

  let started = 0;
  const config = loadConfig({
    NODE_ENV: 'test',
    HTTP_PORT: '0',
    LOG_LEVEL: 'error',
    ARI_URL: ready.url,
    ARI_USERNAME: ready.username,
    ARI_PASSWORD: ready.password,
    CRM_WEBHOOK_URL: `${ready.crmUrl}/hooks`,
    WEBHOOK_SECRET: 'bench-secret-0123456789abcdef',
    API_KEYS: `bench:${API_KEY}`,
    CALLS_RATE_LIMIT_PER_MIN: String(rate * 60 * 2),
    MAX_LIVE_ORIGINATED_CALLS: String(maxLive),
    ...(process.env.BENCH_API_STORE_WAIT_MS === undefined
      ? {}
      : { API_STORE_WAIT_MS: process.env.BENCH_API_STORE_WAIT_MS }),
    ...(process.env.BENCH_JOURNAL_LOG === undefined
      ? {}
      : { JOURNAL_LOG: process.env.BENCH_JOURNAL_LOG }),
  });
  const engine = await startEngine(config, {
    logger: createSilentLogger(),
    eventSinks: [
      {
        enqueue(event) {
          if (event.type === 'call.started' && event.data.direction === 'out') started++;
        },
      },
    ],
  });

  // Server-side time of POST /v1/calls: request received → response handed to the socket.
  const serverMs: Record<string, number[]> = {};
  engine.server.prependListener('request', (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/calls') return;
    const t0 = performance.now();
    res.once('prefinish', () => {
      (serverMs[String(res.statusCode)] ??= []).push(performance.now() - t0);
    });
  });

  const load = fork(new URL('./api-load.ts', import.meta.url), { execArgv: ['--import', 'tsx'] });
  await once(load, 'message');
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const order: LoadOrder = {
    url: engine.httpUrl,
    apiKey: API_KEY,
    rate,
    durationSec,
    warmupSec: WARMUP_SEC,
    operators,
    to: '+7 495 765-43-21',
  };
  load.send(order);
  // The warm-up is not measured: the figures start with the measured run.
  await once(load, 'message');
  for (const key of Object.keys(serverMs)) delete serverMs[key];
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  let peakLive = 0;
  const sampler = setInterval(() => {
    peakLive = Math.max(peakLive, engine.calls.liveOriginatedCalls());
  }, 50);
  const profileDir = process.env.BENCH_API_PROFILE;
  const session = profileDir ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpuBefore = process.cpuUsage();
  const loadStarted = performance.now();
  const [result] = (await once(load, 'message')) as [LoadResult];
  const cpu = process.cpuUsage(cpuBefore);
  const loadMs = performance.now() - loadStarted;
  lag.disable();
  let profileLine: string | undefined;
  if (session && profileDir) {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    mkdirSync(profileDir, { recursive: true });
    const file = join(profileDir, `api-${rate}-engine.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    profileLine = summariseProfile(file, 'engine', 25);
  }
  clearInterval(sampler);

  // Every accepted call must still be handled to its end, and nothing may stay behind.
  const drainStarted = Date.now();
  while (
    (engine.calls.liveOriginatedCalls() > 0 || engine.calls.trackedChannels() > 0) &&
    Date.now() - drainStarted < 60_000
  )
    await new Promise((resolve) => setTimeout(resolve, 50));
  await engine.calls.settled();
  const drainSec = (Date.now() - drainStarted) / 1000;
  const ended = await engine.registry.getSingleMetric('aricrm_calls_ended_total')?.get();
  const endedOut = (ended?.values ?? [])
    .filter((v) => v.labels.direction === 'out')
    .reduce((sum, v) => sum + v.value, 0);
  gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  sim.send({ type: 'webhooks', id: 1 });
  const [{ total: webhooks }] = (await once(sim, 'message')) as [{ total: number }];

  const accepted = result.byStatus['202'] ?? [];
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const statuses = Object.entries(result.byStatus)
    .map(([status, times]) => `${status}: ${times.length}`)
    .join(', ');
  const lines = [
    `POST /v1/calls at ${rate} requests/s for ${durationSec} s after a ${WARMUP_SEC} s warm-up (loadtest, one request every ${(1000 / rate).toFixed(1)} ms; MAX_LIVE_ORIGINATED_CALLS ${maxLive}; operators and customers answer in ~10 ms, customers talk ${talk}; webhooks on)`,
    `  answered:                       ${result.requests} in ${result.durationSec.toFixed(1)} s (${(result.requests / result.durationSec).toFixed(0)}/s): ${statuses}; errors ${result.errors}; ${result.connections} connection${result.connections === 1 ? '' : 's'} used, ${result.connectionsOpened} opened during the run`,
    `  client p50 / p99, all:          ${p50p99(Object.values(result.byStatus).flat())}`,
    `  client p50 / p99, 202 accepted: ${p50p99(accepted)}`,
    `  server p50 / p99, all:          ${p50p99(Object.values(serverMs).flat())}`,
    `  server p50 / p99, 202 accepted: ${p50p99(serverMs['202'] ?? [])}`,
    `  event-loop delay p50 / p99:     ${ms(lag.percentile(50) / 1e6)} / ${ms(lag.percentile(99) / 1e6)} (1 ms timer)`,
    `  load generator's loop delay p99: ${ms(result.lagP99Ms)} (its own process; counted in the client figures)`,
    `  engine process CPU under load:  ${((cpuMs / loadMs) * 100).toFixed(0)} % of a core, ${(cpuMs / Math.max(1, result.requests)).toFixed(2)} ms per request (all the engine's threads)`,
    `  calls started / ended (warm-up included): ${started} / ${endedOut} (peak ${peakLive} live; drained ${drainSec.toFixed(1)} s after the load)`,
    `  left behind:                    ${engine.calls.activeCalls().length} calls, ${engine.calls.trackedChannels()} channels`,
    `  webhooks delivered (warm-up included): ${webhooks}`,
    `  engine heap before / after:     ${(heapBefore / 1048576).toFixed(1)} MiB / ${(heapAfter / 1048576).toFixed(1)} MiB`,
  ];

  if (profileLine) lines.push(profileLine);
  await engine.stop();
  sim.send({ type: 'close' });
  await once(sim, 'exit');
  return lines;
}

/** Run the scenarios (or the one the environment describes) and print their figures. */
export async function runApiBenchmark(): Promise<void> {
  const env = process.env;
  const custom = ['RATE', 'DURATION_SEC', 'MAX_LIVE', 'TALK_MS'].some(
    (k) => env[`BENCH_API_${k}`] !== undefined,
  );
  const scenarios: ApiScenario[] = custom
    ? [
        {
          rate: Number(env.BENCH_API_RATE ?? 500),
          durationSec: Number(env.BENCH_API_DURATION_SEC ?? 10),
          maxLive: Number(env.BENCH_API_MAX_LIVE ?? 20),
          talkMs: Number(env.BENCH_API_TALK_MS ?? 1000),
        },
      ]
    : [
        { rate: 500, durationSec: 10, maxLive: 20, talkMs: 1000 },
        { rate: 100, durationSec: 10, maxLive: 10_000, talkMs: 200 },
      ];
  for (const scenario of scenarios)
    process.stdout.write(`${(await runApiScenario(scenario)).join('\n')}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  await runApiBenchmark();
