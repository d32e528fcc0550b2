/**
 * The operator console's routes, public (the page holds no data; everything it shows comes from
 * the API with the operator token of its link, docs/console.md):
 *
 * - `GET /console` → the page (./page.ts)
 * - `GET /console/assets/console.css` → its style sheet
 * - `GET /console/assets/<module>.js` → its browser code (./assets.ts) | 404 `not_found`
 *
 * Every answer carries a Content-Security-Policy that lets the page load and connect to this
 * engine only (scripts, styles, the API, the stream's WebSocket, recordings), run no inline
 * script, and be framed only by this origin and the CRM origins given; `Referrer-Policy:
 * no-referrer` (the link's token never leaves in a Referer header) and `Cache-Control: no-store`.
 */
import express, { type Response, type Router } from 'express';
import { HttpError } from '../http/errors.ts';
import { ConsoleScripts } from './assets.ts';
import { CONSOLE_CSS, CONSOLE_HTML } from './page.ts';

/** What the console's routes need. */
export interface ConsoleRoutesOptions {
  /**
   * Origins (`https://crm.example.com`) allowed to show the console in a frame, besides the
   * engine's own; default none.
   */
  frameAncestors?: readonly string[];
  /** The browser modules (default: the ones beside src/console/assets.ts). */
  scripts?: ConsoleScripts;
}

/** The Content-Security-Policy of every `/console` answer. */
export function consolePolicy(frameAncestors: readonly string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "media-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${["'self'", ...frameAncestors].join(' ')}`,
  ].join('; ');
}

/** Build the router; mount it at `/console` among the public routers. */
export function createConsoleRoutes(options: ConsoleRoutesOptions = {}): Router {
  const scripts = options.scripts ?? new ConsoleScripts();
  const policy = consolePolicy(options.frameAncestors);
  const headers = (res: Response): Response =>
    res.set({
      'Content-Security-Policy': policy,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    });
  const router = express.Router({ strict: false });

  router.get('/', (_req, res) => {
    headers(res).type('html').send(CONSOLE_HTML);
  });
  router.get('/assets/console.css', (_req, res) => {
    headers(res).type('css').send(CONSOLE_CSS);
  });
  router.get('/assets/:file', async (req, res) => {
    const match = /^([a-z][a-z0-9-]*)\.js$/.exec(req.params.file);
    if (!match || !scripts.has(match[1]!))
      throw new HttpError(404, 'not_found', `no console asset ${req.params.file}`);
    headers(res)
      .type('text/javascript')
      .send(await scripts.script(match[1]!));
  });
  return router;
}
