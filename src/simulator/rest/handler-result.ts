/**
 * What an ARI REST handler of the simulator is and answers ({@link Handler},
 * {@link HandlerResult}); the handlers are in the `*-handlers.ts` files, one per ARI resource,
 * composed in `handlers.ts`.
 */
import type { Pbx } from '../pbx.ts';
import type { Params } from './params.ts';

/** What a handler answers. */
export interface HandlerResult {
  status: number;
  /** JSON body (omitted for 204). */
  body?: unknown;
  /** Binary body instead of JSON. */
  file?: { contentType: string; data: Buffer };
  /** `Location` header of 201 answers. */
  location?: string;
  /** Awaited before the answer is written (race (a)). */
  beforeResponse?: () => Promise<void>;
  /** Run once the answer has been handed to the socket. */
  afterResponse?: () => void;
}

export type Handler = (params: Params, pbx: Pbx) => HandlerResult;

/** The `204 No Content` answer. */
export const noContent: HandlerResult = { status: 204 };
