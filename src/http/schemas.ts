/**
 * zod schemas of what the API answers and of the webhook payloads, for the OpenAPI document
 * (`GET /openapi.json`). Each is checked at compile time against the TypeScript type it
 * describes (`CallSnapshot`, `CurrentCall`, the event types of `src/events/types.ts`), so the
 * document cannot drift from the code; a test also validates real webhook bodies against them.
 */
import { z } from 'zod';
import type { CurrentCall } from '../calls/control.ts';
import type { CallSnapshot } from '../calls/model.ts';
import type {
  CallAnsweredData,
  CallEndedData,
  CallRingingData,
  CallStartedData,
  CallRecoveredData,
  CallTransferFailedData,
  CallTransferredData,
  LifecycleEvent,
  RecordingReadyData,
  AutocallAttemptData,
  AutocallFinishedData,
  OperatorStateData,
} from '../events/types.ts';

/** True when A and B are assignable to each other. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compile-time assertion. */
type Assert<T extends true> = T;

const isoTime = z.string().describe('ISO 8601 UTC, e.g. 2025-01-31T09:15:02.123Z');
const seconds = z.int().min(0);
const direction = z.enum(['in', 'out']);
const disposition = z.enum(['answered', 'busy', 'no_answer', 'canceled', 'failed']);
const hangupBy = z.enum(['caller', 'operator', 'customer', 'system']);
const customer = z.object({
  id: z.string().optional().describe("The CRM's id of the customer."),
  link: z
    .string()
    .optional()
    .describe(
      "The customer's page in the CRM (http(s) URL), from the route answer or a CRM connector's lookup.",
    ),
  name: z.string().optional().describe('Customer name.'),
});
const variables = z
  .record(z.string(), z.string())
  .describe('CRM variables that travel with the call (click-to-call).');

/** Live state of a call (`CallState`). */
export const callStateSchema = z
  .enum([
    'routing',
    'greeting',
    'dialing_operator',
    'operator_ringing',
    'dialing_customer',
    'customer_ringing',
    'bridged',
    'ended',
  ])
  .describe(
    'routing (asking the CRM), greeting (a greeting or the CRM call script plays, no operator ringing), dialing_operator, operator_ringing, dialing_customer, customer_ringing, bridged, ended.',
  );

/** `CallSnapshot`: a call as `GET /v1/calls/{id}` shows it. */
export const callSnapshotSchema = z.object({
  id: z.string().describe('Engine call id (UUID).'),
  direction,
  state: callStateSchema,
  from: z
    .string()
    .describe("Caller: the customer's number (in) or the operator's extension (out)."),
  to: z.string().describe("Called: the DID (in) or the customer's number in E.164 (out)."),
  did: z.string().optional(),
  customer: customer.optional(),
  answeredBy: z
    .string()
    .optional()
    .describe(
      'Extension of the operator who answered or placed it; after a blind transfer, the operator who took it over.',
    ),
  disposition: disposition.optional().describe('Final outcome, once ended.'),
  hangupBy: hangupBy.optional(),
  endReason: z
    .string()
    .optional()
    .describe(
      'Why it ended when not by a party, e.g. operator_unreachable, transferred, api_hangup.',
    ),
  variables: variables.optional(),
  startedAt: isoTime,
  answeredAt: isoTime.optional(),
  endedAt: isoTime.optional(),
  waitSec: seconds.describe('Ring time before the answer (or until now / the end), whole seconds.'),
  talkSec: seconds.describe('Talk time from the answer, whole seconds; 0 when unanswered.'),
  transfer: z
    .object({
      kind: z.literal('extension'),
      to: z.string().describe('The extension being rung.'),
      state: z.literal('ringing'),
      startedAt: isoTime.describe('When the transfer was asked for.'),
    })
    .optional()
    .describe(
      'Present while a blind transfer to an extension rings its target; the customer still talks with the first operator (answeredBy) meanwhile.',
    ),
  legs: z
    .array(
      z.object({
        channelId: z.string().describe('Asterisk channel id (UniqueID).'),
        role: z.enum(['caller', 'operator', 'customer']),
        extension: z.string().optional(),
        endpoint: z.string().optional().describe('Dial string, e.g. PJSIP/101.'),
        outcome: z
          .enum(['answered', 'busy', 'no_answer', 'unavailable', 'canceled', 'failed'])
          .optional(),
        cause: z.int().optional().describe('Q.850 hang-up cause.'),
        causeText: z.string().optional(),
      }),
    )
    .describe('The channels of the call.'),
});
type _CallSnapshotMatches = Assert<Same<z.infer<typeof callSnapshotSchema>, CallSnapshot>>;

/** `202` answer of `POST /v1/calls`: the new call plus `status: accepted`. */
export const acceptedCallSchema = callSnapshotSchema.extend({
  status: z.literal('accepted').describe('The call was accepted and is being placed.'),
});

