/**
 * What the phone behind an answered channel sends in its media: its voice, which an `AMD()` in
 * the channel's dialplan listens to (verdict from `amd.ts`), and DTMF digits, reported as
 * ChannelDtmfReceived unless a native_rtp bridge relays them unseen.
 */
import { amdSettings, amdVerdict } from './amd.ts';
import type { SimChannel } from './model.ts';
import type { Pbx } from './pbx.ts';
import type { AnswerVoice, DtmfPlan } from './types.ts';

/** The voice and DTMF of the phones behind a {@link Pbx}'s channels. */
export class PhoneMedia {
  constructor(private readonly pbx: Pbx) {}

  /**
   * `AMD(data)` in the dialplan of `ch`: AMD starts listening to what the phone sends (the
   * answering behaviour's `voice`, nothing for other phones); its verdict goes on with `next`.
   */
  startAmd(ch: SimChannel, data: string, next: () => void): void {
    const behaviour = ch.dial?.behaviour;
    const voice = behaviour?.mode === 'answer' ? (behaviour.voice ?? 'none') : 'none';
    ch.amd = { settings: amdSettings(data), startedAtMs: this.pbx.clock.nowMs(), next };
    this.scheduleAmdVerdict(ch, ch.amd, voice);
  }

  /**
   * The verdict of the `AMD()` listening on `ch` to `voice`, due within what is left of its total
   * analysis time (`NOTSURE` once it is over): sets `AMDSTATUS`, `AMDCAUSE` and goes on with the
   * dialplan. Replaces the verdict scheduled before.
   */
  private scheduleAmdVerdict(
    ch: SimChannel,
    amd: NonNullable<SimChannel['amd']>,
    voice: AnswerVoice,
  ): void {
    const leftMs = Math.max(
      0,
      amd.settings.totalAnalysisMs - (this.pbx.clock.nowMs() - amd.startedAtMs),
    );
    const heard = amdVerdict(voice, { ...amd.settings, totalAnalysisMs: leftMs });
    const verdict =
      heard.status === 'NOTSURE' ? { ...amdVerdict('none', amd.settings), afterMs: leftMs } : heard;
    amd.timer?.cancel();
    amd.timer = this.pbx.channelTimer(ch, verdict.afterMs, () => {
      if (ch.amd === amd) ch.amd = undefined;
      this.pbx.setVar(ch, 'AMDSTATUS', verdict.status);
      this.pbx.setVar(ch, 'AMDCAUSE', verdict.cause);
      amd.next();
    });
  }

  /**
   * The phone behind `ch` starts sending `voice` now (a phone that sent no audio so far): an
   * `AMD()` listening to it judges what it hears from now on, within what is left of its total
   * analysis time. Nothing to observe otherwise.
   */
  speak(ch: SimChannel, voice: AnswerVoice): void {
    if (ch.amd && ch.phase === 'alive') this.scheduleAmdVerdict(ch, ch.amd, voice);
  }

  /**
   * The phone behind `ch` presses `plan.digits` (RFC 2833) from `plan.afterMs` on: each digit is
   * reported as it ends, `ChannelDtmfReceived {digit, duration_ms}`, unless the channel is then in
   * a two-channel native_rtp bridge, where Asterisk relays the RTP without seeing the digits
   * (recorded: dtmf-received trace).
   */
  pressDigits(ch: SimChannel, plan: DtmfPlan): void {
    const durationMs = plan.durationMs ?? 280;
    const gapMs = plan.gapMs ?? 200;
    [...plan.digits].forEach((digit, i) => {
      const at = plan.afterMs + i * (durationMs + gapMs) + durationMs;
      this.pbx.channelTimer(ch, at, () => this.dtmfReceived(ch, digit, durationMs));
    });
  }

  /** One DTMF digit from the phone behind `ch` ended (see {@link pressDigits}). */
  dtmfReceived(ch: SimChannel, digit: string, durationMs: number): void {
    if (ch.phase !== 'alive' || ch.state !== 'Up') return;
    const bridge = ch.bridgeId ? this.pbx.bridges.get(ch.bridgeId) : undefined;
    if (bridge && this.pbx.bridging.technologyOf(bridge) === 'native_rtp') return;
    this.pbx.emitChannel('ChannelDtmfReceived', ch, { digit, duration_ms: durationMs });
    this.pbx.recordings.dtmf(ch.id, digit);
  }
}
