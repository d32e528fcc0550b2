/**
 * `npm run bench`: the engine's performance figures against the PBX
 * simulator, on this machine. Prints figures with their targets; asserts nothing.
 *
 * The engine runs in this process, alone; the simulator, a CRM stub (route lookups, webhook
 * receiver) and the load driver run in a second process (bench/sim-process.ts), as Asterisk and
 * the CRM would. Each scenario gets a fresh engine with a fresh SQLite store. Every call is a full
 * inbound call: route lookup at the CRM stub (which answers `dial` one extension, `record: true`),
 * operator leg created and dialled, answered after 1 s, bridged and recorded, the caller hangs
 * up after 2 s of talk, the call stored, signed webhooks delivered (started, ringing, answered,
 * ended, recording.ready). Simulator time scale 0.05: 1 s of simulated time is 50 ms of real
 * time (ring 50 ms, talk 100 ms), and a 2 s recording is a 32 KB WAV file.
 *
 * 1. Screen pop: `--pop-live` calls (200) are held up (answered, bridged); then `--pop-calls`
 *    more (1000) arrive at `--pop-rate` calls/s (50). Latency: the simulator handing the operator
 *    leg's `Dial RINGING` to its WebSocket → the `call.ringing` webhook arriving at the CRM stub
 *    (one clock). Target p99 ≤ 5 ms.
 * 2. Throughput: `--calls` calls (3000) offered at `--rate` calls/s (300), then the same number in
 *    a closed loop of `--concurrency` (100) calls in flight (capacity). Calls/s are counted over
 *    the window in which calls completed (first to last done). Targets: capacity ≥ 300 calls/s;
 *    at 300/s offered the engine keeps up (completes ≥ 99 % of the offered rate: the completions
 *    cannot outrun it) with event-loop lag p99 ≤ 20 ms.
 * 3. Heap: `--soak` calls (50 000) in a closed loop, heap after vs before (target: no growth,
 *    within 1 MiB); then `--live` calls (5000) held up, retained heap per live call (target
 *    ≤ 10 KB). Heap is measured after `global.gc()` (the script runs node with --expose-gc), once
 *    the engine is idle (call steps, store writes and webhooks done), and without the bench's own
 *    figures (it runs in the engine's process). The route cache is off in this scenario (every
 *    bench caller is new: a bounded cache filling up is not a leak). The heap before follows a
 *    warm-up of 3000 calls at the soak's concurrency (settled JIT code, the same connections).
 *
 * 4. Autocall (`--autocall`, or `--only autocall`): a campaign of `--autocall-jobs` notification
 *    jobs (2000) with `maxConcurrent` 256 and `callsPerSecond` 100 (the most a campaign allows),
 *    placed by the engine's notification-call flow on the simulator (the customer answers after
 *    1 s, one 1.4 s sound plays, the engine hangs up: delivered). Jobs per second (jobs finished
 *    over the run), scheduler lag p99 (each attempt's pacing slot, the first attempt's start plus
 *    k / callsPerSecond, → the scheduler handing it to the flow, which sends the originate at
 *    once), engine CPU per job, store size after (the DATA_DIR's files). Then pacing: a campaign
 *    of `--pacing-jobs` (400) at `callsPerSecond: 20`, the rate achieved over the window from the
 *    first attempt to the last (target 20 ± 5 %).
 *
 * 5. Live stream (`--stream`, or `--only stream`): `--stream-sockets` (1000) operators, each with
 *    its own extension and one live stream socket (`GET /v1/stream?token=`, opened in a third
 *    process as the operators' browsers, bench/browsers-process.ts), while `--stream-calls` calls
 *    (2000) arrive at `--stream-rate` calls/s (100), each ringing one of them. Latency: the simulator handing the
 *    operator leg's `Dial RINGING` to its WebSocket → the `call.ringing` message arriving on that
 *    operator's socket (target p99 ≤ 20 ms), and its parts; the processes stamp with the
 *    machine's clock (`performance.timeOrigin + performance.now()`), which may differ between
 *    processes by a fraction of a millisecond. Memory per connected socket: the engine's
 *    heap (after full collections) and RSS with the sockets open against before (target heap
 *    ≤ 50 KB per socket). Engine CPU per message: the same calls are placed without sockets first;
 *    the CPU time added by the sockets over the stream messages sent.
 *
 * Held calls (screen pop, heap) are answered and bridged but not recorded (see sim-process.ts).
 *
 * First it prints what this machine charges for a wake-up (bench/machine.ts): on a virtual
 * machine an idle thread's wake-up costs far more than a busy one's, which governs the latency
 * figures and the CPU per call at low rates.
 *
 * BENCH_JOURNAL_LOG=false runs the engine without its journal log (JOURNAL_LOG, docs/store.md),
 * to compare: the screen pop then waits for the `call.ringing` commit.
 *
 * Options (also as environment variables BENCH_<NAME>, e.g. BENCH_SOAK=5000):
 *   --quick                  smaller counts (pop-calls 300, calls 1000, soak 5000, live 1000,
 *                            autocall-jobs 500, pacing-jobs 160)
 *   --only pop,throughput,heap,autocall   run only these scenarios
 *   --pop-live N --pop-calls N --pop-rate N --calls N --rate N --concurrency N --soak N --live N
 *   --autocall-jobs N --pacing-jobs N
 *   --autocall               run only the autocall scenario
 *   --stream                 run only the live stream scenario
 *   --stream-sockets N --stream-calls N --stream-rate N
 *   --profile DIR            CPU profiles of both processes while the screen-pop calls arrive,
 *                            during the throughput capacity run, while the live calls are
 *                            placed and during both live stream runs (`stream-base`: without
 *                            sockets, `stream`: with them) (.cpuprofile files, open them in
 *                            Chrome DevTools), and a summary of each
 *   --heap-snapshots DIR     heap snapshots of the engine before and after the soak and after the
 *                            live calls ended, and what grew
 *   --api                    afterwards, the API benchmark of bench/api.ts
 *   --log LEVEL              the engine logs at LEVEL (e.g. info, as in production) as JSON lines
 *                            to /dev/null, formatting and redaction included; default silent
 *                            (about 0.3 ms of CPU per call less than info, measured)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { loadConfig } from '../src/config/load.ts';
import { createWriteStream } from 'node:fs';
import {
  createLogger,
  createSilentLogger,
  type Logger,
  type LogLevel,
} from '../src/logging/logger.ts';
import { ENGINE_EVENT_FILTER } from '../src/ari/gateway.ts';
import { startEngine, type Engine, type EngineOverrides } from '../src/main.ts';
import type { NotificationDialer } from '../src/autocalls/dialer.ts';
import type { LoadOrder, LoadReport, PopSample } from './sim-process.ts';
import { summariseHeapGrowth } from './heap-diff.ts';
import { describeWakeups, measureWakeups } from './machine.ts';
import { summariseProfile } from './profile-summary.ts';
import { OperatorTokens } from '../src/security/operator-tokens.ts';

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const NUMERIC = [
  'pop-live',
  'pop-calls',
  'pop-rate',
  'calls',
  'rate',
  'concurrency',
  'soak',
  'live',
  'autocall-jobs',
  'pacing-jobs',
  'stream-sockets',
  'stream-calls',
  'stream-rate',
] as const;
type NumericOption = (typeof NUMERIC)[number];

const FULL: Record<NumericOption, number> = {
  'pop-live': 200,
  'pop-calls': 1000,
  'pop-rate': 50,
  calls: 3000,
  rate: 300,
  concurrency: 100,
  soak: 50_000,
  live: 5000,
  'autocall-jobs': 2000,
  'pacing-jobs': 400,
  'stream-sockets': 1000,
  'stream-calls': 2000,
  'stream-rate': 100,
};
const QUICK: Partial<Record<NumericOption, number>> = {
  'pop-calls': 300,
  calls: 1000,
  soak: 5000,
  live: 1000,
  'autocall-jobs': 500,
  'pacing-jobs': 160,
  'stream-calls': 600,
};
const SCENARIOS = ['pop', 'throughput', 'heap', 'autocall', 'stream'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Options extends Record<NumericOption, number> {
  only: Set<Scenario>;
  profileDir?: string;
  heapSnapshotDir?: string;
  /** `--log LEVEL`: the engine's log level (lines go to /dev/null); silent when absent. */
  logLevel?: LogLevel;
  api: boolean;
  quick: boolean;
}

