/**
 * Stasis handlers of the recordings domain: ARI events in. RecordingStarted, RecordingFinished
 * and RecordingFailed of the app's bridges (`recording.target_uri` `bridge:<id>`) go to the
 * recordings service, which knows its recordings by name.
 */
import type { AriGateway } from '../ari/types.ts';
import type { RecordingService } from './service.ts';

/** Subscribe the recordings service to the gateway's event stream. Returns the unsubscribe function. */
export function registerRecordingStasisHandlers(
  gateway: Pick<AriGateway, 'onEvent'>,
  service: Pick<RecordingService, 'handleEvent'>,
): () => void {
  return gateway.onEvent((event) => {
    if (
      event.type === 'RecordingStarted' ||
      event.type === 'RecordingFinished' ||
      event.type === 'RecordingFailed'
    )
      service.handleEvent(event);
  });
}
