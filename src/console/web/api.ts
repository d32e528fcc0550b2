/**
 * The engine's HTTP API as the operator console uses it, with the operator token the console was
 * opened with (`Authorization: Bearer <token>`; the engine accepts it for the operator's own
 * extension only). Same origin as the page: every path is absolute from the engine's root.
 */

/** An answer of the API that was not 2xx: the engine's `{code, message}` error. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `GET /v1/operators/{extension}`: the operator's presence. */
export interface OperatorView {
  extension: string;
  /** What the phone does: `offline` (not registered), `idle`, `ringing`, `on_call`. */
  state: string;
  /** What the operator (or the CRM) said: `available`, `break`, `dnd`. */
  status: string;
  /** Since when `state` holds, ISO 8601 UTC. */
  since?: string;
  /** The call the operator is on or rung for. */
  callId?: string;
}

/** One stored call of `GET /v1/calls`, the fields the console shows. */
export interface CallView {
  id: string;
  direction: 'in' | 'out';
  from: string;
  to: string;
  startedAt: string;
  disposition?: string;
  talkSec: number;
  answeredBy?: string;
  customer?: { id?: string; name?: string };
  recording?: { status?: string; url?: string; durationSec?: number };
}

/** Calls of the API with the current operator token. */
export class ConsoleApi {
  /** @param token the operator token in force (it may be renewed while the page is open) */
  constructor(private readonly token: () => string) {}

  /**
   * One request; resolves to the parsed JSON body (undefined for an empty one).
   *
   * @throws ApiError for a non-2xx answer (its `{code, message}`, or `http_<status>`)
   * @throws TypeError when the engine cannot be reached
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token()}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      cache: 'no-store',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = (parsed ?? {}) as { code?: unknown; message?: unknown };
      throw new ApiError(
        response.status,
        typeof error.code === 'string' ? error.code : `http_${response.status}`,
        typeof error.message === 'string' ? error.message : response.statusText,
      );
    }
    return parsed as T;
  }

  /**
   * The operator's presence: `GET /v1/operators/{extension}`, or the operator's item of
   * `GET /v1/operators` where a token may only list.
   */
  async operator(extension: string): Promise<OperatorView> {
    try {
      return await this.request('GET', `/v1/operators/${encodeURIComponent(extension)}`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 403) throw err;
      const list = await this.request<{ items: OperatorView[] }>('GET', '/v1/operators');
      const own = list.items.find((item) => item.extension === extension);
      if (!own) throw err;
      return own;
    }
  }

  /** Set the operator's status (`available`, `break`, `dnd`). */
  setStatus(extension: string, status: string): Promise<OperatorView> {
    return this.request('PUT', `/v1/operators/${encodeURIComponent(extension)}/status`, {
      status,
    });
  }

  /** Click-to-call: the operator's phone rings first, then `to`. */
  call(extension: string, to: string): Promise<{ id: string }> {
    return this.request('POST', '/v1/calls', { operator: extension, to });
  }

  /** The operator's latest calls, newest first. */
  async recentCalls(extension: string, limit: number): Promise<CallView[]> {
    const query = new URLSearchParams({ extension, limit: String(limit) });
    const page = await this.request<{ items: CallView[] }>('GET', `/v1/calls?${query}`);
    return page.items;
  }
}
