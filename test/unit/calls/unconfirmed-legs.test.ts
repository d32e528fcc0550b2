/**
 * A leg whose create or originate got no answer from ARI (AriConnectionError: the connection
 * dropped, or no answer within the command timeout) may exist in Asterisk all the same: a
 * click-to-call operator's phone ringing for a call that is over. The engine hangs that channel
 * up by its id: at once when ARI is connected, else at the next connect; a 404 ends it.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import { AriConnectionError, AriNotFoundError } from '../../../src/ari/errors.ts';
import type { AriGateway, CreateChannelParams, OriginateParams } from '../../../src/ari/types.ts';
import { CallService } from '../../../src/calls/service.ts';
import { RETRY_MS } from '../../../src/calls/unconfirmed.ts';
import { ev } from '../../ari/support/events.ts';
import { unitCallDeps } from '../../support/call-deps.ts';

const CUSTOMER = '+74957654321';

/**
 * A gateway whose commands resolve at once unless stubbed in `stubs` (by method name, for every
 * resource); `connected` says what `isConnected()` answers.
 */
function fakeGateway(
  stubs: Record<string, sinon.SinonStub>,
  connected: { value: boolean },
): AriGateway {
  const all = new Map<string | symbol, sinon.SinonStub>(Object.entries(stubs));
  const commands = new Proxy(
    {},
    {
      get: (_target, name) => {
        if (!all.has(name)) all.set(name, sinon.stub().resolves(undefined));
        return all.get(name);
      },
    },
  );
  return new Proxy(
    {
      isConnected: () => connected.value,
      app: 'crm-app',
    } as unknown as AriGateway,
    {
      get: (target, name) =>
        name in target ? (target as unknown as Record<string | symbol, unknown>)[name] : commands,
    },
  );
}

const noAnswer = (): AriConnectionError =>
  new AriConnectionError('channels.originate', 'socket hang up');

function service(gateway: AriGateway): CallService {
  return new CallService(
    unitCallDeps(gateway, {
      options: {
        operatorEndpoint: 'PJSIP/{extension}',
        callerIdPrefix: '',
        defaultRingTimeoutSec: 20,
        outboundRingTimeoutSec: 40,
        trunks: [{ prefix: '*', template: 'PJSIP/{number}@client-trunk' }],
        companyCallerId: '74950000000',
      },
    }),
  );
}

function clickToCall(calls: CallService): string {
  return calls.startClickToCall({ operator: '101', to: CUSTOMER, tries: 1, triesPeriodSec: 1 }).id;
}

/** The channel ids `DELETE /channels/{id}` was sent for, in order. */
function hungUpIds(hangup: sinon.SinonStub): string[] {
  return hangup.getCalls().map((c) => String(c.args[0]));
}

/** Let the calls' pending steps and the hang-ups they start run. */
async function settle(calls: CallService): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await calls.settled();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('legs whose create or originate got no answer from ARI', () => {
  it("hangs up the click-to-call operator's channel by its id when the originate got no answer", async () => {
    const originate = sinon.stub().rejects(noAnswer());
    const hangup = sinon.stub().resolves(undefined);
    const calls = service(fakeGateway({ originate, hangup }, { value: true }));
    const callId = clickToCall(calls);
    // The CRM hangs the call up while the originate is on its way.
    await calls.hangupCall(callId);
    await settle(calls);
    const legId = (originate.firstCall.args[0] as OriginateParams).channelId;
    expect(hungUpIds(hangup)).to.deep.equal([legId]);
    expect(calls.getCall(callId)?.state ?? 'ended').to.equal('ended');
  });

  it('hangs it up once ARI is connected again when it is not, and a 404 ends the matter', async () => {
    const connected = { value: false };
    const originate = sinon.stub().rejects(noAnswer());
    const hangup = sinon
      .stub()
      .rejects(new AriNotFoundError('channels.hangup', 'Channel not found'));
    const calls = service(fakeGateway({ originate, hangup }, connected));
    clickToCall(calls);
    await settle(calls);
    expect(hangup.callCount).to.equal(0); // nothing can reach Asterisk now
    connected.value = true;
    await calls.reconcile(); // what every connect runs
    await settle(calls);
    const legId = (originate.firstCall.args[0] as OriginateParams).channelId;
    expect(hungUpIds(hangup)).to.deep.equal([legId]);
    // 404: the originate never took effect; nothing more is sent at the next connect.
    await calls.reconcile();
    await settle(calls);
    expect(hangup.callCount).to.equal(1);
  });

  it('tries the hang-up again at the next connect while ARI gives no answer to it', async () => {
    const originate = sinon.stub().rejects(noAnswer());
    const hangup = sinon.stub();
    hangup.onFirstCall().rejects(new AriConnectionError('channels.hangup', 'ECONNRESET'));
    hangup.resolves(undefined);
    const calls = service(fakeGateway({ originate, hangup }, { value: true }));
    clickToCall(calls);
    await settle(calls);
    expect(hangup.callCount).to.equal(1);
    await calls.reconcile();
    await settle(calls);
    const legId = (originate.firstCall.args[0] as OriginateParams).channelId;
    expect(hungUpIds(hangup)).to.deep.equal([legId, legId]);
    await calls.reconcile();
    await settle(calls);
    expect(hangup.callCount).to.equal(2); // hung up: done
  });

  it("hangs up the customer leg's channel by its id when its create got no answer", async () => {
    const originate = sinon.stub().resolves(undefined);
    const create = sinon.stub().rejects(new AriConnectionError('channels.create', 'timeout'));
    const hangup = sinon.stub().resolves(undefined);
    const calls = service(fakeGateway({ originate, create, hangup }, { value: true }));
    const callId = clickToCall(calls);
    await settle(calls);
    const operatorId = (originate.firstCall.args[0] as OriginateParams).channelId;
    // The operator answers and enters Stasis: the customer is dialled through the trunk.
    calls.handleEvent(ev.stateChange(operatorId, 'Up'));
    calls.handleEvent(ev.stasisStart(operatorId, ['click2call', 'operator', callId]));
    await settle(calls);
    expect(create.callCount).to.equal(1);
    const customerId = (create.firstCall.args[0] as CreateChannelParams).channelId;
    expect(hungUpIds(hangup)).to.include(customerId);
  });
});

