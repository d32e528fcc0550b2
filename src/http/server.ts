/**
 * The API's HTTP server: Node's `http.Server` creating request and response objects that are born
 * with the Express app's prototypes (`app.request`, `app.response`).
 *
 * Why: Express gives every request its app's prototypes with `Object.setPrototypeOf(req,
 * app.request)` (and the same for `res`, Express 5 `app.handle`). Changing the prototype of a live
 * object makes V8 build that object a hidden class (map) of its own, and every property Express,
 * the router and the handlers then add builds another: ~10 new maps per request, allocated in
 * the old generation, which keeps the request's objects alive through young-generation
 * collections (V8 `--log-maps`: 40,862 map transitions for 4,000 requests, against 4,682 with
 * these classes). Under `POST /v1/calls` at 500 requests/s (bench/api.ts) the engine's
 * scavenges took 8-11 ms each and its old generation grew by ~20 KB per request until a full
 * collection. Objects created by a class whose prototype already *is* `app.request` make that
 * `Object.setPrototypeOf` a no-op (V8 returns early when the prototype is unchanged), so all
 * requests share the same maps. The fix Express's maintainers discuss in
 * expressjs/express#5998; Node's `http.createServer({IncomingMessage, ServerResponse})` option.
 */
import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { Express } from 'express';

/**
 * Give `app` request and response classes: `app.request` and `app.response` become the
 * prototypes of two subclasses of `http.IncomingMessage` / `http.ServerResponse` that carry
 * Express's request and response methods and the app's own properties (`req.app`). Requests
 * served by a server from {@link createHttpServer} are instances of them; requests reaching the
 * app from any other server still get the same prototypes from Express.
 *
 * @throws TypeError when `app` already has its classes
 */
export function bindRequestClasses(app: Express): void {
  // A class's prototype holds its own `constructor`; Express's prototypes inherit theirs.
  if (Object.hasOwn(app.request, 'constructor'))
    throw new TypeError('bindRequestClasses: the app already has its classes');
  class AppRequest extends IncomingMessage {}
  class AppResponse extends ServerResponse {}
  adopt(AppRequest.prototype, app.request);
  adopt(AppResponse.prototype, app.response);
  app.request = AppRequest.prototype as Express['request'];
  app.response = AppResponse.prototype as Express['response'];
}

/** Make `prototype` stand in for Express's `original`: same parent, same own properties. */
function adopt(prototype: object, original: object): void {
  Object.setPrototypeOf(prototype, Object.getPrototypeOf(original) as object | null);
  const { constructor: _ignored, ...own } = Object.getOwnPropertyDescriptors(original);
  Object.defineProperties(prototype, own);
}

/**
 * An HTTP server for `app` (not listening yet) whose requests and responses are instances of the
 * classes of `app.request` and `app.response`: those of {@link bindRequestClasses}, or Node's own
 * for an app without them (a plain `http.createServer(app)`).
 */
export function createHttpServer(app: Express): Server {
  return createServer(
    {
      IncomingMessage: app.request.constructor as typeof IncomingMessage,
      // Node types the option as generic over the request class; ours is fixed to IncomingMessage.
      ServerResponse: app.response.constructor as typeof ServerResponse,
    },
    app,
  );
}
