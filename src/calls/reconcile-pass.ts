/**
 * Running the reconciliation over every call: after each `connected` of the gateway
 * ({@link registerReconciliation}), a reconciliation step is queued in each call's chain, Asterisk
 * is listed once every step is reached, and each call is reconciled with that listing
 * ({@link reconcileAll}; the per-call decisions are ./reconcile.ts).
 */
import type { Registry } from 'prom-client';
import { computeBackoffDelay } from '../ari/backoff.ts';
import type { AriConnectionState, AriGateway } from '../ari/types.ts';
import type { Logger } from '../logging/logger.ts';
import { counter } from '../metrics/registry.ts';
import { ariView, type AriView } from './ari-view.ts';
import { reconcileCall, type ReconcileResult, type ReconcileTarget } from './reconcile.ts';

/** One call to reconcile, as the call service hands it over. */
export interface ReconcileEntry {
  /** Run `step` in the call's per-call chain; resolves when it has run (never rejects). */
  run(step: () => Promise<void>): Promise<void>;
  /** The call's target, built once the listing succeeded (inside the chain). */
  target(): ReconcileTarget;
}

/** What one pass did, in calls. `skipped`: Asterisk could not be listed (retried next connect). */
export interface ReconcileReport {
  calls: number;
  kept: number;
  ended: number;
  skipped: number;
}

/** Options of {@link reconcileAll}. */
export interface ReconcileAllOptions {
  logger: Logger;
  registry: Registry;
  /** Listing attempts before the pass is skipped (default 3), `retryDelayMs` apart (default 250, doubling). */
  listAttempts?: number;
  retryDelayMs?: number;
  /** Longest wait for every call's chain to reach its reconciliation step, ms (default 5000). */
  barrierTimeoutMs?: number;
}

/**
 * Reconcile every entry: queue a reconciliation step in each call's chain at once (events
 * arriving meanwhile wait behind it), list channels and bridges once every step is reached,
 * then reconcile each call with that listing. Counts `aricrm_calls_reconciled_total{result}`.
 * Never rejects.
 */
export async function reconcileAll(
  gateway: Pick<AriGateway, 'app' | 'channels' | 'bridges'>,
  entries: readonly ReconcileEntry[],
  options: ReconcileAllOptions,
): Promise<ReconcileReport> {
  const report: ReconcileReport = { calls: entries.length, kept: 0, ended: 0, skipped: 0 };
  if (entries.length === 0) return report;
  const reconciled = counter(options.registry, {
    name: 'aricrm_calls_reconciled_total',
    help: 'Calls reconciled with Asterisk after an ARI reconnect or an engine restart, by result (kept, ended, skipped).',
    labelNames: ['result'] as const,
  });
  // List once every call's chain has reached its reconciliation step (so the listing reflects
  // every command its earlier steps sent), or after `barrierTimeoutMs` at most.
  const arrivals = entries.map(() => {
    let arrive!: () => void;
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    return { arrive, arrived };
  });
  let barrierTimer: NodeJS.Timeout | undefined;
  const barrier = Promise.race([
    Promise.all(arrivals.map((a) => a.arrived)),
    new Promise<void>((resolve) => {
      barrierTimer = setTimeout(resolve, options.barrierTimeoutMs ?? 5000);
    }),
  ]).finally(() => clearTimeout(barrierTimer));
  const listing = barrier.then(() => listAri(gateway, options));
  listing.catch(() => undefined);
  await Promise.all(
    entries.map((entry, i) => {
      let result: ReconcileResult | 'skipped' = 'skipped';
      return entry
        .run(async () => {
          arrivals[i]!.arrive();
          let view: AriView;
          try {
            view = await listing;
          } catch {
            return;
          }
          result = await reconcileCall(entry.target(), view);
        })
        .then(() => {
          report[result]++;
          reconciled.inc({ result });
        });
    }),
  );
  try {
    await listing;
  } catch (err) {
    options.logger.warn('could not list channels and bridges; calls not reconciled yet', {
      calls: entries.length,
      err,
    });
  }
  return report;
}

async function listAri(
  gateway: Pick<AriGateway, 'app' | 'channels' | 'bridges'>,
  options: ReconcileAllOptions,
): Promise<AriView> {
  const attempts = Math.max(1, options.listAttempts ?? 3);
  const backoff = { initialDelayMs: options.retryDelayMs ?? 250, maxDelayMs: 5000, jitter: 0 };
  for (let attempt = 1; ; attempt++) {
    try {
      const [channels, bridges] = await Promise.all([
        gateway.channels.list(),
        gateway.bridges.list(),
      ]);
      return ariView(gateway.app, channels, bridges);
    } catch (err) {
      if (attempt >= attempts) throw err;
      const delayMs = computeBackoffDelay(attempt - 1, backoff);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** What {@link registerReconciliation} drives (the call service). */
export interface Reconcilable {
  /** Reconcile every live call; `lostSinceMs` = when the WebSocket dropped (epoch ms). */
  reconcile(lostSinceMs?: number): Promise<ReconcileReport>;
}

/**
 * Reconcile the calls every time the gateway reports `connected` (the first connect too, for
 * calls adopted at start-up), remembering when the WebSocket dropped for `call.recovered`
 * `outageSec`. Logs each pass. Returns the unsubscribe function.
 */
export function registerReconciliation(
  gateway: Pick<AriGateway, 'onConnectionChange'>,
  calls: Reconcilable,
  logger: Logger,
  now: () => number = Date.now,
): () => void {
  let lostSinceMs: number | undefined;
  return gateway.onConnectionChange((state: AriConnectionState) => {
    if (state === 'disconnected') {
      lostSinceMs ??= now();
      return;
    }
    if (state !== 'connected') return;
    const since = lostSinceMs;
    lostSinceMs = undefined;
    const startedAt = now();
    void calls.reconcile(since).then(
      (report) => {
        if (report.calls === 0) return;
        logger.info('calls reconciled with Asterisk', {
          ...report,
          outageMs: since === undefined ? undefined : startedAt - since,
          durationMs: now() - startedAt,
        });
      },
      (err: unknown) => logger.error('reconciliation failed', { err }),
    );
  });
}
