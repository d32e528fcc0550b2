/**
 * The operator console in the browser (served by the engine at `/console`, see docs/console.md).
 *
 * Opened with a link the CRM builds: `/console?token=<operator token>` (optionally
 * `&expiresAt=<ISO time>`; `&extension=101` shows the extension before the stream confirms it). The token is moved into sessionStorage (this tab only; a refresh keeps
 * it) and removed from the address bar at once. Then the page:
 * - shows the operator's phone state and status (`GET /v1/operators/{ext}`, `operator.state`
 *   messages) and sets the status (`PUT /v1/operators/{ext}/status`);
 * - shows a card while the phone rings (`call.ringing`: number, customer name, link to the CRM),
 *   the call in progress with a talk timer (`call.answered`), and removes it on `call.ended`;
 * - places calls (`POST /v1/calls`: the operator's phone rings first);
 * - lists the operator's recent calls with their recordings (`GET /v1/calls?extension=`).
 *
 * The live stream (./stream.ts) resumes after the last event it saw, so a dropped connection or a
 * refresh misses nothing. Token renewal: the page asks the window that opened or embeds it
 * (`postMessage({type: "ari-crm:token-request"})`) a minute before the token expires, or when the
 * stream says it has; that window answers `{type: "ari-crm:token", token, expiresAt}`.
 *
 * Every text comes from the engine's data through `textContent`, never as HTML.
 */
import { ApiError, ConsoleApi, type CallView, type OperatorView } from './api.ts';
import { StreamClient, type StreamMessage, type StreamStatus } from './stream.ts';

const STORAGE = {
  token: 'ari-crm.console.token',
  expiresAt: 'ari-crm.console.expiresAt',
  extension: 'ari-crm.console.extension',
  cursor: 'ari-crm.console.cursor',
  cards: 'ari-crm.console.cards',
} as const;
/** How many recent calls are listed. */
const HISTORY_SIZE = 20;
/** Ask for a new token this long before the current one expires, ms. */
const RENEW_AHEAD_MS = 60_000;

const STATE_TEXT: Record<string, string> = {
  offline: 'Offline (phone not registered)',
  idle: 'Idle',
  ringing: 'Ringing',
  on_call: 'On a call',
};
const OUTCOME_TEXT: Record<string, string> = {
  answered: 'Answered',
  busy: 'Busy',
  no_answer: 'No answer',
  canceled: 'Canceled',
  failed: 'Failed',
};

/** A call shown as a card: ringing, or in progress. */
interface CallCard {
  callId: string;
  /** `dialing`: the operator picked up a click-to-call and the customer's phone rings. */
  phase: 'ringing' | 'dialing' | 'on_call';
  /** The customer's number. */
  number: string;
  customerName?: string;
  /** The customer's page in the CRM (http/https only). */
  link?: string;
  /** The operator places this call (click-to-call): their phone rings first. */
  outgoing: boolean;
  /** When the call was answered, ms since the epoch. */
  answeredAt?: number;
  element: HTMLElement;
}

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

/** `document.createElement` with text and attributes. */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  attributes: Record<string, string> = {},
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? value : undefined;

