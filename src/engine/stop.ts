/**
 * The engine's graceful stop ({@link stopOnce}): what stops in which order so that nothing
 * accepted is lost (pending webhooks delivered, changes committed, calls left for the next run
 * to adopt). Built by the composition root (src/main.ts); docs/operations.md ("Shutdown")
 * describes it for operators.
 */
import type { Server } from 'node:http';
import type { AriGateway } from '../ari/types.ts';
import type { AutocallScheduler } from '../autocalls/index.ts';
import type { CallJournal } from '../calls/journal.ts';
import type { CallService } from '../calls/service.ts';
import type { Config } from '../config/schema.ts';
import type { Connector } from '../connectors/index.ts';
import type { WebhookDispatcher } from '../events/index.ts';
import type { OutboundClient } from '../http/outbound.ts';
import type { Logger } from '../logging/logger.ts';
import type { PresenceService } from '../operators/index.ts';
import type { Recordings } from '../recordings/index.ts';
import type { PbxSimulator } from '../simulator/index.ts';
import type { StreamServer } from '../stream/index.ts';
import type { JournalLog } from '../store/journal-log.ts';
import type { Store } from '../store/store.ts';

/** What {@link stopOnce} stops. */
export interface StopParts {
  config: Config;
  logger: Logger;
  /** From now on new API requests answer 503 `shutting_down` and `/readyz` 503. */
  refuseRequests(): void;
  stream: StreamServer;
  scheduler: AutocallScheduler;
  recordings: Recordings;
  journal: CallJournal;
  journalLog: { log?: JournalLog };
  webhooks: WebhookDispatcher;
  connector: Connector | undefined;
  connectorDelivery: WebhookDispatcher | undefined;
  presence: PresenceService;
  calls: CallService;
  gateway: AriGateway;
  outbound: OutboundClient;
  store: Store;
  server: Server;
  /** The simulator the engine started itself (stopped last). */
  ownSimulator?: PbxSimulator;
}

/**
 * The engine's {@link Engine.stop}: the order of the graceful stop, documented in
 * docs/operations.md ("Shutdown"). Idempotent: later calls return the same promise.
 */
export function stopOnce(parts: StopParts): () => Promise<void> {
  const { config, logger, stream, scheduler, recordings, journal, webhooks } = parts;
  const { connector, connectorDelivery, presence, calls, gateway, store, server } = parts;
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      // New API requests get 503 shutting_down, /readyz 503; calls in progress stay up and are
      // still handled (ARI stays connected) while pending webhooks are delivered.
      parts.refuseRequests();
      // Browsers reconnect (to another instance, or to this one once it is back) with ?after=.
      stream.close();
      logger.info('stopping: new API requests are refused, delivering pending webhooks', {
        pendingWebhooks: webhooks.pending(),
        timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
      });
      // One budget for the whole drain: SHUTDOWN_TIMEOUT_MS from now.
      const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
      const left = (): number => Math.max(0, deadline - Date.now());
      // No new notification call. Attempts in progress are recorded if they end while webhooks
      // drain; the others' leases expire and the next engine reclaims them (recorded `lost`).
      await scheduler.stop();
      // Recording downloads in progress finish: their recording.ready goes out with the pending
      // webhooks below and Asterisk's copy is deleted. Retries waiting for their delay do not
      // hold the stop (the next start takes them up).
      await recordings.finishDownloads(left());
      // Events recorded but not yet committed reach the dispatcher when their write commits.
      await journal.flush(left());
      const drained = await webhooks.drain(left());
      if (!drained)
        logger.warn('pending webhooks were not all delivered before shutdown', {
          pending: webhooks.pending(),
        });
      if (connectorDelivery && !(await connectorDelivery.drain(left())))
        logger.warn('pending CRM connector requests were not all delivered before shutdown', {
          pending: connectorDelivery.pending(),
        });
      connector?.stop();
      recordings.stop();
      presence.stop();
      // Call scripts stop where they are (their calls stay up for the next engine to adopt); a
      // click-to-call waiting to ring its operator again is not retried.
      calls.stop();
      await gateway.stop();
      webhooks.stop();
      connectorDelivery?.stop();
      // Webhooks are stopped and ARI is closed: no more CRM requests (route lookups still in
      // flight end within CRM_TIMEOUT_MS).
      await parts.outbound.close();
      // The call steps still running finish before the journal closes: a route answer that came
      // while ARI was closing (a `hangup` route ends its call), an ARI command's answer. Their
      // changes are committed below, not dropped (the journal logs a change after its close).
      if (!(await calls.settled(Math.max(left(), 1000))))
        logger.warn('call steps still running at shutdown; their later changes are not stored', {
          calls: calls.activeCalls().length,
        });
      // Changes made while ARI was closing; a healthy store commits them at once. Their events
      // are not sent by this run: pending in the outbox, the next start sends them.
      await journal.close(Math.max(left(), 1000));
      parts.journalLog.log?.close();
      // Closed for good: from now on nothing is sent to Asterisk (a late step's command is
      // refused). Every timer of the engine that could act was cleared above.
      await gateway.seal();
      // Presence changes made meanwhile are stored (and their events queued) before the end.
      await presence.flush();
      await webhooks.flush();
      await connectorDelivery?.flush();
      await store.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (parts.ownSimulator) await parts.ownSimulator.close();
      logger.info('stopped');
    })();
    return stopping;
  };
}