/** `CurrentCall`: what an operator is on now. */
export const currentCallSchema = z.object({
  callId: z.string().describe('Engine call id.'),
  customerChannelId: z
    .string()
    .describe(
      "Asterisk UniqueID of the customer's channel (the UniqueID the asterisk.fcgi daemon answered); empty while a click-to-call still rings the operator.",
    ),
  callerId: z
    .object({ number: z.string(), name: z.string() })
    .describe("The customer's caller ID."),
  direction,
  state: callStateSchema,
});
type _CurrentCallMatches = Assert<Same<z.infer<typeof currentCallSchema>, CurrentCall>>;

/** Every error answer. */
export const errorSchema = z.object({
  code: z.string().describe('Machine-readable code, e.g. invalid_number, rate_limited.'),
  message: z.string().describe('Human-readable explanation.'),
  field: z.string().optional().describe('The request field at fault (validation errors).'),
});

// ---------------------------------------------------------------------------------------------
// Webhooks (src/events/types.ts)
// ---------------------------------------------------------------------------------------------

const callStartedData = z.object({
  direction,
  from: z.string(),
  to: z.string(),
  did: z.string().optional(),
  customer: customer.optional(),
  variables: variables.optional(),
});
type _StartedMatches = Assert<Same<z.infer<typeof callStartedData>, CallStartedData>>;

const callRingingData = z.object({
  extension: z.string().describe('The ringing operator (screen pop).'),
  from: z.string(),
  to: z.string(),
  customer: customer
    .optional()
    .describe(
      'The customer card (name, CRM id, link to their page in the CRM) when the route lookup recognised the caller.',
    ),
});
type _RingingMatches = Assert<Same<z.infer<typeof callRingingData>, CallRingingData>>;

const callAnsweredData = z.object({ extension: z.string(), waitSec: seconds });
type _AnsweredMatches = Assert<Same<z.infer<typeof callAnsweredData>, CallAnsweredData>>;

const callTransferredData = z.object({
  to: z.string().describe('Service number or extension.'),
  kind: z.enum(['service', 'extension']),
});
type _TransferredMatches = Assert<Same<z.infer<typeof callTransferredData>, CallTransferredData>>;

const callTransferFailedData = z.object({
  to: z.string().describe('The extension the call was to go to.'),
  kind: z.literal('extension'),
  dialStatus: z
    .enum(['busy', 'no_answer', 'unavailable', 'failed'])
    .describe(
      "How the target's leg ended: busy (busy or declined), no_answer (rang until the ring timeout), unavailable (offline, no route), failed.",
    ),
  cause: z.int().optional().describe("Q.850 hang-up cause of the target's channel."),
  causeText: z.string().optional(),
});
type _TransferFailedMatches = Assert<
  Same<z.infer<typeof callTransferFailedData>, CallTransferFailedData>
>;

const callRecoveredData = z.object({
  reason: z
    .enum(['ari_reconnect', 'engine_restart'])
    .describe('The ARI WebSocket came back, or the engine restarted and adopted the call.'),
  state: callStateSchema
    .exclude(['ended'])
    .describe("The call's state after reconciliation (never `ended`)."),
  answeredBy: z.string().optional().describe('The operator on the call, when answered.'),
  outageSec: seconds.describe('How long the engine could not see the call, seconds.'),
});
type _RecoveredMatches = Assert<Same<z.infer<typeof callRecoveredData>, CallRecoveredData>>;

const callEndedData = z.object({
  direction,
  from: z.string(),
  to: z.string(),
  did: z.string().optional(),
  answeredBy: z.string().optional(),
  disposition,
  startedAt: isoTime,
  answeredAt: isoTime.optional(),
  endedAt: isoTime,
  waitSec: seconds,
  talkSec: seconds,
  hangupBy: hangupBy.optional(),
  endReason: z
    .string()
    .optional()
    .describe(
      'Why it ended when not simply by a party hanging up, e.g. transferred, operator_unreachable, nobody_answered, api_hangup, script_hangup, reconciled.',
    ),
  recordingUrl: z.string().optional(),
});
type _EndedMatches = Assert<Same<z.infer<typeof callEndedData>, CallEndedData>>;

const recordingReadyData = z.object({
  recordingUrl: z
    .string()
    .describe(
      'Signed link GET /v1/calls/{id}/recording?expires=<unix s>&sig=<hex>: plays without an API key (HTTP Range) until expiresAt.',
    ),
  expiresAt: isoTime.describe('When recordingUrl stops working, ISO 8601 UTC.'),
  bytes: z.int().min(0).describe('File size, bytes.'),
  durationSec: seconds.describe('Audio length, whole seconds.'),
  format: z.literal('wav').describe('RIFF PCM 8 kHz 16-bit mono, served as audio/wav.'),
});
type _RecordingReadyMatches = Assert<Same<z.infer<typeof recordingReadyData>, RecordingReadyData>>;