function envName(option: string): string {
  return `BENCH_${option.replace(/-/g, '_').toUpperCase()}`;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      profile: { type: 'string' },
      'heap-snapshots': { type: 'string' },
      log: { type: 'string' },
      api: { type: 'boolean' },
      autocall: { type: 'boolean' },
      stream: { type: 'boolean' },
      ...Object.fromEntries(NUMERIC.map((name) => [name, { type: 'string' as const }])),
    },
    strict: true,
  });
  const env = process.env;
  const flag = (name: string): boolean =>
    values[name as keyof typeof values] === true ||
    ['1', 'true'].includes(env[envName(name)] ?? '');
  const quick = flag('quick');
  const numbers = {} as Record<NumericOption, number>;
  for (const name of NUMERIC) {
    const raw = (values[name as keyof typeof values] as string | undefined) ?? env[envName(name)];
    const value =
      raw === undefined ? ((quick ? QUICK[name] : undefined) ?? FULL[name]) : Number(raw);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name}: not a number: ${raw}`);
    numbers[name] = Math.floor(value);
  }
  // `--autocall` alone runs the notification-call scenario only (as `--only autocall`).
  // `--stream` alone runs the live stream scenario only.
  const onlyRaw =
    values.only ??
    env.BENCH_ONLY ??
    (flag('autocall') ? 'autocall' : flag('stream') ? 'stream' : undefined);
  const only = new Set<Scenario>(
    onlyRaw ? (onlyRaw.split(',').map((s) => s.trim()) as Scenario[]) : SCENARIOS,
  );
  for (const s of only)
    if (!SCENARIOS.includes(s))
      throw new Error(`--only: unknown scenario ${s} (${SCENARIOS.join(',')})`);
  const profile = values.profile ?? env.BENCH_PROFILE;
  const snapshots = values['heap-snapshots'] ?? env.BENCH_HEAP_SNAPSHOTS;
  const logLevel = (values.log ?? env.BENCH_LOG) as LogLevel | undefined;
  const LEVELS: LogLevel[] = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];
  if (logLevel !== undefined && !LEVELS.includes(logLevel))
    throw new Error(`--log: unknown level ${logLevel} (${LEVELS.join(',')})`);
  return {
    ...numbers,
    only,
    quick,
    api: flag('api'),
    ...(logLevel ? { logLevel } : {}),
    ...(profile ? { profileDir: resolve(profile) } : {}),
    ...(snapshots ? { heapSnapshotDir: resolve(snapshots) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fixed = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const msPair = (values: readonly number[]): string =>
  `${fixed(percentile(values, 50), 2)} / ${fixed(percentile(values, 99), 2)} ms`;
const mib = (bytes: number): string => `${fixed(bytes / 1048576)} MiB`;
const pad = (s: string, n: number): string => s.padEnd(n);

/** One row of the final summary. */
interface SummaryRow {
  scenario: string;
  figure: string;
  result: string;
  target: string;
  ok: boolean | undefined;
}

const summary: SummaryRow[] = [];
const out = (line = ''): void => void process.stdout.write(`${line}\n`);

/** Event-loop delay of this process: how late a 1 ms timer fires (the 1 ms subtracted). */
class LagMonitor {
  private readonly histogram = monitorEventLoopDelay({ resolution: 1 });
  start(): void {
    this.histogram.reset();
    this.histogram.enable();
  }
  stop(): { p50: number; p99: number; max: number } {
    this.histogram.disable();
    const ms = (ns: number): number => Math.max(0, ns / 1e6 - 1);
    return {
      p50: ms(this.histogram.percentile(50)),
      p99: ms(this.histogram.percentile(99)),
      max: ms(this.histogram.max),
    };
  }
}

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * Wait until the engine has nothing left to do for the calls placed so far: call steps run, the
 * journal committed, webhooks delivered, and work that follows a call's end (recording download,
 * `recording.ready`) done: nothing pending twice in a row 250 ms apart.
 */
async function quiesce(engine: Engine): Promise<void> {
  for (let quiet = 0; quiet < 2;) {
    await engine.calls.settled();
    await engine.journal.flush(10_000);
    await engine.webhooks.drain(10_000);
    const before = engine.webhooks.pending();
    await new Promise((r) => setTimeout(r, 250));
    quiet = before === 0 && engine.webhooks.pending() === 0 ? quiet + 1 : 0;
  }
}

/** Heap used after full collections (timers and finalizers get a turn in between). */
async function settledHeap(): Promise<number> {
  if (!gc) return process.memoryUsage().heapUsed;
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage().heapUsed;
}

// ---------------------------------------------------------------------------------------------
// The outside world (simulator + CRM stub) and the engine
// ---------------------------------------------------------------------------------------------

interface Peer {
  child: ChildProcess;
  url: string;
  username: string;
  password: string;
  crmUrl: string;
}

const OPERATORS = Array.from({ length: 50 }, (_, i) => String(101 + i));
/** Simulated time: 1 s lasts 50 ms. */
const TIME_SCALE = 0.05;
/** How long callers talk before hanging up, simulated ms (operators answer after 1000). */
const TALK_SIM_MS = 2000;
let nextOrderId = 1;

async function startPeer(extensions: readonly string[] = OPERATORS): Promise<Peer> {
  const child = fork(new URL('./sim-process.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      BENCH_EXTENSIONS: extensions.join(','),
      BENCH_TIME_SCALE: String(TIME_SCALE),
    },
  });
  const [ready] = (await once(child, 'message')) as [Omit<Peer, 'child'>];
  return { child, ...ready };
}

function request<T extends { id: number }>(
  peer: Pick<Peer, 'child'>,
  message: object,
  type: string,
): Promise<T> {
  const id = nextOrderId++;
  return new Promise<T>((resolvePromise, reject) => {
    const onMessage = (m: { type?: string; id?: number }): void => {
      if (m.type === type && m.id === id) {
        peer.child.off('message', onMessage);
        peer.child.off('exit', onExit);
        resolvePromise(m as T);
      }
    };
    const onExit = (code: number | null): void =>
      reject(new Error(`the benchmark's ${type} peer process exited (${code})`));
    peer.child.on('message', onMessage);
    peer.child.once('exit', onExit);
    peer.child.send({ ...message, id });
  });
}

