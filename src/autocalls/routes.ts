/**
 * The notification-call API, mounted at `/v1` behind the API key check, the IP allow-list and
 * the toll-fraud guard (every job's `to` passes the destination allow-list and denied number
 * types; a single job also the per-key rate limit). Reference: docs/autocalls.md.
 *
 * - `POST /v1/autocalls` → 202 the job (+ `Location`); `Idempotency-Key` aware
 * - `GET /v1/autocalls/{id}` → the job with its attempts
 * - `POST /v1/autocalls/{id}/cancel` → the job
 * - `POST /v1/campaigns` → 201 the campaign
 * - `GET /v1/campaigns/{id}` → the campaign with its job counts per status
 * - `POST /v1/campaigns/{id}/jobs` → 202 `{campaignId, count, ids}`: up to 10,000 jobs, all
 *   stored or none (413 `too_many_jobs` beyond)
 * - `POST /v1/campaigns/{id}/pause|resume|cancel` → the campaign
 * - `GET /v1/campaigns/{id}/jobs?status=&limit=&cursor=` → a page of its jobs
 *
 * Creating jobs answers 503 `autocalls_unavailable` while the engine has no notification-call
 * dialer (nothing would dial them); reading works.
 */
import express, { type Request, type Response, type Router } from 'express';
import { HttpError } from '../http/errors.ts';
import { beginIdempotentCreation, type IdempotencyStore } from '../http/idempotency.ts';
import { validateQuery, withCursor } from '../http/query.ts';
import { validate } from '../http/validation.ts';
import type { Logger } from '../logging/logger.ts';
import { apiKeyNameOf } from '../security/api-keys.ts';
import type { CallGuard } from '../security/guard.ts';
import { canonicalIp } from '../security/ip.ts';
import type { AutocallJobView } from './types.ts';
import {
  autocallBodySchema,
  campaignBodySchema,
  campaignJobsBodySchema,
  campaignJobsQuerySchema,
  idParamSchema,
  MAX_JOBS_PER_REQUEST,
} from './schemas.ts';
import type { AutocallService } from './service.ts';
import { jsonBody } from '../http/request-body.ts';

/** A remembered `POST /v1/autocalls` answer (Idempotency-Key). */
export interface StoredAutocallCreation {
  status: 202;
  body: AutocallJobView;
}

/** What {@link createAutocallRoutes} needs. */
export interface AutocallRoutesDeps {
  service: AutocallService;
  /**
   * The toll-fraud guard of notification calls: its destination policy and per-key rate limit
   * (`admit` is called once per `POST /v1/autocalls`); its live-call cap is the scheduler's.
   */
  guard: CallGuard;
  idempotency: IdempotencyStore<StoredAutocallCreation>;
  logger: Logger;
}

/**
 * `Idempotency-Key` header: 1-255 visible ASCII characters (as on `POST /v1/calls`).
 */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The `{id}` path parameter; 400 `invalid_request` naming `id`. */
function idParam(req: Request): number {
  return validate(idParamSchema, req.params.id, 'id');
}

