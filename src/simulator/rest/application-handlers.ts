/**
 * ARI `applications`, `deviceStates` and `endpoints` resources of the simulator: the Stasis apps
 * (with their subscriptions and event filters), custom device states (`Stasis:<name>`) and the
 * PJSIP endpoints. Status codes and error messages are Asterisk 22's (res/ari/resource_*.c).
 */
import { ariError } from '../errors.ts';
import type { EventFilter } from '../apps.ts';
import type { Pbx } from '../pbx.ts';
import { noContent, type Handler } from './handler-result.ts';

function applicationJson(pbx: Pbx, name: string): Record<string, unknown> {
  const sources = pbx.apps.sources(name);
  return {
    name,
    channel_ids: [...pbx.channels.values()]
      .filter((c) => c.stasis?.app === name || c.subscribers.has(name))
      .map((c) => c.id),
    bridge_ids: [...pbx.bridges.values()].filter((b) => b.subscribers.has(name)).map((b) => b.id),
    endpoint_ids: sources
      .filter((s) => s.startsWith('endpoint:'))
      .map((s) => s.slice('endpoint:'.length)),
    // Newest first, as Asterisk 22 listed them (device-endpoint-state trace).
    device_names: sources
      .filter((s) => s.startsWith('deviceState:'))
      .map((s) => s.slice('deviceState:'.length))
      .reverse(),
    events_allowed: pbx.apps.filter(name).allowed,
    events_disallowed: pbx.apps.filter(name).disallowed,
  };
}

/** Registered apps: with a WebSocket, or without one but still owning channels/bridges (fact 13/14). */
function registeredApps(pbx: Pbx): string[] {
  return pbx.apps.names().filter((name) => pbx.apps.isActive(name) || pbx.appHasResources(name));
}

function requireApp(pbx: Pbx, name: string | undefined): string {
  if (!name || !registeredApps(pbx).includes(name)) throw ariError(404, 'Application not found');
  return name;
}

function knownEndpoint(pbx: Pbx, resource: string): boolean {
  return pbx.endpoints.endpointNames().includes(resource);
}

/** Validate an `applications/subscription` event source: 400 bad scheme, 422 unknown source. */
function eventSource(
  pbx: Pbx,
  source: string,
): { kind: 'channel' | 'bridge' | 'endpoint' | 'deviceState'; id: string } {
  const colon = source.indexOf(':');
  const kind = source.slice(0, colon);
  const id = source.slice(colon + 1);
  if (colon < 0 || !['channel', 'bridge', 'endpoint', 'deviceState'].includes(kind)) {
    throw ariError(400, 'Invalid event source URI scheme');
  }
  const exists =
    kind === 'channel'
      ? pbx.channels.has(id)
      : kind === 'bridge'
        ? pbx.bridges.has(id)
        : kind === 'endpoint'
          ? id === 'PJSIP' || (id.startsWith('PJSIP/') && knownEndpoint(pbx, id.slice(6)))
          : id !== '';
  if (!exists) throw ariError(422, 'Event source does not exist');
  return { kind: kind as 'channel' | 'bridge' | 'endpoint' | 'deviceState', id };
}

const DEVICE_STATES = [
  'UNKNOWN',
  'NOT_INUSE',
  'INUSE',
  'BUSY',
  'INVALID',
  'UNAVAILABLE',
  'RINGING',
  'RINGINUSE',
  'ONHOLD',
];

/** The `endpoints.*` operations. */
export const ENDPOINT_HANDLERS: Record<string, Handler> = {
  'endpoints.list': (_p, pbx) => ({
    status: 200,
    body: pbx.endpoints.endpointNames().map((r) => pbx.endpoints.endpointJson(r)),
  }),
  'endpoints.listByTech': (p, pbx) => {
    const tech = p.str('tech') ?? '';
    if (tech.toUpperCase() !== 'PJSIP')
      throw ariError(404, `No Endpoints found - invalid tech ${tech}`);
    return {
      status: 200,
      body: pbx.endpoints.endpointNames().map((r) => pbx.endpoints.endpointJson(r)),
    };
  },
  'endpoints.get': (p, pbx) => {
    const tech = p.str('tech') ?? '';
    const resource = p.str('resource') ?? '';
    if (tech.toUpperCase() !== 'PJSIP' || !knownEndpoint(pbx, resource))
      throw ariError(404, 'Endpoint not found');
    return { status: 200, body: pbx.endpoints.endpointJson(resource) };
  },
};

