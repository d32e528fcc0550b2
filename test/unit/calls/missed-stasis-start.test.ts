/**
 * Channels found in the Stasis app at a connect that no call holds (src/calls/recovery.ts), on
 * the call service with a scripted ARI gateway: a caller the engine never heard of (its
 * StasisStart was lost) is routed as a new call, once, even when its StasisStart turns up after
 * all; a leftover of a call the store knows, and the engine's own channels, are hung up, never
 * routed.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import type { AriChannel, AriGateway } from '../../../src/ari/types.ts';
import { CallNotifier } from '../../../src/calls/notifier.ts';
import { STRAY_CHANNEL_GRACE_MS } from '../../../src/calls/recovery.ts';
import { CallService } from '../../../src/calls/service.ts';
import type { RouteDecision } from '../../../src/crm/types.ts';
import type { LifecycleEvent } from '../../../src/events/types.ts';
import { ev } from '../../ari/support/events.ts';
import { collectingLogger } from '../../support/engine.ts';
import { unitCallDeps } from '../../support/call-deps.ts';

const DID = '74951234567';

/** A channel in `crm-app` as `GET /channels` lists it, with Stasis arguments `args`. */
function inApp(
  id: string,
  args: string,
  opts: { state?: AriChannel['state']; name?: string; context?: string; exten?: string } = {},
): AriChannel {
  return {
    id,
    name: opts.name ?? 'PJSIP/pstn-in-00000007',
    state: opts.state ?? 'Ring',
    protocol_id: '',
    caller: { name: '', number: '79161234567' },
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: {
      context: opts.context ?? 'from-pstn',
      exten: opts.exten ?? DID,
      priority: 2,
      app_name: 'Stasis',
      app_data: `crm-app,${args}`,
    },
    creationtime: '2026-12-06T07:57:28.701+0000',
    language: 'en',
  };
}

/**
 * The call service just connected to ARI, over a gateway listing `listing` (every time), with a
 * store knowing `known` channel ids (or failing), a CRM that never answers (the lookups are
 * recorded), and the `call.started` events and log lines collected.
 */
function connectedService(opts: { listing: AriChannel[]; known?: string[] | 'store down' }) {
  const channels = {
    list: sinon.stub().resolves(opts.listing),
    hangup: sinon.stub().resolves(),
    ring: sinon.stub().resolves(),
    answer: sinon.stub().resolves(),
  };
  const gateway = {
    app: 'crm-app',
    isConnected: () => true,
    channels,
    bridges: { list: sinon.stub().resolves([]) },
  } as unknown as AriGateway;
  const { logger, logs } = collectingLogger('info');
  const lookups: Array<{ callId: string; from: string; did: string }> = [];
  const events: LifecycleEvent[] = [];
  const known = opts.known;
  const service = new CallService(
    unitCallDeps(gateway, {
      logger,
      notifier: new CallNotifier([{ enqueue: (e: LifecycleEvent) => events.push(e) }], logger),
      routes: {
        lookup: (request) => {
          lookups.push(request);
          return new Promise<RouteDecision>(() => undefined);
        },
      },
      knownChannels: (ids) =>
        known === 'store down'
          ? Promise.reject(new Error('store unreachable'))
          : Promise.resolve(new Set(ids.filter((id) => known?.includes(id)))),
    }),
  );
  return { service, channels, lookups, events, logs };
}

