/**
 * The engine's stop waits for the call service to settle (`CallService.settled`) before the call
 * journal closes: an inbound call still waiting for its CRM route when ARI closes gets the route's
 * answer applied, and what that changes is committed, not dropped after the journal's close.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import type { AriGateway } from '../../../src/ari/types.ts';
import { CallJournal } from '../../../src/calls/journal.ts';
import { CallNotifier } from '../../../src/calls/notifier.ts';
import { CallService } from '../../../src/calls/service.ts';
import type { RouteDecision } from '../../../src/crm/types.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { createStore, type Store } from '../../../src/store/index.ts';
import { ev } from '../../ari/support/events.ts';
import { unitCallDeps } from '../../support/call-deps.ts';

/** A gateway whose every channel and bridge command succeeds at once. */
function acceptingGateway(): AriGateway {
  const commands = new Proxy({}, { get: () => sinon.stub().resolves(undefined) });
  return new Proxy({ isConnected: () => true } as unknown as AriGateway, {
    get: (target, name) =>
      name in target ? (target as unknown as Record<string | symbol, unknown>)[name] : commands,
  });
}

describe('call service settling at engine stop', () => {
  let store: Store;
  beforeEach(async () => {
    store = createStore({ url: 'sqlite::memory:', logger: createSilentLogger() });
    await store.migrate();
  });
  afterEach(() => store.close());

  it('waits for an inbound call whose CRM route is still being looked up, so the route it applies is committed before the journal closes', async () => {
    const logger = createSilentLogger();
    const journal = new CallJournal({
      store,
      logger,
      registry: new Registry(),
      deliver: () => undefined,
    });
    let answer!: (decision: RouteDecision) => void;
    const lookup = new Promise<RouteDecision>((resolve) => (answer = resolve));
    const calls = new CallService(
      unitCallDeps(acceptingGateway(), {
        logger,
        journal,
        notifier: new CallNotifier([], logger, Date.now, journal),
        routes: { lookup: () => lookup },
      }),
    );
    calls.handleEvent(ev.stasisStart('in-1'));
    const callId = calls.activeCalls()[0]!.id;

    let settled = false;
    const settling = calls.settled(5000);
    void settling.then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled, 'settled while the route lookup is in flight').to.equal(false);

    // The CRM answers (as a route lookup does while the engine disconnects from ARI).
    answer({
      route: { customer: { name: 'Ivanov' }, action: { type: 'hangup' } },
      source: 'crm',
      durationMs: 900,
    });
    expect(await settling, 'settled within its timeout').to.not.equal(false);
    await journal.close(1000);

    expect(await store.calls.getCall(callId)).to.include({
      state: 'ended',
      disposition: 'failed',
      endReason: 'route_hangup',
    });
  });
});