/** The `deviceStates.*` operations. */
export const DEVICE_STATE_HANDLERS: Record<string, Handler> = {
  'deviceStates.list': (_p, pbx) => ({
    status: 200,
    body: [...pbx.endpoints.customDeviceStates].map(([name, state]) => ({
      name: `Stasis:${name}`,
      state,
    })),
  }),
  'deviceStates.get': (p, pbx) => {
    const name = p.str('deviceName') ?? '';
    return { status: 200, body: { name, state: pbx.endpoints.deviceState(name) } };
  },
  'deviceStates.update': (p, pbx) => {
    const name = p.str('deviceName') ?? '';
    if (!name.startsWith('Stasis:')) throw ariError(409, 'Uncontrolled device specified');
    if (name === 'Stasis:') throw ariError(404, 'Device name is missing');
    const requested = (p.str('deviceState') ?? '').toUpperCase();
    pbx.endpoints.setCustomDeviceState(
      name,
      DEVICE_STATES.includes(requested) ? requested : 'UNKNOWN',
    );
    return noContent;
  },
  'deviceStates.delete': (p, pbx) => {
    const name = p.str('deviceName') ?? '';
    if (!name.startsWith('Stasis:')) throw ariError(409, 'Uncontrolled device specified');
    if (!pbx.endpoints.customDeviceStates.delete(name.slice(7)))
      throw ariError(404, 'Device name is missing');
    return noContent;
  },
};

/** The `applications.*` operations. */
export const APPLICATION_HANDLERS: Record<string, Handler> = {
  'applications.list': (_p, pbx) => ({
    status: 200,
    body: registeredApps(pbx).map((name) => applicationJson(pbx, name)),
  }),
  'applications.get': (p, pbx) => ({
    status: 200,
    body: applicationJson(pbx, requireApp(pbx, p.str('applicationName'))),
  }),
  'applications.subscribe': (p, pbx) => {
    const app = requireApp(pbx, p.str('applicationName'));
    const sources = p.list('eventSource');
    if (sources.length === 0) throw ariError(400, 'Missing parameter eventSource');
    const parsed = sources.map((s) => eventSource(pbx, s));
    for (const { kind, id } of parsed) {
      if (kind === 'channel') pbx.channels.get(id)?.subscribers.add(app);
      else if (kind === 'bridge') pbx.bridges.get(id)?.subscribers.add(app);
      else pbx.apps.addSource(app, `${kind}:${id}`);
    }
    return { status: 200, body: applicationJson(pbx, app) };
  },
  'applications.unsubscribe': (p, pbx) => {
    const app = requireApp(pbx, p.str('applicationName'));
    const sources = p.list('eventSource');
    if (sources.length === 0) throw ariError(400, 'Missing parameter eventSource');
    const parsed = sources.map((s) => eventSource(pbx, s));
    for (const { kind, id } of parsed) {
      const subscribed =
        kind === 'channel'
          ? (pbx.channels.get(id)?.subscribers.has(app) ?? false)
          : kind === 'bridge'
            ? (pbx.bridges.get(id)?.subscribers.has(app) ?? false)
            : pbx.apps.sources(app).includes(`${kind}:${id}`);
      if (!subscribed) throw ariError(422, 'Event source was not subscribed to');
    }
    for (const { kind, id } of parsed) {
      if (kind === 'channel') pbx.channels.get(id)?.subscribers.delete(app);
      else if (kind === 'bridge') pbx.bridges.get(id)?.subscribers.delete(app);
      else pbx.apps.removeSource(app, `${kind}:${id}`);
    }
    return { status: 200, body: applicationJson(pbx, app) };
  },
  'applications.filter': (p, pbx) => {
    const app = requireApp(pbx, p.str('applicationName'));
    pbx.apps.setFilter(app, eventFilter(p.body));
    return { status: 200, body: applicationJson(pbx, app) };
  },
};

/**
 * The body of `PUT /applications/{app}/eventFilter` as Asterisk reads it (stasis/app.c): no body
 * or `{}` empties both lists; otherwise each list given (`allowed`, `disallowed`) replaces the
 * app's, and must be an array of objects with a string `type` (400 "Invalid format definition").
 * Type names are not checked against the known events.
 */
function eventFilter(body: unknown): Partial<EventFilter> {
  if (body === undefined || body === null) return { allowed: [], disallowed: [] };
  if (typeof body !== 'object' || Array.isArray(body)) throw invalidFilter();
  const obj = body as Record<string, unknown>;
  if (Object.keys(obj).length === 0) return { allowed: [], disallowed: [] };
  const out: Partial<EventFilter> = {};
  for (const key of ['allowed', 'disallowed'] as const) {
    if (!(key in obj)) continue;
    const list = obj[key];
    if (!Array.isArray(list)) throw invalidFilter();
    out[key] = list.map((item: unknown) => {
      const type = (item as { type?: unknown } | null)?.type;
      if (!item || typeof item !== 'object' || typeof type !== 'string') throw invalidFilter();
      return { type };
    });
  }
  return out;
}

const invalidFilter = () => ariError(400, 'Invalid format definition');
