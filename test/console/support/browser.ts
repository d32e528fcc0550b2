/**
 * A real browser for the operator console's tests: Debian's Chromium (`/usr/bin/chromium`, or
 * CHROMIUM_PATH) driven by playwright-core, which never downloads a browser. Headless, no
 * sandbox (tests run as root in CI), no GPU, no QUIC, and nothing the browser would fetch by
 * itself (first-run pages, component updates, sync, background networking); every launch gets a
 * fresh temporary profile from Playwright.
 *
 * Without the browser the tests are skipped with a message; with BROWSER_TESTS=require (set by
 * `.ci/run`) a missing browser fails the run instead.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The Chromium executable the tests drive. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserSkipReason(): string | undefined {
  if (!existsSync(CHROMIUM_PATH))
    return `${CHROMIUM_PATH} not found (Debian: apt-get install chromium; or set CHROMIUM_PATH)`;
  return undefined;
}

/**
 * A mocha `describe` of browser tests: declared when Chromium is there; otherwise a message (or,
 * with BROWSER_TESTS=require, one failing test saying why).
 */
export function describeInBrowser(title: string, fn: (this: Mocha.Suite) => void): void {
  const reason = browserSkipReason();
  if (reason === undefined) {
    describe(title, fn);
    return;
  }
  if (process.env.BROWSER_TESTS === 'require')
    describe(title, () => {
      it('can run on this machine (BROWSER_TESTS=require)', () => {
        throw new Error(`browser tests required but they cannot run: ${reason}`);
      });
    });
  else console.log(`  browser tests skipped (${title}): ${reason}`);
}

/** Launch headless Chromium with the flags above. */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 60_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
