/**
 * Reconciliation logic (src/calls/reconcile.ts) over a recording fake of the call service:
 * what is decided for each call from Asterisk's channel and bridge lists, and how a stored call
 * is rebuilt after a restart.
 */
import { expect } from 'chai';
import type { AriBridge, AriChannel, ChannelState } from '../../../src/ari/types.ts';
import {
  adoptedCallFromRecord,
  ariView,
  inStasisOf,
  reconcileCall,
  strayChannels,
  type AriView,
  type CallFlow,
  type ReconcileTarget,
} from '../../../src/calls/reconcile.ts';
import type { Call, CallState, Leg } from '../../../src/calls/model.ts';
import type { UnfinishedCallRecord } from '../../../src/store/calls.ts';
import { modelLeg } from '../../store/helpers.ts';

const APP = 'crm-app';
const T0 = Date.UTC(2025, 0, 31, 9, 15, 0);

function channel(id: string, state: ChannelState, stasis = true): AriChannel {
  return {
    id,
    name: `PJSIP/${id}`,
    state,
    caller: { name: '', number: '' },
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: stasis
      ? { context: 'x', exten: 's', priority: 1, app_name: 'Stasis', app_data: `${APP},operator` }
      : { context: 'x', exten: 's', priority: 1, app_name: 'AppDial2', app_data: '' },
    creationtime: '2025-01-31T09:15:00.000+0000',
    language: 'en',
  };
}

function bridge(id: string, channels: string[], name = ''): AriBridge {
  return {
    id,
    technology: 'simple_bridge',
    bridge_type: 'mixing',
    bridge_class: 'stasis',
    creator: 'Stasis',
    name,
    channels,
  };
}

/** A leg of the model as reconciliation finds it: engine-created legs were dialled. */
function leg(channelId: string, role: Leg['role'], extra: Partial<Leg> = {}): Leg {
  return modelLeg(channelId, role, { dialed: role !== 'caller', createdAt: T0, ...extra });
}

function call(phase: Call['phase'], legs: Leg[], extra: Partial<Call> = {}): Call {
  return {
    id: 'c1',
    direction: 'in',
    from: '79161234567',
    to: '74951234567',
    phase,
    legs: new Map(legs.map((l) => [l.channelId, l])),
    callerChannelId: legs[0]?.channelId ?? '',
    startedAt: T0,
    nextSequence: 4,
    ...extra,
  };
}

/** A target that records what reconciliation asked for; `end` and `callerGone` end the call. */
function fakeTarget(
  c: Call,
  options: {
    flow?: CallFlow;
    anchor?: string;
    eligible?: string[];
    adoptedState?: CallState;
    playback?: { id: string; exists: boolean };
  } = {},
): ReconcileTarget & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    call: c,
    flow: options.flow ?? 'inbound',
    anchorChannelId: options.anchor ?? c.callerChannelId,
    eligible: new Set(options.eligible ?? [...c.legs.keys()]),
    adoptedState: options.adoptedState,
    awaitedPlaybackId: options.playback?.id,
    isReleased: () => false,
    playbackExists: async () => options.playback?.exists ?? true,
    callerAnswered: () => void log.push('callerAnswered'),
    legEnteredStasis: async (l) => void log.push(`stasis ${l.channelId}`),
    legRinging: async (l) => {
      l.ringing = true;
      log.push(`ringing ${l.channelId}`);
    },
    legAnswered: async (l) => {
      l.answered = true;
      log.push(`answered ${l.channelId}`);
    },
    legGone: async (l) => {
      l.ended = true;
      log.push(`gone ${l.channelId} ${l.outcome}`);
    },
    callerGone: async (l) => {
      l.ended = true;
      c.phase = 'ended';
      log.push(`callerGone ${l.channelId}`);
    },
    legVanished: (l) => {
      l.ended = true;
      log.push(`vanished ${l.channelId}`);
    },
    playbackDone: async (id) => void log.push(`playbackDone ${id}`),
    nothingLive: async (l) => void log.push(`nothingLive ${l?.channelId}`),
    resumeRouting: () => void log.push('resumeRouting'),
    bridge: async (ids, exists) => void log.push(`bridge ${ids.join(',')} ${exists}`),
    hangup: async (l) => void log.push(`hangup ${l.channelId}`),
    destroyBridge: async () => void log.push('destroyBridge'),
    forgetIfDone: () => void log.push('forgetIfDone'),
    end: async (outcome) => {
      c.phase = 'ended';
      log.push(`end ${outcome.disposition} ${outcome.hangupBy} ${outcome.reason}`);
    },
    recovered: (state) => void log.push(`recovered ${state}`),
  };
}