describe('a channel given up on that Asterisk creates after its hang-up answered 404', () => {
  /** A click-to-call whose originate got no answer and whose hang-up by id answered 404. */
  async function givenUp(): Promise<{
    calls: CallService;
    hangup: sinon.SinonStub;
    legId: string;
    callId: string;
  }> {
    const originate = sinon
      .stub()
      .rejects(
        new AriConnectionError('channels.originate', 'no answer from Asterisk within 10000 ms'),
      );
    const hangup = sinon.stub();
    hangup.onFirstCall().rejects(new AriNotFoundError('channels.hangup', 'Channel not found'));
    hangup.resolves(undefined);
    const calls = service(fakeGateway({ originate, hangup }, { value: true }));
    const callId = clickToCall(calls);
    await settle(calls);
    const legId = (originate.firstCall.args[0] as OriginateParams).channelId;
    expect(hungUpIds(hangup)).to.deep.equal([legId]);
    expect(calls.getCall(callId)?.state ?? 'ended').to.equal('ended');
    return { calls, hangup, legId, callId };
  }

  it('hangs it up when its phone starts ringing', async () => {
    const { calls, hangup, legId } = await givenUp();
    // Asterisk carried the originate out late: the app hears of the channel ringing.
    calls.handleEvent(ev.stateChange(legId, 'Ringing'));
    await settle(calls);
    expect(hungUpIds(hangup)).to.deep.equal([legId, legId]);
    // Hung up: a later event of the channel sends nothing more.
    calls.handleEvent(ev.stateChange(legId, 'Up'));
    await settle(calls);
    expect(hangup.callCount).to.equal(2);
  });

  it('hangs it up when it enters Stasis (the operator answered), also when the first try gets no answer', async () => {
    const { calls, hangup, legId, callId } = await givenUp();
    hangup.onSecondCall().rejects(new AriConnectionError('channels.hangup', 'ECONNRESET'));
    calls.handleEvent(ev.stasisStart(legId, ['click2call', 'operator', callId]));
    await settle(calls);
    expect(hungUpIds(hangup)).to.deep.equal([legId, legId]);
    await calls.reconcile(); // the next connect tries it again
    await settle(calls);
    expect(hungUpIds(hangup)).to.deep.equal([legId, legId, legId]);
  });

  it('leaves the channels of others alone', async () => {
    const { calls, hangup } = await givenUp();
    calls.handleEvent(ev.stateChange('op-someone-else', 'Ringing'));
    await settle(calls);
    expect(hangup.callCount).to.equal(1);
  });
});

describe('a hang-up by id that gets no answer while ARI stays connected', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => clock.restore());

  it(`is sent again ${RETRY_MS} ms later, until Asterisk answers`, async () => {
    const originate = sinon.stub().rejects(noAnswer());
    const hangup = sinon.stub();
    hangup
      .onFirstCall()
      .rejects(new AriConnectionError('channels.hangup', 'no answer within 10000 ms'));
    hangup.resolves(undefined);
    const calls = service(fakeGateway({ originate, hangup }, { value: true }));
    clickToCall(calls);
    await settle(calls);
    expect(hangup.callCount).to.equal(1);
    await clock.tickAsync(RETRY_MS);
    await settle(calls);
    const legId = (originate.firstCall.args[0] as OriginateParams).channelId;
    expect(hungUpIds(hangup)).to.deep.equal([legId, legId]);
    await clock.tickAsync(RETRY_MS * 2);
    expect(hangup.callCount).to.equal(2); // confirmed: done
  });
});
