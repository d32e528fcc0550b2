/**
 * A dialled leg (ARI `dial` of a created channel, or an originate) as its phone behaves (see
 * `PhoneBehaviour`): it rings, then is answered (an originate then enters Stasis or the
 * dialplan) or refused, or rings until the dial timeout; a phone whose behaviour changes while it
 * rings adopts the new one.
 */
import { CAUSE } from './causes.ts';
import { channelJson, clearDialTimers, type DialAttempt, type SimChannel } from './model.ts';
import type { Pbx } from './pbx.ts';

/** The dialled legs of a {@link Pbx}. */
export class Dialling {
  constructor(private readonly pbx: Pbx) {}

  /** Play a phone's behaviour on a dialled leg (`alreadyRinging` when re-planned while ringing). */
  runBehaviour(ch: SimChannel, attempt: DialAttempt, alreadyRinging: boolean): void {
    const b = attempt.behaviour;
    switch (b.mode) {
      case 'answer':
        if (!alreadyRinging) this.ringSoon(ch, attempt);
        attempt.timers.push(
          this.pbx.channelTimer(ch, b.answerAfterMs, () => this.answerOutgoing(ch)),
        );
        return;
      case 'ring':
        if (!alreadyRinging) this.ringSoon(ch, attempt);
        return;
      case 'busy':
        attempt.timers.push(
          this.pbx.channelTimer(ch, b.afterMs ?? 0, () =>
            this.pbx.hangups.farEndRejects(ch, CAUSE.USER_BUSY, 486),
          ),
        );
        return;
      case 'congestion':
        attempt.timers.push(
          this.pbx.channelTimer(ch, b.afterMs ?? 0, () =>
            this.pbx.hangups.farEndRejects(ch, CAUSE.NORMAL_CIRCUIT_CONGESTION, 503),
          ),
        );
        return;
      case 'unavailable':
        attempt.timers.push(
          this.pbx.channelTimer(ch, 0, () =>
            this.pbx.hangups.farEndRejects(ch, CAUSE.NO_ROUTE_DESTINATION, undefined),
          ),
        );
        return;
    }
  }

  /**
   * The phone's 180 Ringing comes a SIP round trip after the INVITE, so after ARI answered the
   * `dial` or the originate (trace inbound-answered: the `dial`'s 204, then `Dial` RINGING 2 ms
   * later): the next timer turn, never in the request's own turn.
   */
  private ringSoon(ch: SimChannel, attempt: DialAttempt): void {
    attempt.timers.push(this.pbx.channelTimer(ch, 0, () => this.ringing(ch, attempt)));
  }

  /** 180 Ringing: order as in the traces (ARI dial and trunk originate: state first; extension originate: Dial first). */
  private ringing(ch: SimChannel, attempt: DialAttempt): void {
    const dialstring = attempt.via === 'originate' ? attempt.device : '';
    const dialEvent = () =>
      this.pbx.emit(
        'Dial',
        { dialstatus: 'RINGING', forward: '', dialstring, peer: channelJson(ch) },
        { channels: [ch] },
      );
    if (attempt.via === 'originate' && ch.party.kind === 'operator') {
      dialEvent();
      this.pbx.setState(ch, 'Ringing');
    } else {
      this.pbx.setState(ch, 'Ringing');
      dialEvent();
    }
  }

  /** The dialled phone answers: state Up, `Dial ANSWER`; an originate then enters Stasis or the dialplan. */
  private answerOutgoing(ch: SimChannel): void {
    const attempt = ch.dial;
    if (!attempt || attempt.answered) return;
    attempt.answered = true;
    clearDialTimers(attempt);
    this.pbx.setState(ch, 'Up');
    const dialstring = attempt.via === 'originate' ? attempt.device : '';
    this.pbx.emit(
      'Dial',
      { dialstatus: 'ANSWER', forward: '', dialstring, peer: channelJson(ch) },
      { channels: [ch] },
    );
    if (attempt.behaviour.mode === 'answer' && attempt.behaviour.hangupAfterMs !== undefined) {
      const { hangupAfterMs, hangupSpreadMs = 0 } = attempt.behaviour;
      const talkMs = hangupAfterMs + Math.random() * hangupSpreadMs;
      this.pbx.channelTimer(ch, talkMs, () => this.pbx.hangups.farEndHangsUp(ch));
    }
    if (attempt.behaviour.mode === 'answer' && attempt.behaviour.dtmf)
      this.pbx.phoneMedia.pressDigits(ch, attempt.behaviour.dtmf);
    const next = attempt.onAnswer;
    if (attempt.via === 'originate' && next) {
      if ('app' in next) {
        const appArgs = next.args.length > 0 ? next.args.join(',') : undefined;
        if (!this.pbx.enterStasis(ch, next.app, appArgs, false))
          this.pbx.hangups.scheduleDestroy(ch, CAUSE.NORMAL_CLEARING);
      } else {
        this.pbx.dialplan.run(ch, next.context, next.exten, next.priority);
      }
    }
  }

  /** Originate: the ring timeout expired (ast_dial hangs the channel up). */
  originateTimeout(ch: SimChannel): void {
    if (!ch.dial || ch.dial.answered) return;
    clearDialTimers(ch.dial);
    this.pbx.hangups.destroy(ch, CAUSE.NO_ANSWER, 480);
  }

  /** ARI dial timeout (fact 5): HangupRequest cause 32 soft, then ChannelDestroyed 19 tech_cause 480. */
  dialTimeout(ch: SimChannel): void {
    if (!ch.dial || ch.dial.answered) return;
    clearDialTimers(ch.dial);
    this.pbx.emitChannel('ChannelHangupRequest', ch, { cause: 32, soft: true });
    ch.phase = 'terminating';
    this.pbx.hangups.destroy(ch, CAUSE.NO_ANSWER, 480);
  }

  /** A phone's behaviour changed: refresh its endpoint/device state; a ringing `ring`-mode leg adopts it. */
  phoneChanged(extension: string): void {
    const endpoint = `PJSIP/${extension}`;
    this.pbx.endpoints.endpointChanged(endpoint);
    const behaviour = this.pbx.phones.operator(extension);
    for (const ch of this.pbx.channels.values()) {
      if (ch.endpoint !== endpoint || !ch.dial || ch.dial.answered || ch.phase !== 'alive')
        continue;
      if (ch.dial.behaviour.mode !== 'ring' || behaviour.mode === 'ring') continue;
      ch.dial.behaviour = behaviour;
      this.runBehaviour(ch, ch.dial, true);
    }
  }
}
