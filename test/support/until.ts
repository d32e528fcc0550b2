/**
 * Wait for state that is exposed without an event (the simulator's channels, the engine's store
 * or memory): checks `condition` every 10 ms until it holds.
 *
 * @throws Error naming `what` when it does not hold within `timeoutMs`
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