/** A load order's outcome together with this process's view of the same period. */
interface Measured {
  report: LoadReport;
  engineCpuMs: number;
  /** Share of the time the engine's event loop was not waiting for I/O (0..1). */
  engineLoopBusy: number;
  engineLag: { p50: number; p99: number; max: number };
  /**
   * Throughput, calls per second: calls completed over the window in which they completed,
   * `(done - 1) / (first done → last done)`. Not `done / (first placed → last done)`: that adds
   * one call's own duration (ring, talk, recording download) to the window, so 1000 calls offered
   * at 300/s could never show more than about 278/s however fast the engine.
   */
  callsPerSec: number;
}

async function load(
  peer: Peer,
  order: Omit<LoadOrder, 'type' | 'id' | 'talkSimMs'> & { talkSimMs?: number },
): Promise<Measured> {
  const lag = new LagMonitor();
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  lag.start();
  const report = await request<LoadReport>(
    peer,
    { type: 'load', talkSimMs: TALK_SIM_MS, ...order },
    'report',
  );
  const engineLag = lag.stop();
  const used = process.cpuUsage(cpu);
  return {
    report,
    engineCpuMs: (used.user + used.system) / 1000,
    engineLoopBusy: performance.eventLoopUtilization(elu).utilization,
    engineLag,
    callsPerSec: report.done > 1 ? (report.done - 1) / (report.completingMs / 1000) : 0,
  };
}

async function release(peer: Peer): Promise<LoadReport> {
  return request<LoadReport>(peer, { type: 'release' }, 'report');
}

/** Engine-side timestamps of the screen pop (absolute ms), by caller number, while tracing. */
const trace = {
  on: false,
  ringingReceived: new Map<string, number>(),
  ringingEmitted: new Map<string, number>(),
  /** When the journal's commit handed `call.ringing` to the webhook dispatcher. */
  ringingCommitted: new Map<string, number>(),
};
const absNow = (): number => performance.timeOrigin + performance.now();

/** The engine's log level (`--log`); silent when undefined. Set once by main(). */
let engineLogLevel: LogLevel | undefined;

/** Silent, or JSON lines at `--log LEVEL` to /dev/null (the cost of production logging). */
function engineLogger(): Logger {
  if (!engineLogLevel) return createSilentLogger();
  return createLogger({ level: engineLogLevel, stream: createWriteStream('/dev/null') });
}

async function startBenchEngine(
  peer: Peer,
  env: Record<string, string> = {},
  overrides: Pick<EngineOverrides, 'notificationDialer'> = {},
): Promise<{ engine: Engine; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ari-crm-bench-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    HTTP_PORT: '0',
    LOG_LEVEL: 'error',
    DATA_DIR: dataDir,
    CRM_ROUTE_URL: `${peer.crmUrl}/route`,
    CRM_WEBHOOK_URL: `${peer.crmUrl}/hooks`,
    WEBHOOK_SECRET: 'bench-secret-0123456789abcdef',
    FALLBACK_ROUTE: 'ringall:101',
    ARI_URL: peer.url,
    ARI_USERNAME: peer.username,
    ARI_PASSWORD: peer.password,
    ...(process.env.BENCH_JOURNAL_LOG === undefined
      ? {}
      : { JOURNAL_LOG: process.env.BENCH_JOURNAL_LOG }),
    ...env,
  });
  const engine = await startEngine(config, {
    ...overrides,
    logger: engineLogger(),
    eventSinks: [
      {
        enqueue(event) {
          if (trace.on && event.type === 'call.ringing')
            trace.ringingEmitted.set(event.data.from, absNow());
        },
      },
    ],
  });
  // The journal hands each event to the dispatcher's enqueue once it is durable (in the journal
  // log, or committed without it): time the hand-off.
  const enqueue = engine.webhooks.enqueue.bind(engine.webhooks);
  engine.webhooks.enqueue = (event) => {
    if (trace.on && event.type === 'call.ringing')
      trace.ringingCommitted.set(event.data.from, absNow());
    enqueue(event);
  };
  engine.gateway.onEvent((event) => {
    if (!trace.on || event.type !== 'Dial' || event.dialstatus !== 'RINGING') return;
    const from = event.peer.caller.number;
    if (!trace.ringingReceived.has(from)) trace.ringingReceived.set(from, absNow());
  });
  return { engine, dataDir };
}

async function stopBenchEngine(run: { engine: Engine; dataDir: string }): Promise<void> {
  await run.engine.stop();
  rmSync(run.dataDir, { recursive: true, force: true });
}

