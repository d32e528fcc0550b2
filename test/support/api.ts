/**
 * HTTP helpers for API tests: one request with the test API key (or another, or none), the
 * answer with its status, headers, text and parsed JSON.
 */
import { TEST_API_KEY } from './engine.ts';

/** An answer of the API. */
export interface ApiAnswer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body; undefined when the body is not JSON. */
  body: T;
}

/** Options of {@link apiRequest}. */
export interface ApiRequestOptions {
  method?: string;
  /** JSON-encoded unless a string (sent as is). */
  body?: unknown;
  headers?: Record<string, string>;
  /** API key sent as `Authorization: Bearer`; default {@link TEST_API_KEY}; null: none. */
  key?: string | null;
}

/** Send one request to `baseUrl + path`. */
export async function apiRequest<T = Record<string, unknown>>(
  baseUrl: string,
  path: string,
  options: ApiRequestOptions = {},
): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? TEST_API_KEY : options.key;
  if (key !== null) headers.authorization ??= `Bearer ${key}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${baseUrl}${path}`, {
    method: options.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: parsed as T };
}
