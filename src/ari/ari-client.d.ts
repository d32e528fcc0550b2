/**
 * Minimal declarations for ari-client 2.2 (node_modules/ari-client/lib/client.js), only what
 * `src/ari/` uses. ari-client builds its resources at run time from Asterisk's Swagger 1.1
 * `/ari/api-docs/*.json`: each resource (`channels`, `bridges`…) is an object whose methods are
 * the Swagger operation nicknames (`originate`, `dial`, `createWithId`…), taking one parameter
 * object named as in the API docs and returning a Bluebird promise of the parsed body (resource
 * instances for known types, a Buffer for `binary`).
 */
declare module 'ari-client' {
  namespace AriClientModule {
    /** One Swagger operation bound by ari-client. */
    type Operation = (params?: Record<string, unknown>) => PromiseLike<unknown>;
    /** A resource: its operations by nickname. */
    type Resource = Record<string, Operation | undefined>;
    /** The loaded client. Resources exist only once the API docs are loaded. */
    interface Client {
      [resource: string]: unknown;
    }
    /**
     * Load `GET {url}/ari/api-docs/resources.json` (and every API declaration) with basic auth.
     * Rejects with an Error (connection refused / unreachable) or a swagger failure message.
     */
    function connect(url: string, user: string, pass: string): PromiseLike<Client>;
  }
  export = AriClientModule;
}
