/**
 * zod schemas of what the read API answers (call details, the pull feed and the webhook
 * delivery log), for the OpenAPI document. Each is checked at compile time against the
 * type the routes send (`StoredCallView`, `FeedItemView`, `DeliveryRecord`), so the document
 * cannot drift from the code.
 */
import { z } from 'zod';
import type { CallRecord, DeliveryRecord, RecordingFields } from '../store/index.ts';
import type { LifecycleEvent } from '../events/types.ts';
import { callSnapshotSchema, lifecycleEventSchema, webhookSchemas } from './schemas.ts';

/** True when A and B are assignable to each other. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compile-time assertion. */
type Assert<T extends true> = T;

type WebhookType = keyof typeof webhookSchemas;

const isoTime = z.string().describe('ISO 8601 UTC, e.g. 2025-01-31T09:15:02.123Z');
const cursor = z
  .string()
  .describe('Opaque cursor: pass it back unchanged (`cursor` / `after`) to read on.');

/** A call's recording as the API shows it: the stored fields plus a download link. */
export type RecordingView = RecordingFields & {
  /** Where to download the recording, when the engine serves it. */
  url?: string;
};

/** A call script recording (`record` verb) as call details list it. */
export interface ScriptRecordingView {
  /** The recording name (`vrec-<uuid>`). */
  name: string;
  /** File size, bytes. */
  bytes: number;
  /** Signed link to `GET /v1/calls/{id}/recordings/{name}`. */
  url: string;
  /** When `url` stops working, ISO 8601 UTC. */
  expiresAt: string;
}

/**
 * A stored call as `GET /v1/calls` and `GET /v1/calls/{id}` show it (`scriptRecordings`: only
 * `GET /v1/calls/{id}`, when the call has any).
 */
export type StoredCallView = Omit<CallRecord, 'recording'> & {
  recording?: RecordingView;
  scriptRecordings?: ScriptRecordingView[];
};

/** One item of `GET /v1/events`. */
export interface FeedItemView {
  /** Resume after this event: `GET /v1/events?after=<cursor>`. */
  cursor: string;
  /**
   * Webhook delivery state of this event: `pending`, `delivered`, `rejected`, `dead`, or
   * `skipped` (recorded while no webhook URL was configured: never sent).
   */
  webhookStatus: 'pending' | 'delivered' | 'rejected' | 'dead' | 'skipped';
  /** The event exactly as the webhook carries it. */
  event: LifecycleEvent;
}

const snapshotLeg = callSnapshotSchema.shape.legs.element;

/** A stored leg: the snapshot's leg with its times. */
export const legRecordSchema = snapshotLeg.extend({
  createdAt: isoTime.describe('When the channel was created (or entered the app), ISO 8601 UTC.'),
  answeredAt: isoTime.optional().describe('When it was answered, ISO 8601 UTC.'),
  endedAt: isoTime.optional().describe('When it hung up, ISO 8601 UTC.'),
});

/** A call's recording. */
export const recordingSchema = z.object({
  name: z.string().optional().describe("Asterisk's stored recording name."),
  path: z.string().optional().describe("Path or key in the engine's recording storage."),
  status: z.string().optional().describe('e.g. recording, stored, failed.'),
  bytes: z.int().min(0).optional().describe('File size, bytes.'),
  durationSec: z.int().min(0).optional().describe('Audio length, whole seconds.'),
  url: z.string().optional().describe('Download link, when the engine serves the recording.'),
});
type _RecordingMatches = Assert<Same<z.infer<typeof recordingSchema>, RecordingView>>;

/** A call script recording in call details. */
export const scriptRecordingSchema = z.object({
  name: z.string().describe('The recording name (`vrec-<uuid>`), as the record verb reported it.'),
  bytes: z.int().min(0).describe('File size, bytes.'),
  url: z
    .string()
    .describe(
      'Signed link GET /v1/calls/{id}/recordings/{name}?expires=…&sig=…: plays without an API key.',
    ),
  expiresAt: isoTime.describe('When url stops working, ISO 8601 UTC.'),
});
type _ScriptRecordingMatches = Assert<
  Same<z.infer<typeof scriptRecordingSchema>, ScriptRecordingView>
