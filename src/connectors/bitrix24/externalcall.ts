/**
 * The `telephony.externalcall.*` requests of a call, as the event translation (./call-events.ts)
 * returns them for the delivery: what each method sends. Every request is tied to its call
 * (./rest-client.ts `callRequest`): all but `register` get the call's `CALL_ID` when sent, and
 * each answer updates the call's state (./call-state.ts).
 *
 * - `register`: `EXTERNAL_CALL_ID` = the engine's call id, `TYPE` (./mapping.ts), the start time,
 *   BITRIX24_CRM_CREATE, `SHOW`, the line (DID) and the CRM entity when known;
 * - `show` / `hide`: one user's call card;
 * - `finish`: `DURATION` = talk seconds, `STATUS_CODE` from the disposition (./mapping.ts),
 *   BITRIX24_ADD_TO_CHAT;
 * - `attachRecord`: `RECORD_URL` = the signed recording link.
 */
import type { EventDisposition } from '../../events/types.ts';
import type { VendorRequest } from '../types.ts';
import { bitrix24Date, CALL_TYPE, STATUS_CODE } from './mapping.ts';
import type { Bitrix24RestClient } from './rest-client.ts';

/** What `telephony.externalcall.register` is given. */
export interface RegisterParams {
  /** Who the call is registered to: `USER_ID`, or `USER_PHONE_INNER` (./users.ts `userOf`). */
  user: Record<string, string>;
  /** The other party's number. */
  phone: string;
  direction: 'in' | 'out';
  /** ISO 8601. */
  startedAt: string;
  /** `LINE_NUMBER`: the DID of an inbound call. */
  line?: string;
  /** `CRM_ENTITY_TYPE` / `CRM_ENTITY_ID`: the route lookup's entity. */
  entity?: { type: string; id: string };
  /** `SHOW`: pop the card at once. */
  show: boolean;
}

/** Options of {@link createExternalCallRequests}. */
export interface ExternalCallOptions {
  /** Ties a request to its call (./rest-client.ts). */
  callRequest: Bitrix24RestClient['callRequest'];
  /** BITRIX24_CRM_CREATE. */
  crmCreate: boolean;
  /** BITRIX24_ADD_TO_CHAT. */
  addToChat: boolean;
}

/** The requests of call `callId` (see the module comment). */
export interface ExternalCallRequests {
  readonly register: (callId: string, params: RegisterParams) => VendorRequest;
  readonly show: (callId: string, userId: string) => VendorRequest;
  readonly hide: (callId: string, userId: string) => VendorRequest;
  /** `user`: who finishes the call (`USER_ID` or `USER_PHONE_INNER`). */
  readonly finish: (
    callId: string,
    user: Record<string, string>,
    talkSec: number,
    disposition: EventDisposition,
  ) => VendorRequest;
  /** `format`: the recording's file extension (`FILENAME` = `<call id>.<format>`). */
  readonly attachRecord: (callId: string, format: string, recordingUrl: string) => VendorRequest;
}

/** Create the request builders (see the module comment). */
export function createExternalCallRequests(options: ExternalCallOptions): ExternalCallRequests {
  const { callRequest } = options;
  return {
    register: (callId, params) =>
      callRequest(
        callId,
        'telephony.externalcall.register',
        {
          ...params.user,
          PHONE_NUMBER: params.phone,
          TYPE: CALL_TYPE[params.direction],
          CALL_START_DATE: bitrix24Date(params.startedAt),
          CRM_CREATE: options.crmCreate,
          SHOW: params.show,
          ...(params.line ? { LINE_NUMBER: params.line } : {}),
          ...(params.entity
            ? { CRM_ENTITY_TYPE: params.entity.type, CRM_ENTITY_ID: params.entity.id }
            : {}),
          EXTERNAL_CALL_ID: callId,
        },
        'register',
        params.user,
      ),
    show: (callId, userId) =>
      callRequest(callId, 'telephony.externalcall.show', { USER_ID: userId }, 'show', {
        USER_ID: userId,
      }),
    hide: (callId, userId) =>
      callRequest(callId, 'telephony.externalcall.hide', { USER_ID: userId }, 'hide', {
        USER_ID: userId,
      }),
    finish: (callId, user, talkSec, disposition) =>
      callRequest(
        callId,
        'telephony.externalcall.finish',
        {
          ...user,
          DURATION: talkSec,
          STATUS_CODE: STATUS_CODE[disposition],
          ADD_TO_CHAT: options.addToChat,
        },
        'finish',
      ),
    attachRecord: (callId, format, recordingUrl) =>
      callRequest(
        callId,
        'telephony.externalcall.attachRecord',
        { FILENAME: `${callId}.${format}`, RECORD_URL: recordingUrl },
        'attach',
      ),
  };
}