function describe(m: Measured, label: string): string[] {
  const r = m.report;
  const wallSec = r.elapsedMs / 1000;
  const webhooks = Object.entries(r.webhooks)
    .map(([type, n]) => `${type.replace('call.', '')} ${n}`)
    .join(', ');
  return [
    `  ${pad(label, 34)} ${r.done} of ${r.placed} calls in ${fixed(wallSec, 2)} s (first placed to last done), completed at ${fixed(m.callsPerSec)} calls/s` +
      (r.failed ? `; ${r.failed} not answered` : '') +
      (r.refused ? `; ${r.refused} refused` : '') +
      (r.stalled ? '; STALLED' : ''),
    `  ${pad('', 34)} webhooks: ${webhooks || 'none'}; route lookups ${r.routeLookups}; recorded ${r.recorded}`,
    `  ${pad('', 34)} engine: CPU ${fixed((m.engineCpuMs / Math.max(1, r.elapsedMs)) * 100, 0)} % of a core, event loop busy ${fixed(m.engineLoopBusy * 100, 0)} %, lag p50 / p99 / max ${fixed(m.engineLag.p50, 2)} / ${fixed(m.engineLag.p99, 2)} / ${fixed(m.engineLag.max, 1)} ms`,
    `  ${pad('', 34)} simulator + CRM stub: CPU ${fixed((r.cpuMs / Math.max(1, r.elapsedMs)) * 100, 0)} % of a core, event-loop lag p99 ${fixed(r.lagMs.p99, 2)} ms, heap ${mib(r.memory.heapUsed)}, RSS ${mib(r.memory.rss)}`,
    ...eventVolumeLines(r),
    // Steadier than calls/s on a shared machine: CPU time each call cost, whatever else ran.
    `  ${pad('', 34)} per call: engine CPU ${fixed(m.engineCpuMs / Math.max(1, r.done), 2)} ms (event loop busy ${fixed((m.engineLoopBusy * r.elapsedMs) / Math.max(1, r.done), 2)} ms), simulator + CRM stub CPU ${fixed(r.cpuMs / Math.max(1, r.done), 2)} ms`,
  ];
}

/**
 * The ARI events of one real call of the bench's shape (inbound, operator dialled and answered,
 * bridged, recorded, caller hangs up), from the trace recorded on a real Asterisk 22
 * (`test/simulator/traces/inbound-answered.jsonl`): all of them, ChannelVarset among them, and
 * those the engine's event filter lets through.
 */
function realCallVolume(): { events: number; varsets: number; afterFilter: number } {
  const file = new URL('../test/simulator/traces/inbound-answered.jsonl', import.meta.url);
  const types = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { kind: string; event?: { type: string } })
    .filter((l) => l.kind === 'event')
    .map((l) => l.event?.type ?? '');
  const disallowed = new Set<string>(ENGINE_EVENT_FILTER.disallowed ?? []);
  return {
    events: types.length,
    varsets: types.filter((t) => t === 'ChannelVarset').length,
    afterFilter: types.filter((t) => !disallowed.has(t)).length,
  };
}

const REAL_CALL = realCallVolume();

/**
 * Events per call in the run next to a real call's: the simulator emits what Asterisk 22 emits
 * (ChannelVarset included), so the engine's event load is the real one; the engine's event filter
 * keeps the types it never reads off its WebSocket, on Asterisk as in the simulator. Only for
 * orders whose calls all ended (held calls have not had their hang-up events yet).
 */
function eventVolumeLines(r: LoadReport): string[] {
  if (r.held > 0 || r.done === 0) return [];
  return [
    `  ${pad('', 34)} ARI events per call: ${fixed(r.events.offered / r.done, 1)} emitted, ` +
      `${fixed(r.events.delivered / r.done, 1)} sent to the engine after its event filter ` +
      `(a real Asterisk 22 call like these: ${REAL_CALL.events} emitted, ${REAL_CALL.varsets} of ` +
      `them ChannelVarset; ${REAL_CALL.afterFilter} after the filter)`,
  ];
}

/**
 * Run `fn`; with `--profile DIR`, CPU-profile both processes meanwhile (`DIR/<name>-engine.cpuprofile`,
 * `DIR/<name>-simulator.cpuprofile`) and print a summary of each.
 */
