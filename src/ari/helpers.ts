/** Small helpers shared by the parts of the ARI gateway (`gateway.ts`). */
import { AriConnectionError } from './errors.ts';

/**
 * The parts of the ARI base URL: `protocol` (`http:` or `https:`), `host` (with the port) and
 * `prefix`, the path before `/ari` without a trailing `/`. Throws TypeError when `url` is not an
 * http(s) URL.
 */
export function normaliseBaseUrl(url: string): { protocol: string; host: string; prefix: string } {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`ARI url must be http(s): got ${parsed.protocol}`);
  }
  const prefix = parsed.pathname.replace(/\/+$/, '').replace(/\/ari$/, '');
  return { protocol: parsed.protocol, host: parsed.host, prefix };
}

/** The message of an error (or of whatever was thrown), for a log field. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

/** Race `promise` against a timer; the timer's error wins after `ms`. */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The error of a command (or start) after the gateway was sealed (`AriGateway.seal`). */
export function sealedError(operation: string): AriConnectionError {
  return new AriConnectionError(operation, 'the engine has stopped');
}
