/**
 * The call runtime's flow registry (src/calls/runtime.ts): a flow registered for a Stasis role
 * gets the StasisStart of that role and the events of its calls' channels the runtime does not
 * act on itself, without the other flows knowing; a channel of no call and no role is hung up.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import { Registry } from 'prom-client';
import type { AriChannel, AriEvent, AriGateway } from '../../../src/ari/types.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { CallNotifier } from '../../../src/calls/notifier.ts';
import { CallRuntime } from '../../../src/calls/runtime.ts';
import type { CallContext, Flow } from '../../../src/calls/context.ts';
import type { Leg } from '../../../src/calls/model.ts';
import { ariChannel, ev } from '../../ari/support/events.ts';

function runtimeWith(hangup: sinon.SinonStub): CallRuntime {
  const logger = createSilentLogger();
  const gateway = { channels: { hangup } } as unknown as AriGateway;
  return new CallRuntime(
    {
      gateway,
      routes: { lookup: () => Promise.reject(new Error('no CRM in this test')) },
      notifier: new CallNotifier([], logger),
      logger,
      registry: new Registry(),
      options: {
        operatorEndpoint: 'PJSIP/{extension}',
        callerIdPrefix: '',
        defaultRingTimeoutSec: 20,
        outboundRingTimeoutSec: 40,
        trunks: [],
        companyCallerId: '74950000000',
      },
    },
    { ended: () => undefined, released: () => undefined },
  );
}

/** A flow of its own role, recording what the runtime hands it. */
class ProbeFlow implements Flow {
  readonly name = 'probe';
  readonly stasisRoles = ['probe'];
  readonly callerChannel = 'customer';
  readonly started: Array<{ channel: AriChannel; args: string[]; ctx: CallContext }> = [];
  readonly events: Array<{ leg: Leg; event: AriEvent }> = [];

  constructor(private readonly rt: CallRuntime) {}

  start(channel: AriChannel, args: string[]): Promise<void> {
    const ctx = this.rt.dialplanCall(channel, this.name, 'out', channel.caller.number, args[1]!);
    this.started.push({ channel, args, ctx });
    return Promise.resolve();
  }

  channelEvent(_ctx: CallContext, leg: Leg, event: AriEvent): Promise<void> {
    this.events.push({ leg, event });
    return Promise.resolve();
  }

  legUnanswered(): Promise<void> {
    return Promise.resolve();
  }
}

describe('call runtime: flows registered by Stasis role', () => {
  it('hands a StasisStart of the role to its flow, then the call channel events it does not act on', async () => {
    const hangup = sinon.stub().resolves();
    const rt = runtimeWith(hangup);
    const probe = new ProbeFlow(rt);
    rt.registerFlow(probe);

    rt.handleEvent(ev.stasisStart('ch-1', ['probe', '42']));
    expect(probe.started).to.have.length(1);
    expect(probe.started[0]!.args).to.deep.equal(['probe', '42']);
    const ctx = probe.started[0]!.ctx;
    expect(ctx.flow).to.equal('probe');
    expect(ctx.call.to).to.equal('42');

    rt.handleEvent({
      timestamp: '2026-11-21T16:05:34.000+0000',
      application: 'crm-app',
      type: 'ChannelDtmfReceived',
      channel: ariChannel('ch-1'),
      digit: '1',
      duration_ms: 120,
    });
    rt.handleEvent(ev.stateChange('ch-1', 'Up')); // acted on by the runtime: caller answered
    await ctx.tail;
    expect(probe.events.map((e) => e.event.type)).to.deep.equal(['ChannelDtmfReceived']);
    expect(probe.events[0]!.leg.channelId).to.equal('ch-1');
    expect(ctx.callerAnswered).to.equal(true);
    expect(hangup.called).to.equal(false);
  });

  it('refuses a second flow of the same name or Stasis role', () => {
    const rt = runtimeWith(sinon.stub().resolves());
    rt.registerFlow(new ProbeFlow(rt));
    expect(() => rt.registerFlow(new ProbeFlow(rt))).to.throw('flow probe is already registered');
    const sameRole: Flow = {
      ...new ProbeFlow(rt),
      name: 'other',
      legUnanswered: () => Promise.resolve(),
    };
    expect(() => rt.registerFlow(sameRole)).to.throw('Stasis role probe is already taken');
  });

  it('hangs up a channel entering Stasis with a role no flow registered and of no call', () => {
    const hangup = sinon.stub().resolves();
    const rt = runtimeWith(hangup);
    rt.registerFlow(new ProbeFlow(rt));
    rt.handleEvent(ev.stasisStart('ch-9', ['inbound', '74951234567']));
    expect(hangup.calledOnceWith('ch-9')).to.equal(true);
  });
});
