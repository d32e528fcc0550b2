/**
 * `promtool check metrics` (Prometheus' own linter of the text exposition format) for the metrics
 * tests. promtool comes with the Debian package `prometheus`; `.ci/run` provides it when missing.
 * Under CI (env `CI` or `REQUIRE_PROMTOOL` set) a missing promtool fails the test; on a developer
 * machine without it the test is skipped with a message saying how to get it.
 */
import { spawnSync } from 'node:child_process';
import type { Context } from 'mocha';

/** The promtool command to run (env PROMTOOL, else `promtool` on PATH), or undefined. */
export function findPromtool(): string | undefined {
  for (const candidate of [process.env.PROMTOOL, 'promtool']) {
    if (!candidate) continue;
    const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

/**
 * The promtool command, or: throw under CI, skip the current test elsewhere. Call it from a
 * `function () {}` test or hook so `this` is the mocha context.
 */
export function requirePromtool(context: Context): string {
  const promtool = findPromtool();
  if (promtool) return promtool;
  const howTo =
    'promtool not found (set PROMTOOL or put it on PATH; Debian: apt-get install prometheus)';
  if (process.env.CI || process.env.REQUIRE_PROMTOOL)
    throw new Error(`${howTo}: required under CI to check the /metrics exposition`);
  process.stderr.write(`      skipped: ${howTo}\n`);
  context.skip();
}

/** Result of `promtool check metrics` on an exposition text. */
export interface PromtoolResult {
  /** Exit code: 0 when the exposition is valid and passes the lint rules. */
  status: number | null;
  /** What promtool wrote (problems, one per line). */
  output: string;
}

/** Run `promtool check metrics` with `exposition` on stdin. */
export function promtoolCheckMetrics(promtool: string, exposition: string): PromtoolResult {
  const run = spawnSync(promtool, ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}