async function profiled<T>(peer: Peer, o: Options, name: string, fn: () => Promise<T>): Promise<T> {
  if (!o.profileDir) return fn();
  mkdirSync(o.profileDir, { recursive: true });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  await request(peer, { type: 'profile', action: 'start' }, 'profile');
  const result = await fn();
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  const enginePath = join(o.profileDir, `${name}-engine.cpuprofile`);
  writeFileSync(enginePath, JSON.stringify(profile));
  const simPath = join(o.profileDir, `${name}-simulator.cpuprofile`);
  await request(peer, { type: 'profile', action: 'stop', file: simPath }, 'profile');
  out(`  CPU profiles: ${enginePath}, ${simPath}`);
  out(summariseProfile(enginePath, 'engine', 25));
  out(summariseProfile(simPath, 'simulator + CRM stub', 15));
  return result;
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/**
 * Calls that are not measured, so that the engine runs optimised code and has opened the
 * connections the measured run needs (300 calls, 50 in flight, unless told otherwise).
 */
async function warmUp(peer: Peer, order = { calls: 300, concurrency: 50 }): Promise<void> {
  const m = await load(peer, order);
  if (m.report.done < m.report.placed || m.report.stalled)
    throw new Error(`warm-up failed: ${JSON.stringify({ ...m.report, popMs: undefined })}`);
}

async function screenPop(peer: Peer, o: Options): Promise<void> {
  const run = await startBenchEngine(peer);
  try {
    await warmUp(peer);
    out(
      `Screen pop at ${o['pop-live']} live calls: ${o['pop-calls']} calls arriving at ${o['pop-rate']} calls/s`,
    );
    const held = await load(peer, { calls: o['pop-live'], concurrency: 100, hold: true });
    await quiesce(run.engine);
    const liveBefore = run.engine.calls.activeCalls().length;
    trace.on = true;
    const m = await profiled(peer, o, 'pop', () =>
      load(peer, { calls: o['pop-calls'], rate: o['pop-rate'] }),
    );
    trace.on = false;
    const liveAfter = run.engine.calls.activeCalls().length;
    const { samples } = await request<{ id: number; samples: PopSample[] }>(
      peer,
      { type: 'pop-samples' },
      'pop-samples',
    );
    const wsMs: number[] = [];
    const handlingMs: number[] = [];
    const commitMs: number[] = [];
    const deliveryMs: number[] = [];
    for (const s of samples) {
      const seen = trace.ringingReceived.get(s.from);
      const emitted = trace.ringingEmitted.get(s.from);
      const committed = trace.ringingCommitted.get(s.from);
      if (seen === undefined || emitted === undefined || committed === undefined) continue;
      // The bench's event listener runs after the engine's: an event handled in its own turn
      // (the ringing announced at once) is seen after its call.ringing was emitted.
      const received = Math.min(seen, emitted);
      wsMs.push(received - s.ringingAt);
      handlingMs.push(emitted - received);
      commitMs.push(committed - emitted);
      deliveryMs.push(s.webhookAt - committed);
    }
    trace.ringingReceived.clear();
    trace.ringingEmitted.clear();
    trace.ringingCommitted.clear();
    const released = await release(peer);
    const pop = m.report.popMs;
    out(
      `  ${pad('held calls:', 34)} ${held.report.done} answered and bridged; live calls in the engine ${liveBefore} before, ${liveAfter} after`,
    );
    out(
      `  ${pad('screen-pop latency p50 / p99:', 34)} ${msPair(pop)} (max ${fixed(Math.max(...pop), 2)} ms; ${pop.length} samples, ${m.report.popMissing} missing)`,
    );
    out(`  ${pad('  simulator → engine (WebSocket):', 34)} ${msPair(wsMs)}`);
    out(`  ${pad('  engine: event → call.ringing:', 34)} ${msPair(handlingMs)}`);
    out(`  ${pad('  call.ringing → durable (log/store):', 34)} ${msPair(commitMs)}`);
    out(
      `  ${pad('  durable → webhook arrives:', 34)} ${msPair(deliveryMs)} (dispatcher, HTTP, CRM stub)`,
    );
    for (const line of describe(m, 'arriving calls:')) out(line);
    out(
      `  ${pad('released held calls:', 34)} ${released.done} of ${released.placed} ended${released.stalled ? ' (STALLED)' : ''}`,
    );
    out();
    const p99 = percentile(pop, 99);
    summary.push({
      scenario: 'screen pop',
      figure: `latency p50 / p99 at ${o['pop-live']} live calls`,
      result: msPair(pop),
      target: 'p99 <= 5 ms',
      ok: m.report.popMissing === 0 && p99 <= 5,
    });
  } finally {
    await stopBenchEngine(run);
  }
}

async function throughput(peer: Peer, o: Options): Promise<void> {
  const run = await startBenchEngine(peer);
  try {
    await warmUp(peer);
    out(
      `Throughput: full inbound calls (route lookup, dial, bridge, record, hang-up, stored, webhooks)`,
    );
    const offered = await load(peer, { calls: o.calls, rate: o.rate });
    for (const line of describe(offered, `offered ${o.rate} calls/s:`)) out(line);
    await quiesce(run.engine);

    const closed = await profiled(peer, o, 'throughput', () =>
      load(peer, { calls: o.calls, concurrency: o.concurrency }),
    );
    for (const line of describe(closed, `closed loop, ${o.concurrency} in flight:`)) out(line);
    out();
    const ok = (m: Measured): boolean => m.report.done === m.report.placed && m.report.failed === 0;
    // At an offered rate the completions can only match it (give or take timing jitter): the
    // question is whether the engine keeps up; capacity (below) is where >= 300 is measured.
    summary.push({
      scenario: 'throughput',
      figure: `full calls/s completed at ${o.rate}/s offered`,
      result: `${fixed(offered.callsPerSec)} calls/s`,
      target: `keeps up (>= ${fixed(o.rate * 0.99)})`,
      ok: ok(offered) && offered.callsPerSec >= o.rate * 0.99,
    });
    summary.push({
      scenario: '',
      figure: `  event-loop lag p99 at ${o.rate}/s offered`,
      result: `${fixed(offered.engineLag.p99, 2)} ms`,
      target: '<= 20 ms',
      ok: offered.engineLag.p99 <= 20,
    });
    summary.push({
      scenario: '',
      figure: `full calls/s, capacity (${o.concurrency} in flight)`,
      result: `${fixed(closed.callsPerSec)} calls/s`,
      target: '>= 300 calls/s',
      ok: ok(closed) && closed.callsPerSec >= 300,
    });
    summary.push({
      scenario: '',
      figure: '  event-loop lag p99 at capacity',
      result: `${fixed(closed.engineLag.p99, 2)} ms`,
      target: '',
      ok: undefined,
    });
  } finally {
    await stopBenchEngine(run);
  }
}

/**
 * Drop a run's screen-pop times before the heap is measured: the bench runs in the engine's
 * process, and 50 000 of them (8 bytes each, 390 KiB) were counted as the engine's growth.
 */
function forgetPopTimes(m: Measured): void {
  m.report.popMs = [];
}

async function heap(peer: Peer, o: Options): Promise<void> {
  // Every bench caller is a new number: the route cache (bounded: 10 000 answers for 60 s, about
  // 0.5 KB each) would only fill up and show as growth; it is off here so growth means a leak.
  const run = await startBenchEngine(peer, { CRM_ROUTE_CACHE_TTL_MS: '0' });
  try {
    // The heap before is taken in the state the soak runs in: the same calls in flight (so the
    // same connections open to the CRM) and code the JIT has settled on (after 300 calls it is
    // still compiling: +0.5 MiB of code by the end of the soak, which is not a leak).
    await warmUp(peer, { calls: 3000, concurrency: o.concurrency });
    await quiesce(run.engine);
    const before = await settledHeap();
    const snapshot = (name: string): string | undefined => {
      if (!o.heapSnapshotDir) return undefined;
      mkdirSync(o.heapSnapshotDir, { recursive: true });
      return writeHeapSnapshot(join(o.heapSnapshotDir, `${name}.heapsnapshot`));
    };
    const beforeSnapshot = snapshot('before-soak');
    out(`Heap: ${o.soak} calls, then ${o.live} live calls held up`);
    const soak = await load(peer, { calls: o.soak, concurrency: o.concurrency, stallMs: 60_000 });
    forgetPopTimes(soak);
    await quiesce(run.engine);
    const afterSoak = await settledHeap();
    const afterSnapshot = snapshot('after-soak');
    for (const line of describe(soak, `${o.soak} calls:`)) out(line);
    out(
      `  ${pad('heap before / after:', 34)} ${mib(before)} / ${mib(afterSoak)} (${afterSoak >= before ? '+' : ''}${mib(afterSoak - before)})`,
    );
    if (beforeSnapshot && afterSnapshot) {
      out(`  heap snapshots: ${beforeSnapshot}, ${afterSnapshot}`);
      out(summariseHeapGrowth(beforeSnapshot, afterSnapshot, 15));
    }

    const held = await profiled(peer, o, 'live', () =>
      load(peer, { calls: o.live, concurrency: 200, hold: true, stallMs: 60_000 }),
    );
    forgetPopTimes(held);
    await quiesce(run.engine);
    const live = run.engine.calls.activeCalls().length;
    const withLive = await settledHeap();
    const perCall = (withLive - afterSoak) / Math.max(1, live);
    for (const line of describe(held, `${o.live} calls held up:`)) out(line);
    out(
      `  ${pad('heap with live calls:', 34)} ${mib(withLive)} with ${live} live calls = ${fixed(perCall / 1000, 2)} KB per live call`,
    );
    const released = await release(peer);
    await quiesce(run.engine);
    const afterRelease = await settledHeap();
    const releasedSnapshot = snapshot('after-live-calls-ended');
    out(
      `  ${pad('after they hung up:', 34)} ${released.done} of ${released.placed} ended; heap ${mib(afterRelease)}; engine tracks ${run.engine.calls.activeCalls().length} calls, ${run.engine.calls.trackedChannels()} channels`,
    );
    out(`  ${pad('process RSS:', 34)} ${mib(process.memoryUsage().rss)}`);
    if (afterSnapshot && releasedSnapshot) {
      out(`  heap snapshot: ${releasedSnapshot}; growth since the end of the soak:`);
      out(summariseHeapGrowth(afterSnapshot, releasedSnapshot, 15));
    }
    out();
    summary.push({
      scenario: 'heap',
      figure: `retained heap per live call (${live} live)`,
      result: `${fixed(perCall / 1000, 2)} KB`,
      target: '<= 10 KB',
      ok: live >= o.live && perCall <= 10_000,
    });
    summary.push({
      scenario: '',
      figure: `heap after ${o.soak} calls vs before`,
      result: `${afterSoak >= before ? '+' : ''}${mib(afterSoak - before)}`,
      target: 'no growth (< 1 MiB)',
      ok: soak.report.done === o.soak && afterSoak - before < 1048576,
    });
  } finally {
    await stopBenchEngine(run);
  }
}

// ---------------------------------------------------------------------------------------------
// Notification calls: a campaign on the simulator
// ---------------------------------------------------------------------------------------------

const BENCH_KEY = 'bench-api-key-0123456789abcdef';

/** `POST`/`GET` on the engine's API with the bench key; the JSON answer. */
async function api<T>(engine: Engine, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${engine.httpUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${BENCH_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Bytes of the files in `dir` (the SQLite database, its WAL, the journal log). */
function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true }))
    total += entry.isDirectory()
      ? dirBytes(join(dir, entry.name))
      : statSync(join(dir, entry.name)).size;
  return total;
}

