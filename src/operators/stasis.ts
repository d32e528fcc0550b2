/**
 * Stasis side of operator presence: what Asterisk says about the operators' phones, in.
 *
 * A Stasis application receives no device or endpoint events unless it subscribes to them. At
 * every (re)connect of the ARI WebSocket (Asterisk replays nothing) this module:
 * 1. subscribes the application to `deviceState:<device>` of every operator's phone
 *    (`POST /applications/{app}/subscription`), e.g. `deviceState:PJSIP/101`;
 * 2. reads each phone's device state (`GET /deviceStates/PJSIP%2F101`) and endpoint state
 *    (`GET /endpoints/PJSIP/101`: `online` / `offline`), so what changed while the engine was
 *    not connected is known at once.
 *
 * From then on `DeviceStateChanged` events keep the state current: `NOT_INUSE` (registered,
 * idle), `RINGING`, `INUSE`, `UNAVAILABLE` (no registered contact), … It does not subscribe to
 * `endpoint:PJSIP/101`: that topic also carries every channel event of the phone's calls, which
 * the call engine would then receive twice (device-endpoint-state trace).
 * `EndpointStateChange` events that arrive anyway (another subscription, `subscribeAll`) are
 * used too.
 */
import { AriNotFoundError } from '../ari/errors.ts';
import type { AriGateway } from '../ari/types.ts';
import type { Logger } from '../logging/logger.ts';
import { deviceNameOf } from './model.ts';
import type { PresenceService } from './service.ts';

/** Options of {@link registerPresenceStasisHandlers}. */
export interface PresenceStasisOptions {
  /** OPERATOR_ENDPOINT, e.g. `PJSIP/{extension}`: the device of each operator's phone. */
  endpointTemplate: string;
  logger: Logger;
}

/**
 * Feed `service` from the gateway: device/endpoint events, and a subscription plus a fresh read
 * of every phone after each (re)connect (also the first one). Returns the unsubscribe function.
 */
export function registerPresenceStasisHandlers(
  gateway: AriGateway,
  service: PresenceService,
  options: PresenceStasisOptions,
): () => void {
  const byDevice = new Map<string, string>();
  for (const ext of service.extensions())
    byDevice.set(deviceNameOf(options.endpointTemplate, ext), ext);
  const log = options.logger;

  const offEvent = gateway.onEvent((event) => {
    if (event.type === 'DeviceStateChanged') {
      const ext = byDevice.get(event.device_state.name);
      if (ext !== undefined) service.asteriskSaid(ext, { deviceState: event.device_state.state });
    } else if (event.type === 'EndpointStateChange') {
      const { technology, resource, state } = event.endpoint;
      const ext = byDevice.get(`${technology}/${resource}`);
      if (ext !== undefined && state !== undefined)
        service.asteriskSaid(ext, { endpointState: state });
    }
  });

  let generation = 0;
  const offConnection = gateway.onConnectionChange((state) => {
    if (state !== 'connected') return;
    const mine = ++generation;
    void refresh(
      gateway,
      service,
      byDevice,
      log,
      () => mine === generation && gateway.isConnected(),
    );
  });
  return () => {
    offEvent();
    offConnection();
  };
}

/**
 * Subscribe to every operator device and read its state. Never throws: failures are logged
 * (the operators concerned keep their last known state). `current()` false: a newer connection
 * took over, stop.
 */
async function refresh(
  gateway: AriGateway,
  service: PresenceService,
  byDevice: ReadonlyMap<string, string>,
  log: Logger,
  current: () => boolean,
): Promise<void> {
  const devices = [...byDevice.keys()];
  if (devices.length === 0) return;
  const sources = devices.map((d) => `deviceState:${d}`);
  try {
    await gateway.applications.subscribe(sources);
  } catch (err) {
    // One bad source fails the whole request: subscribe one by one, logging the bad ones.
    log.warn('subscribing to the operators device states failed; trying one by one', {
      error: errorMessage(err),
    });
    for (const source of sources) {
      if (!current()) return;
      try {
        await gateway.applications.subscribe([source]);
      } catch (one) {
        log.warn('could not subscribe to an operator device state', {
          source,
          error: errorMessage(one),
        });
      }
    }
  }
  log.info('subscribed to the operators device states', { devices: devices.length });
  await Promise.all(
    devices.map(async (device) => {
      const ext = byDevice.get(device)!;
      const slash = device.indexOf('/');
      const [deviceState, endpointState] = await Promise.all([
        gateway.deviceStates.get(device).then(
          (d) => d.state,
          (err: unknown) => {
            log.warn('could not read an operator device state', {
              device,
              error: errorMessage(err),
            });
            return undefined;
          },
        ),
        slash > 0
          ? gateway.endpoints.get(device.slice(0, slash), device.slice(slash + 1)).then(
              (e) => e.state,
              (err: unknown) => {
                // An endpoint Asterisk does not have: the phone cannot register.
                if (err instanceof AriNotFoundError) return 'offline';
                log.warn('could not read an operator endpoint', {
                  device,
                  error: errorMessage(err),
                });
                return undefined;
              },
            )
          : Promise.resolve(undefined),
      ]);
      if (!current()) return;
      service.asteriskSaid(ext, {
        ...(deviceState !== undefined ? { deviceState } : {}),
        ...(endpointState !== undefined ? { endpointState } : {}),
      });
    }),
  );
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
