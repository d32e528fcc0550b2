/**
 * What the recordings service asks Asterisk when it has to find out where a call's recording
 * stands rather than wait for an event: whether Asterisk has the recording (live or stored), and
 * whether the call's bridge still holds a conversation a recording could be started on again.
 * Pure look-ups over the ARI gateway: nothing here changes anything in Asterisk. Reference:
 * docs/recordings.md "After a restart or an ARI outage".
 */
import { AriNotFoundError } from '../ari/errors.ts';
import type { AriGateway } from '../ari/types.ts';

/** Where Asterisk has a recording: still being recorded, finished and stored, or nowhere. */
export type AsteriskLocation = 'live' | 'stored' | 'missing';

/**
 * Where Asterisk has the recording `name`: `GET /recordings/live/{name}` first (a file being
 * written may already be listed as stored), then `GET /recordings/stored/{name}`; 404 to both is
 * `missing`.
 *
 * @throws the gateway's error when Asterisk cannot answer (AriConnectionError…) or answers
 *   anything but 404
 */
export async function locateRecording(
  recordings: Pick<AriGateway['recordings'], 'getLive' | 'getStored'>,
  name: string,
): Promise<AsteriskLocation> {
  try {
    await recordings.getLive(name);
    return 'live';
  } catch (err) {
    if (!(err instanceof AriNotFoundError)) throw err;
  }
  try {
    await recordings.getStored(name);
    return 'stored';
  } catch (err) {
    if (!(err instanceof AriNotFoundError)) throw err;
    return 'missing';
  }
}

/**
 * What Asterisk shows of a call's bridge (`GET /bridges/{bridgeId}`): `talking` while two
 * channels or more are in it (the call's parties: a recording started now records them);
 * `emptying` with fewer (a party hung up, the call is over or about to be); `gone` when Asterisk
 * has no such bridge (404: the call ended and its bridge was destroyed).
 *
 * @throws the gateway's error when Asterisk cannot answer or answers anything but 404
 */
export async function bridgeState(
  bridges: Pick<AriGateway['bridges'], 'get'>,
  bridgeId: string,
): Promise<'talking' | 'emptying' | 'gone'> {
  try {
    const bridge = await bridges.get(bridgeId);
    return bridge.channels.length >= 2 ? 'talking' : 'emptying';
  } catch (err) {
    if (err instanceof AriNotFoundError) return 'gone';
    throw err;
  }
}
