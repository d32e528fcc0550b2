/**
 * The console's routes without a browser: the page and its assets with their security headers,
 * the browser modules served from the sources (transpiled) or from a compiled folder, nothing
 * else served.
 */
import { expect } from 'chai';
import express from 'express';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleScripts } from '../../src/console/assets.ts';
import { createConsoleRoutes } from '../../src/console/routes.ts';
import { errorHandler, notFoundHandler } from '../../src/http/errors.ts';
import { createLogger } from '../../src/logging/logger.ts';

async function serve(router: express.Router): Promise<{ url: string; server: Server }> {
  const app = express();
  app.use('/console', router);
  app.use(notFoundHandler);
  app.use(errorHandler(createLogger({ level: 'error', silent: true })));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('the console routes', function () {
  this.timeout(30_000);
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('serves the page with a self-only Content-Security-Policy, no referrer and no caching', async () => {
    const served = await serve(createConsoleRoutes());
    server = served.server;
    for (const path of ['/console', '/console/', '/console?extension=101&token=abc']) {
      const res = await fetch(`${served.url}${path}`);
      expect(res.status, path).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/html/);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).to.include("default-src 'self'");
      expect(csp).to.include("script-src 'self'");
      expect(csp).to.include("connect-src 'self'");
      expect(csp).to.include("frame-ancestors 'self'");
      expect(csp).to.not.match(/unsafe-inline|unsafe-eval|\*|https?:/);
      expect(res.headers.get('referrer-policy')).to.equal('no-referrer');
      expect(res.headers.get('cache-control')).to.equal('no-store');
      const html = await res.text();
      // Everything the page loads comes from the engine: no other origin, no inline script.
      expect(html).to.not.match(/(src|href)="(https?:)?\/\//);
      expect(html).to.not.match(/<script>|<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).to.include('src="/console/assets/console.js"');
    }
    const css = await fetch(`${served.url}/console/assets/console.css`);
    expect(css.status).to.equal(200);
    expect(css.headers.get('content-type')).to.match(/^text\/css/);
    expect(css.headers.get('content-security-policy')).to.include("default-src 'self'");
  });

  it('serves the browser modules transpiled from the sources, and nothing else', async () => {
    const served = await serve(createConsoleRoutes());
    server = served.server;
    const script = await fetch(`${served.url}/console/assets/console.js`);
    expect(script.status).to.equal(200);
    expect(script.headers.get('content-type')).to.match(/^text\/javascript/);
    const text = await script.text();
    expect(text).to.match(/from ["']\.\/stream\.js["']/);
    expect(text).to.not.match(/:\s*(string|void|boolean)\b\s*[;,)=]/); // no type annotations left
    for (const path of ['tsconfig.json', 'console.ts', '..%2Fpage.js', 'nope.js', 'Console.js']) {
      const res = await fetch(`${served.url}/console/assets/${path}`);
      expect(res.status, path).to.equal(404);
      expect(((await res.json()) as { code: string }).code).to.equal('not_found');
    }
  });

  it('serves the compiled modules of a build as they are', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'console-web-'));
    try {
      writeFileSync(join(dir, 'console.js'), 'export const built = true;\n');
      const served = await serve(createConsoleRoutes({ scripts: new ConsoleScripts(dir) }));
      server = served.server;
      const res = await fetch(`${served.url}/console/assets/console.js`);
      expect(await res.text()).to.equal('export const built = true;\n');
      expect((await fetch(`${served.url}/console/assets/stream.js`)).status).to.equal(404);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
