/**
 * Hang-ups in the simulated Asterisk: the far end refusing a dialled leg (busy, congestion, no
 * route), hanging up an answered channel (BYE) or cancelling an unanswered inbound call (CANCEL),
 * `DELETE /channels/{id}`, and what follows every hang-up request: the channel's media stops, it
 * leaves its bridge and Stasis, ChannelDestroyed, the bridge it left settles. The RTCP statistics
 * variables (RTPAUDIOQOS…) a channel with media gets as it hangs up are set here too. Asterisk
 * never hangs up the other leg by itself (fact 9): neither does this.
 */
import { CAUSE, causeText, dialStatusOfCause } from './causes.ts';
import { channelJson, clearDialTimers, type SimChannel } from './model.ts';
import type { Pbx } from './pbx.ts';

/** The hang-ups of a {@link Pbx}'s channels. */
export class Hangups {
  constructor(private readonly pbx: Pbx) {}

  /**
   * The dialled phone refuses (486 busy, 503 congestion, 603 decline): HangupRequest with cause and
   * tech_cause (fact 4); an originate also reports `Dial BUSY|CONGESTION|…` before ChannelDestroyed.
   */
  farEndRejects(ch: SimChannel, cause: number, techCause: number | undefined): void {
    const attempt = ch.dial;
    if (!attempt || attempt.answered || ch.phase !== 'alive') return;
    clearDialTimers(attempt);
    const fields: Record<string, unknown> = { cause };
    if (techCause !== undefined) fields.tech_cause = techCause;
    this.pbx.emitChannel('ChannelHangupRequest', ch, fields);
    ch.phase = 'terminating';
    if (attempt.via === 'originate') {
      this.pbx.emit(
        'Dial',
        {
          dialstatus: dialStatusOfCause(cause),
          forward: '',
          dialstring: attempt.device,
          peer: channelJson(ch),
        },
        { channels: [ch] },
      );
    }
    this.destroy(ch, cause, techCause);
  }

  /** The far end of an answered channel sends BYE: HangupRequest without cause, then the hang-up (synchronously). */
  farEndHangsUp(ch: SimChannel): void {
    if (ch.phase !== 'alive') return;
    this.rtpQos(ch);
    this.pbx.emitChannel('ChannelHangupRequest', ch);
    ch.phase = 'terminating';
    this.destroy(ch, CAUSE.NORMAL_CLEARING);
  }

  /** An unanswered inbound caller gives up (CANCEL): HangupRequest 127 tech_cause 487 (fact 6). */
  callerCancels(ch: SimChannel): void {
    if (ch.phase !== 'alive') return;
    this.pbx.emitChannel('ChannelHangupRequest', ch, {
      cause: CAUSE.INTERWORKING,
      tech_cause: 487,
    });
    ch.phase = 'terminating';
    this.destroy(ch, CAUSE.INTERWORKING, 487);
  }

  /** `PbxSimulator.hangup`: the far end hangs up whatever the call state (BYE, CANCEL or 603). */
  remoteHangup(ch: SimChannel): void {
    if (ch.phase !== 'alive') return;
    if (ch.state === 'Up') this.farEndHangsUp(ch);
    else if (ch.kind === 'inbound') this.callerCancels(ch);
    else if (ch.dial && !ch.dial.answered) this.farEndRejects(ch, CAUSE.USER_BUSY, 603);
  }

  /**
   * `DELETE /channels/{id}`: HangupRequest {cause 32, soft} at once, the rest right after
   * (ChannelDestroyed with the reason's cause, 16 "Normal Clearing" by default).
   */
  appHangup(ch: SimChannel, cause: number): void {
    if (ch.phase !== 'alive') return;
    ch.hangupCause = cause;
    this.rtpQos(ch);
    this.pbx.emitChannel('ChannelHangupRequest', ch, { cause: 32, soft: true });
    ch.phase = 'terminating';
    const attempt = ch.dial;
    if (attempt && attempt.via === 'originate' && !attempt.answered) {
      clearDialTimers(attempt);
      setImmediate(() => {
        this.pbx.emit(
          'Dial',
          {
            dialstatus: dialStatusOfCause(cause),
            forward: '',
            dialstring: attempt.device,
            peer: channelJson(ch),
          },
          { channels: [ch] },
        );
        this.destroy(ch, cause);
      });
      return;
    }
    this.scheduleDestroy(ch, cause);
  }

  scheduleDestroy(ch: SimChannel, cause: number, techCause?: number): void {
    if (ch.phase === 'alive') ch.phase = 'terminating';
    setImmediate(() => this.destroy(ch, cause, techCause));
  }

