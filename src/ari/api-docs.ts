/**
 * Loading the ARI REST API description, the first step of every connect attempt of the gateway
 * (`connection.ts`) until it has worked once: Asterisk's Swagger 1.1 docs
 * (`/ari/api-docs/*.json`), loaded by ari-client (through `swagger-patch.ts`) and compiled into
 * the operations the REST executor of `rest.ts` runs.
 */
import type { Logger } from '../logging/logger.ts';
import { AriConnectionError, AriError } from './errors.ts';
import { errorMessage, withTimeout } from './helpers.ts';
import { operationsFromSwagger, type AriRestOperation } from './rest.ts';
import { connectAriClient } from './swagger-patch.ts';

/** Where and how {@link loadApi} loads the API docs. */
export interface ApiDocsSource {
  /** The ARI base URL without `/ari`, e.g. `http://127.0.0.1:8088`. */
  restUrl: string;
  /** `host:port` of the URL, for the log. */
  host: string;
  /** ARI user (ari.conf). */
  username: string;
  /** ARI password (ari.conf). Never logged. */
  password: string;
  /** Each of the two steps (the check, the load) gives up after this long, ms. */
  timeoutMs: number;
  log: Logger;
}

/**
 * Check that Asterisk answers `GET /ari/api-docs/resources.json` with our credentials (its
 * own errors are clearer than swagger-client's and a 401 is reported as such), then let
 * ari-client load the API and compile its operations.
 *
 * Resolves with the operations by `<resource>.<nickname>` (Asterisk's Swagger nicknames).
 * Rejects with {@link AriConnectionError} when Asterisk cannot be reached or does not answer in
 * time, with {@link AriError} when it answers 401/403 (wrong credentials) or another non-2xx
 * status, or when its API docs cannot be compiled.
 */
export async function loadApi(source: ApiDocsSource): Promise<Map<string, AriRestOperation>> {
  const { restUrl, username, password, timeoutMs } = source;
  const docsUrl = `${restUrl}/ari/api-docs/resources.json`;
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  let response: Response;
  try {
    response = await fetch(docsUrl, {
      headers: { authorization: `Basic ${auth}`, accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer();
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new AriConnectionError('connect', cause?.code ?? cause?.message ?? errorMessage(err), {
      cause: err,
    });
  }
  if (response.status === 401 || response.status === 403) {
    throw new AriError(
      'unknown',
      response.status,
      'connect',
      'ARI authentication failed: check username and password',
    );
  }
  if (!response.ok) {
    throw new AriError(
      'unknown',
      response.status,
      'connect',
      `ARI API docs answered HTTP ${response.status}`,
    );
  }
  const client = await withTimeout(
    connectAriClient(restUrl, username, password),
    timeoutMs,
    () => new AriConnectionError('connect', `ARI API docs not loaded within ${timeoutMs} ms`),
  ).catch((err: unknown) => {
    throw err instanceof AriError
      ? err
      : new AriConnectionError('connect', errorMessage(err), { cause: err });
  });
  let operations: Map<string, AriRestOperation>;
  try {
    operations = operationsFromSwagger(
      (client as { _swagger?: { apis?: unknown } })._swagger?.apis,
    );
  } catch (err) {
    throw new AriError('unknown', undefined, 'connect', errorMessage(err), { cause: err });
  }
  source.log.debug('ARI API loaded', { host: source.host, operations: operations.size });
  return operations;
}
