/**
 * The `/v1` event routes: the pull feed for CRMs that cannot
 * receive webhooks, and the webhook delivery log. Both read the store's outbox
 * (`src/store/events.ts`); mounted behind the API key check like the other `/v1` routes.
 *
 * - `GET /v1/events?after=<cursor>&limit=<n>` → 200 `{items: [{cursor, webhookStatus, event}],
 *   nextCursor}`: every lifecycle event in outbox order (per call: by `sequence`), each exactly
 *   as its webhook carries it, whatever its delivery state | 400 `invalid_query` /
 *   `invalid_cursor`
 * - `GET /v1/webhooks/deliveries?status=failed|delivered&limit=<n>&cursor=<c>` → 200
 *   `{items: DeliveryRecord[], nextCursor?}`: one row per attempt, newest first | 400
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import type { FeedItemView } from '../http/history-schemas.ts';
import {
  cursorParam,
  limitParam,
  storeNotConfigured,
  validateQuery,
  withCursor,
} from '../http/query.ts';
import { MAX_EVENTS_PAGE, type DeliveryRecord, type EventRepository } from '../store/index.ts';

/** Default page size of the feed and the delivery log. */
export const DEFAULT_EVENTS_PAGE = 100;

/** Query of `GET /v1/events`. */
export const eventFeedQuerySchema = z.strictObject({
  after: cursorParam
    .optional()
    .describe(
      'Return the events after this cursor (nextCursor of the previous page, or the cursor of the last event processed); absent: from the oldest stored event.',
    ),
  limit: limitParam(MAX_EVENTS_PAGE, DEFAULT_EVENTS_PAGE),
});

/** Query of `GET /v1/webhooks/deliveries`. */
export const deliveryLogQuerySchema = z.strictObject({
  status: z
    .enum(['failed', 'delivered'])
    .optional()
    .describe(
      'failed: attempts that did not deliver (retried later, or rejected with a 4xx); delivered: 2xx attempts; absent: all.',
    ),
  limit: limitParam(MAX_EVENTS_PAGE, DEFAULT_EVENTS_PAGE),
  cursor: cursorParam.optional().describe('nextCursor of the previous page (same status).'),
});

/** The `200` body of `GET /v1/events`. */
export interface FeedPageView {
  items: FeedItemView[];
  /** Always set: pass it as `after` to read on (the same cursor when nothing is new). */
  nextCursor: string;
}

/** The `200` body of `GET /v1/webhooks/deliveries`. */
export interface DeliveryPageView {
  /** Newest first. */
  items: DeliveryRecord[];
  /** Absent on the last page. */
  nextCursor?: string;
}

/** What the routes need. */
export interface EventRoutesDeps {
  /** The store's outbox; without it both routes answer 503 `store_not_configured`. */
  events?: Pick<EventRepository, 'feed' | 'deliveries'>;
}

/** Build the router; mount it at `/v1` behind the API key check. */
export function createEventRoutes(deps: EventRoutesDeps): Router {
  const { events } = deps;
  const router = express.Router();

  router.get('/events', async (req, res) => {
    const query = validateQuery(eventFeedQuerySchema, req.query, ['after']);
    if (!events) throw storeNotConfigured();
    const page = await withCursor('after', () =>
      events.feed({ after: query.after, limit: query.limit }),
    );
    const body: FeedPageView = {
      items: page.items.map((item) => ({
        cursor: item.cursor,
        webhookStatus: item.status,
        event: item.event,
      })),
      nextCursor: page.nextCursor,
    };
    res.json(body);
  });

  router.get('/webhooks/deliveries', async (req, res) => {
    const query = validateQuery(deliveryLogQuerySchema, req.query, ['cursor']);
    if (!events) throw storeNotConfigured();
    const page = await withCursor('cursor', () =>
      events.deliveries({ status: query.status, limit: query.limit, cursor: query.cursor }),
    );
    const body: DeliveryPageView = { items: page.items };
    if (page.nextCursor !== undefined) body.nextCursor = page.nextCursor;
    res.json(body);
  });

  return router;
}
