/**
 * The notification-call API as the end-to-end tests use it: JSON requests to the engine, a job
 * created (`202`), read, and awaited until it reaches a status.
 */
import { expect } from 'chai';
import type { AutocallJobView } from '../../src/autocalls/index.ts';
import { apiRequest } from './api.ts';
import { until } from './until.ts';

/** Requests and job helpers; what each returns is described below. */
export interface AutocallClient {
  /** `POST` with `body` (a JSON body), else `GET`, to the engine; the status and parsed body. */
  api: <T = Record<string, unknown>>(
    path: string,
    body?: unknown,
  ) => ReturnType<typeof apiRequest<T>>;
  /** `POST /v1/autocalls`: asserts `202` and resolves with the job id. */
  create: (body: Record<string, unknown>) => Promise<number>;
  /** `GET /v1/autocalls/{id}`. */
  jobOf: (id: number) => Promise<AutocallJobView>;
  /** Waits (up to `finalTimeoutMs`) until the job has `status`, then reads it. */
  finalJob: (id: number, status: string) => Promise<AutocallJobView>;
}

/**
 * Helpers over the engine at `baseUrl()` (read at each request: an engine started again has a
 * new URL).
 *
 * @param finalTimeoutMs how long {@link AutocallClient.finalJob} waits; default `until`'s
 */
export function autocallClient(baseUrl: () => string, finalTimeoutMs?: number): AutocallClient {
  const api = <T = Record<string, unknown>>(path: string, body?: unknown) =>
    apiRequest<T>(baseUrl(), path, { body });
  const jobOf = async (id: number): Promise<AutocallJobView> =>
    (await api<AutocallJobView>(`/v1/autocalls/${id}`)).body;
  return {
    api,
    jobOf,
    create: async (body) => {
      const res = await api<AutocallJobView>('/v1/autocalls', body);
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      return res.body.id;
    },
    finalJob: async (id, status) => {
      await until(
        async () => (await jobOf(id)).status === status,
        `job ${id} ${status}`,
        finalTimeoutMs,
      );
      return jobOf(id);
    },
  };
}