const view = (channels: AriChannel[], bridges: AriBridge[] = []): AriView =>
  ariView(APP, channels, bridges);

describe('reconciliation', () => {
  it('recognises channels in the Stasis app from their dialplan application', () => {
    expect(inStasisOf(channel('a', 'Up'), APP)).to.equal(true);
    expect(inStasisOf(channel('a', 'Up', false), APP)).to.equal(false);
    expect(inStasisOf(channel('a', 'Up'), 'other-app')).to.equal(false);
  });

  it('finds the channels in the app that no call tracks, and only those', () => {
    const tracked = new Set(['live-caller', 'live-operator', 'c2c-ringing']);
    const stray = strayChannels(
      [
        channel('live-caller', 'Up'),
        channel('live-operator', 'Up'),
        // An originate still ringing is not in Stasis yet (tracked anyway).
        channel('c2c-ringing', 'Ringing', false),
        // A channel handed to the dialplan is no longer the app's.
        channel('in-dialplan', 'Up', false),
        channel('ended-caller', 'Ring'),
      ],
      APP,
      (id) => tracked.has(id),
    );
    expect(stray.map((ch) => ch.id)).to.deep.equal(['ended-caller']);
    expect(
      strayChannels([channel('ended-caller', 'Ring')], 'other-app', () => false),
    ).to.deep.equal([]);
  });

  describe('a live call after a reconnect', () => {
    it('keeps a bridged call whose channels are all there and sends call.recovered', async () => {
      const c = call(
        'bridged',
        [
          leg('caller', 'caller', { answered: true }),
          leg('op', 'operator', { answered: true, outcome: 'answered' }),
        ],
        { answeredAt: T0 + 5000, bridgeId: 'br' },
      );
      const t = fakeTarget(c);
      const result = await reconcileCall(
        t,
        view([channel('caller', 'Up'), channel('op', 'Up')], [bridge('br', ['caller', 'op'])]),
      );
      expect(result).to.equal('kept');
      expect(t.log).to.deep.equal(['callerAnswered', 'recovered bridged']);
    });

    it('ends an answered call none of whose channels is left: answered, system, reconciled', async () => {
      const c = call(
        'bridged',
        [leg('caller', 'caller'), leg('op', 'operator', { answered: true, outcome: 'answered' })],
        { answeredAt: T0 + 5000 },
      );
      const t = fakeTarget(c);
      expect(await reconcileCall(t, view([]))).to.equal('ended');
      expect(t.log).to.deep.equal([
        'vanished caller',
        'vanished op',
        'end answered system reconciled',
      ]);
    });

    it('handles a vanished caller as its hang-up, before anything else', async () => {
      const c = call('dialing', [
        leg('caller', 'caller'),
        leg('op1', 'operator', { ringing: true }),
        leg('op2', 'operator', { ringing: true }),
      ]);
      const t = fakeTarget(c);
      expect(await reconcileCall(t, view([channel('op1', 'Ringing')]))).to.equal('ended');
      expect(t.log).to.deep.equal(['vanished op2', 'callerGone caller']);
      expect(c.legs.get('op2')!.outcome).to.equal('no_answer');
    });

    it('replays an answer and a ring that were missed, then the legs that vanished', async () => {
      const c = call('dialing', [
        leg('caller', 'caller'),
        leg('op1', 'operator'),
        leg('op2', 'operator'),
        leg('op3', 'operator'),
        leg('op4', 'operator', { created: false }),
      ]);
      const t = fakeTarget(c, { eligible: ['caller', 'op1', 'op2', 'op3'] });
      const result = await reconcileCall(
        t,
        view([channel('caller', 'Ring', false), channel('op1', 'Ringing'), channel('op2', 'Up')]),
      );
      expect(result).to.equal('kept');
      expect(t.log).to.deep.equal([
        'answered op2',
        'ringing op1',
        'gone op3 failed',
        'recovered operator_ringing',
      ]);
      expect(c.legs.get('op4')!.ended, 'a leg being created is left alone').to.equal(false);
    });

    it('dials a created leg whose StasisStart was lost while disconnected', async () => {
      const c = call('dialing', [
        leg('caller', 'caller'),
        leg('op', 'operator', { inStasis: false, dialed: false }),
      ]);
      const t = fakeTarget(c);
      await reconcileCall(t, view([channel('caller', 'Ring', false), channel('op', 'Down')]));
      expect(t.log[0]).to.equal('stasis op');
    });

    it('finishes a greeting whose PlaybackFinished was missed', async () => {
      const c = call('greeting', [leg('caller', 'caller')]);
      const t = fakeTarget(c, { playback: { id: 'pb-1', exists: false } });
      await reconcileCall(t, view([channel('caller', 'Up', false)]));
      expect(t.log).to.deep.equal(['callerAnswered', 'playbackDone pb-1', 'recovered greeting']);
    });

    it('puts the parties of a bridged call back in its bridge when a command was cut', async () => {
      const c = call(
        'bridged',
        [
          leg('caller', 'caller', { answered: true }),
          leg('op', 'operator', { answered: true, outcome: 'answered' }),
        ],
        { answeredAt: T0, bridgeId: 'br' },
      );
      const t = fakeTarget(c);
      await reconcileCall(
        t,
        view([channel('caller', 'Up'), channel('op', 'Up')], [bridge('br', ['caller'])]),
      );
      expect(t.log).to.include('bridge op true');
      const t2 = fakeTarget(c);
      await reconcileCall(t2, view([channel('caller', 'Up'), channel('op', 'Up')]));
      expect(t2.log).to.include('bridge caller,op false');
    });

    it('hangs up what is left of an ended call and destroys its bridge', async () => {
      const c = call(
        'ended',
        [
          leg('caller', 'caller', { hangupRequested: true }),
          leg('op', 'operator', { hangupRequested: true }),
        ],
        { bridgeId: 'br' },
      );
      const t = fakeTarget(c);
      expect(await reconcileCall(t, view([channel('op', 'Up')], [bridge('br', ['op'])]))).to.equal(
        'ended',
      );
      expect(t.log).to.deep.equal([
        'vanished caller',
        'hangup op',
        'destroyBridge',
        'forgetIfDone',
      ]);
    });
  });

  describe('a call adopted after a restart', () => {
    function record(extra: Partial<UnfinishedCallRecord>): UnfinishedCallRecord {
      return {
        id: 'c1',
        direction: 'in',
        state: 'bridged',
        from: '79161234567',
        to: '74951234567',
        did: '74951234567',
        startedAt: '2025-01-31T09:15:00.000Z',
        answeredAt: '2025-01-31T09:15:05.000Z',
        answeredBy: '101',
        waitSec: 5,
        talkSec: 0,
        updatedAt: '2025-01-31T09:15:06.000Z',
        lastSequence: 3,
        legs: [
          { channelId: 'caller', role: 'caller', createdAt: '2025-01-31T09:15:00.000Z' },
          {
            channelId: 'op',
            role: 'operator',
            extension: '101',
            endpoint: 'PJSIP/101',
            outcome: 'answered',
            createdAt: '2025-01-31T09:15:01.000Z',
            answeredAt: '2025-01-31T09:15:05.000Z',
          },
        ],
        ...extra,
      };
    }

    it('rebuilds an inbound call: flow, phase, anchor, times, legs and the next event sequence', () => {
      const { call: c, flow, anchorChannelId, transferring } = adoptedCallFromRecord(record({}));
      expect(flow).to.equal('inbound');
      expect(anchorChannelId).to.equal('caller');
      expect(transferring).to.equal(false);
      expect(c).to.deep.include({
        id: 'c1',
        phase: 'bridged',
        callerChannelId: 'caller',
        answeredBy: '101',
        startedAt: Date.parse('2025-01-31T09:15:00.000Z'),
        answeredAt: Date.parse('2025-01-31T09:15:05.000Z'),
        nextSequence: 4,
      });
      expect(c.legs.get('op')).to.deep.include({
        role: 'operator',
        extension: '101',
        answered: true,
        outcome: 'answered',
        ended: false,
        createdByEngine: true,
      });
    });

    it('tells outbound from click-to-call by the dialplan caller leg', () => {
      const outbound = adoptedCallFromRecord(
        record({
          direction: 'out',
          from: '101',
          legs: [
            {
              channelId: 'phone',
              role: 'caller',
              extension: '101',
              createdAt: '2025-01-31T09:15:00.000Z',
            },
            { channelId: 'cu', role: 'customer', createdAt: '2025-01-31T09:15:01.000Z' },
          ],
        }),
      );
      expect(outbound.flow).to.equal('outbound');
      expect(outbound.call.operatorExtension).to.equal('101');
      expect(outbound.anchorChannelId).to.equal('phone');
      const c2c = adoptedCallFromRecord(
        record({
          direction: 'out',
          from: '101',
          state: 'customer_ringing',
          answeredAt: undefined,
          legs: [
            {
              channelId: 'op-1',
              role: 'operator',
              outcome: 'busy',
              createdAt: '2025-01-31T09:15:00.000Z',
              endedAt: '2025-01-31T09:15:01.000Z',
            },
            {
              channelId: 'op-2',
              role: 'operator',
              outcome: 'answered',
              createdAt: '2025-01-31T09:15:02.000Z',
            },
            { channelId: 'cu', role: 'customer', createdAt: '2025-01-31T09:15:03.000Z' },
          ],
        }),
      );
      expect(c2c.flow).to.equal('click2call');
      expect(c2c.anchorChannelId).to.equal('op-2');
      expect(c2c.call).to.deep.include({
        phase: 'dialing',
        originated: true,
        callerChannelId: 'op-2',
      });
      expect(c2c.clickToCall).to.deep.equal({
        operator: '101',
        tries: 2,
        triesPeriodSec: 0,
        attempt: 2,
      });
      expect(c2c.call.legs.get('op-1')!.ended).to.equal(true);
    });

    it('anchors a blind transfer in progress on the customer', () => {
      const adopted = adoptedCallFromRecord(
        record({
          direction: 'out',
          state: 'operator_ringing',
          legs: [
            {
              channelId: 'phone',
              role: 'caller',
              extension: '101',
              createdAt: '2025-01-31T09:15:00.000Z',
              endedAt: '2025-01-31T09:15:09.000Z',
            },
            {
              channelId: 'cu',
              role: 'customer',
              outcome: 'answered',
              createdAt: '2025-01-31T09:15:01.000Z',
              answeredAt: '2025-01-31T09:15:05.000Z',
            },
            {
              channelId: 'op',
              role: 'operator',
              extension: '102',
              createdAt: '2025-01-31T09:15:09.000Z',
            },
          ],
        }),
      );
      expect(adopted.transferring).to.equal(true);
      expect(adopted.anchorChannelId).to.equal('cu');
    });

    it('adopts a bridged click-to-call whose blind transfer was ringing: anchored on the talking operator, the transfer still on', () => {
      const adopted = adoptedCallFromRecord(
        record({
          direction: 'out',
          from: '101',
          to: '+74957654321',
          state: 'bridged',
          legs: [
            {
              channelId: 'op-1',
              role: 'operator',
              extension: '101',
              outcome: 'answered',
              createdAt: '2025-01-31T09:15:00.000Z',
              answeredAt: '2025-01-31T09:15:02.000Z',
            },
            {
              channelId: 'cu',
              role: 'customer',
              outcome: 'answered',
              createdAt: '2025-01-31T09:15:03.000Z',
              answeredAt: '2025-01-31T09:15:05.000Z',
            },
            {
              channelId: 'op-2',
              role: 'operator',
              extension: '102',
              createdAt: '2025-01-31T09:15:09.000Z',
            },
          ],
        }),
      );
      expect(adopted.flow).to.equal('click2call');
      expect(adopted.transferring).to.equal(false);
      expect(adopted.anchorChannelId).to.equal('op-1');
      expect(adopted.call.callerChannelId).to.equal('op-1');
      expect(adopted.call.transfer).to.deep.equal({
        kind: 'extension',
        to: '102',
        channelId: 'op-2',
        fromChannelId: 'op-1',
        startedAt: Date.parse('2025-01-31T09:15:09.000Z'),
      });
    });

    it('finds the bridge again, and does not ring twice for a leg the stored state says rang', async () => {
      const { call: c, flow, anchorChannelId } = adoptedCallFromRecord(record({}));
      const t = fakeTarget(c, { flow, anchor: anchorChannelId, adoptedState: 'bridged' });
      const result = await reconcileCall(
        t,
        view(
          [channel('caller', 'Up', true), channel('op', 'Up')],
          [bridge('br-x', ['caller', 'op'], 'call-c1')],
        ),
      );
      expect(result).to.equal('kept');
      expect(c.bridgeId).to.equal('br-x');
      expect(t.log).to.deep.equal(['callerAnswered', 'recovered bridged']);

      const ringing = adoptedCallFromRecord(
        record({
          state: 'operator_ringing',
          answeredAt: undefined,
          answeredBy: undefined,
          legs: [
            { channelId: 'caller', role: 'caller', createdAt: '2025-01-31T09:15:00.000Z' },
            {
              channelId: 'op',
              role: 'operator',
              extension: '101',
              createdAt: '2025-01-31T09:15:01.000Z',
            },
          ],
        }),
      );
      const t2 = fakeTarget(ringing.call, { adoptedState: 'operator_ringing' });
      await reconcileCall(t2, view([channel('caller', 'Ring'), channel('op', 'Ringing')]));
      expect(t2.log).to.deep.equal(['recovered operator_ringing']);
    });

    it('dials a leg still Down, routes a call that was routing again, and moves on when nobody is left to ring', async () => {
      const down = adoptedCallFromRecord(
        record({
          state: 'dialing_operator',
          answeredAt: undefined,
          legs: [
            { channelId: 'caller', role: 'caller', createdAt: '2025-01-31T09:15:00.000Z' },
            { channelId: 'op', role: 'operator', createdAt: '2025-01-31T09:15:01.000Z' },
          ],
        }),
      );
      const t = fakeTarget(down.call, { adoptedState: 'dialing_operator' });
      await reconcileCall(t, view([channel('caller', 'Ring'), channel('op', 'Down')]));
      expect(t.log[0]).to.equal('stasis op');

      const routing = adoptedCallFromRecord(
        record({ state: 'routing', answeredAt: undefined, legs: [record({}).legs[0]!] }),
      );
      const t2 = fakeTarget(routing.call, { adoptedState: 'routing' });
      await reconcileCall(t2, view([channel('caller', 'Ring')]));
      expect(t2.log).to.deep.equal(['resumeRouting', 'recovered routing']);

      const stalled = adoptedCallFromRecord(
        record({
          state: 'dialing_operator',
          answeredAt: undefined,
          legs: [
            { channelId: 'caller', role: 'caller', createdAt: '2025-01-31T09:15:00.000Z' },
            {
              channelId: 'op',
              role: 'operator',
              outcome: 'busy',
              createdAt: '2025-01-31T09:15:01.000Z',
              endedAt: '2025-01-31T09:15:02.000Z',
            },
          ],
        }),
      );
      const t3 = fakeTarget(stalled.call, { adoptedState: 'dialing_operator' });
      await reconcileCall(t3, view([channel('caller', 'Ring')]));
      expect(t3.log).to.deep.equal(['nothingLive op', 'recovered dialing_operator']);
    });
  });
});
