/**
 * The engine's stop (`CallService.stop`) ends the click-to-call operator retries: a call waiting
 * to ring its busy operator again does not ring them after the stop, and an operator leg that
 * ends unanswered during the stop is not retried either. The call is left unfinished for the
 * next engine to adopt.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import type { AriGateway, OriginateParams } from '../../../src/ari/types.ts';
import { CallService } from '../../../src/calls/service.ts';
import { ev } from '../../ari/support/events.ts';
import { unitCallDeps } from '../../support/call-deps.ts';

/** A gateway whose every command succeeds at once; `originate` records the operator legs. */
function acceptingGateway(): { gateway: AriGateway; originate: sinon.SinonStub } {
  const originate = sinon.stub().resolves(undefined);
  const stubs = new Map<string | symbol, sinon.SinonStub>([['originate', originate]]);
  const commands = new Proxy(
    {},
    {
      get: (_target, name) => {
        if (!stubs.has(name)) stubs.set(name, sinon.stub().resolves(undefined));
        return stubs.get(name);
      },
    },
  );
  const gateway = new Proxy({ isConnected: () => true } as unknown as AriGateway, {
    get: (target, name) =>
      name in target ? (target as unknown as Record<string | symbol, unknown>)[name] : commands,
  });
  return { gateway, originate };
}

describe('click-to-call retries at engine stop', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => clock.restore());

  /** A click-to-call (2 tries, 5 s apart) whose operator leg was originated. */
  async function clickToCall(): Promise<{
    calls: CallService;
    originate: sinon.SinonStub;
    legId: string;
  }> {
    const { gateway, originate } = acceptingGateway();
    const calls = new CallService(unitCallDeps(gateway));
    calls.startClickToCall({ operator: '101', to: '+74957654321', tries: 2, triesPeriodSec: 5 });
    await calls.settled();
    expect(originate.callCount).to.equal(1);
    const legId = (originate.firstCall.args[0] as OriginateParams).channelId;
    return { calls, originate, legId };
  }

  it('does not ring the busy operator again once stopped while the retry waits', async () => {
    const { calls, originate, legId } = await clickToCall();
    calls.handleEvent(ev.destroyed(legId, 17, 'User busy'));
    await calls.settled();
    calls.stop();
    await clock.tickAsync(10_000);
    await calls.settled();
    expect(originate.callCount).to.equal(1);
    // Not ended by this engine: the next one adopts it.
    expect(calls.activeCalls().map((c) => c.state)).to.deep.equal(['dialing_operator']);
  });

  it('does not schedule a retry for an operator leg that ends unanswered during the stop', async () => {
    const { calls, originate, legId } = await clickToCall();
    calls.stop();
    calls.handleEvent(ev.destroyed(legId, 17, 'User busy'));
    await calls.settled();
    await clock.tickAsync(10_000);
    await calls.settled();
    expect(originate.callCount).to.equal(1);
    expect(calls.activeCalls().map((c) => c.state)).to.deep.equal(['dialing_operator']);
  });

  it('(without a stop) rings the busy operator again after triesPeriodSec', async () => {
    const { calls, originate, legId } = await clickToCall();
    calls.handleEvent(ev.destroyed(legId, 17, 'User busy'));
    await calls.settled();
    await clock.tickAsync(5_000);
    await calls.settled();
    expect(originate.callCount).to.equal(2);
  });
});
