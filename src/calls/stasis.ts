/**
 * Stasis handlers of the calls domain: ARI events in. Every event of the Stasis app goes to the
 * call service, which picks the call it belongs to (by channel or playback id).
 */
import type { AriGateway } from '../ari/types.ts';
import type { CallService } from './service.ts';

/** Subscribe the call service to the gateway's event stream. Returns the unsubscribe function. */
export function registerCallStasisHandlers(gateway: AriGateway, service: CallService): () => void {
  return gateway.onEvent((event) => service.handleEvent(event));
}
