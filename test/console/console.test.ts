/**
 * The operator console in a real browser (Chromium through playwright-core), against the whole
 * engine on the PBX simulator over real HTTP and WebSocket: the page is opened with a token link
 * the way a CRM opens it (docs/console.md), and the tests look at what the operator sees.
 *
 * `UPDATE_CONSOLE_SCREENSHOT=1 npx mocha test/console/console.test.ts` also writes the
 * screenshot of the docs (docs/images/console.png) while a call rings.
 */
import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { apiRequest } from '../support/api.ts';
import { until } from '../support/until.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { describeInBrowser, launchBrowser } from './support/browser.ts';
import { startProxy, type CuttableProxy } from './support/proxy.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DID = '74951234567';
const CRM_LINK = 'https://crm.example.com/customers/42';
let caller = 79165550000;
/** A fresh caller number per call, so the calls of different tests never mix. */
const nextCaller = (): string => String(++caller);

describeInBrowser(
  'the operator console in a browser (Chromium, engine on the simulator)',
  function () {
    this.timeout(120_000);
    let bed: TestBed;
    let browser: Browser;
    const contexts: BrowserContext[] = [];

    before(async function () {
      this.timeout(180_000);
      // Click-to-call rings the operator as long as inbound calls do (12 s of real time).
      bed = await startTestBed({
        NODE_ENV: 'development',
        CLICK_TO_CALL_RING_TIMEOUT_SEC: '600',
        OPERATOR_EXTENSIONS: '101,102,103',
      });
      browser = await launchBrowser();
      // Run from the sources, the engine transpiles the browser modules on first use (seconds on
      // a busy machine): done here, not in the first test's page load.
      for (const module of ['console', 'stream', 'api'])
        expect((await fetch(`${bed.engine.httpUrl}/console/assets/${module}.js`)).status).to.equal(
          200,
        );
    });

    after(async () => {
      await browser?.close();
      await bed?.stop();
    });

    beforeEach(() => {
      // Every call rings until the test ends it (ringTimeoutSec 600 simulated: 12 s of real time).
      bed.crm.onRoute(() => ({
        body: {
          customer: { id: '42', name: 'Ivan Petrov', link: CRM_LINK },
          action: 'dial',
          strategy: 'ringall',
          extensions: ['101'],
          ringTimeoutSec: 600,
        },
      }));
      bed.sim.phones.set('101', { mode: 'ring' });
      bed.sim.phones.set('102', { mode: 'ring' });
    });

    /** Callers' channels of the test, hung up after it if still there (a failed test's call). */
    const channels: string[] = [];
    /** A customer `from` calls the DID (and hangs up after `hangupAfterMs` simulated, if given). */
    async function call(from: string, hangupAfterMs?: number): Promise<{ channelId: string }> {
      const placed = await bed.sim.injectInboundCall({
        from,
        to: DID,
        ...(hangupAfterMs === undefined ? {} : { hangupAfterMs }),
      });
      channels.push(placed.channelId);
      return placed;
    }

    afterEach(async function () {
      for (const channelId of channels.splice(0)) {
        try {
          bed.sim.hangup(channelId);
        } catch {
          // already gone
        }
      }
      for (const context of contexts.splice(0)) await context.close();
      bed.sim.phones.reset();
      // Operator 101 back to available (a failed status test must not keep it on a break).
      await apiRequest(bed.engine.httpUrl, '/v1/operators/101/status', {
        method: 'PUT',
        body: { status: 'available' },
      });
    });

    /** A token for `extension` minted with the API key, as the CRM does. */
    async function mintToken(
      extension: string,
      ttlSec = 600,
    ): Promise<{ token: string; expiresAt: string }> {
      const res = await apiRequest<{ token: string; expiresAt: string }>(
        bed.engine.httpUrl,
        `/v1/operators/${extension}/tokens`,
        { body: { ttlSec } },
      );
      expect(res.status, res.text).to.be.oneOf([200, 201]);
      return res.body;
    }

    /** Open the console of `extension` in a fresh browser context; resolves once it is live. */
    async function openConsole(
      extension: string,
      baseUrl = bed.engine.httpUrl,
    ): Promise<{ page: Page; context: BrowserContext }> {
      const { token, expiresAt } = await mintToken(extension);
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
      contexts.push(context);
      const page = await context.newPage();
      const link = new URL('/console', baseUrl);
      link.search = new URLSearchParams({ token, expiresAt }).toString();
      await page.goto(link.href);
      await page.locator('#connection[data-state="live"]').waitFor();
      // The token left the address bar at once.
      expect(page.url()).to.equal(new URL('/console', baseUrl).href);
      return { page, context };
    }

    /** A customer calls the DID; resolves with the caller's channel and the call's id once 101 rings. */
    async function ring101(from = nextCaller()): Promise<{ channelId: string; callId: string }> {
      const { channelId } = await call(from);
      const ringing = await bed.crm.waitForWebhook(
        (w) => w.body.type === 'call.ringing' && w.body.data.from === from,
        20_000,
      );
      return { channelId, callId: ringing.body.callId };
    }

    it('a call ringing 101 shows its card (number, name, CRM link) within 1 s; the hang-up removes it', async function () {
      const { page } = await openConsole('101');
      const from = nextCaller();
      const { channelId } = await ring101(from);
      const card = page.locator('.call-card.ringing');
      // The stream message and the webhook leave together: the card is up within a second.
      await card.waitFor({ state: 'visible', timeout: 1000 });
      expect(await card.locator('.number').textContent()).to.equal(from);
      expect(await card.locator('.customer').textContent()).to.equal('Ivan Petrov');
      expect(await card.locator('a.crm-link').getAttribute('href')).to.equal(CRM_LINK);
      // The phone's state is its own message (from Asterisk's device state), which may come a
      // moment after the card.
      await page.locator('#phone-state[data-state="ringing"]').waitFor({ timeout: 5000 });
      expect(await page.locator('#phone-state').textContent()).to.match(/Ringing/);

      bed.sim.hangup(channelId);
      await card.waitFor({ state: 'detached', timeout: 15_000 });
      await page.locator('#no-call').waitFor({ state: 'visible' });
    });

    it('a read of the phone state answered after the phone started ringing does not show it idle again', async function () {
      // The console reads the state (GET /v1/operators/101) as it connects; here those answers
      // are read from the engine at once (idle) but reach the page only after the stream has
      // said the phone rings, as on a slow network.
      const { token, expiresAt } = await mintToken('101');
      const context = await browser.newContext();
      contexts.push(context);
      const held: Array<() => Promise<void>> = [];
      await context.route(`${bed.engine.httpUrl}/v1/operators/101`, async (route) => {
        const response = await route.fetch();
        held.push(() => route.fulfill({ response }));
      });
      const page = await context.newPage();
      // Counts the answers of the state reads the page has read.
      await page.addInitScript(`
        window.stateReads = 0;
        const text = Response.prototype.text;
        Response.prototype.text = async function () {
          try {
            return await text.call(this);
          } finally {
            if (this.url.endsWith('/v1/operators/101')) window.stateReads += 1;
          }
        };
      `);
      const link = new URL('/console', bed.engine.httpUrl);
      link.search = new URLSearchParams({ token, expiresAt }).toString();
      await page.goto(link.href);
      await page.locator('#connection[data-state="live"]').waitFor();
      await until(() => held.length > 0, 'the console to read the state');
      await ring101();
      await page.locator('#phone-state[data-state="ringing"]').waitFor({ timeout: 5000 });
      const readBefore = Number(await page.evaluate('window.stateReads'));
      const stale = held.splice(0);
      for (const release of stale) await release();
      await until(
        async () => Number(await page.evaluate('window.stateReads')) >= readBefore + stale.length,
        'the page to read the late answers',
      );
      expect(await page.locator('#phone-state').getAttribute('data-state')).to.equal('ringing');
    });

    it("another operator's console (102) shows nothing of a call ringing 101, then its own call", async function () {
      const { page: page101 } = await openConsole('101');
      const { page: page102 } = await openConsole('102');
      // Every card that ever appears on 102's page is counted (evaluated in the page, not a
      // script of the page: the page's CSP allows none).
      // (Page code as text: the tests are compiled without the DOM's types.)
      await page102.evaluate(`
      window.seenCards = [];
      new MutationObserver((records) => {
        for (const record of records)
          for (const node of record.addedNodes) window.seenCards.push(node.dataset?.callId ?? '?');
      }).observe(document.getElementById('call-cards'), { childList: true });
    `);
      const { channelId, callId } = await ring101();
      await page101.locator(`.call-card[data-call-id="${callId}"]`).waitFor();
      bed.sim.hangup(channelId);
      await page101.locator(`.call-card[data-call-id="${callId}"]`).waitFor({ state: 'detached' });

      // Then a call for 102: its card shows on 102's page (its stream is live and in order).
      bed.crm.onRoute(() => ({
        body: { action: 'dial', strategy: 'ringall', extensions: ['102'], ringTimeoutSec: 600 },
      }));
      const from = nextCaller();
      const own = await call(from);
      const card102 = page102.locator('.call-card.ringing');
      await card102.waitFor();
      expect(await card102.locator('.number').textContent()).to.equal(from);
      const seen = await page102.evaluate<string[]>('window.seenCards');
      expect(seen, "cards 102's page showed").to.have.length(1);
      expect(seen[0]).to.not.equal(callId);
      bed.sim.hangup(own.channelId);
      await card102.waitFor({ state: 'detached' });
    });

    it('the connection is cut while a call starts ringing: once it is back, the card appears', async function () {
      const proxy: CuttableProxy = await startProxy(bed.engine.httpUrl);
      try {
        const { page } = await openConsole('101', proxy.url);
        proxy.cut();
        await page.locator('#connection:not([data-state="live"])').waitFor();
        // 101 rings while the console cannot hear of it.
        const { channelId, callId } = await ring101();
        proxy.restore();
        const card = page.locator(`.call-card.ringing[data-call-id="${callId}"]`);
        await card.waitFor({ timeout: 20_000 });
        await page.locator('#connection[data-state="live"]').waitFor();
        bed.sim.hangup(channelId);
        await card.waitFor({ state: 'detached' });
      } finally {
        await proxy.close();
      }
    });

    it("click-to-call from the page rings the operator's own phone (101) first", async function () {
      const { page } = await openConsole('101');
      await page.getByLabel('Number to call').fill('+7 495 765-43-21');
      await page.getByRole('button', { name: 'Call' }).click();
      const ringing = await bed.crm.waitForWebhook(
        (w) => w.body.type === 'call.ringing' && w.body.data.to === '+74957654321',
        20_000,
      );
      expect(ringing.body.data.extension).to.equal('101');
      await page.locator('#dial-message').filter({ hasText: 'Your phone rings first' }).waitFor();
      const card = page.locator(`.call-card.ringing[data-call-id="${ringing.body.callId}"]`);
      await card.waitFor();
      expect(await card.locator('.number').textContent()).to.equal('+74957654321');
      const hangup = await apiRequest(
        bed.engine.httpUrl,
        `/v1/calls/${ringing.body.callId}/hangup`,
        { method: 'POST' },
      );
      expect(hangup.status, hangup.text).to.equal(200);
      await card.waitFor({ state: 'detached' });
    });

    it('an answered call shows as the call in progress with a talk timer until it ends', async function () {
      const { page } = await openConsole('101');
      // 101 answers after 1 s of simulated time; the caller talks until the test hangs up.
      bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
      const from = nextCaller();
      const { channelId } = await call(from);
      const card = page.locator('.call-card.on-call');
      await card.waitFor();
      expect(await card.locator('.number').textContent()).to.equal(from);
      expect(await card.getByRole('timer').textContent()).to.match(/^\d+:\d\d$/);
      bed.sim.hangup(channelId);
      await card.waitFor({ state: 'detached' });
    });

    it('renews its token through the CRM window that opened it', async function () {
      // A token about to expire (the shortest the engine mints), and the CRM's next one.
      const first = await mintToken('101', 60);
      const next = await mintToken('101', 600);
      const context = await browser.newContext();
      contexts.push(context);
      // The CRM's page (another origin) opens the console and answers its token requests.
      const crmPage = `<!doctype html><title>CRM</title><script>
        window.requests = 0;
        window.addEventListener('message', (event) => {
          if (event.data?.type !== 'ari-crm:token-request') return;
          window.requests += 1;
          event.source.postMessage(
            { type: 'ari-crm:token', token: ${JSON.stringify(next.token)}, expiresAt: ${JSON.stringify(next.expiresAt)} },
            event.origin,
          );
        });
      </script>`;
      await context.route('https://crm.example.com/**', (route) =>
        route.fulfill({ contentType: 'text/html', body: crmPage }),
      );
      const crm = await context.newPage();
      await crm.goto('https://crm.example.com/operator');
      const link = new URL('/console', bed.engine.httpUrl);
      link.search = new URLSearchParams(first).toString();
      const [page] = await Promise.all([
        context.waitForEvent('page'),
        crm.evaluate(`void window.open(${JSON.stringify(link.href)}, 'console')`),
      ]);
      // The engine confirmed the new token's expiry on the open stream.
      const renewed = new Date(next.expiresAt).toISOString();
      await page.locator(`#connection[data-expires-at="${renewed}"]`).waitFor();
      expect(await crm.evaluate<number>('window.requests')).to.be.at.least(1);
      // Calls still pop up.
      const { channelId } = await ring101();
      const card = page.locator('.call-card.ringing');
      await card.waitFor();
      bed.sim.hangup(channelId);
      await card.waitFor({ state: 'detached' });
    });

    it('a recorded call shows in the recent calls with its recording playable in the page', async function () {
      const { page } = await openConsole('101');
      bed.crm.onRoute(() => ({
        body: {
          customer: { id: '42', name: 'Ivan Petrov' },
          action: 'dial',
          strategy: 'ringall',
          extensions: ['101'],
          ringTimeoutSec: 600,
          record: true,
        },
      }));
      // 101 answers; the caller hangs up after 10 s of simulated talk (200 ms here).
      bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
      const from = nextCaller();
      await call(from, 10_000);
      const ready = await bed.crm.waitForWebhook(
        (w) => w.body.type === 'recording.ready' && w.body.data.recordingUrl !== undefined,
        30_000,
      );
      const callId = ready.body.callId;
      await page.getByRole('button', { name: 'Refresh' }).click();
      const row = page.locator(`#history-body tr[data-call-id="${callId}"]`);
      await row.locator('audio').waitFor();
      expect(await row.locator('td').nth(2).textContent()).to.equal(from);
      expect(await row.locator('td').nth(4).textContent()).to.equal('Answered');
      // The player loads the audio (the signed link, from the engine's own origin: the CSP lets
      // it through).
      const durationSec = await page.evaluate<number>(`new Promise((resolve) => {
      const audio = document.querySelector('#history-body tr[data-call-id="${callId}"] audio');
      audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
      audio.addEventListener('error', () => resolve(-1));
      audio.preload = 'metadata';
      audio.load();
    })`);
      expect(durationSec).to.be.greaterThan(0);
    });

    it('the status selector sets the operator status (GET /v1/operators/101 shows it)', async function () {
      const { page } = await openConsole('101');
      await page.getByLabel('Status').selectOption('break');
      await page.locator('#status-message').filter({ hasText: 'Status saved.' }).waitFor();
      const operator = await apiRequest<{ status: string }>(
        bed.engine.httpUrl,
        '/v1/operators/101',
      );
      expect(operator.status, operator.text).to.equal(200);
      expect(operator.body.status).to.equal('break');
      // Back to available for the other tests (the page shows the stored status).
      await page.getByLabel('Status').selectOption('available');
      await page.locator('#status-message').filter({ hasText: 'Status saved.' }).waitFor();
    });

    it('the screenshot of the docs: a call ringing, with recent calls (UPDATE_CONSOLE_SCREENSHOT=1)', async function () {
      if (!process.env.UPDATE_CONSOLE_SCREENSHOT) this.skip();
      const { page } = await openConsole('101');
      // The calls of the tests above are the recent calls; one more rings now.
      await page.locator('#history-body tr').first().waitFor();
      const { channelId } = await ring101('79161234567');
      await page.locator('.call-card.ringing').waitFor();
      mkdirSync(join(ROOT, 'docs/images'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'docs/images/console.png'), fullPage: true });
      bed.sim.hangup(channelId);
      await page.locator('.call-card').waitFor({ state: 'detached' });
    });
  },
);
