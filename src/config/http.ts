/** Configuration of the HTTP server: address, port, timeouts and the connection cap. */
import { z } from 'zod';
import { port } from './fields.ts';

/** HTTP_HOST, HTTP_PORT, the HTTP timeouts and HTTP_MAX_CONNECTIONS. */
export const httpFields = {
  HTTP_HOST: z.string().min(1).default('127.0.0.1').describe('Address the HTTP API listens on.'),
  HTTP_PORT: port.default(3000).describe('Port of the HTTP API (0 = any free port).'),
  HTTP_HEADERS_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(10_000)
    .describe(
      'A client must send its request headers within this many milliseconds, else it gets 408 and the connection is closed (never more than HTTP_REQUEST_TIMEOUT_MS).',
    ),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .default(30_000)
    .describe(
      'A client must send its whole request (headers and body) within this many milliseconds, else it gets 408 and the connection is closed. Downloads (recordings) are not limited by it.',
    ),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(5_000)
    .describe(
      'An idle keep-alive connection is closed after this many milliseconds (keep it above the idle timeout of a reverse proxy that reuses connections).',
    ),
  HTTP_MAX_CONNECTIONS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(1024)
    .describe(
      'HTTP connections open at once (API, probes, metrics, recording downloads); more are closed as soon as they are accepted. Live stream sockets are not counted once open (they have their own cap, STREAM_MAX_SOCKETS).',
    ),
};
