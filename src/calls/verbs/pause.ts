/** `pause {sec}`: silence for `sec` seconds (the engine's timer); a hang-up ends it at once. */
import type { PauseVerb } from './schema.ts';
import type { Verb, VerbContext, VerbResult } from './types.ts';

export class Pause implements Verb {
  readonly name = 'pause' as const;

  constructor(private readonly spec: PauseVerb) {}

  exec(_ctx: VerbContext, signal: AbortSignal): Promise<VerbResult> {
    return new Promise<VerbResult>((resolve) => {
      if (signal.aborted) return resolve({ outcome: 'hangup' });
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve({ outcome: 'hangup' });
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve({ outcome: 'completed' });
      }, this.spec.sec * 1000);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
