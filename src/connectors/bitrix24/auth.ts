/**
 * OAuth tokens of the Bitrix24 local application: the access token every REST request carries
 * (form field `auth`), and the refresh token that gets a new pair from the OAuth server
 * (`GET <BITRIX24_OAUTH_URL>?grant_type=refresh_token&client_id&client_secret&refresh_token`,
 * answer `{access_token, refresh_token, expires_in, member_id, …}`). The tokens in use are the
 * ones last stored in the connector state (`oauth`: a refresh or the install handler), else
 * BITRIX24_ACCESS_TOKEN / BITRIX24_REFRESH_TOKEN; each refresh is persisted at once, so a
 * restart goes on with the newest pair (a refresh token is spent once it was swapped).
 * Concurrent refreshes share one request. Tokens are never logged.
 */
import { request as undiciRequest, type Dispatcher } from 'undici';
import type { Logger } from '../../logging/logger.ts';
import type { ConnectorStateRepository } from '../../store/connector-state.ts';

/** The stored token pair (connector state key `oauth`). */
export interface Bitrix24Tokens {
  accessToken: string;
  refreshToken?: string;
  /** When the access token expires, ISO 8601 UTC (informational: a 401 triggers the refresh). */
  expiresAt?: string;
  /** The application token Bitrix24 signs its events with, when the install handler got it. */
  applicationToken?: string;
}

/** Options of {@link Bitrix24OAuth}. */
export interface Bitrix24OAuthOptions {
  clientId: string;
  clientSecret: string;
  /** BITRIX24_OAUTH_URL. */
  oauthUrl: string;
  /** BITRIX24_ACCESS_TOKEN / BITRIX24_REFRESH_TOKEN: used until the state holds a pair. */
  initial: { accessToken?: string; refreshToken?: string };
  /** The connector state (the store), read lazily: it opens after the connector is built. */
  state: () => ConnectorStateRepository | undefined;
  timeoutMs: number;
  logger: Logger;
  dispatcher?: Dispatcher;
}

const STATE_KEY = 'oauth';

/** The local application's OAuth tokens (see the module comment). */
export class Bitrix24OAuth {
  private tokens: Bitrix24Tokens | undefined;
  private loading: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly options: Bitrix24OAuthOptions) {
    const { accessToken, refreshToken } = options.initial;
    if (accessToken || refreshToken)
      this.tokens = {
        accessToken: accessToken ?? '',
        ...(refreshToken ? { refreshToken } : {}),
      };
  }

  /** Read the stored pair once (later calls resolve at once). Never throws. */
  ready(): Promise<void> {
    this.loading ??= this.load();
    return this.loading;
  }

  /** The access token to send; undefined before any token is known. */
  accessToken(): string | undefined {
    return this.tokens?.accessToken || undefined;
  }

  /** The application token the install handler stored, if any. */
  applicationToken(): string | undefined {
    return this.tokens?.applicationToken;
  }

  /**
   * Swap the refresh token for a new pair and persist it. Concurrent calls share one request.
   *
   * @throws Error when there is no refresh token, the OAuth server refuses (`invalid_grant`…)
   *   or cannot be reached, or the store cannot keep the new pair
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Keep a pair received by the install handler (persisted first). */
  async install(tokens: Bitrix24Tokens): Promise<void> {
    await this.ready();
    const next: Bitrix24Tokens = {
      ...tokens,
      ...(tokens.applicationToken || !this.tokens?.applicationToken
        ? {}
        : { applicationToken: this.tokens.applicationToken }),
    };
    await this.persist(next);
    this.tokens = next;
    this.options.logger.info('Bitrix24 application installed: OAuth tokens stored');
  }

  private async load(): Promise<void> {
    try {
      const stored = await this.options.state()?.get<Bitrix24Tokens>(STATE_KEY);
      if (stored?.accessToken || stored?.refreshToken) this.tokens = stored;
    } catch (err) {
      this.options.logger.warn(
        'reading the stored Bitrix24 tokens failed; using the configured ones',
        {
          err,
        },
      );
      this.loading = undefined; // read again next time
    }
  }

  private async doRefresh(): Promise<void> {
    await this.ready();
    const refreshToken = this.tokens?.refreshToken;
    if (!refreshToken)
      throw new Error(
        'no Bitrix24 refresh token (set BITRIX24_REFRESH_TOKEN or install the application)',
      );
    const url = new URL(this.options.oauthUrl);
    url.searchParams.set('grant_type', 'refresh_token');
    url.searchParams.set('client_id', this.options.clientId);
    url.searchParams.set('client_secret', this.options.clientSecret);
    url.searchParams.set('refresh_token', refreshToken);
    const answer = await undiciRequest(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(this.options.timeoutMs),
      ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
    });
    const text = await answer.body.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    const access = typeof json?.access_token === 'string' ? json.access_token : undefined;
    if (answer.statusCode !== 200 || !access) {
      const reason =
        [json?.error, json?.error_description].filter((v) => typeof v === 'string').join(': ') ||
        text.slice(0, 200);
      throw new Error(`the OAuth server answered HTTP ${answer.statusCode}: ${reason}`);
    }
    const expiresIn = Number(json?.expires_in);
    const next: Bitrix24Tokens = {
      accessToken: access,
      refreshToken: typeof json?.refresh_token === 'string' ? json.refresh_token : refreshToken,
      ...(Number.isFinite(expiresIn) && expiresIn > 0
        ? { expiresAt: new Date(Date.now() + expiresIn * 1000).toISOString() }
        : {}),
      ...(this.tokens?.applicationToken ? { applicationToken: this.tokens.applicationToken } : {}),
    };
    // Kept in memory even if the store fails: the old refresh token no longer works.
    this.tokens = next;
    try {
      await this.persist(next);
    } catch (err) {
      this.options.logger.error(
        'storing the refreshed Bitrix24 tokens failed: after a restart the application must be installed again',
        { err },
      );
    }
    this.options.logger.info('Bitrix24 OAuth tokens refreshed', {
      ...(next.expiresAt ? { expiresAt: next.expiresAt } : {}),
    });
  }

  private async persist(tokens: Bitrix24Tokens): Promise<void> {
    const state = this.options.state();
    if (!state) {
      this.options.logger.warn(
        'no store for the Bitrix24 tokens: they last until the engine stops',
      );
      return;
    }
    await state.set(STATE_KEY, tokens);
  }
}