/** Build the router; mount it at `/v1` behind the API key check and a JSON body parser. */
export function createAutocallRoutes(deps: AutocallRoutesDeps): Router {
  const { service, guard, idempotency, logger } = deps;
  const router = express.Router();

  const refuseWithoutDialer = (): void => {
    if (!service.dialling)
      throw new HttpError(
        503,
        'autocalls_unavailable',
        'notification calls are not available on this engine (no notification-call dialer is configured)',
      );
  };

  router.post('/autocalls', async (req: Request, res: Response) => {
    const body = validate(autocallBodySchema, jsonBody(req), 'body');
    const headerKey = req.get('idempotency-key');
    if (headerKey !== undefined && !IDEMPOTENCY_KEY.test(headerKey))
      throw new HttpError(
        400,
        'invalid_request',
        'Idempotency-Key: must be 1-255 visible ASCII characters',
        { field: 'Idempotency-Key' },
      );
    refuseWithoutDialer();
    const keyName = apiKeyNameOf(res);
    const { campaignId, ...input } = body;
    const campaign = campaignId === undefined ? undefined : await service.openCampaign(campaignId);
    const { job, forms } = service.prepare(input, '', {
      ...(campaign ? { campaign } : {}),
      requestedBy: keyName,
    });
    const content = { ...job, requestedBy: undefined };
    if (
      beginIdempotentCreation(
        idempotency,
        keyName,
        headerKey,
        content,
        res,
        (id) => `/v1/autocalls/${id}`,
      )
    )
      return;
    let created: AutocallJobView;
    try {
      const ip = canonicalIp(req.ip) ?? req.ip;
      await guard.admit({ keyName, number: forms, operator: 'autocall', ip });
      [created] = (await service.createJobs([job])) as [AutocallJobView];
    } catch (err) {
      if (headerKey) idempotency.abandon(keyName, headerKey);
      throw err;
    }
    logger.info('notification call accepted', { jobId: created.id, keyName });
    if (headerKey) idempotency.complete(keyName, headerKey, { status: 202, body: created });
    res.status(202).location(`/v1/autocalls/${created.id}`).json(created);
  });

  router.get('/autocalls/:id', async (req, res) => {
    res.json(await service.getJob(idParam(req)));
  });

  router.post('/autocalls/:id/cancel', async (req, res) => {
    res.json(await service.cancelJob(idParam(req)));
  });

  router.post('/campaigns', async (req, res) => {
    const body = validate(campaignBodySchema, jsonBody(req), 'body');
    const campaign = await service.createCampaign({
      name: body.name,
      maxConcurrent: body.maxConcurrent,
      callsPerSecond: body.callsPerSecond,
      ...(body.window ? { window: body.window } : {}),
      ...(body.defaults ? { defaults: body.defaults } : {}),
      requestedBy: apiKeyNameOf(res),
    });
    res.status(201).location(`/v1/campaigns/${campaign.id}`).json(campaign);
  });

  router.get('/campaigns/:id', async (req, res) => {
    res.json(await service.getCampaign(idParam(req)));
  });

  router.post('/campaigns/:id/jobs', async (req, res) => {
    const id = idParam(req);
    const raw = jsonBody(req);
    if (
      raw &&
      typeof raw === 'object' &&
      Array.isArray((raw as { jobs?: unknown }).jobs) &&
      (raw as { jobs: unknown[] }).jobs.length > MAX_JOBS_PER_REQUEST
    )
      throw new HttpError(
        413,
        'too_many_jobs',
        `jobs: at most ${MAX_JOBS_PER_REQUEST} jobs per request; send the rest in further requests`,
        { field: 'jobs' },
      );
    const body = validate(campaignJobsBodySchema, raw, 'body');
    refuseWithoutDialer();
    const campaign = await service.openCampaign(id);
    const keyName = apiKeyNameOf(res);
    const jobs = body.jobs.map(
      (input, i) => service.prepare(input, `jobs.${i}.`, { campaign, requestedBy: keyName }).job,
    );
    const created = await service.createJobs(jobs);
    logger.info('campaign jobs accepted', { campaignId: id, jobs: created.length, keyName });
    res.status(202).json({ campaignId: id, count: created.length, ids: created.map((j) => j.id) });
  });

  for (const action of ['pause', 'resume'] as const)
    router.post(`/campaigns/:id/${action}`, async (req, res) => {
      res.json(
        await service.setCampaignState(idParam(req), action === 'pause' ? 'paused' : 'active'),
      );
    });

  router.post('/campaigns/:id/cancel', async (req, res) => {
    res.json(await service.cancelCampaign(idParam(req)));
  });

  router.get('/campaigns/:id/jobs', async (req, res) => {
    const id = idParam(req);
    const query = validateQuery(campaignJobsQuerySchema, req.query, ['cursor']);
    const page = await withCursor('cursor', () =>
      service.listJobs(id, {
        limit: query.limit,
        ...(query.status ? { status: query.status } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      }),
    );
    res.json(page);
  });

  return router;
}