describe('calls: channels in the app that no call holds, at a connect', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => clock.restore());

  /** Reconcile as at a connect, and let the two listings, the grace and the look-ups run. */
  async function connect(service: CallService): Promise<void> {
    await service.reconcile();
    await clock.tickAsync(STRAY_CHANNEL_GRACE_MS + 100);
  }

  it('routes an inbound caller the engine never heard of, as its StasisStart would have', async () => {
    const t = connectedService({ listing: [inApp('1796593135.7', `inbound,${DID}`)] });
    await connect(t.service);

    expect(t.channels.hangup.called).to.equal(false);
    expect(t.lookups).to.have.length(1);
    expect(t.lookups[0]).to.include({ from: '79161234567', did: DID });
    expect(t.events.map((e) => e.type)).to.deep.equal(['call.started']);
    expect(t.events[0]!.data).to.include({ direction: 'in', from: '79161234567', did: DID });
    // The caller hears ringback while the CRM is asked, as any caller does.
    expect(t.channels.ring.calledOnceWith('1796593135.7')).to.equal(true);
    const [call] = t.service.activeCalls();
    expect(call).to.include({ id: t.lookups[0]!.callId, state: 'routing' });
    const line = t.logs.find((l) => l.message === 'routing a caller whose StasisStart was missed');
    expect(line).to.include({
      level: 'warn',
      channelId: '1796593135.7',
      state: 'Ring',
      stasisArgs: `inbound,${DID}`,
    });
  });

  it('routes an operator dialling out from the desk phone the same way (outbound)', async () => {
    const t = connectedService({
      listing: [
        inApp('1796593135.8', 'outbound,89161234567', {
          name: 'PJSIP/103-00000003',
          context: 'from-internal',
          exten: '89161234567',
          state: 'Ring',
        }),
      ],
    });
    await connect(t.service);
    expect(t.events[0]).to.deep.include({ type: 'call.started' });
    expect(t.events[0]!.data).to.include({ direction: 'out', from: '103', to: '89161234567' });
  });

  it('hangs up a caller the store has as a leg of a call (an ended call whose hang-up was lost), without routing it', async () => {
    const t = connectedService({
      listing: [inApp('1796593135.9', `inbound,${DID}`, { state: 'Up' })],
      known: ['1796593135.9'],
    });
    await connect(t.service);
    expect(t.channels.hangup.calledOnceWith('1796593135.9')).to.equal(true);
    expect(t.lookups).to.deep.equal([]);
    expect(t.events).to.deep.equal([]);
    expect(t.logs.find((l) => l.message === 'hanging up a channel of no live call')).to.include({
      channelId: '1796593135.9',
      stasisArgs: `inbound,${DID}`,
    });
  });

  it('never takes the engine’s own channels for new callers: legs, originates and notification calls of no call are hung up', async () => {
    const own = [
      inApp('op-1', 'operator,call-1', { name: 'PJSIP/101-00000001', state: 'Up' }),
      inApp('cu-1', 'customer,call-1', { name: 'PJSIP/client-trunk-00000002', state: 'Up' }),
      inApp('c2c-1', 'click2call,operator,call-2', { name: 'PJSIP/102-00000003', state: 'Up' }),
      inApp('nt-1', 'notify,7,call-3', { state: 'Up' }),
      inApp('amd-1', 'amd,HUMAN,HUMAN-800-800', { state: 'Up' }),
      // A caller already hanging up (or never up) is not a call to route.
      inApp('down-1', `inbound,${DID}`, { state: 'Down' }),
    ];
    const t = connectedService({ listing: own });
    await connect(t.service);
    expect(t.lookups).to.deep.equal([]);
    expect(t.events).to.deep.equal([]);
    const hungUp = t.channels.hangup.args.map((a) => String(a[0]));
    expect(hungUp).to.have.members(own.map((c) => c.id));
  });

  it('leaves the callers alone when the store cannot say whether it knows them (the next connect decides)', async () => {
    const t = connectedService({
      listing: [inApp('1796593135.10', `inbound,${DID}`)],
      known: 'store down',
    });
    await connect(t.service);
    expect(t.channels.hangup.called).to.equal(false);
    expect(t.lookups).to.deep.equal([]);
    expect(
      t.logs.some(
        (l) =>
          l.message === 'could not look channels of no live call up in the store; left for now',
      ),
    ).to.equal(true);
  });

  it('one call only when the StasisStart arrives during the grace period', async () => {
    const t = connectedService({ listing: [inApp('1796593135.11', `inbound,${DID}`)] });
    await t.service.reconcile();
    await clock.tickAsync(10);
    // Its StasisStart was only late: the call starts from it; the second listing finds it held.
    t.service.handleEvent(ev.stasisStart('1796593135.11', ['inbound', DID]));
    await clock.tickAsync(STRAY_CHANNEL_GRACE_MS + 100);
    expect(t.lookups).to.have.length(1);
    expect(t.events.map((e) => e.type)).to.deep.equal(['call.started']);
    expect(t.channels.hangup.called).to.equal(false);
    expect(
      t.logs.some((l) => l.message === 'routing a caller whose StasisStart was missed'),
    ).to.equal(false);
  });

  it('one call only when the StasisStart arrives after the caller was routed', async () => {
    const t = connectedService({ listing: [inApp('1796593135.12', `inbound,${DID}`)] });
    await connect(t.service);
    expect(t.lookups).to.have.length(1);
    t.service.handleEvent(ev.stasisStart('1796593135.12', ['inbound', DID]));
    await clock.tickAsync(10);
    expect(t.lookups).to.have.length(1);
    expect(t.service.activeCalls()).to.have.length(1);
    expect(t.events.map((e) => e.type)).to.deep.equal(['call.started']);
  });

  /** An engine leg outside the app, as an originate still ringing shows in `GET /channels`. */
  function outsideApp(id: string, state: AriChannel['state'] = 'Ringing'): AriChannel {
    const ch = inApp(id, '', { state, name: 'PJSIP/101-00000003' });
    return {
      ...ch,
      dialplan: { ...ch.dialplan, app_name: 'AppDial2', app_data: '(Outgoing Line)' },
    };
  }

  it("hangs up the engine's own legs ringing outside the app for no call; leaves others' and answered ones alone", async () => {
    const ours = 'op-0b6a3f0e-5d1c-4c52-9a57-0e7d0b1f2a11';
    const another = 'op-7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f'; // another engine's, same Asterisk
    const transferred = 'cu-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d'; // handed to the dialplan
    const foreign = '1796593135.20'; // not an engine leg id
    const t = connectedService({
      listing: [
        outsideApp(ours),
        outsideApp(another),
        outsideApp(transferred, 'Up'),
        outsideApp(foreign),
      ],
      known: [ours, transferred, foreign],
    });
    await connect(t.service);
    expect(t.channels.hangup.args.map((a) => String(a[0]))).to.deep.equal([ours]);
    expect(t.lookups).to.have.length(0);
    const line = t.logs.find((l) => l.message === 'hanging up a channel of no live call');
    expect(line).to.include({ level: 'warn', channelId: ours });
  });
});
