/**
 * Notification-call campaigns in the store (`autocall_campaigns`): created active, read with
 * their job counts per status, listed for the scheduler when active, paused and resumed, and
 * canceled with their jobs (store-transitions.ts). The methods of {@link AutocallStore} that
 * take campaigns call these.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { toIsoTime } from '../store/schema.ts';
import { AUTOCALL_STATUSES, type AutocallStatus, type CallingWindow } from './model.ts';
import { num, toCampaignView, type AutocallTx } from './store-rows.ts';
import { cancelJobsWhere, type AutocallChanges } from './store-transitions.ts';
import type { CampaignView, NewCampaign } from './types.ts';

/** A campaign as the scheduler reads it. */
export interface ActiveCampaign {
  id: number;
  maxConcurrent: number;
  callsPerSecond: number;
  window?: CallingWindow;
}

/** Create a campaign, active, its first pacing slot at `now`. */
export async function createCampaign(
  db: Kysely<Database>,
  campaign: NewCampaign,
  now: number,
): Promise<CampaignView> {
  const at = toIsoTime(now);
  const row = await db
    .insertInto('autocall_campaigns')
    .values({
      name: campaign.name,
      max_concurrent: campaign.maxConcurrent,
      calls_per_second: campaign.callsPerSecond,
      window: campaign.window ? JSON.stringify(campaign.window) : null,
      defaults: campaign.defaults ? JSON.stringify(campaign.defaults) : null,
      state: 'active',
      next_slot_at: at,
      requested_by: campaign.requestedBy ?? null,
      created_at: at,
      updated_at: at,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toCampaignView(row);
}

/** A campaign, with its job counts per status when `withCounts`; undefined when unknown. */
export async function getCampaign(
  db: Kysely<Database>,
  id: number,
  withCounts: boolean,
): Promise<CampaignView | undefined> {
  const row = await db
    .selectFrom('autocall_campaigns')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) return undefined;
  const view = toCampaignView(row);
  if (!withCounts) return view;
  const counts = Object.fromEntries(AUTOCALL_STATUSES.map((s) => [s, 0])) as Record<
    AutocallStatus,
    number
  >;
  const rows = await db
    .selectFrom('autocall_jobs')
    .select(['status', (eb) => eb.fn.countAll<number | string>().as('n')])
    .where('campaign_id', '=', id)
    .groupBy('status')
    .execute();
  for (const r of rows) counts[r.status as AutocallStatus] = num(r.n);
  return { ...view, counts };
}

/** Campaigns in state `active`, by id, for the scheduler. */
export async function activeCampaigns(db: Kysely<Database>): Promise<ActiveCampaign[]> {
  const rows = await db
    .selectFrom('autocall_campaigns')
    .selectAll()
    .where('state', '=', 'active')
    .orderBy('id')
    .execute();
  return rows.map((row) => {
    const view = toCampaignView(row);
    return {
      id: view.id,
      maxConcurrent: view.maxConcurrent,
      callsPerSecond: view.callsPerSecond,
      ...(view.window ? { window: view.window } : {}),
    };
  });
}

/**
 * Pause (`paused`) or resume (`active`) a campaign; a canceled campaign stays canceled.
 *
 * @returns the campaign, undefined when unknown
 */
export async function setCampaignState(
  db: Kysely<Database>,
  id: number,
  state: 'active' | 'paused',
  now: number,
): Promise<CampaignView | undefined> {
  await db
    .updateTable('autocall_campaigns')
    .set({ state, updated_at: toIsoTime(now) })
    .where('id', '=', id)
    .where('state', '<>', 'canceled')
    .execute();
  return getCampaign(db, id, false);
}

/** The transaction of {@link AutocallStore.cancelCampaign}: undefined when unknown. */
export async function cancelCampaignIn(
  tx: AutocallTx,
  id: number,
  now: number,
): Promise<{ campaign: CampaignView; changes: AutocallChanges } | undefined> {
  const at = toIsoTime(now);
  const updated = await tx.trx
    .updateTable('autocall_campaigns')
    .set({ state: 'canceled', updated_at: at })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!updated) return undefined;
  const changes = await cancelJobsWhere(tx, now, 'campaign_id', id);
  return { campaign: toCampaignView(updated), changes };
}
