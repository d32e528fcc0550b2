/**
 * The calls domain: the call service and its flows, the call journal (each change and its events
 * committed to the store before they are delivered), the notifier (lifecycle events out), the
 * Stasis handlers (ARI events in), call scripts' CRM requests, the adoption of the calls an
 * earlier run left unfinished and the reconciliation at every ARI (re)connect.
 * Reference: docs/architecture.md.
 *
 * `main.ts` wires it with {@link createCalls}; the parts are imported from their own modules.
 */
import type { Registry } from 'prom-client';
import type { AriGateway } from '../ari/types.ts';
import type { Config } from '../config/schema.ts';
import type { LifecycleEvent } from '../events/types.ts';
import type { OutboundPost } from '../http/outbound.ts';
import type { Logger } from '../logging/logger.ts';
import type { JournalLog } from '../store/journal-log.ts';
import type { Store } from '../store/store.ts';
import type { OutboundDialGuard, RouteSource } from './context.ts';
import { CallJournal } from './journal.ts';
import { CallNotifier, type EventSink } from './notifier.ts';
import { registerReconciliation } from './reconcile-pass.ts';
import { CallService } from './service.ts';
import { registerCallStasisHandlers } from './stasis.ts';
import { createVerbCrm } from './verbs/crm.ts';

/** What {@link createCalls} needs. */
export interface CreateCallsDeps {
  config: Config;
  gateway: AriGateway;
  /** The store, claimed and migrated: the journal writes to it, adoption reads it. */
  store: Store;
  /** The journal log once replayed (see `openJournalLog` in main.ts); empty: none. */
  journalLog: { log?: JournalLog; lastSeq?: number };
  /**
   * Where each committed lifecycle event goes, in commit order (the webhook dispatcher, the CRM
   * connector's delivery). With CRM_WEBHOOK_URL unset the events are stored `skipped`.
   */
  deliver: (event: LifecycleEvent) => void;
  /** Where each call's route comes from (the CRM route client). */
  routes: RouteSource;
  /** The CRM-bound HTTP client of call scripts' `actionUrl` / `redirect` requests. */
  post: OutboundPost;
  /**
   * Told of every lifecycle event as it happens, before the journal (test recorders, operator
   * presence), in this order.
   */
  sinks: EventSink[];
  /** Operator presence: used for inbound routing when OPERATOR_PRESENCE_ROUTING is on. */
  presence: { takesCalls(extension: string): boolean };
  /** The toll-fraud guard of numbers operators dial from their phones. */
  outboundGuard: OutboundDialGuard;
  logger: Logger;
  registry: Registry;
}

/** The wired calls domain. */
export interface Calls {
  service: CallService;
  /** Writes each call change and its events to the store before they are delivered. */
  journal: CallJournal;
  notifier: CallNotifier;
  /**
   * Engine start-up, before the gateway connects: adopt the calls the store says an earlier run
   * left unfinished (see {@link CallService.adoptCalls}), then reconcile the live calls with
   * Asterisk at every (re)connect, the first one included (src/calls/reconcile.ts). Resolves
   * how many calls were adopted.
   *
   * @throws the store's error when it cannot be read
   */
  adoptUnfinished(): Promise<number>;
  /**
   * The extensions a call involves (its legs' operators, who answered, the operator of an
   * outbound call), live or stored; undefined for an unknown call. The live stream's filter.
   */
  extensionsOf(callId: string): Promise<string[] | undefined>;
}

/**
 * Build and wire the domain: the journal, the notifier (its sinks first, then the journal), the
 * call scripts' CRM client and the call service, whose Stasis handlers are registered on the
 * gateway. Call {@link Calls.adoptUnfinished} before the gateway connects.
 *
 * @throws RangeError when CRM_TIMEOUT_MS is not a positive number of ms (see `createVerbCrm`)
 */
export function createCalls(deps: CreateCallsDeps): Calls {
  const { config, gateway, store, logger, registry } = deps;
  const journal = new CallJournal({
    store,
    logger: logger.child({ component: 'store' }),
    registry,
    deliver: deps.deliver,
    // Without a URL events are for the pull feed only: a URL set later does not get old calls.
    skipDelivery: !config.CRM_WEBHOOK_URL,
    ...deps.journalLog,
  });
  const notifier = new CallNotifier(deps.sinks, logger, Date.now, journal);
  // Call scripts' CRM requests (gather actionUrl, redirect): the route lookup's timeout and key,
  // signed like the webhooks (docs/verbs.md).
  const verbCrm = createVerbCrm({
    timeoutMs: config.CRM_TIMEOUT_MS,
    ...(config.CRM_API_KEY ? { apiKey: config.CRM_API_KEY } : {}),
    ...(config.WEBHOOK_SECRET ? { secret: config.WEBHOOK_SECRET } : {}),
    post: deps.post,
    logger: logger.child({ component: 'crm' }),
    registry,
  });
  const service = new CallService({
    gateway,
    routes: deps.routes,
    verbCrm,
    notifier,
    journal,
    // The toll-fraud guard's destination policy, for numbers operators dial from their phones
    // (the API applies it to click-to-call, src/http/api.ts).
    outboundGuard: deps.outboundGuard,
    logger,
    registry,
    // Inbound routing skips operators who do not take calls now (OPERATOR_PRESENCE_ROUTING).
    ...(config.OPERATOR_PRESENCE_ROUTING ? { presence: deps.presence } : {}),
    // At each connect: a channel in the app of no live call is a leftover of a stored call (hung
    // up) or a caller whose StasisStart was missed (routed).
    knownChannels: (channelIds) => store.calls.knownChannels(channelIds),
    options: {
      operatorEndpoint: config.OPERATOR_ENDPOINT,
      callerIdPrefix: config.OPERATOR_CALLERID_PREFIX,
      defaultRingTimeoutSec: config.RING_TIMEOUT_SEC,
      outboundRingTimeoutSec: config.OUTBOUND_RING_TIMEOUT_SEC,
      noAnswerDialplan: config.NO_ANSWER_DIALPLAN,
      trunks: config.TRUNKS.map((trunk) => ({ ...trunk, region: config.DEFAULT_REGION })),
      companyCallerId: config.COMPANY_CALLER_ID,
      clickToCallCallerIdName: config.CLICK_TO_CALL_CALLERID_NAME,
      clickToCallRingTimeoutSec: config.CLICK_TO_CALL_RING_TIMEOUT_SEC,
      serviceContext: config.SERVICE_CONTEXT,
      notificationRingTimeoutSec: config.AUTOCALL_RING_TIMEOUT_SEC,
      amdContext: config.AUTOCALL_AMD_CONTEXT,
    },
  });
  registerCallStasisHandlers(gateway, service);
  return {
    service,
    journal,
    notifier,
    async adoptUnfinished() {
      // Resilience: calls left unfinished by an earlier run are adopted before ARI connects;
      // every (re)connect reconciles the live calls with Asterisk's channels and bridges.
      const adopted = service.adoptCalls(await store.calls.unfinishedCalls());
      if (adopted > 0) logger.info('adopting calls left unfinished by an earlier run', { adopted });
      registerReconciliation(gateway, service, logger.child({ component: 'reconcile' }));
      return adopted;
    },
    async extensionsOf(callId) {
      const call = service.getCall(callId) ?? (await store.calls.getCall(callId));
      if (!call) return undefined;
      const extensions = new Set<string>();
      for (const leg of call.legs) if (leg.extension) extensions.add(leg.extension);
      if (call.answeredBy) extensions.add(call.answeredBy);
      if (call.direction === 'out') extensions.add(call.from);
      return [...extensions];
    },
  };
}
