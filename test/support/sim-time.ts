/**
 * Waiting on the simulator's clock rather than on the wall clock: simulated time runs
 * `1 / timeScale` times faster than real time, but stands still while the machine is too busy to
 * run the simulator's timers, so "3 s simulated = 60 ms real" holds only on an idle machine.
 */
import type { PbxSimulator } from '../../src/simulator/index.ts';
import { until } from './until.ts';

/** Asterisk's `2026-12-06T05:27:06.002+0000` in epoch ms. */
export function asteriskTime(timestamp: string): number {
  return Date.parse(timestamp.replace(/\+0000$/, 'Z'));
}

/** The simulator's current time, epoch ms (the timestamp of `GET /ari/asterisk/ping`). */
export async function simulatedNow(sim: PbxSimulator): Promise<number> {
  const auth = Buffer.from(`${sim.username}:${sim.password}`).toString('base64');
  const response = await fetch(`${sim.url}/ari/asterisk/ping`, {
    headers: { authorization: `Basic ${auth}` },
  });
  const body = (await response.json()) as { timestamp: string };
  return asteriskTime(body.timestamp);
}

/** Resolve once the simulator's clock reads `atMs` (epoch ms) or later. */
export async function untilSimulatedTime(sim: PbxSimulator, atMs: number): Promise<void> {
  await until(
    async () => (await simulatedNow(sim)) >= atMs,
    `simulated time ${new Date(atMs).toISOString()}`,
  );
}

/** Resolve once `ms` of simulated time have passed from now. */
export async function simulatedTimePasses(sim: PbxSimulator, ms: number): Promise<void> {
  await untilSimulatedTime(sim, (await simulatedNow(sim)) + ms);
}
