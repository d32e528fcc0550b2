/**
 * The API's HTTP server (src/http/server.ts): requests and responses are born with the Express
 * app's prototypes, so Express's per-request `Object.setPrototypeOf` changes nothing and every
 * request of a route has the same V8 hidden class (one of its own per request made the engine's
 * young-generation collections take 8-11 ms under load). Real HTTP on a local port.
 */
import { expect } from 'chai';
import express from 'express';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { createHttpServer } from '../../src/http/server.ts';
import { HTTP_REQUEST_DURATION } from '../../src/metrics/http.ts';
import { startApp, type TestApp } from '../ops/support/app.ts';
import { parseExposition, valueOf } from '../ops/support/exposition.ts';

setFlagsFromString('--allow-natives-syntax');
/** V8's own answer: do two objects have the same hidden class (map)? */
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- V8's %-syntax needs a runtime-compiled function
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (
  a: object,
  b: object,
) => boolean;

/** The app with a `/v1/items/:id` route that keeps every request and response it saw. */
async function serve(
  makeServer: (app: express.Express) => Server,
): Promise<TestApp & { seen: Array<{ req: express.Request; res: express.Response }> }> {
  const seen: Array<{ req: express.Request; res: express.Response }> = [];
  const v1 = express.Router();
  v1.post('/items/:id', (req, res) => {
    seen.push({ req, res });
    res.status(202).json({ id: req.params.id, host: req.get('host'), sameApp: req.app === app });
  });
  const served = await startApp({ apiRouters: { '/v1': v1 } }, makeServer);
  const app = served.app;
  return { ...served, seen };
}

async function post(url: string, id: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}/v1/items/${id}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ n: id }),
  });
  return { status: res.status, body: await res.json() };
}

describe('the API HTTP server', () => {
  let served: Awaited<ReturnType<typeof serve>> | undefined;
  afterEach(async () => {
    await served?.close();
    served = undefined;
  });

  it("creates requests and responses with the app's prototypes, before Express sees them", async () => {
    served = await serve(createHttpServer);
    const born: Array<[object | null, object | null]> = [];
    served.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      born.push([Object.getPrototypeOf(req) as object, Object.getPrototypeOf(res) as object]);
    });
    const answer = await post(served.url, 'a1');
    expect(answer.status).to.equal(202);
    expect(answer.body).to.deep.equal({
      id: 'a1',
      host: served.url.slice('http://'.length),
      sameApp: true,
    });
    expect(born).to.have.length(1);
    expect(born[0]![0]).to.equal(served.app.request);
    expect(born[0]![1]).to.equal(served.app.response);
  });

  it('gives every request of a route the same hidden class (a plain server gives each its own)', async () => {
    served = await serve(createHttpServer);
    for (const id of ['a1', 'a2', 'a3']) expect((await post(served.url, id)).status).to.equal(202);
    // The first request of a route settles the shapes; the ones after it share them.
    const [, second, third] = served.seen;
    expect(haveSameMap(second!.req, third!.req), 'requests').to.equal(true);
    expect(haveSameMap(second!.res, third!.res), 'responses').to.equal(true);
    await served.close();

    // The same app on Node's plain server: Express changes each request's prototype.
    served = await serve((app) => createServer(app));
    for (const id of ['b1', 'b2', 'b3']) expect((await post(served.url, id)).status).to.equal(202);
    expect(haveSameMap(served.seen[1]!.req, served.seen[2]!.req)).to.equal(false);
  });

  it('labels request durations with the route template on either server', async () => {
    for (const makeServer of [createHttpServer, (app: express.Express) => createServer(app)]) {
      served = await serve(makeServer);
      await post(served.url, 'c1');
      await post(served.url, 'c2');
      const metrics = parseExposition(await served.registry.metrics());
      const count = valueOf(metrics, `${HTTP_REQUEST_DURATION}_count`, {
        method: 'POST',
        route: '/v1/items/:id',
        status: '202',
      });
      expect(count).to.equal(2);
      await served.close();
      served = undefined;
    }
  });
});