/**
 * Run one campaign of `jobs` jobs to its end: the time each attempt was handed to the flow
 * (absolute ms, in order), the run's wall time and the engine's CPU over it.
 */
async function runCampaign(
  run: { engine: Engine },
  dials: number[],
  jobs: number,
  callsPerSecond: number,
): Promise<{ wallMs: number; cpuMs: number; counts: Record<string, number> }> {
  dials.length = 0;
  const campaign = await api<{ id: number }>(run.engine, '/v1/campaigns', {
    name: `bench ${callsPerSecond}/s`,
    maxConcurrent: 256,
    callsPerSecond,
    defaults: { files: ['hello-world'], tries: 1 },
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < jobs; i += 10_000) {
    const batch = Array.from({ length: Math.min(10_000, jobs - i) }, (_, k) => ({
      to: `+7495${String(6_000_000 + i + k).padStart(7, '0')}`,
    }));
    await api(run.engine, `/v1/campaigns/${campaign.id}/jobs`, { jobs: batch });
  }
  let counts: Record<string, number> = {};
  for (;;) {
    counts = (
      await api<{ counts: Record<string, number> }>(run.engine, `/v1/campaigns/${campaign.id}`)
    ).counts;
    if ((counts.queued ?? 0) === 0 && (counts.in_progress ?? 0) === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000, counts };
}

async function autocall(peer: Peer, o: Options): Promise<void> {
  // The scheduler hands each attempt to the engine's own flow through this wrapper, which notes
  // the time (the flow sends the originate at once).
  const dials: number[] = [];
  const flow: { dialer?: NotificationDialer } = {};
  const timed: NotificationDialer = {
    dial(job, attemptNo, signal) {
      dials.push(absNow());
      return flow.dialer!.dial(job, attemptNo, signal);
    },
  };
  const run = await startBenchEngine(
    peer,
    {
      API_KEYS: `bench:${BENCH_KEY}`,
      AUTOCALL_MAX_LIVE_CALLS: '300',
      CALLS_RATE_LIMIT_PER_MIN: '1000000',
    },
    { notificationDialer: timed },
  );
  flow.dialer = run.engine.calls.notificationDialer;
  try {
    const cps = 100;
    out(
      `Autocall: a campaign of ${o['autocall-jobs']} notification jobs, maxConcurrent 256, callsPerSecond ${cps} (answer after 1 s, one 1.4 s sound, delivered)`,
    );
    const big = await runCampaign(run, dials, o['autocall-jobs'], cps);
    const finished = Object.entries(big.counts)
      .filter(([status]) => status !== 'queued' && status !== 'in_progress')
      .reduce((n, [, c]) => n + c, 0);
    const jobsPerSec = finished / (big.wallMs / 1000);
    const first = dials[0] ?? 0;
    const lags = dials.map((t, k) => Math.max(0, t - (first + (k * 1000) / cps)));
    const lagP99 = percentile(lags, 99);
    const cpuPerJob = big.cpuMs / Math.max(1, finished);
    await quiesce(run.engine);
    const storeBytes = dirBytes(run.dataDir);
    out(
      `  ${pad('jobs:', 34)} ${finished} finished of ${o['autocall-jobs']} (${Object.entries(
        big.counts,
      )
        .filter(([, c]) => c > 0)
        .map(([s, c]) => `${s} ${c}`)
        .join(', ')}) in ${fixed(big.wallMs / 1000)} s = ${fixed(jobsPerSec)} jobs/s`,
    );
    out(
      `  ${pad('scheduler lag (slot → originate):', 34)} p50 ${fixed(percentile(lags, 50), 1)} ms, p99 ${fixed(lagP99, 1)} ms, max ${fixed(Math.max(0, ...lags), 1)} ms`,
    );
    out(`  ${pad('engine CPU per job:', 34)} ${fixed(cpuPerJob, 2)} ms`);
    out(
      `  ${pad('store size after:', 34)} ${mib(storeBytes)} (${fixed(storeBytes / Math.max(1, finished) / 1024, 2)} KiB per job)`,
    );

    const pacedCps = 20;
    const paced = await runCampaign(run, dials, o['pacing-jobs'], pacedCps);
    const windowMs = (dials[dials.length - 1] ?? 0) - (dials[0] ?? 0);
    const achieved = dials.length > 1 ? (dials.length - 1) / (windowMs / 1000) : 0;
    const pacedFirst = dials[0] ?? 0;
    const pacedLags = dials.map((t, k) => Math.max(0, t - (pacedFirst + (k * 1000) / pacedCps)));
    out(
      `  ${pad(`pacing (callsPerSecond ${pacedCps}):`, 34)} ${dials.length} attempts in ${fixed(windowMs / 1000, 2)} s = ${fixed(achieved, 2)} calls/s (${fixed(((achieved - pacedCps) / pacedCps) * 100, 1)} %); ${paced.counts.delivered ?? 0} delivered`,
    );
    out(
      `  ${pad(`  scheduler lag at ${pacedCps}/s:`, 34)} p50 ${fixed(percentile(pacedLags, 50), 1)} ms, p99 ${fixed(percentile(pacedLags, 99), 1)} ms, max ${fixed(Math.max(0, ...pacedLags), 1)} ms`,
    );
    out();
    summary.push({
      scenario: 'autocall',
      figure: `jobs/s (${o['autocall-jobs']} jobs, callsPerSecond ${cps})`,
      result: `${fixed(jobsPerSec)} jobs/s`,
      target: `>= ${fixed(cps * 0.95, 0)} (the pace)`,
      ok: finished === o['autocall-jobs'] && jobsPerSec >= cps * 0.95,
    });
    summary.push({
      scenario: '',
      figure: '  scheduler lag p99 (slot → originate)',
      result: `${fixed(lagP99, 1)} ms`,
      target: '<= 100 ms',
      ok: lagP99 <= 100,
    });
    summary.push({
      scenario: '',
      figure: '  engine CPU per job',
      result: `${fixed(cpuPerJob, 2)} ms`,
      target: '',
      ok: undefined,
    });
    summary.push({
      scenario: '',
      figure: '  store size after',
      result: mib(storeBytes),
      target: '',
      ok: undefined,
    });
    summary.push({
      scenario: '',
      figure: `pacing at callsPerSecond ${pacedCps}`,
      result: `${fixed(achieved, 2)} calls/s`,
      target: `${pacedCps} ± 5 %`,
      ok: Math.abs(achieved - pacedCps) <= pacedCps * 0.05,
    });
  } finally {
    await stopBenchEngine(run);
  }
}

/** The value of a counter of the engine's registry. */
async function counterValue(engine: Engine, name: string): Promise<number> {
  const metric = engine.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

async function liveStream(o: Options): Promise<void> {
  const sockets = o['stream-sockets'];
  const rate = o['stream-rate'];
  const callCount = o['stream-calls'];
  const extensions = Array.from({ length: sockets }, (_, i) => String(2000 + i));
  // Its own simulator and CRM stub: one operator per socket, the calls spread over all of them.
  const peer = await startPeer(extensions);
  const browsers = await startBrowsers();
  const secret = randomBytes(32).toString('hex');
  const run = await startBenchEngine(peer, {
    OPERATOR_TOKEN_SECRET: secret,
    HTTP_MAX_CONNECTIONS: String(sockets + 1024),
    // Every operator gets its socket; the places kept for admin streams come on top.
    STREAM_MAX_SOCKETS: String(sockets + 10),
  });
  try {
    out(
      `Live stream: ${sockets} operator sockets, ${callCount} calls at ${rate} calls/s, each ringing one of them`,
    );
    await load(peer, { calls: Math.min(300, callCount), rate });
    await quiesce(run.engine);
    // The same calls without sockets: what the calls alone cost the engine.
    const base = await profiled(peer, o, 'stream-base', () =>
      load(peer, { calls: callCount, rate }),
    );
    await quiesce(run.engine);
    const heapBefore = await settledHeap();
    const rssBefore = process.memoryUsage().rss;
    const tokens = new OperatorTokens({ secrets: [secret] });
    const opened = await request<{ id: number; opened: number; failed: number }>(
      browsers,
      {
        type: 'open',
        url: `${run.engine.httpUrl.replace(/^http/, 'ws')}/v1/stream`,
        tokens: extensions.map((extension) => tokens.mint(extension, 3600, 'bench').token),
      },
      'opened',
    );
    const heapAfter = await settledHeap();
    const rssAfter = process.memoryUsage().rss;
    const engineSockets = run.engine.stream.size;
    const messagesBefore = await counterValue(run.engine, 'aricrm_stream_messages_total');
    trace.on = true;
    const m = await profiled(peer, o, 'stream', () => load(peer, { calls: callCount, rate }));
    trace.on = false;
    await quiesce(run.engine);
    // The stream's own part: from the engine having `call.ringing` durable (the journal's
    // hand-off, as for the webhook) to the message on the socket.
    const { samples } = await request<{ id: number; samples: PopSample[] }>(
      peer,
      { type: 'pop-samples' },
      'pop-samples',
    );
    const ringing = await request<{ id: number; at: Array<[string, number]> }>(
      browsers,
      { type: 'ringing' },
      'ringing',
    );
    const streamAt = new Map(ringing.at);
    const latency: number[] = [];
    let missing = 0;
    const durableToStream: number[] = [];
    const durableToWebhook: number[] = [];
    const wsMs: number[] = [];
    const handlingMs: number[] = [];
    const commitMs: number[] = [];
    for (const s of samples) {
      const arrived = streamAt.get(s.from);
      if (arrived === undefined) missing++;
      else latency.push(arrived - s.ringingAt);
      const committed = trace.ringingCommitted.get(s.from);
      if (committed === undefined) continue;
      if (arrived !== undefined) durableToStream.push(arrived - committed);
      durableToWebhook.push(s.webhookAt - committed);
      const seen = trace.ringingReceived.get(s.from);
      const emitted = trace.ringingEmitted.get(s.from);
      if (seen === undefined || emitted === undefined) continue;
      // The bench's event listener runs after the engine's: an event handled in its own turn
      // (the ringing announced at once) is seen after its call.ringing was emitted.
      const received = Math.min(seen, emitted);
      wsMs.push(received - s.ringingAt);
      handlingMs.push(emitted - received);
      commitMs.push(committed - emitted);
    }
    trace.ringingReceived.clear();
    trace.ringingEmitted.clear();
    trace.ringingCommitted.clear();
    const messages =
      (await counterValue(run.engine, 'aricrm_stream_messages_total')) - messagesBefore;
    const closed = await request<{ id: number; messages: number }>(
      browsers,
      { type: 'close' },
      'closed',
    );
    const heapPerSocket = (heapAfter - heapBefore) / Math.max(1, opened.opened);
    const rssPerSocket = (rssAfter - rssBefore) / Math.max(1, opened.opened);
    const cpuPerMessageMs = (m.engineCpuMs - base.engineCpuMs) / Math.max(1, messages);
    out(
      `  ${pad('sockets:', 34)} ${opened.opened} open (${opened.failed} failed); engine stream sockets ${engineSockets}`,
    );
    for (const line of describe(base, 'calls without sockets:')) out(line);
    for (const line of describe(m, 'calls with sockets:')) out(line);
    out(
      `  ${pad('ringing → stream message p50 / p99:', 34)} ${msPair(latency)} (max ${fixed(Math.max(...latency), 2)} ms; ${latency.length} samples, ${missing} missing)`,
    );
    out(
      `  ${pad('  same calls, call.ringing webhook:', 34)} ${msPair(m.report.popMs)} (the screen pop to the CRM, for comparison)`,
    );
    out(`  ${pad('  simulator → engine (WebSocket):', 34)} ${msPair(wsMs)}`);
    out(`  ${pad('  engine: event → call.ringing:', 34)} ${msPair(handlingMs)}`);
    out(`  ${pad('  call.ringing → durable (log/store):', 34)} ${msPair(commitMs)}`);
    out(
      `  ${pad('  durable → stream message:', 34)} ${msPair(durableToStream)} (hand-off, fan-out, socket)`,
    );
    out(`  ${pad('  durable → webhook arrives:', 34)} ${msPair(durableToWebhook)}`);
    out(
      `  ${pad('messages:', 34)} ${messages} sent by the engine, ${closed.messages} received by the sockets`,
    );
    out(
      `  ${pad('memory per socket:', 34)} heap ${fixed(heapPerSocket / 1024, 1)} KB, RSS ${fixed(rssPerSocket / 1024, 1)} KB`,
    );
    out(
      `  ${pad('engine CPU:', 34)} ${fixed(base.engineCpuMs, 0)} ms without sockets, ${fixed(m.engineCpuMs, 0)} ms with: ${fixed(cpuPerMessageMs * 1000, 1)} µs per message`,
    );
    out();
    summary.push({
      scenario: 'stream',
      figure: `ringing → stream message p99 (${sockets} sockets, ${rate} calls/s)`,
      result: `${fixed(percentile(latency, 99), 2)} ms`,
      target: '≤ 20 ms',
      ok: percentile(latency, 99) <= 20 && missing === 0 && latency.length > 0,
    });
    summary.push({
      scenario: '',
      figure: '  durable → stream message p99',
      result: `${fixed(percentile(durableToStream, 99), 2)} ms`,
      target: '',
      ok: undefined,
    });
    summary.push({
      scenario: '',
      figure: '  p50',
      result: `${fixed(percentile(latency, 50), 2)} ms`,
      target: '',
      ok: undefined,
    });
    summary.push({
      scenario: '',
      figure: 'engine heap per connected socket',
      result: `${fixed(heapPerSocket / 1024, 1)} KB`,
      target: '≤ 50 KB',
      ok: heapPerSocket <= 50 * 1024,
    });
    summary.push({
      scenario: '',
      figure: 'engine CPU per stream message',
      result: `${fixed(cpuPerMessageMs * 1000, 1)} µs`,
      target: '',
      ok: undefined,
    });
  } finally {
    if (browsers.child.exitCode === null) browsers.child.kill();
    await stopBenchEngine(run);
    peer.child.send({ type: 'close' });
    await once(peer.child, 'exit');
  }
}

/** The operators' browsers, in a process of their own (bench/browsers-process.ts). */
async function startBrowsers(): Promise<{ child: ChildProcess }> {
  const child = fork(new URL('./browsers-process.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
  });
  await once(child, 'message');
  return { child };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions();
  engineLogLevel = o.logLevel;
  if (!gc) out('note: run with node --expose-gc (npm run bench does) for exact heap figures');
  const peer = await startPeer();
  const started = performance.now();
  out(
    `ari-crm benchmark${o.quick ? ' (--quick)' : ''}: engine in this process, simulator + CRM stub in another; ` +
      `time scale ${TIME_SCALE} (ring ${1000 * TIME_SCALE} ms, talk ${TALK_SIM_MS * TIME_SCALE} ms); ${OPERATORS.length} operators; ` +
      `engine logs ${o.logLevel ? `at ${o.logLevel} to /dev/null` : 'silenced (--log info for production logging)'}`,
  );
  out();
  for (const line of describeWakeups(await measureWakeups())) out(line);
  out();
  try {
    if (o.only.has('pop')) await screenPop(peer, o);
    if (o.only.has('throughput')) await throughput(peer, o);
    if (o.only.has('heap')) await heap(peer, o);
    if (o.only.has('autocall')) await autocall(peer, o);
    if (o.only.has('stream')) await liveStream(o);
  } finally {
    peer.child.send({ type: 'close' });
    await once(peer.child, 'exit');
  }
  out(`Summary (${fixed((performance.now() - started) / 1000, 0)} s)`);
  for (const row of summary)
    out(
      `  ${pad(row.scenario, 11)} ${pad(row.figure, 46)} ${pad(row.result, 22)} ${pad(row.target, 20)} ${row.ok === undefined ? '' : row.ok ? 'ok' : 'MISSED'}`,
    );
  if (o.api) {
    out();
    const { runApiBenchmark } = await import('./api.ts');
    await runApiBenchmark();
  }
}

await main();
