/**
 * Asterisk's answering-machine detection (`AMD()`, app_amd) as the simulator plays it: from
 * what answered ({@link AnswerVoice}) and AMD's arguments, the verdict (`AMDSTATUS`, `AMDCAUSE`)
 * and how long AMD listens before giving it. Pure; durations in simulated ms.
 */
import type { AnswerVoice } from './types.ts';

/** AMD's settings (amd.conf `[general]`; the project's asterisk-conf/amd.conf holds these defaults). */
export interface AmdSettings {
  initialSilenceMs: number;
  greetingMs: number;
  afterGreetingSilenceMs: number;
  totalAnalysisMs: number;
}

/** Asterisk's defaults (amd.conf). */
export const AMD_DEFAULTS: AmdSettings = {
  initialSilenceMs: 2500,
  greetingMs: 1500,
  afterGreetingSilenceMs: 800,
  totalAnalysisMs: 5000,
};

/** How long the simulated `human` says "hello" before falling silent. */
const HELLO_MS = 500;

/**
 * The settings from AMD()'s comma-separated data (`initialSilence,greeting,afterGreetingSilence,
 * totalAnalysisTime,…`): an empty or non-numeric argument keeps the default, as app_amd does.
 */
export function amdSettings(data: string): AmdSettings {
  const args = data.split(',');
  const num = (i: number, fallback: number): number => {
    const v = Number.parseInt(args[i] ?? '', 10);
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  return {
    initialSilenceMs: num(0, AMD_DEFAULTS.initialSilenceMs),
    greetingMs: num(1, AMD_DEFAULTS.greetingMs),
    afterGreetingSilenceMs: num(2, AMD_DEFAULTS.afterGreetingSilenceMs),
    totalAnalysisMs: num(3, AMD_DEFAULTS.totalAnalysisMs),
  };
}

/**
 * The `TOOLONG-<n>` figure: the audio time AMD analysed, a little under the total analysis time
 * (frames are counted, not wall time): the kit gives 4900 for 5000 and 900 for 1000 with a phone
 * sending no audio (amd-continue trace, recorded three times in a row). The figure moves by a
 * step of 100 between recordings (an earlier recording had 4800 for 5000).
 */
function analysedMs(totalMs: number): number {
  return Math.max(0, totalMs - 100);
}

/** The verdict of AMD on `voice` with `settings`, and when (ms after AMD started) it comes. */
export function amdVerdict(
  voice: AnswerVoice,
  settings: AmdSettings,
): { status: 'MACHINE' | 'HUMAN' | 'NOTSURE'; cause: string; afterMs: number } {
  const tooLong = {
    status: 'NOTSURE' as const,
    cause: `TOOLONG-${analysedMs(settings.totalAnalysisMs)}`,
    afterMs: settings.totalAnalysisMs,
  };
  if (voice === 'machine' && settings.greetingMs < settings.totalAnalysisMs)
    return {
      status: 'MACHINE',
      cause: `LONGGREETING-${settings.greetingMs}-${settings.greetingMs}`,
      afterMs: settings.greetingMs,
    };
  if (voice === 'human' && HELLO_MS + settings.afterGreetingSilenceMs < settings.totalAnalysisMs)
    return {
      status: 'HUMAN',
      cause: `HUMAN-${settings.afterGreetingSilenceMs}-${settings.afterGreetingSilenceMs}`,
      afterMs: HELLO_MS + settings.afterGreetingSilenceMs,
    };
  return tooLong;
}
