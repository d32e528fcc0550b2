/**
 * The Bitrix24 translation of a call's lifecycle events: which `telephony.externalcall.*`
 * requests (./externalcall.ts) each event makes, given the call's Bitrix24 state
 * (./call-state.ts) and its stored record.
 *
 * - `call.started`: an outbound call is registered (`TYPE` 1) to the operator who calls; an
 *   inbound one only notes its direction. A click-to-call Bitrix24 asked for
 *   (`ONEXTERNALCALLSTART`, ./routes.ts) carries its `CALL_ID` in the call's variables and is
 *   not registered again;
 * - `call.ringing` (inbound): the first operator's phone ringing registers the call (`TYPE` 2,
 *   `SHOW` 0, `LINE_NUMBER` = the DID, the entity of the route lookup); each operator whose
 *   phone rings gets `show`, each whose phone stopped ringing `hide`;
 * - `call.answered` (inbound): `hide` for everyone but who answered;
 * - `call.ended`: a call never registered (nobody's phone rang, or the register was refused) is
 *   registered now so it is listed; `hide` for every card still shown but the finisher's, then
 *   `finish`;
 * - `recording.ready`: `attachRecord`.
 */
import type { LifecycleEvent } from '../../events/types.ts';
import type { Logger } from '../../logging/logger.ts';
import type { CallRecord, CallRepository } from '../../store/index.ts';
import type { ExtensionDirectory } from '../extensions.ts';
import type { EventTranslation, VendorRequest } from '../types.ts';
import type { Bitrix24CallStates } from './call-state.ts';
import type { ExternalCallRequests } from './externalcall.ts';
import { userOf as directoryUserOf } from './users.ts';

/** Options of {@link createCallEventTranslation}. */
export interface CallEventOptions {
  /** The calls' Bitrix24 state. */
  states: Bitrix24CallStates;
  /** The request builders. */
  requests: ExternalCallRequests;
  /** Employee ↔ extension. */
  directory: ExtensionDirectory;
  /** Stored calls (start time, legs). */
  calls: Pick<CallRepository, 'getCall'>;
  /** BITRIX24_DEFAULT_USER_ID: who a call nobody took is registered to and finished by. */
  defaultUserId: string;
  logger: Logger;
}

/** The connector's `translate` (see the module comment). Throws the store's error. */
export function createCallEventTranslation(
  options: CallEventOptions,
): (event: LifecycleEvent) => Promise<EventTranslation> {
  const { states, directory, logger } = options;
  const { register, show, hide } = options.requests;
  const userOf = (extension: string): Record<string, string> =>
    directoryUserOf(directory, extension);

  return async function translate(event: LifecycleEvent): Promise<EventTranslation> {
    const id = event.callId;
    switch (event.type) {
      case 'call.started': {
        const { direction } = event.data;
        const state = (await states.get(id)) ?? { showing: [] };
        const given = event.data.variables?.bitrix24CallId;
        if (direction === 'out' && given && !state.callId) {
          // A click-to-call Bitrix24 asked for: it registered the call itself.
          await states.save(id, {
            ...state,
            direction,
            callId: given,
            user: userOf(event.data.from),
          });
          return [];
        }
        if (state.direction !== direction) await states.save(id, { ...state, direction });
        if (direction === 'in' || state.callId) return [];
        return [
          register(id, {
            user: userOf(event.data.from),
            phone: event.data.to,
            direction: 'out',
            startedAt: event.occurredAt,
            show: true,
          }),
        ];
      }
      case 'call.ringing': {
        const state = await states.get(id);
        const record = await options.calls.getCall(id);
        const direction = state?.direction ?? record?.direction;
        if (direction !== 'in') return [];
        const requests: VendorRequest[] = [];
        const ext = event.data.extension;
        if (!state?.callId)
          requests.push(
            register(id, {
              user: userOf(ext),
              phone: event.data.from,
              direction: 'in',
              startedAt: record?.startedAt ?? event.occurredAt,
              line: event.data.to,
              ...entityOf(event.data.customer?.link),
              show: false,
            }),
          );
        const stopped = stoppedRinging(record);
        for (const userId of state?.showing ?? []) {
          const shownExt = directory.extensionOf(userId);
          if (shownExt !== undefined && shownExt !== ext && stopped.has(shownExt))
            requests.push(hide(id, userId));
        }
        const userId = directory.userOf(ext);
        if (userId === undefined)
          logger.warn(
            'Bitrix24: no user has this internal number (UF_PHONE_INNER); no card shown',
            {
              callId: id,
              extension: ext,
            },
          );
        else if (!state?.showing.includes(userId)) requests.push(show(id, userId));
        return requests;
      }
      case 'call.answered': {
        const state = await states.get(id);
        if (state?.direction !== 'in' || !state.callId) return [];
        const answerer = directory.userOf(event.data.extension);
        return state.showing.filter((u) => u !== answerer).map((u) => hide(id, u));
      }
      case 'call.ended': {
        const data = event.data;
        const state = await states.get(id);
        const requests: VendorRequest[] = [];
        let registeredTo = state?.user;
        if (!state?.callId) {
          // Nobody's phone rang (or the register was refused): register it now so it is listed.
          const record = await options.calls.getCall(id);
          const firstExt =
            data.direction === 'out'
              ? data.from
              : (data.answeredBy ?? record?.legs.find((l) => l.role === 'operator')?.extension);
          registeredTo = firstExt ? userOf(firstExt) : { USER_ID: options.defaultUserId };
          requests.push(
            register(id, {
              user: registeredTo,
              phone: data.direction === 'in' ? data.from : data.to,
              direction: data.direction,
              startedAt: data.startedAt,
              ...(data.direction === 'in' && (data.did ?? data.to)
                ? { line: data.did ?? data.to }
                : {}),
              show: false,
            }),
          );
        }
        const own = data.answeredBy ?? (data.direction === 'out' ? data.from : undefined);
        const finishUser =
          own !== undefined ? userOf(own) : (registeredTo ?? { USER_ID: options.defaultUserId });
        for (const userId of state?.showing ?? [])
          if (userId !== finishUser.USER_ID) requests.push(hide(id, userId));
        requests.push(options.requests.finish(id, finishUser, data.talkSec, data.disposition));
        return requests;
      }
      case 'recording.ready':
        return [options.requests.attachRecord(id, event.data.format, event.data.recordingUrl)];
      default:
        return [];
    }
  };
}

/** The call's operators (extensions) whose phone no longer rings: every operator leg ended. */
function stoppedRinging(record: CallRecord | undefined): Set<string> {
  const live = new Set<string>();
  const ended = new Set<string>();
  for (const leg of record?.legs ?? []) {
    if (leg.role !== 'operator' || !leg.extension) continue;
    // A leg that stopped ringing has ended, or has an outcome other than answered.
    const over =
      leg.endedAt !== undefined || (leg.outcome !== undefined && leg.outcome !== 'answered');
    (over ? ended : live).add(leg.extension);
  }
  for (const ext of live) ended.delete(ext);
  return ended;
}

/** `CRM_ENTITY_TYPE` / `_ID` of a card link `<portal>/crm/<type>/details/<id>/`. */
function entityOf(link: string | undefined): { entity?: { type: string; id: string } } {
  const match = link ? /\/crm\/(contact|company|lead)\/details\/(\d+)\/?$/.exec(link) : null;
  return match ? { entity: { type: match[1]!.toUpperCase(), id: match[2]! } } : {};
}
