/**
 * What the Bitrix24 connector keeps per call: Bitrix24's `CALL_ID`, the direction, whose card is
 * shown, who the call was registered to. Held in memory and in the connector state
 * (`call:<engine call id>`, kept {@link CALL_STATE_DAYS} days: a recording may be attached until
 * then), so the call's later requests find it after a restart; and what an answered request of
 * a call changes in it ({@link Bitrix24CallStates.recordAnswer}).
 */
import type { Logger } from '../../logging/logger.ts';
import type { ConnectorStateRepository } from '../../store/connector-state.ts';
import { dig, scalar } from '../read.ts';

/** What the connector keeps per call (connector state `call:<engine call id>`). */
export interface CallState {
  /** Bitrix24's CALL_ID, once registered (or given by ONEXTERNALCALLSTART). */
  callId?: string;
  direction?: 'in' | 'out';
  /** Bitrix24 user ids whose card is shown (show sent, hide not yet). */
  showing: string[];
  /** Who the call was registered to (the finish of an unanswered call). */
  user?: Record<string, string>;
}

/** What a request of a call does to its state once answered. */
export interface RequestMeta {
  callId: string;
  action: 'register' | 'show' | 'hide' | 'finish' | 'attach';
  /** The user shown / hidden, or registered to. */
  user?: Record<string, string>;
  /** `CALL_ID` is filled in from the state when sent. */
  needsCallId: boolean;
}

/** Days a call's Bitrix24 state is kept (a recording may be attached until then). */
export const CALL_STATE_DAYS = 7;

/** The calls' Bitrix24 state: a cache in front of the connector state (see the module comment). */
export class Bitrix24CallStates {
  private readonly cache = new Map<string, CallState>();

  /** `state`: the connector state, read lazily (the store opens after the connector is built). */
  constructor(private readonly state: () => ConnectorStateRepository | undefined) {}

  /** A call's state, if any. Throws the store's error. */
  async get(callId: string): Promise<CallState | undefined> {
    const cached = this.cache.get(callId);
    if (cached) return cached;
    const stored = await this.state()?.get<CallState>(`call:${callId}`);
    if (stored) this.cache.set(callId, stored);
    return stored;
  }

  /** Keep a call's state (memory and store). Throws the store's error. */
  async save(callId: string, state: CallState): Promise<void> {
    this.cache.set(callId, state);
    await this.state()?.set(`call:${callId}`, state);
  }

  /**
   * Record what an answered call request changed (`register`: the returned `CALL_ID`; `show` /
   * `hide`: whose card is shown; `finish`: nobody's, and the call leaves the memory); a problem
   * text when the answer is unusable. Throws the store's error.
   */
  async recordAnswer(
    meta: RequestMeta,
    before: CallState | undefined,
    json: unknown,
  ): Promise<string | undefined> {
    const state: CallState = { ...before, showing: [...(before?.showing ?? [])] };
    switch (meta.action) {
      case 'register': {
        const callId = scalar(dig(json, ['result', 'CALL_ID']));
        if (!callId) return 'telephony.externalcall.register answered without a CALL_ID';
        state.callId = callId;
        if (meta.user) state.user = meta.user;
        break;
      }
      case 'show':
        if (meta.user?.USER_ID && !state.showing.includes(meta.user.USER_ID))
          state.showing.push(meta.user.USER_ID);
        break;
      case 'hide':
        state.showing = state.showing.filter((u) => u !== meta.user?.USER_ID);
        break;
      case 'finish':
        state.showing = [];
        break;
      case 'attach':
        return undefined;
    }
    await this.save(meta.callId, state);
    if (meta.action === 'finish') this.cache.delete(meta.callId);
    return undefined;
  }

  /**
   * Delete the stored states older than {@link CALL_STATE_DAYS}, in the background (a failure is
   * logged).
   */
  purgeOld(logger: Logger): void {
    const state = this.state();
    if (state)
      state
        .purge('call:', new Date(Date.now() - CALL_STATE_DAYS * 86_400_000))
        .catch((err: unknown) => logger.warn('purging old Bitrix24 call state failed', { err }));
  }
}
