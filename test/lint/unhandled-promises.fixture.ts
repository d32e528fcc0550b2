/**
 * Deliberately wrong code for test/lint/lint.test.ts: the line after each `lint-next-line:`
 * comment below is a promise mistake the project's ESLint config must report, under the rule the
 * comment names. The config ignores this file when it lints the project; the test lints it alone.
 */
import { EventEmitter } from 'node:events';

async function hangUp(channelId: string): Promise<void> {
  if (channelId === '') throw new Error('no channel to hang up');
}

/** A hang-up whose failure nobody hears of. */
export function hangUpAndForget(channelId: string): void {
  // lint-next-line: @typescript-eslint/no-floating-promises
  hangUp(channelId);
}

/** An async listener: the emitter ignores the promise, so a rejection goes unhandled. */
export function hangUpOnEnd(events: EventEmitter): void {
  // lint-next-line: @typescript-eslint/no-misused-promises
  events.on('StasisEnd', async (channelId: string) => {
    await hangUp(channelId);
  });
}

/** Not a promise: the await does nothing. */
export async function awaitNumber(): Promise<number> {
  // lint-next-line: @typescript-eslint/await-thenable
  return await 42;
}

/** The catch never sees the rejection of a promise returned unawaited from the try. */
export async function hangUpOrLog(channelId: string): Promise<void> {
  try {
    // lint-next-line: @typescript-eslint/return-await
    return hangUp(channelId);
  } catch {
    // never reached for a rejection
  }
}
