/**
 * The notification-call service: what the API and the asterisk.fcgi path do with jobs and
 * campaigns, over the store (src/autocalls/store.ts), the destination policy of the toll-fraud
 * guard and the TRUNKS map, publishing events and metrics (src/autocalls/notifier.ts) and waking
 * the scheduler when there is something new to dial. Errors are {@link HttpError}s with the
 * field at fault.
 */
import { customerEndpoint, NoTrunkError, type TrunkRoute } from '../calls/dialstrings.ts';
import { HttpError } from '../http/errors.ts';
import {
  InvalidNumberError,
  parseCustomerNumber,
  type CountryCode,
  type NumberForms,
} from '../numbers/phone.ts';
import type { DestinationPolicy } from '../security/destinations.ts';
import type { AutocallStatus } from './model.ts';
import type { AutocallNotifier } from './notifier.ts';
import { DEFAULT_AUTOCALL_TRIES, DEFAULT_AUTOCALL_TRIES_PERIOD_SEC } from './schemas.ts';
import type { AutocallStore } from './store.ts';
import type {
  AutocallAmd,
  AutocallConfirm,
  AutocallJobView,
  AutocallVerb,
  CampaignDefaults,
  CampaignView,
  NewAutocallJob,
  NewCampaign,
} from './types.ts';

/** A job as the API takes it (validated by ./schemas.ts; the number not yet normalised). */
export interface AutocallInput {
  to: string;
  files?: string[];
  verbs?: AutocallVerb[];
  confirm?: AutocallConfirm;
  amd?: AutocallAmd;
  tries?: number;
  triesPeriodSec?: number;
  callerId?: string;
  variables?: Record<string, string | number | boolean>;
}

/** What {@link AutocallService} needs. */
export interface AutocallServiceDeps {
  store: AutocallStore;
  notifier: AutocallNotifier;
  /** The destination allow-list and denied number types of the toll-fraud guard. */
  destinations: DestinationPolicy;
  /** TRUNKS (the trunk of each job comes from its number's prefix). */
  trunks: readonly TrunkRoute[];
  /** DEFAULT_REGION. */
  region: CountryCode;
  /** Wake the scheduler (new jobs, a resumed or canceled campaign); absent: nothing dials. */
  wake?: () => void;
  now?: () => number;
}

/** Jobs, campaigns and their life cycle. */
export class AutocallService {
  private readonly now: () => number;

