/** Small helpers for the ARI gateway tests: captured logs, metric reads, awaiting conditions. */
import { PassThrough } from 'node:stream';
import type { Registry } from 'prom-client';
import { createLogger, type Logger } from '../../../src/logging/logger.ts';
import type { AriConnectionState, AriEvent, AriGateway } from '../../../src/ari/types.ts';

/** A debug-level JSON logger whose lines are parsed into `lines`. */
export function captureLogger(): {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
  raw: string[];
} {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      raw.push(line);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return { logger: createLogger({ level: 'debug', stream }), lines, raw };
}

/** Current value of a metric (summed over series matching `labels`). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    )
    .reduce((sum, v) => sum + v.value, 0);
}

/**
 * Resolve once `check()` is truthy, checking every `everyMs` (condition polling, not a fixed
 * sleep); reject with `what` after `timeoutMs`.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
  everyMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resolve with the first event matching `predicate` delivered to an onEvent listener. */
export function nextEvent<T extends AriEvent = AriEvent>(
  gateway: AriGateway,
  predicate: (e: AriEvent) => boolean,
  timeoutMs = 5000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('timed out waiting for an ARI event'));
    }, timeoutMs);
    const off = gateway.onEvent((e) => {
      if (!predicate(e)) return;
      clearTimeout(timer);
      off();
      resolve(e as T);
    });
  });
}

/** Record connection states; `waitFor(state)` resolves when it has been seen (after `from`). */
export function watchStates(gateway: AriGateway): {
  states: AriConnectionState[];
  waitFor(state: AriConnectionState, occurrence?: number, timeoutMs?: number): Promise<void>;
} {
  const states: AriConnectionState[] = [];
  const waiters: Array<() => void> = [];
  gateway.onConnectionChange((s) => {
    states.push(s);
    for (const w of [...waiters]) w();
  });
  return {
    states,
    waitFor(state, occurrence = 1, timeoutMs = 5000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): boolean => states.filter((s) => s === state).length >= occurrence;
        if (check()) {
          resolve();
          return;
        }
        const timer = setTimeout(
          () =>
            reject(
              new Error(`timed out waiting for state ${state} #${occurrence}: ${states.join(',')}`),
            ),
          timeoutMs,
        );
        const waiter = (): void => {
          if (!check()) return;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(waiter), 1);
          resolve();
        };
        waiters.push(waiter);
      });
    },
  };
}
