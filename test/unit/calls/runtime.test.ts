/**
 * The call runtime's flow registry (src/calls/runtime.ts): a flow registered for a Stasis role
 * gets the StasisStart of that role and the events of its calls' channels the runtime does not
 * act on itself, without the other flows knowing; a channel of no call and no role is hung up.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import type { AriChannel, AriEvent, AriGateway } from '../../../src/ari/types.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { CallNotifier } from '../../../src/calls/notifier.ts';
import { CallRuntime } from '../../../src/calls/runtime.ts';
import type { CallContext, Flow } from '../../../src/calls/context.ts';
import { type Leg, snapshotCall } from '../../../src/calls/model.ts';
import type { LifecycleEvent } from '../../../src/events/types.ts';
import { ariChannel, ev } from '../../ari/support/events.ts';
import { unitCallDeps } from '../../support/call-deps.ts';

function runtimeWith(
  hangup: sinon.SinonStub,
  extra: { dial?: sinon.SinonStub; events?: LifecycleEvent[]; now?: () => number } = {},
): CallRuntime {
  const logger = createSilentLogger();
  const gateway = { channels: { hangup, dial: extra.dial } } as unknown as AriGateway;
  const sinks = extra.events ? [{ enqueue: (e: LifecycleEvent) => extra.events!.push(e) }] : [];
  return new CallRuntime(
    unitCallDeps(gateway, {
      logger,
      notifier: new CallNotifier(sinks, logger),
      ...(extra.now ? { now: extra.now } : {}),
    }),
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

/** `Dial` RINGING of the dialled leg `id`, as Asterisk sends it once the phone sends 180. */
function dialRinging(id: string): AriEvent {
  return {
    timestamp: '2026-11-21T16:05:33.399+0000',
    application: 'crm-app',
    type: 'Dial',
    dialstatus: 'RINGING',
    forward: '',
    dialstring: '',
    peer: ariChannel(id, 'Ringing'),
  };
}

describe('call runtime: the screen pop does not wait for ARI answers', () => {
  /**
   * A call of the probe flow dialling operator 101: the leg's StasisStart runs its set-up
   * step, which waits for the `dial` answer `release` resolves.
   */
  async function dialling(): Promise<{
    rt: CallRuntime;
    ctx: CallContext;
    leg: Leg;
    events: LifecycleEvent[];
    releaseDial: () => void;
  }> {
    const events: LifecycleEvent[] = [];
    let releaseDial!: () => void;
    const dial = sinon.stub().returns(new Promise<void>((resolve) => (releaseDial = resolve)));
    const rt = runtimeWith(sinon.stub().resolves(), { dial, events });
    const probe = new ProbeFlow(rt);
    rt.registerFlow(probe);
    rt.handleEvent(ev.stasisStart('ch-1', ['probe', '42']));
    const ctx = probe.started[0]!.ctx;
    ctx.call.phase = 'dialing';
    const leg = rt.addEngineLeg(ctx, 'operator', 'PJSIP/101', '101');
    leg.created = true;
    rt.handleEvent(ev.stasisStart(leg.channelId, ['operator', ctx.call.id]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(dial.calledOnce, 'the leg is dialled').to.equal(true);
    return { rt, ctx, leg, events, releaseDial };
  }

  const ringings = (events: LifecycleEvent[]) => events.filter((e) => e.type === 'call.ringing');

  it("announces call.ringing as the event arrives, while the leg's dial request is still unanswered", async () => {
    const { rt, ctx, leg, events, releaseDial } = await dialling();
    // Asterisk may report the ringing before its answer to the `dial` is read (a loaded engine).
    rt.handleEvent(ev.stateChange(leg.channelId, 'Ringing'));
    rt.handleEvent(dialRinging(leg.channelId));
    expect(ringings(events), 'announced before the dial answer').to.have.length(1);
    expect(ringings(events)[0]!.data).to.include({ extension: '101', from: ctx.call.from });
    releaseDial();
    await ctx.tail;
    expect(ringings(events), 'announced once').to.have.length(1);
    expect(leg.ringing).to.equal(true);
  });

  it('keeps the ringing in its turn behind a change of the call: the caller hung up first', async () => {
    const { rt, ctx, leg, events, releaseDial } = await dialling();
    rt.handleEvent(ev.stasisEnd('ch-1')); // the caller abandons before the phone rings
    rt.handleEvent(dialRinging(leg.channelId));
    expect(ringings(events), 'not ahead of the hang-up').to.have.length(0);
    releaseDial();
    await ctx.tail;
    expect(ctx.call.phase).to.equal('ended');
    expect(ringings(events), 'no screen pop for an abandoned call').to.have.length(0);
    expect(events.map((e) => e.type)).to.include('call.ended');
  });
});

describe('call runtime: legs the end of a call cancels', () => {
  const clock = { ms: Date.UTC(2026, 10, 21, 16, 5, 33) };
  /** A call of the probe flow whose operator 101 rings; `create` false: its create is unanswered. */
  function ringing(options: { created?: boolean } = {}): {
    rt: CallRuntime;
    ctx: CallContext;
    leg: Leg;
  } {
    const rt = runtimeWith(sinon.stub().resolves(), { now: () => clock.ms });
    const probe = new ProbeFlow(rt);
    rt.registerFlow(probe);
    rt.handleEvent(ev.stasisStart('ch-1', ['probe', '42']));
    const ctx = probe.started[0]!.ctx;
    ctx.call.phase = 'dialing';
    const leg = rt.addEngineLeg(ctx, 'operator', 'PJSIP/101', '101');
    leg.created = options.created ?? true;
    leg.dialed = leg.created;
    leg.ringing = leg.created;
    return { rt, ctx, leg };
  }

  const end = (rt: CallRuntime, ctx: CallContext): Promise<void> =>
    rt.run(ctx, () => rt.endCall(ctx, { disposition: 'canceled', hangupBy: 'caller' }));

  it('a ringing leg gets canceled with the end of the call; its ChannelDestroyed, if it comes, gives its end time and cause', async () => {
    const { rt, ctx, leg } = ringing();
    await end(rt, ctx);
    const operator = snapshotCall(ctx.call, rt.now()).legs.find((l) => l.role === 'operator');
    expect(operator?.outcome).to.equal('canceled');
    expect(leg).to.include({ ended: false, endedAt: ctx.call.endedAt });

    clock.ms += 1500;
    rt.handleEvent(ev.destroyed(leg.channelId, 16, 'Normal Clearing'));
    await ctx.tail;
    expect(leg).to.include({ ended: true, outcome: 'canceled', cause: 16 });
    expect(leg.endedAt).to.equal(ctx.call.endedAt! + 1500);
  });

  it('a leg the end could not hang up (its create unanswered) takes the outcome its ChannelDestroyed reports', async () => {
    const { rt, ctx, leg } = ringing({ created: false });
    await end(rt, ctx);
    expect(leg.outcome).to.equal('canceled');
    // Its create went through after all and the phone rang out.
    leg.created = true;
    rt.handleEvent(ev.destroyed(leg.channelId, 19, 'User alerting, no answer'));
    await ctx.tail;
    expect(leg).to.include({ ended: true, outcome: 'no_answer', cause: 19 });
  });
});