  constructor(private readonly deps: AutocallServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Whether jobs are dialled (a scheduler runs). */
  get dialling(): boolean {
    return this.deps.wake !== undefined;
  }

  /**
   * Check one job and make it storable: number normalised and allowed, trunk chosen, defaults
   * applied (the campaign's, then the engine's).
   *
   * @param field path of the job in the request, e.g. `` (single) or `jobs.3.`
   * @throws HttpError 400 `invalid_number` / `invalid_request`, 403 `destination_not_allowed` /
   *   `destination_type_not_allowed`, 422 `no_trunk`; each naming `<field>to` or the like
   */
  prepare(
    input: AutocallInput,
    field: string,
    options: { campaign?: CampaignView; requestedBy?: string } = {},
  ): { job: NewAutocallJob; forms: NumberForms } {
    const defaults: CampaignDefaults = options.campaign?.defaults ?? {};
    const forms = this.number(input.to, `${field}to`);
    const { destinations } = this.deps;
    if (!destinations.allows(forms))
      throw new HttpError(
        403,
        'destination_not_allowed',
        `${field}to: calls to ${forms.e164} are not allowed (destination allow-list)`,
        { field: `${field}to` },
      );
    const denied = destinations.deniedType(forms);
    if (denied)
      throw new HttpError(
        403,
        'destination_type_not_allowed',
        `${field}to: calls to ${forms.e164} are not allowed: it is ${denied.description} (${denied.type}, denied by DESTINATION_DENIED_TYPES)`,
        { field: `${field}to`, numberType: denied.type },
      );
    let endpoint: string;
    try {
      endpoint = customerEndpoint(forms.e164, this.deps.trunks);
    } catch (err) {
      if (err instanceof NoTrunkError)
        throw new HttpError(
          422,
          'no_trunk',
          `${field}to: no trunk is configured for ${forms.e164}`,
          {
            field: `${field}to`,
          },
        );
      throw new HttpError(400, 'invalid_number', `${field}to: ${(err as Error).message}`, {
        field: `${field}to`,
      });
    }
    // A job's own files or verbs replace the campaign's (never a mix of both).
    const own = input.files !== undefined || input.verbs !== undefined;
    const files = own ? input.files : defaults.files;
    const verbs = own ? input.verbs : defaults.verbs;
    if ((files === undefined) === (verbs === undefined))
      throw new HttpError(
        400,
        'invalid_request',
        `${field}files: give either files or verbs${options.campaign ? ' (or set them in the campaign defaults)' : ''}`,
        { field: `${field}files` },
      );
    const confirm = input.confirm ?? defaults.confirm;
    const amd = input.amd ?? defaults.amd;
    const variables = input.variables ?? defaults.variables;
    const callerId = input.callerId ?? defaults.callerId;
    return {
      forms,
      job: {
        to: forms.e164,
        endpoint,
        script: {
          ...(files ? { files } : {}),
          ...(verbs ? { verbs } : {}),
          ...(confirm ? { confirm } : {}),
          ...(amd ? { amd } : {}),
        },
        ...(callerId === undefined ? {} : { callerId }),
        ...(variables === undefined
          ? {}
          : {
              variables: Object.fromEntries(
                Object.entries(variables).map(([k, v]) => [k, String(v)]),
              ),
            }),
        tries: input.tries ?? defaults.tries ?? DEFAULT_AUTOCALL_TRIES,
        triesPeriodSec:
          input.triesPeriodSec ?? defaults.triesPeriodSec ?? DEFAULT_AUTOCALL_TRIES_PERIOD_SEC,
        ...(options.campaign ? { campaignId: options.campaign.id } : {}),
        ...(options.requestedBy === undefined ? {} : { requestedBy: options.requestedBy }),
      },
    };
  }

  /**
   * A campaign jobs may be added to.
   *
   * @throws HttpError 404 `campaign_not_found`; 409 `campaign_canceled`
   */
  async openCampaign(id: number): Promise<CampaignView> {
    const campaign = await this.deps.store.getCampaign(id);
    if (!campaign)
      throw new HttpError(404, 'campaign_not_found', `campaign ${id} does not exist`, {
        field: 'campaignId',
      });
    if (campaign.state === 'canceled')
      throw new HttpError(409, 'campaign_canceled', `campaign ${id} is canceled`);
    return campaign;
  }

  /** Store prepared jobs (one transaction) and wake the scheduler. */
  async createJobs(jobs: readonly NewAutocallJob[]): Promise<AutocallJobView[]> {
    const created = await this.deps.store.createJobs(jobs, this.now());
    this.deps.notifier.jobsCreated(created.length);
    this.deps.wake?.();
    return created;
  }

  /** A job with its attempts; 404 `autocall_not_found`. */
  async getJob(id: number): Promise<AutocallJobView> {
    const job = await this.deps.store.getJob(id);
    if (!job)
      throw new HttpError(404, 'autocall_not_found', `notification call ${id} does not exist`);
    return job;
  }

  /** Cancel a job (see `AutocallStore.cancelJob`); 404 `autocall_not_found`. */
  async cancelJob(id: number): Promise<AutocallJobView> {
    const result = await this.deps.store.cancelJob(id, this.now());
    if (!result)
      throw new HttpError(404, 'autocall_not_found', `notification call ${id} does not exist`);
    this.deps.notifier.publish(result.changes);
    this.deps.wake?.();
    return result.job;
  }

  /** Create a campaign. */
  createCampaign(campaign: NewCampaign): Promise<CampaignView> {
    return this.deps.store.createCampaign(campaign, this.now());
  }

  /** A campaign with its counts per status; 404 `campaign_not_found`. */
  async getCampaign(id: number): Promise<CampaignView> {
    const campaign = await this.deps.store.getCampaign(id, true);
    if (!campaign) throw new HttpError(404, 'campaign_not_found', `campaign ${id} does not exist`);
    return campaign;
  }

  /**
   * Pause or resume a campaign.
   *
   * @throws HttpError 404 `campaign_not_found`; 409 `campaign_canceled`
   */
  async setCampaignState(id: number, state: 'active' | 'paused'): Promise<CampaignView> {
    const campaign = await this.deps.store.setCampaignState(id, state, this.now());
    if (!campaign) throw new HttpError(404, 'campaign_not_found', `campaign ${id} does not exist`);
    if (campaign.state === 'canceled')
      throw new HttpError(409, 'campaign_canceled', `campaign ${id} is canceled`);
    if (state === 'active') this.deps.wake?.();
    return this.getCampaign(id);
  }

  /** Cancel a campaign (idempotent); 404 `campaign_not_found`. */
  async cancelCampaign(id: number): Promise<CampaignView> {
    const result = await this.deps.store.cancelCampaign(id, this.now());
    if (!result) throw new HttpError(404, 'campaign_not_found', `campaign ${id} does not exist`);
    this.deps.notifier.publish(result.changes);
    this.deps.wake?.();
    return this.getCampaign(id);
  }

  /** A page of a campaign's jobs; 404 `campaign_not_found`. */
  async listJobs(
    id: number,
    query: { status?: AutocallStatus; limit: number; cursor?: string },
  ): Promise<{ items: AutocallJobView[]; nextCursor?: string }> {
    await this.getCampaignOrThrow(id);
    return this.deps.store.listJobs({ campaignId: id, ...query });
  }

  private async getCampaignOrThrow(id: number): Promise<CampaignView> {
    const campaign = await this.deps.store.getCampaign(id);
    if (!campaign) throw new HttpError(404, 'campaign_not_found', `campaign ${id} does not exist`);
    return campaign;
  }

  private number(input: string, field: string): NumberForms {
    try {
      return parseCustomerNumber(input, this.deps.region);
    } catch (err) {
      if (!(err instanceof InvalidNumberError)) throw err;
      const shown = input.length > 40 ? `${input.slice(0, 40)}…` : input;
      throw new HttpError(400, 'invalid_number', `${field}: "${shown}" ${err.message}`, { field });
    }
  }
}