const autocallAttemptData = z.object({
  jobId: z
    .int()
    .min(1)
    .describe('The notification call (job) id; also the asterisk.fcgi AutoCallID.'),
  campaignId: z.int().min(1).optional(),
  to: z.string().describe('Customer number, E.164.'),
  attempt: z.int().min(1).describe('1-based attempt number.'),
  startedAt: isoTime,
  endedAt: isoTime,
  dialStatus: z
    .string()
    .describe(
      'Asterisk dial status: ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL or FAILED.',
    ),
  cause: z.int().optional().describe('Q.850 hang-up cause, when known.'),
  causeText: z.string().optional(),
  answeredAt: isoTime.optional(),
  digits: z.string().describe('DTMF digits pressed, in order.'),
  playedSec: seconds.describe('Whole seconds of the message that played.'),
  outcome: z
    .string()
    .describe(
      'delivered, not_confirmed, cut_short, busy, no_answer, congestion, rejected, machine, canceled, failed or lost.',
    ),
  callId: z.string().optional().describe('Engine call id of the attempt, when a call was created.'),
  amdStatus: z
    .string()
    .optional()
    .describe('Answering-machine detection verdict (AMDSTATUS): MACHINE, HUMAN or NOTSURE.'),
  amdCause: z.string().optional().describe('Its reason (AMDCAUSE), e.g. LONGGREETING-1500-1500.'),
  nextAttemptAt: isoTime.optional().describe('When the next attempt is due, if there is one.'),
});
type _AutocallAttemptMatches = Assert<
  Same<z.infer<typeof autocallAttemptData>, AutocallAttemptData>
>;

const autocallFinishedData = z.object({
  jobId: z.int().min(1),
  campaignId: z.int().min(1).optional(),
  to: z.string(),
  status: z.string().describe('delivered, busy, no_answer, failed, canceled or machine.'),
  attempts: z.int().min(0).describe('Attempts made.'),
  finishedAt: isoTime,
  amdStatus: z
    .string()
    .optional()
    .describe("The last attempt's answering-machine detection verdict (AMDSTATUS), when it ran."),
  amdCause: z.string().optional().describe('Its reason (AMDCAUSE).'),
  variables: z.record(z.string(), z.string()).optional(),
});
type _AutocallFinishedMatches = Assert<
  Same<z.infer<typeof autocallFinishedData>, AutocallFinishedData>
>;

const operatorStateEnum = z.enum(['offline', 'idle', 'ringing', 'on_call']);
const operatorStateData = z.object({
  extension: z.string().describe("The operator's extension."),
  state: operatorStateEnum.describe(
    'What the phone is doing: offline (not registered), idle, ringing, on_call.',
  ),
  status: z.enum(['available', 'break', 'dnd']).describe('What the operator chose.'),
  since: isoTime.describe('When the state or status changed.'),
  callId: z
    .string()
    .optional()
    .describe('The call ringing the operator or the operator is on (ringing, on_call).'),
  previousState: operatorStateEnum
    .optional()
    .describe('The state before, when the state changed (absent when only the status did).'),
});
type _OperatorStateMatches = Assert<Same<z.infer<typeof operatorStateData>, OperatorStateData>>;

function envelope<T extends string, D extends z.ZodType>(type: T, data: D) {
  return z.object({
    id: z.string().describe('Event UUID; the idempotency key (also X-Event-Id).'),
    type: z.literal(type).describe('Event type (also X-Event-Type).'),
    occurredAt: isoTime,
    callId: z
      .string()
      .describe(
        'Engine call id; for autocall.* events the job key autocall-<jobId>, for operator.state the operator key operator-<extension>.',
      ),
    sequence: z.int().min(1).describe("Position in this call's events: 1, 2, 3, … without gaps."),
    data,
  });
}

/** The webhook body of each event type (OpenAPI `webhooks`). */
export const webhookSchemas = {
  'call.started': envelope('call.started', callStartedData),
  'call.ringing': envelope('call.ringing', callRingingData),
  'call.answered': envelope('call.answered', callAnsweredData),
  'call.transferred': envelope('call.transferred', callTransferredData),
  'call.transfer_failed': envelope('call.transfer_failed', callTransferFailedData),
  'call.recovered': envelope('call.recovered', callRecoveredData),
  'call.ended': envelope('call.ended', callEndedData),
  'recording.ready': envelope('recording.ready', recordingReadyData),
  'autocall.attempt': envelope('autocall.attempt', autocallAttemptData),
  'autocall.finished': envelope('autocall.finished', autocallFinishedData),
  'operator.state': envelope('operator.state', operatorStateData),
} as const;

/** Any webhook body; `type` discriminates. */
export const lifecycleEventSchema = z.discriminatedUnion('type', [
  webhookSchemas['call.started'],
  webhookSchemas['call.ringing'],
  webhookSchemas['call.answered'],
  webhookSchemas['call.transferred'],
  webhookSchemas['call.transfer_failed'],
  webhookSchemas['call.recovered'],
  webhookSchemas['call.ended'],
  webhookSchemas['recording.ready'],
  webhookSchemas['autocall.attempt'],
  webhookSchemas['autocall.finished'],
  webhookSchemas['operator.state'],
]);
type _EventMatches = Assert<Same<z.infer<typeof lifecycleEventSchema>, LifecycleEvent>>;