  /**
   * Everything after a hang-up request: media stop, ChannelLeftBridge, StasisEnd,
   * STASISSTATUS=SUCCESS, ChannelDestroyed (seen only by apps subscribed to the channel), then the
   * bridge it left settles (connected line of the remaining party, recorder leaving an empty bridge).
   */
  destroy(ch: SimChannel, cause: number, techCause?: number): void {
    if (ch.phase === 'gone' || !this.pbx.channels.has(ch.id)) return;
    ch.phase = 'gone';
    for (const t of ch.timers) t.cancel();
    ch.timers.clear();
    if (ch.dial) clearDialTimers(ch.dial);
    this.pbx.stopChannelMedia(ch);
    const bridge = ch.bridgeId ? this.pbx.bridges.get(ch.bridgeId) : undefined;
    if (bridge) this.pbx.bridging.leave(bridge, ch);
    const wasInStasis = ch.stasis !== null;
    this.pbx.leaveStasis(ch);
    if (wasInStasis)
      for (let i = 0; i <= ch.stasisReturns; i++) this.pbx.setVar(ch, 'STASISSTATUS', 'SUCCESS');
    if (ch.kind === 'created') {
      ch.dialplan.app_name = '';
      ch.dialplan.app_data = '';
    } else if (ch.kind === 'originated') {
      ch.dialplan.app_name = 'AppDial2';
      ch.dialplan.app_data = '(Outgoing Line)';
    }
    const fields: Record<string, unknown> = { cause, cause_txt: causeText(cause) };
    if (techCause !== undefined) fields.tech_cause = techCause;
    this.pbx.emitChannel('ChannelDestroyed', ch, fields);
    this.pbx.channels.delete(ch.id);
    this.pbx.endpoints.removeChannel(ch);
    for (const app of ch.subscribers) this.pbx.forgetAppIfIdle(app);
    this.pbx.endpoints.endpointChanged(ch.endpoint);
    if (bridge && this.pbx.bridges.has(bridge.id)) this.pbx.bridging.settle(bridge);
  }

  /**
   * RTCP statistics chan_pjsip sets on a channel with media as it hangs up (RTPAUDIOQOS,
   * …JITTER, …LOSS, …RTT, …MES), each a ChannelVarset before the ChannelHangupRequest; the peer
   * of a two-channel bridge gets the same values as `…BRIDGED` variables, interleaved. Counts
   * assume 50 packets a second since the answer.
   */
  private rtpQos(ch: SimChannel): void {
    if (ch.state !== 'Up' || ch.answeredAtMs === undefined) return;
    const bridge = ch.bridgeId ? this.pbx.bridges.get(ch.bridgeId) : undefined;
    const peerId =
      bridge && bridge.channels.length === 2 && bridge.internal.length === 0
        ? bridge.channels.find((id) => id !== ch.id)
        : undefined;
    const peer = peerId ? this.pbx.channels.get(peerId) : undefined;
    ch.ssrc ??= Math.floor(Math.random() * 2 ** 31);
    const packets = Math.round(((this.pbx.clock.nowMs() - ch.answeredAtMs) / 1000) * 50);
    for (const [name, value] of rtpQosValues(ch.ssrc, packets)) {
      this.pbx.setVar(ch, name, value);
      if (peer) this.pbx.setVar(peer, `${name}BRIDGED`, value);
    }
  }
}

/** The five RTCP statistics variables of a hung-up channel (format of chan_pjsip / res_rtp_asterisk). */
function rtpQosValues(ssrc: number, packets: number): Array<[string, string]> {
  const zero = '000.000000';
  const stats = (pad: string, names: string[]) =>
    names
      .map((n) => ['min', 'max', 'avg', 'stdev'].map((m) => `${pad}${m}${n}=${zero};`).join(''))
      .join('');
  return [
    [
      'RTPAUDIOQOS',
      `ssrc=${ssrc};themssrc=${ssrc};lp=0;rxjitter=0.000000;rxcount=${packets};txjitter=0.000125;txcount=${packets};rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000`,
    ],
    ['RTPAUDIOQOSJITTER', stats('', ['rxjitter', 'txjitter'])],
    ['RTPAUDIOQOSLOSS', stats('  ', ['rxlost', 'txlost'])],
    ['RTPAUDIOQOSRTT', stats('     ', ['rtt'])],
    ['RTPAUDIOQOSMES', stats('   ', ['rxmes', 'txmes'])],
  ];
}