>;

/** `CallRecord`: a stored call (call details). */
export const callRecordSchema = callSnapshotSchema.omit({ legs: true }).extend({
  recording: recordingSchema.optional(),
  scriptRecordings: z
    .array(scriptRecordingSchema)
    .optional()
    .describe(
      'GET /v1/calls/{id} only: what the call scripts recorded of the caller (record verb), oldest first, with fresh links.',
    ),
  updatedAt: isoTime.describe('Last time the engine wrote this call, ISO 8601 UTC.'),
  legs: z.array(legRecordSchema).describe('The channels of the call, in creation order.'),
});
type _CallRecordMatches = Assert<Same<z.infer<typeof callRecordSchema>, StoredCallView>>;

/** A page of `GET /v1/calls`. */
export const callPageSchema = z.object({
  items: z.array(callRecordSchema).describe('Calls, newest first (by startedAt, then id).'),
  nextCursor: cursor.optional().describe('Next page: `cursor=<this>`; absent on the last page.'),
});

/** One item of the pull feed. */
export const feedItemSchema = z.object({
  cursor: cursor.describe('Resume after this event: `after=<cursor>`.'),
  webhookStatus: z
    .enum(['pending', 'delivered', 'rejected', 'dead', 'skipped'])
    .describe(
      'Webhook delivery state of this event; `skipped`: recorded while no webhook URL was configured, never sent.',
    ),
  event: lifecycleEventSchema.describe('The event, exactly as the webhook carries it.'),
});
type _FeedItemMatches = Assert<Same<z.infer<typeof feedItemSchema>, FeedItemView>>;

/** A page of `GET /v1/events`. */
export const feedPageSchema = z.object({
  items: z.array(feedItemSchema).describe('Events in outbox order (per call: by sequence).'),
  nextCursor: cursor.describe(
    'Always present: `after=<this>` returns what comes next (the same cursor when nothing is new yet).',
  ),
});

/** One delivery attempt. */
export const deliveryRecordSchema = z.object({
  eventId: z.string().describe('The event (X-Event-Id).'),
  callId: z.string(),
  eventType: z.enum(Object.keys(webhookSchemas) as [WebhookType, ...WebhookType[]]),
  attempt: z.int().min(1).describe('1 for the first attempt, 2 for the first retry, …'),
  url: z.string().optional().describe('The endpoint, without credentials.'),
  at: isoTime.describe('When the attempt started, ISO 8601 UTC.'),
  outcome: z
    .enum(['delivered', 'failed', 'rejected'])
    .describe('delivered (2xx), failed (will be retried), rejected (permanent 4xx, given up).'),
  statusCode: z.int().optional().describe('HTTP status the endpoint answered, if it answered.'),
  error: z.string().optional().describe('Connection error, timeout or the start of the answer.'),
  durationMs: z.int().min(0).describe('How long the attempt took, milliseconds.'),
});
type _DeliveryMatches = Assert<Same<z.infer<typeof deliveryRecordSchema>, DeliveryRecord>>;

/** A page of `GET /v1/webhooks/deliveries`. */
export const deliveryPageSchema = z.object({
  items: z.array(deliveryRecordSchema).describe('Attempts, newest first.'),
  nextCursor: cursor.optional().describe('Next page: `cursor=<this>`; absent on the last page.'),
});

/** The component schemas of the read API, by OpenAPI id. */
export const historyResponseSchemas = {
  CallRecord: callRecordSchema,
  CallPage: callPageSchema,
  LifecycleEvent: lifecycleEventSchema,
  FeedItem: feedItemSchema,
  FeedPage: feedPageSchema,
  DeliveryRecord: deliveryRecordSchema,
  DeliveryPage: deliveryPageSchema,
} as const;
