/**
 * Test adapter: run fetch-shaped stubs (`(url, init) => Promise<Response>`) as the engine's
 * {@link OutboundPost}, so tests keep scripting answers with `new Response(...)`.
 */
import {
  BodyTooLargeError,
  type OutboundPost,
  type OutboundResponse,
} from '../../src/http/outbound.ts';

/**
 * An {@link OutboundPost} calling `fetchLike(url, {method: 'POST', headers, body, signal,
 * redirect: 'manual'})` and exposing its `Response` as an {@link OutboundResponse} with the same
 * size-limit semantics as the real client (`text` rejects with BodyTooLargeError past
 * `maxBytes` unless `overflow: 'truncate'`).
 */
export function postFromFetch(fetchLike: typeof fetch): OutboundPost {
  return async (url, init) => {
    const response = await fetchLike(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      signal: init.signal,
      redirect: 'manual',
    });
    return adaptResponse(response);
  };
}

function adaptResponse(response: Response): OutboundResponse {
  return {
    status: response.status,
    header: (name) => response.headers.get(name) ?? undefined,
    text: async (maxBytes, options) => {
      if (!response.body) return '';
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const chunks: Uint8Array[] = [];
      let size = 0;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.byteLength;
          chunks.push(value);
          if (size > maxBytes) {
            if (options?.overflow !== 'truncate') throw new BodyTooLargeError(maxBytes);
            break;
          }
        }
      } finally {
        void reader.cancel().catch(() => undefined);
      }
      return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
    },
    discard: () => {
      void response.body?.cancel().catch(() => undefined);
    },
  };
}
