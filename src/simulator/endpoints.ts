/**
 * Endpoints and device states of the simulated Asterisk: the PJSIP endpoints (the trunk,
 * `pstn-in`, the operators' extensions) with the live channels of each, their device states
 * (`PJSIP/<ext>`, ARI-controlled `Stasis:<name>`), and the EndpointStateChange /
 * DeviceStateChanged events published when a channel of an endpoint changes.
 */
import type { AriEndpoint } from '../ari/types.ts';
import type { EventBus } from './events.ts';
import type { SimChannel } from './model.ts';
import type { PhoneBook } from './phones.ts';

/** The endpoints of a PBX (its trunk, `pstn-in`, the extensions of the phone book) and their states. */
export class Endpoints {
  /** Live channels by endpoint (`PJSIP/101`): endpoint and device states without scanning all. */
  private readonly byEndpoint = new Map<string, Set<SimChannel>>();
  /** ARI-controlled device states (`Stasis:<name>`). */
  readonly customDeviceStates = new Map<string, string>();
  private readonly lastDeviceState = new Map<string, string>();
  private readonly lastEndpointSnapshot = new Map<string, string>();

  constructor(
    private readonly phones: PhoneBook,
    private readonly trunk: string,
    private readonly events: EventBus,
  ) {
    for (const resource of this.endpointNames()) {
      this.lastDeviceState.set(`PJSIP/${resource}`, this.deviceState(`PJSIP/${resource}`));
    }
  }

  /** Endpoints in the order Asterisk lists them (errors trace): trunk, pstn-in, extensions reversed. */
  endpointNames(): string[] {
    return [this.trunk, 'pstn-in', ...[...this.phones.extensions].reverse()];
  }

  endpointJson(resource: string): AriEndpoint {
    const endpoint = `PJSIP/${resource}`;
    const offline = this.phones.isExtension(resource) && !this.phones.isReachable(resource);
    return {
      technology: 'PJSIP',
      resource,
      state: offline ? 'offline' : 'online',
      channel_ids: [...(this.byEndpoint.get(endpoint) ?? [])].map((c) => c.id),
    };
  }

  /** Device state of `PJSIP/<ext>`, an ARI-controlled `Stasis:` device, or INVALID. */
  deviceState(name: string): string {
    if (name.startsWith('Stasis:')) return this.customDeviceStates.get(name.slice(7)) ?? 'UNKNOWN';
    const match = /^PJSIP\/(.+)$/.exec(name);
    const resource = match?.[1];
    if (!resource) return 'INVALID';
    if (this.phones.isExtension(resource)) {
      if (!this.phones.isReachable(resource)) return 'UNAVAILABLE';
    } else if (resource !== this.trunk && resource !== 'pstn-in') return 'INVALID';
    const states = [...(this.byEndpoint.get(name) ?? [])].map((c) => c.state);
    const up = states.some((s) => s === 'Up');
    const ringing = states.some((s) => s === 'Ringing' || s === 'Ring');
    if (up && ringing) return 'RINGINUSE';
    if (up) return 'INUSE';
    if (ringing) return 'RINGING';
    if (states.some((s) => s === 'Busy')) return 'BUSY';
    return 'NOT_INUSE';
  }

  /** A channel was allocated on its endpoint (no event: see {@link endpointChanged}). */
  addChannel(ch: SimChannel): void {
    let sameEndpoint = this.byEndpoint.get(ch.endpoint);
    if (!sameEndpoint) this.byEndpoint.set(ch.endpoint, (sameEndpoint = new Set()));
    sameEndpoint.add(ch);
  }

  /** A channel was destroyed (no event: see {@link endpointChanged}). */
  removeChannel(ch: SimChannel): void {
    const sameEndpoint = this.byEndpoint.get(ch.endpoint);
    sameEndpoint?.delete(ch);
    if (sameEndpoint?.size === 0) this.byEndpoint.delete(ch.endpoint);
  }

  /** Publish endpoint and device-state changes after a channel of `endpoint` changed. */
  endpointChanged(endpoint: string): void {
    const resource = endpoint.slice('PJSIP/'.length);
    // Asterisk publishes an endpoint snapshot when its state or its channels change (a channel
    // added or removed), not on every channel state change (device-endpoint-state trace).
    const json = this.endpointJson(resource);
    const snapshot = `${json.state}|${json.channel_ids.join(',')}`;
    if (this.lastEndpointSnapshot.get(endpoint) !== snapshot) {
      this.lastEndpointSnapshot.set(endpoint, snapshot);
      if (this.events.reaches({ endpoint }))
        this.events.emit('EndpointStateChange', { endpoint: json }, { endpoint });
    }
    const state = this.deviceState(endpoint);
    if (this.lastDeviceState.get(endpoint) !== state) {
      this.lastDeviceState.set(endpoint, state);
      this.events.emit(
        'DeviceStateChanged',
        { device_state: { name: endpoint, state } },
        { device: endpoint },
      );
    }
  }

  /** Set an ARI-controlled device state (`PUT /deviceStates/Stasis:<name>`). */
  setCustomDeviceState(device: string, state: string): void {
    this.customDeviceStates.set(device.slice(7), state);
    this.events.emit('DeviceStateChanged', { device_state: { name: device, state } }, { device });
  }

  /** Forget every channel (close). */
  clear(): void {
    this.byEndpoint.clear();
  }
}
