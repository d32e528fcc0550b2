/**
 * What this machine charges for waking up (printed first by `npm run bench`), so the figures
 * after it can be read: the engine's latency and CPU per call at low call rates are dominated by
 * it on a virtual machine.
 *
 * A screen pop crosses several idle threads and processes: the simulator's WebSocket write wakes
 * the engine, the journal's commit wakes the SQLite thread and its answer wakes the engine again,
 * the webhook POST wakes the CRM stub. Back to back (a busy machine) such a hop costs tens of
 * microseconds; after the thread slept, it costs what the hypervisor charges to wake a virtual
 * CPU, which on the 2-core VM of this project was ~0.2-0.6 ms of latency and ~0.2 ms of CPU per
 * hop (2026-11-22). That is also why the engine's CPU per call at 50 calls/s is about three
 * times its CPU per call at capacity: at capacity one wake-up serves many calls.
 *
 * Measured here, in this process, with a worker thread that echoes messages:
 * - `timer wake-up`: CPU of one `setTimeout(2 ms)` cycle of an otherwise idle event loop;
 * - `thread round trip`: `postMessage` to the worker and its answer back, latency and CPU of both
 *   threads, back to back and after 2 ms of idleness each time.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

/** One measured figure: mean latency and mean CPU of the whole process per iteration, µs. */
export interface WakeupFigure {
  latencyUs: number;
  cpuUs: number;
}

/** The calibration's figures. */
export interface WakeupCosts {
  /** `setTimeout(2 ms)` on an idle loop (latency is the overshoot past 2 ms). */
  timer: WakeupFigure;
  /** Thread round trip with the threads busy (back to back). */
  roundTripBusy: WakeupFigure;
  /** Thread round trip after 2 ms of idleness (minus the timer's own CPU). */
  roundTripIdle: WakeupFigure;
}

const ECHO = `require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));`;
const IDLE_MS = 2;

/**
 * Measure the wake-up costs (about 3 s).
 *
 * @param iterations round trips per figure (default 500)
 */
export async function measureWakeups(iterations = 500): Promise<WakeupCosts> {
  const worker = new Worker(ECHO, { eval: true });
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const roundTrip = (): Promise<unknown> =>
    new Promise((resolve) => {
      worker.once('message', resolve);
      worker.postMessage({ sql: 'insert into calls values (?, ?, ?)', parameters: [1, 'a', 2] });
    });
  const measure = async (
    n: number,
    step: () => Promise<unknown>,
    idle: boolean,
  ): Promise<WakeupFigure> => {
    let latency = 0;
    let cpu = 0;
    for (let i = 0; i < n; i++) {
      if (idle) await sleep(IDLE_MS);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await step();
      latency += performance.now() - t0;
      const c = process.cpuUsage(c0);
      cpu += c.user + c.system;
    }
    return { latencyUs: (latency / n) * 1000, cpuUs: cpu / n };
  };
  try {
    await measure(200, roundTrip, false); // warm-up: the worker starts, code is compiled
    const timer = await measure(iterations, () => sleep(IDLE_MS), false);
    timer.latencyUs = Math.max(0, timer.latencyUs - IDLE_MS * 1000);
    const roundTripBusy = await measure(iterations * 4, roundTrip, false);
    const roundTripIdle = await measure(iterations, roundTrip, true);
    return { timer, roundTripBusy, roundTripIdle };
  } finally {
    await worker.terminate();
  }
}

/** The calibration as printed lines. */
export function describeWakeups(costs: WakeupCosts): string[] {
  const f = (v: number): string => `${v.toFixed(0)} µs`;
  const row = (label: string, text: string): string => `  ${label.padEnd(46)} ${text}`;
  return [
    `This machine's wake-up costs (read the figures below with them):`,
    row(
      'timer wake-up of an idle event loop:',
      `CPU ${f(costs.timer.cpuUs)} (late by ${f(costs.timer.latencyUs)})`,
    ),
    row(
      'thread round trip, threads busy:',
      `${f(costs.roundTripBusy.latencyUs)}, CPU ${f(costs.roundTripBusy.cpuUs)}`,
    ),
    row(
      `thread round trip, threads idle for ${IDLE_MS} ms:`,
      `${f(costs.roundTripIdle.latencyUs)}, CPU ${f(costs.roundTripIdle.cpuUs)}`,
    ),
  ];
}