/** `m:ss` (or `h:mm:ss`) of whole seconds. */
function duration(totalSec: number): string {
  const sec = Math.max(0, Math.floor(totalSec));
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = String(sec % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** An http(s) link, or undefined (a `javascript:` link from a CRM answer is not followed). */
function safeLink(value: unknown): string | undefined {
  const text = str(value);
  if (!text) return undefined;
  try {
    const url = new URL(text, location.href);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A link to this engine (a recording) as a path on the page's own origin: the engine may build
 * its links with another base URL (PUBLIC_URL), and the page loads only from its own origin.
 */
function sameOrigin(link: string): string {
  const url = new URL(link, location.href);
  return `${url.pathname}${url.search}`;
}

/** The credentials of the link, moved to sessionStorage and out of the address bar. */
function takeCredentials(): { token?: string; extension?: string; expiresAt?: number } {
  const params = new URLSearchParams(location.search);
  const fromLink = params.get('token');
  if (fromLink) {
    sessionStorage.setItem(STORAGE.token, fromLink);
    const ext = params.get('extension');
    if (ext) sessionStorage.setItem(STORAGE.extension, ext);
    else sessionStorage.removeItem(STORAGE.extension);
    const expires = params.get('expiresAt');
    if (expires) sessionStorage.setItem(STORAGE.expiresAt, expires);
    else sessionStorage.removeItem(STORAGE.expiresAt);
    // A new link is a new session: what an earlier token of this tab saw does not apply.
    sessionStorage.removeItem(STORAGE.cursor);
    sessionStorage.removeItem(STORAGE.cards);
    for (const name of ['token', 'extension', 'expiresAt']) params.delete(name);
    const rest = params.toString();
    history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  }
  const token = sessionStorage.getItem(STORAGE.token) ?? undefined;
  const extension = sessionStorage.getItem(STORAGE.extension) ?? undefined;
  const expiresAt = Date.parse(sessionStorage.getItem(STORAGE.expiresAt) ?? '');
  return {
    ...(token ? { token } : {}),
    ...(extension ? { extension } : {}),
    ...(Number.isFinite(expiresAt) ? { expiresAt } : {}),
  };
}

class Console {
  private token: string;
  private extension: string | undefined;
  private expiresAt: number | undefined;
  private renewTimer: number | undefined;
  private readonly cards = new Map<string, CallCard>();
  private readonly api = new ConsoleApi(() => this.token);
  private readonly stream: StreamClient;
  private historyPending: number | undefined;

  private readonly connection = byId<HTMLParagraphElement>('connection');
  private readonly extensionLabel = byId<HTMLSpanElement>('operator-extension');
  private readonly phoneState = byId<HTMLElement>('phone-state');
  /** `operator.state` messages of this operator so far (a read of the state older than one is dropped). */
  private presenceMessages = 0;
  private readonly phoneSince = byId<HTMLElement>('phone-since');
  private readonly statusSelect = byId<HTMLSelectElement>('status-select');
  private readonly statusMessage = byId<HTMLParagraphElement>('status-message');
  private readonly cardList = byId<HTMLDivElement>('call-cards');
  private readonly noCall = byId<HTMLParagraphElement>('no-call');
  private readonly dialForm = byId<HTMLFormElement>('dial-form');
  private readonly dialNumber = byId<HTMLInputElement>('dial-number');
  private readonly dialMessage = byId<HTMLParagraphElement>('dial-message');
  private readonly historyBody = byId<HTMLTableSectionElement>('history-body');
  private readonly historyMessage = byId<HTMLParagraphElement>('history-message');

  constructor(credentials: { token: string; extension?: string; expiresAt?: number }) {
    this.token = credentials.token;
    this.expiresAt = credentials.expiresAt;
    const wsUrl = new URL('/v1/stream', location.href);
    wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.stream = new StreamClient({
      url: wsUrl.href,
      token: () => this.token,
      cursor: () => sessionStorage.getItem(STORAGE.cursor) ?? undefined,
      onMessage: (message) => this.onMessage(message),
      onStatus: (status) => this.onStatus(status),
    });
    if (credentials.extension) this.setExtension(credentials.extension);
    this.restoreCards();
  }

  start(): void {
    this.statusSelect.addEventListener('change', () => void this.changeStatus());
    this.dialForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.dial();
    });
    byId('history-refresh').addEventListener('click', () => void this.loadHistory());
    window.addEventListener('message', (event) => this.onWindowMessage(event));
    window.setInterval(() => this.tick(), 1000);
    this.scheduleRenewal();
    this.stream.start();
  }

  private setExtension(extension: string): void {
    if (this.extension !== undefined) return;
    this.extension = extension;
    sessionStorage.setItem(STORAGE.extension, extension);
    this.extensionLabel.textContent = extension;
    document.title = `Operator ${extension}: console`;
    this.statusSelect.disabled = false;
    for (const button of this.dialForm.querySelectorAll('button')) button.disabled = false;
    void this.loadPresence();
    void this.loadHistory();
  }

  // --- the stream -------------------------------------------------------------------------

  private onStatus(status: StreamStatus): void {
    const text: Record<StreamStatus['kind'], string> = {
      connecting: 'Connecting…',
      live: 'Connected: calls appear here as they ring.',
      waiting: 'Connection lost: reconnecting…',
      offline: 'Offline: reconnecting when the network is back…',
      expired: 'Session expired: renewing…',
      refused: 'The engine refused this console link: open the console again from the CRM.',
    };
    this.connection.textContent = text[status.kind];
    this.connection.dataset.state = status.kind;
    if (status.kind === 'live' && this.extension) void this.loadPresence();
    if (status.kind === 'expired') {
      const giveUp = (): void => {
        if (this.connection.dataset.state === 'expired')
          this.connection.textContent = 'Session expired: open the console again from the CRM.';
      };
      // The CRM window gets a while to answer with a new token.
      if (this.requestToken()) window.setTimeout(giveUp, 15_000);
      else giveUp();
    }
  }

  private onMessage(message: StreamMessage): void {
    if (message.cursor !== undefined) sessionStorage.setItem(STORAGE.cursor, message.cursor);
    if (message.type === 'stream.welcome' || message.type === 'stream.renewed') {
      if (message.extension) this.setExtension(message.extension);
      const expiry = Date.parse(message.expiresAt ?? '');
      if (Number.isFinite(expiry)) {
        this.setExpiry(expiry);
        // What the engine holds the session to (the token renewal is confirmed).
        this.connection.dataset.expiresAt = new Date(expiry).toISOString();
      }
      return;
    }
    const data = message.data ?? {};
    const extension = str(data.extension);
    if (!this.extension && extension && message.type !== 'call.transferred')
      this.setExtension(extension);
    const mine = extension === undefined || extension === this.extension;
    const callId = message.callId ?? str(data.callId);
    switch (message.type) {
      case 'operator.state':
        if (mine) {
          this.presenceMessages += 1;
          this.showPresence(data);
        }
        if (mine && data.state === 'on_call') this.pickedUp(str(data.callId));
        break;
      case 'call.ringing':
        if (callId && mine) this.ringing(callId, data);
        break;
      case 'call.answered':
        if (!callId) break;
        if (mine) this.answered(callId, message.occurredAt);
        else this.removeCard(callId); // a colleague of the group answered
        break;
      case 'call.transferred':
        // Transferred to this operator: their `call.ringing` follows. Away: the card goes.
        if (callId && !(data.kind === 'extension' && data.to === this.extension))
          this.removeCard(callId);
        break;
      case 'call.ended':
        if (callId) this.removeCard(callId);
        this.historySoon();
        break;
    }
  }

  // --- calls ------------------------------------------------------------------------------

  private ringing(callId: string, data: Record<string, unknown>): void {
    const from = str(data.from) ?? '';
    const to = str(data.to) ?? '';
    const outgoing = from === this.extension;
    const customer = (data.customer ?? {}) as Record<string, unknown>;
    const link = safeLink(customer.link);
    const customerName = str(customer.name);
    const existing = this.cards.get(callId);
    const card: CallCard = {
      callId,
      phase: 'ringing',
      number: outgoing ? to : from,
      outgoing,
      ...(customerName ? { customerName } : {}),
      ...(link ? { link } : {}),
      element: existing?.element ?? el('article', undefined, { class: 'call-card' }),
    };
    this.cards.set(callId, card);
    this.renderCard(card);
  }

  private answered(callId: string, occurredAt?: string): void {
    const card = this.cards.get(callId);
    if (!card) return; // answered elsewhere before this console saw it ring
    card.phase = 'on_call';
    const at = Date.parse(occurredAt ?? '');
    card.answeredAt = Number.isFinite(at) ? Math.min(at, Date.now()) : Date.now();
    this.renderCard(card);
  }

  /** The operator's phone went off hook for a click-to-call: now the customer's phone rings. */
  private pickedUp(callId: string | undefined): void {
    const card = callId === undefined ? undefined : this.cards.get(callId);
    if (!card || !card.outgoing || card.phase !== 'ringing') return;
    card.phase = 'dialing';
    this.renderCard(card);
  }

  private removeCard(callId: string): void {
    const card = this.cards.get(callId);
    if (!card) return;
    this.cards.delete(callId);
    card.element.remove();
    this.noCall.hidden = this.cards.size > 0;
    this.saveCards();
  }

  /**
   * The cards shown are kept in sessionStorage with the cursor: after a refresh the stream
   * resumes after that cursor (it sends only what came since), so the cards come back from here.
   */
  private saveCards(): void {
    const saved = [...this.cards.values()].map(({ element: _element, ...card }) => card);
    sessionStorage.setItem(STORAGE.cards, JSON.stringify(saved));
  }

  private restoreCards(): void {
    let saved: unknown;
    try {
      saved = JSON.parse(sessionStorage.getItem(STORAGE.cards) ?? '[]');
    } catch {
      saved = [];
    }
    if (!Array.isArray(saved)) return;
    for (const item of saved as Array<Omit<CallCard, 'element'>>) {
      if (typeof item?.callId !== 'string') continue;
      const card: CallCard = { ...item, element: el('article') };
      this.cards.set(card.callId, card);
      this.renderCard(card);
    }
  }

  private renderCard(card: CallCard): void {
    const { element } = card;
    const titleId = `call-${card.callId}-title`;
    element.className = `call-card ${card.phase.replace('_', '-')}`;
    element.dataset.callId = card.callId;
    element.dataset.phase = card.phase;
    element.setAttribute('aria-labelledby', titleId);
    const title = {
      on_call: 'On call',
      dialing: 'Calling the customer…',
      ringing: card.outgoing ? 'Your phone is ringing: pick up to call' : 'Incoming call',
    }[card.phase];
    const details = el('dl');
    details.append(el('dt', 'Number'), el('dd', card.number || 'unknown', { class: 'number' }));
    details.append(
      el('dt', 'Customer'),
      el('dd', card.customerName ?? 'not known to the CRM', { class: 'customer' }),
    );
    const parts: HTMLElement[] = [el('h3', title, { id: titleId }), details];
    if (card.link) {
      const link = el('a', 'Open in CRM', {
        href: card.link,
        target: '_blank',
        rel: 'noopener noreferrer',
        class: 'crm-link',
      });
      const p = el('p');
      p.append(link);
      parts.push(p);
    }
    if (card.phase === 'on_call') {
      const timer = el('p', 'Talking ');
      timer.append(el('span', this.talkTime(card), { role: 'timer', class: 'talk-timer' }));
      parts.push(timer);
    }
    element.replaceChildren(...parts);
    if (!element.isConnected) this.cardList.append(element);
    this.noCall.hidden = true;
    this.saveCards();
  }

  private talkTime(card: CallCard): string {
    return duration(((Date.now() - (card.answeredAt ?? Date.now())) / 1000) | 0);
  }

  private tick(): void {
    for (const card of this.cards.values()) {
      if (card.phase !== 'on_call') continue;
      const timer = card.element.querySelector('.talk-timer');
      if (timer) timer.textContent = this.talkTime(card);
    }
  }

  private async dial(): Promise<void> {
    const number = this.dialNumber.value.trim();
    if (!this.extension || !number) return;
    this.dialMessage.textContent = 'Calling…';
    try {
      await this.api.call(this.extension, number);
      this.dialMessage.textContent = `Your phone rings first; pick it up to call ${number}.`;
      this.dialNumber.value = '';
    } catch (err) {
      this.dialMessage.textContent = `Could not call: ${errorText(err)}`;
    }
  }

  // --- presence ---------------------------------------------------------------------------

  private async loadPresence(): Promise<void> {
    if (!this.extension) return;
    const extension = this.extension;
    try {
      // (The cards come from the stream only: opened while the phone rings, its snapshot of the
      // calls in progress shows the call; a card from a second source could outlive its call.)
      await this.showAnswer(() => this.api.operator(extension));
    } catch (err) {
      this.statusMessage.textContent = `Could not read the state: ${errorText(err)}`;
    }
  }

  /**
   * Show the operator view a request answers, unless an `operator.state` came over the stream
   * while it was out: the answer may be older than that message (read before the phone rang),
   * and the stream brings every later change.
   */
  private async showAnswer(request: () => Promise<OperatorView>): Promise<void> {
    const seen = this.presenceMessages;
    const view = await request();
    if (this.presenceMessages === seen) this.showPresence(view);
  }

  private showPresence(view: Partial<OperatorView> | Record<string, unknown>): void {
    const operator = {
      state: str(view.state),
      status: str(view.status),
      since: str(view.since),
    };
    if (operator.state) {
      this.phoneState.textContent = STATE_TEXT[operator.state] ?? operator.state;
      this.phoneState.dataset.state = operator.state;
    }
    const since = Date.parse(operator.since ?? '');
    this.phoneSince.textContent = Number.isFinite(since)
      ? `since ${new Date(since).toLocaleTimeString()}`
      : '';
    if (operator.status && document.activeElement !== this.statusSelect)
      this.statusSelect.value = operator.status;
  }

  private async changeStatus(): Promise<void> {
    if (!this.extension) return;
    const status = this.statusSelect.value;
    this.statusMessage.textContent = 'Saving…';
    try {
      const extension = this.extension;
      await this.showAnswer(() => this.api.setStatus(extension, status));
      this.statusMessage.textContent = 'Status saved.';
    } catch (err) {
      this.statusMessage.textContent = `Could not change the status: ${errorText(err)}`;
      void this.loadPresence();
    }
  }

  // --- recent calls -----------------------------------------------------------------------

  /** Reload the history shortly (several calls may end at once). */
  private historySoon(): void {
    window.clearTimeout(this.historyPending);
    this.historyPending = window.setTimeout(() => void this.loadHistory(), 300);
  }

  private async loadHistory(): Promise<void> {
    if (!this.extension) return;
    try {
      const calls = await this.api.recentCalls(this.extension, HISTORY_SIZE);
      this.historyBody.replaceChildren(...calls.map((call) => this.historyRow(call)));
      this.historyMessage.textContent = calls.length === 0 ? 'No calls yet.' : '';
    } catch (err) {
      this.historyMessage.textContent = `Could not load the recent calls: ${errorText(err)}`;
    }
  }

  private historyRow(call: CallView): HTMLTableRowElement {
    const row = el('tr', undefined, { 'data-call-id': call.id });
    const started = new Date(call.startedAt);
    const when = el('time', started.toLocaleString(), { datetime: call.startedAt });
    const whenCell = el('td');
    whenCell.append(when);
    const recording = el('td');
    const url = call.recording?.url;
    if (url && (call.recording?.status === undefined || call.recording.status === 'stored')) {
      recording.append(
        el('audio', undefined, {
          controls: '',
          preload: 'none',
          src: sameOrigin(url),
          'aria-label': `Recording of the call with ${call.direction === 'in' ? call.from : call.to}`,
        }),
      );
    } else recording.textContent = call.recording ? 'not ready' : '—';
    row.append(
      whenCell,
      el('td', call.direction === 'in' ? 'In' : 'Out'),
      el('td', call.direction === 'in' ? call.from : call.to),
      el('td', call.customer?.name ?? ''),
      el('td', call.disposition ? (OUTCOME_TEXT[call.disposition] ?? call.disposition) : 'live'),
      el('td', duration(call.talkSec)),
      recording,
    );
    return row;
  }

  // --- token renewal ----------------------------------------------------------------------

  private setExpiry(expiresAt: number): void {
    this.expiresAt = expiresAt;
    sessionStorage.setItem(STORAGE.expiresAt, new Date(expiresAt).toISOString());
    this.scheduleRenewal();
  }

  private scheduleRenewal(): void {
    window.clearTimeout(this.renewTimer);
    if (this.expiresAt === undefined) return;
    const inMs = Math.max(0, this.expiresAt - RENEW_AHEAD_MS - Date.now());
    this.renewTimer = window.setTimeout(() => this.requestToken(), inMs);
  }

  /** Ask the CRM window (opener or embedding page) for a new token; false when there is none. */
  private requestToken(): boolean {
    const crm = crmWindow();
    if (!crm) return false;
    crm.postMessage({ type: 'ari-crm:token-request', extension: this.extension }, '*');
    return true;
  }

  private onWindowMessage(event: MessageEvent): void {
    // Only the CRM's window may hand a token: the one that opened or embeds this page.
    const crm = crmWindow();
    if (!crm || event.source !== crm) return;
    const data = event.data as { type?: unknown; token?: unknown; expiresAt?: unknown };
    if (data?.type !== 'ari-crm:token' || typeof data.token !== 'string' || !data.token) return;
    this.token = data.token;
    sessionStorage.setItem(STORAGE.token, data.token);
    const expiry = Date.parse(str(data.expiresAt) ?? '');
    if (Number.isFinite(expiry)) this.setExpiry(expiry);
    this.stream.renew(data.token);
  }
}

/** The CRM's window: the one that opened this page, or the page it is embedded in. */
function crmWindow(): Window | undefined {
  const opener = window.opener as Window | null;
  if (opener) return opener;
  return window.parent !== window ? window.parent : undefined;
}

function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message || err.code;
  if (err instanceof TypeError) return 'the engine cannot be reached';
  return err instanceof Error ? err.message : String(err);
}

const credentials = takeCredentials();
if (credentials.token) new Console({ ...credentials, token: credentials.token }).start();
else
  byId('connection').textContent =
    'No operator token: open the console from the CRM (the link carries a token).';
