/**
 * ARI REST operations of the simulator, keyed `<resource>.<nickname>` like the declarations.
 * Status codes and error messages are Asterisk 22's (res/ari/resource_*.c, errors.jsonl).
 *
 * One file per ARI resource: `asterisk-handlers.ts`, `channel-handlers.ts`,
 * `bridge-handlers.ts`, `media-handlers.ts` (recordings, playbacks), `application-handlers.ts`
 * (applications, device states, endpoints); `handler-result.ts` the handler's shape.
 */
import {
  APPLICATION_HANDLERS,
  DEVICE_STATE_HANDLERS,
  ENDPOINT_HANDLERS,
} from './application-handlers.ts';
import { ASTERISK_HANDLERS } from './asterisk-handlers.ts';
import { BRIDGE_HANDLERS } from './bridge-handlers.ts';
import { CHANNEL_HANDLERS } from './channel-handlers.ts';
import type { Handler } from './handler-result.ts';
import { MEDIA_HANDLERS } from './media-handlers.ts';

export type { Handler, HandlerResult } from './handler-result.ts';

/** Every operation the simulator answers, by `<resource>.<nickname>`. */
export const HANDLERS: Record<string, Handler> = {
  ...ASTERISK_HANDLERS,
  ...ENDPOINT_HANDLERS,
  ...CHANNEL_HANDLERS,
  ...BRIDGE_HANDLERS,
  ...MEDIA_HANDLERS,
  ...DEVICE_STATE_HANDLERS,
  ...APPLICATION_HANDLERS,
};
