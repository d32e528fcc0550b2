/**
 * Simulated phones that react to what they hear, as a person does: press a digit once the
 * prompt plays, hang up during the third sound. A phone behaviour's `dtmf.afterMs` or
 * `hangupAfterMs` counts from the answer instead, so it races the engine: on a loaded machine
 * the engine may start the prompt after the digit was pressed (and the digit is lost), or play
 * less of the message than the test meant before the hang-up.
 */
import type { PbxSimulator } from '../../src/simulator/index.ts';
import type { TestBed } from './engine.ts';
import { simulatedTimePasses } from './sim-time.ts';

/**
 * Call `react(channelId, n)` on the n-th (from 1) playback that starts on a channel (ARI
 * `PlaybackStarted`, one per media item the engine plays), in the next turn of the event loop
 * (never inside the simulator's event delivery). Returns the function that stops listening.
 */
export function onPlaybackStarted(
  sim: PbxSimulator,
  react: (channelId: string, n: number) => void,
): () => void {
  const counts = new Map<string, number>();
  return sim.onEvent((event) => {
    if (event.type !== 'PlaybackStarted') return;
    const target = String((event.playback as { target_uri?: unknown }).target_uri ?? '');
    if (!target.startsWith('channel:')) return;
    const channelId = target.slice('channel:'.length);
    const n = (counts.get(channelId) ?? 0) + 1;
    counts.set(channelId, n);
    setImmediate(() => {
      // The engine may have hung up meanwhile.
      if (sim.channels().some((c) => c.id === channelId)) react(channelId, n);
    });
  });
}

/**
 * Every phone (or those of the channels `only` accepts) presses `digits[n - 1]` when the n-th
 * playback on its channel starts (no digit for an empty string or past the list): `['2', '1']`
 * presses 2 during the first prompt, then 1 during the second. Each digit ends 280 simulated ms
 * after the playback started. Returns the function that stops listening.
 */
export function pressOnPlayback(
  sim: PbxSimulator,
  digits: readonly string[],
  only: (channelId: string) => boolean = () => true,
): () => void {
  return onPlaybackStarted(sim, (channelId, n) => {
    const pressed = digits[n - 1];
    if (pressed && only(channelId)) sim.pressDigits(channelId, { digits: pressed, afterMs: 0 });
  });
}

/**
 * The number a channel originated through the trunk dials (`PJSIP/<number>@<trunk>` of its
 * `POST /channels`), from the simulator's request log; undefined for another channel.
 */
export function dialledNumber(sim: PbxSimulator, channelId: string): string | undefined {
  const originate = sim.requests.find(
    (r) => r.method === 'POST' && r.path === '/channels' && r.query.channelId === channelId,
  );
  return /^PJSIP\/([^@]+)@/.exec(originate?.query.endpoint ?? '')?.[1];
}

/**
 * Hang up `who`'s phone (the caller's, or that of the operator who answered) `talkMs` simulated
 * ms after the call was answered and bridged (its `call.answered` webhook). A phone behaviour's
 * `hangupAfterMs` counts from the phone's own answer instead, which a loaded engine may still be
 * bridging: the call then ends before `call.answered`.
 */
export async function hangUpAfterAnswer(
  bed: TestBed,
  callId: string,
  who: 'caller' | 'operator',
  talkMs = 0,
): Promise<void> {
  const answered = await bed.crm.waitForWebhook(
    (w) => w.body.type === 'call.answered' && w.body.callId === callId,
  );
  if (talkMs > 0) await simulatedTimePasses(bed.sim, talkMs);
  const leg = bed.engine.calls
    .getCall(callId)
    ?.legs.find((l) =>
      who === 'caller'
        ? l.role === 'caller'
        : l.role === 'operator' && l.extension === answered.body.data.extension,
    );
  if (!leg) throw new Error(`no ${who} leg in call ${callId}`);
  bed.sim.hangup(leg.channelId);
}
