/**
 * ARI REST operations of the simulator, keyed `<resource>.<nickname>` like the declarations.
 * Status codes and error messages are Asterisk 22's (res/ari/resource_*.c, errors.jsonl).
 */
import { HANGUP_REASON_CAUSE } from '../causes.ts';
import { ariError } from '../errors.ts';
import {
  bridgeJson,
  channelJson,
  liveRecordingJson,
  playbackJson,
  type SimBridge,
  type SimChannel,
} from '../model.ts';
import { ASTERISK_ID } from '../events.ts';
import type { EventFilter } from '../apps.ts';
import type { Pbx } from '../pbx.ts';
import type { RecordOptions } from '../recordings.ts';
import { audioFile, contentTypeOf, isKnownFormat } from '../wav.ts';
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

const noContent: HandlerResult = { status: 204 };

function requireChannel(pbx: Pbx, id: string | undefined): SimChannel {
  const ch = id ? pbx.channels.get(id) : undefined;
  if (!ch) throw ariError(404, 'Channel not found');
  return ch;
}

/** `find_bridge`: 404 "Bridge not found". */
function requireBridge(pbx: Pbx, id: string | undefined): SimBridge {
  const bridge = id ? pbx.bridges.get(id) : undefined;
  if (!bridge) throw ariError(404, 'Bridge not found');
  return bridge;
}

/** `control_list_create` of bridges: 400 "Missing parameter channel" / "Channel not found", 422 not in Stasis. */
function bridgeChannels(pbx: Pbx, ids: string[]): SimChannel[] {
  if (ids.length === 0) throw ariError(400, 'Missing parameter channel');
  return ids.map((id) => {
    const ch = pbx.channels.get(id);
    if (!ch) throw ariError(400, 'Channel not found');
    if (!ch.stasis) throw ariError(422, 'Channel not in Stasis application');
    return ch;
  });
}

function recordOptions(p: Params): RecordOptions {
  const maxDurationSec = p.int('maxDurationSeconds', 0);
  const maxSilenceSec = p.int('maxSilenceSeconds', 0);
  if (maxDurationSec < 0) throw ariError(400, 'max_duration_seconds cannot be negative');
  if (maxSilenceSec < 0) throw ariError(400, 'max_silence_seconds cannot be negative');
  return {
    name: p.str('name') ?? '',
    format: p.str('format') ?? '',
    maxDurationSec,
    ifExists: 'fail',
  };
}

/** Validate terminateOn/ifExists/format in Asterisk's order. */
function validateRecording(p: Params, opts: RecordOptions): RecordOptions {
  const terminateOn = p.str('terminateOn') ?? 'none';
  if (terminateOn !== 'none' && terminateOn !== 'any' && terminateOn !== '*' && terminateOn !== '#')
    throw ariError(400, 'terminateOn invalid');
  const ifExists = p.str('ifExists') ?? 'fail';
  if (ifExists !== 'fail' && ifExists !== 'overwrite' && ifExists !== 'append')
    throw ariError(400, 'ifExists invalid');
  if (!isKnownFormat(opts.format))
    throw ariError(422, 'specified format is unknown on this system');
  if (!opts.name) throw ariError(500, 'Error parsing request');
  return { ...opts, ifExists, terminateOn };
}

function playMedia(p: Params): string[] {
  const media = p.list('media');
  if (media.length === 0) throw ariError(400, 'Missing parameter media');
  if (p.int('skipms', 3000) < 0) throw ariError(400, 'skipms cannot be negative');
  if (p.int('offsetms', 0) < 0) throw ariError(400, 'offsetms cannot be negative');
  return media;
}

function originate(p: Params, pbx: Pbx, channelId: string | undefined): HandlerResult {
  const opts: Parameters<Pbx['legs']['originate']>[0] = {
    timeoutSec: p.int('timeout', 0),
    variables: p.variables,
  };
  const optional = [
    'endpoint',
    'extension',
    'context',
    'label',
    'app',
    'appArgs',
    'callerId',
    'originator',
    'formats',
  ] as const;
  for (const key of optional) {
    const v = p.str(key);
    if (v !== undefined) opts[key] = v;
  }
  const priority = p.int('priority', 0);
  if (priority) opts.priority = priority;
  if (channelId !== undefined) opts.channelId = channelId;
  const ch = pbx.legs.originate(opts);
  return { status: 200, body: channelJson(ch) };
}

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

export const HANDLERS: Record<string, Handler> = {
  // ---- asterisk ------------------------------------------------------------------------------
  'asterisk.getInfo': (p, pbx) => {
    const info = pbx.asteriskInfo();
    const only = p.list('only');
    if (only.length === 0) return { status: 200, body: info };
    const filtered: Record<string, unknown> = {};
    for (const key of only) if (key in info) filtered[key] = info[key];
    return { status: 200, body: filtered };
  },
  'asterisk.ping': (_p, pbx) => ({
    status: 200,
    body: { asterisk_id: ASTERISK_ID, ping: 'pong', timestamp: pbx.clock.timestamp() },
  }),

  // ---- endpoints -----------------------------------------------------------------------------
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

  // ---- channels ------------------------------------------------------------------------------
  'channels.list': (_p, pbx) => ({
    status: 200,
    body: [...pbx.channels.values()].reverse().map(channelJson),
  }),
  'channels.originate': (p, pbx) => originate(p, pbx, p.str('channelId')),
  'channels.originateWithId': (p, pbx) => originate(p, pbx, p.str('channelId')),
  'channels.create': (p, pbx) => {
    const app = p.str('app');
    const appArgs = p.str('appArgs');
    const opts: Parameters<Pbx['legs']['create']>[0] = { variables: p.variables };
    for (const key of [
      'endpoint',
      'app',
      'appArgs',
      'channelId',
      'originator',
      'formats',
    ] as const) {
      const v = p.str(key);
      if (v !== undefined) opts[key] = v;
    }
    const { result: body, deliveries } = pbx.collect(() => {
      const ch = pbx.legs.create(opts);
      const snapshot = channelJson(ch);
      pbx.legs.startCreated(ch, app ?? '', appArgs);
      return snapshot;
    });
    if (pbx.races.stasisStartBeforeCreateResponse) {
      // The events are written to the WebSocket (and a turn of the event loop passes) before the answer.
      return {
        status: 200,
        body,
        beforeResponse: async () => {
          await pbx.flush(deliveries);
          await new Promise((resolve) => setImmediate(resolve));
        },
      };
    }
    return { status: 200, body, afterResponse: () => void pbx.flush(deliveries) };
  },
  'channels.get': (p, pbx) => ({
    status: 200,
    body: channelJson(requireChannel(pbx, p.str('channelId'))),
  }),
  'channels.hangup': (p, pbx) => {
    const ch = requireChannel(pbx, p.str('channelId'));
    const reason = p.str('reason');
    const reasonCode = p.str('reason_code');
    if (reason && reasonCode)
      throw ariError(400, "The reason and reason_code can't both be specified");
    let cause = 16;
    if (reasonCode) cause = Number.parseInt(reasonCode, 10) || 0;
    else if (reason) {
      const mapped = HANGUP_REASON_CAUSE[reason];
      if (mapped === undefined) throw ariError(400, 'Invalid reason for hangup provided');
      cause = mapped;
    }
    pbx.hangups.appHangup(ch, cause);
    return noContent;
  },
  'channels.continueInDialplan': (p, pbx) => {
    const ch = pbx.control(p.str('channelId') ?? '');
    pbx.assertValidState(ch);
    const contextArg = p.str('context');
    const extensionArg = p.str('extension');
    const context = contextArg ?? ch.dialplan.context;
    const exten = contextArg ? (extensionArg ?? 's') : (extensionArg ?? ch.dialplan.exten);
    const label = p.str('label');
    let priority: number;
    if (label) {
      if (!/^[+-]?\d+$/.test(label)) throw ariError(404, 'Requested label can not be found');
      priority = Number.parseInt(label, 10);
      if (priority === 0) throw ariError(400, 'Requested priority is illegal');
    } else if (p.int('priority', 0)) {
      priority = p.int('priority', 0);
    } else if (!contextArg && !extensionArg) {
      priority = ch.dialplan.priority + 1;
    } else {
      priority = 1;
    }
    pbx.dialplan.continueInDialplan(ch, context, exten, priority);
    return noContent;
  },
  'channels.answer': (p, pbx) => {
    const ch = pbx.control(p.str('channelId') ?? '');
    pbx.assertValidState(ch);
    pbx.dialplan.answer(ch);
    return noContent;
  },
  'channels.ring': (p, pbx) => {
    pbx.assertValidState(pbx.control(p.str('channelId') ?? ''));
    return noContent;
  },
  'channels.ringStop': (p, pbx) => {
    pbx.assertValidState(pbx.control(p.str('channelId') ?? ''));
    return noContent;
  },
  'channels.play': (p, pbx) => playOnChannel(p, pbx, p.str('playbackId')),
  'channels.playWithId': (p, pbx) => playOnChannel(p, pbx, p.str('playbackId')),
  'channels.record': (p, pbx) => {
    const base = recordOptions(p);
    const ch = pbx.control(p.str('channelId') ?? '');
    const opts = validateRecording(p, base);
    const rec = pbx.recordings.start({ channel: ch }, opts);
    return {
      status: 201,
      body: { ...liveRecordingJson(rec), state: 'queued' },
      location: `/recordings/live/${encodeURIComponent(rec.name)}`,
    };
  },
  'channels.getChannelVar': (p, pbx) => {
    const variable = p.str('variable');
    if (!variable) throw ariError(400, 'Variable name is required');
    const ch = pbx.channels.get(p.str('channelId') ?? '');
    if (!ch) throw ariError(404, 'Provided channel was not found');
    const value = pbx.variables.read(ch, variable);
    if (value === null) throw ariError(500, 'Unable to read provided function');
    if (value === undefined) throw ariError(404, 'Provided variable was not found');
    return { status: 200, body: { value } };
  },
  'channels.setChannelVar': (p, pbx) => {
    const variable = p.str('variable');
    if (!variable) throw ariError(400, 'Variable name is required');
    const ch = pbx.control(p.str('channelId') ?? '');
    if (!pbx.variables.write(ch, variable, p.str('value') ?? ''))
      throw ariError(400, 'Failed to execute function');
    return noContent;
  },
  'channels.dial': (p, pbx) => {
    const ch = pbx.control(p.str('channelId') ?? '');
    pbx.legs.dial(ch, p.str('caller'), p.int('timeout', 0));
    return noContent;
  },

  // ---- bridges -------------------------------------------------------------------------------
  'bridges.list': (_p, pbx) => ({ status: 200, body: [...pbx.bridges.values()].map(bridgeJson) }),
  'bridges.create': (p, pbx) => {
    const bridgeId = p.str('bridgeId');
    if (bridgeId && pbx.bridges.has(bridgeId))
      throw ariError(409, `Bridge with id '${bridgeId}' already exists`);
    return { status: 200, body: bridgeJson(createBridge(p, pbx, bridgeId)) };
  },
  'bridges.createWithId': (p, pbx) => {
    const bridgeId = p.str('bridgeId') ?? '';
    const existing = pbx.bridges.get(bridgeId);
    if (existing) {
      const name = p.str('name');
      if (name && name !== existing.name)
        throw ariError(500, 'Changing bridge name is not implemented');
      if (p.str('type'))
        throw ariError(500, 'Supplying a bridge type when updating a bridge is not allowed.');
      return { status: 200, body: bridgeJson(existing) };
    }
    return { status: 200, body: bridgeJson(createBridge(p, pbx, bridgeId)) };
  },
  'bridges.get': (p, pbx) => ({
    status: 200,
    body: bridgeJson(requireBridge(pbx, p.str('bridgeId'))),
  }),
  'bridges.destroy': (p, pbx) => {
    pbx.bridging.destroy(requireBridge(pbx, p.str('bridgeId')));
    return noContent;
  },
  'bridges.addChannel': (p, pbx) => {
    const bridge = requireBridge(pbx, p.str('bridgeId'));
    const chans = bridgeChannels(pbx, p.list('channel'));
    pbx.bridging.add(bridge, chans, p.bool('inhibitConnectedLineUpdates', false));
    return noContent;
  },
  'bridges.removeChannel': (p, pbx) => {
    const bridge = requireBridge(pbx, p.str('bridgeId'));
    const chans = bridgeChannels(pbx, p.list('channel'));
    if (chans.some((c) => c.bridgeId !== bridge.id))
      throw ariError(422, 'Channel not in this bridge');
    pbx.bridging.remove(bridge, chans);
    return noContent;
  },
  'bridges.play': (p, pbx) => playOnBridge(p, pbx, p.str('playbackId')),
  'bridges.playWithId': (p, pbx) => playOnBridge(p, pbx, p.str('playbackId')),
  'bridges.record': (p, pbx) => {
    const bridge = requireBridge(pbx, p.str('bridgeId'));
    const opts = validateRecording(p, recordOptions(p));
    const rec = pbx.recordings.start({ bridge }, opts);
    return {
      status: 201,
      body: { ...liveRecordingJson(rec), state: 'queued' },
      location: `/recordings/live/${encodeURIComponent(rec.name)}`,
    };
  },

  // ---- recordings ----------------------------------------------------------------------------
  'recordings.listStored': (_p, pbx) => ({
    status: 200,
    body: [...pbx.recordings.stored.values()].map((r) => ({ name: r.name, format: r.format })),
  }),
  'recordings.getStored': (p, pbx) => {
    const rec = pbx.recordings.stored.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    return { status: 200, body: { name: rec.name, format: rec.format } };
  },
  'recordings.deleteStored': (p, pbx) => {
    const name = p.str('recordingName') ?? '';
    if (!pbx.recordings.stored.delete(name)) throw ariError(404, 'Recording not found');
    return noContent;
  },
  'recordings.getStoredFile': (p, pbx) => {
    const rec = pbx.recordings.stored.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    return {
      status: 200,
      file: { contentType: contentTypeOf(rec.format), data: audioFile(rec.format, rec.frames) },
    };
  },
  'recordings.getLive': (p, pbx) => {
    const rec = pbx.recordings.live.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    return { status: 200, body: liveRecordingJson(rec) };
  },
  'recordings.cancel': (p, pbx) => {
    const rec = pbx.recordings.live.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    pbx.recordings.finish(rec, 'canceled', true);
    return noContent;
  },
  'recordings.stop': (p, pbx) => {
    const rec = pbx.recordings.live.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    pbx.recordings.finish(rec, 'done', true);
    return noContent;
  },

  // ---- playbacks -----------------------------------------------------------------------------
  'playbacks.get': (p, pbx) => {
    const pb = pbx.playbacks.get(p.str('playbackId') ?? '');
    if (!pb) throw ariError(404, 'Playback not found');
    return { status: 200, body: playbackJson(pb) };
  },
  'playbacks.stop': (p, pbx) => {
    const pb = pbx.playbacks.get(p.str('playbackId') ?? '');
    if (!pb) throw ariError(404, 'Playback not found');
    pbx.playbacks.stop(pb);
    return noContent;
  },

  // ---- deviceStates --------------------------------------------------------------------------
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

  // ---- applications --------------------------------------------------------------------------
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

function createBridge(p: Params, pbx: Pbx, bridgeId: string | undefined): SimBridge {
  const opts: { bridgeId?: string; type?: string; name?: string } = {};
  if (bridgeId) opts.bridgeId = bridgeId;
  const type = p.str('type');
  if (type) opts.type = type;
  const name = p.str('name');
  if (name) opts.name = name;
  return pbx.bridging.create(opts);
}

function playOnChannel(p: Params, pbx: Pbx, playbackId: string | undefined): HandlerResult {
  const ch = pbx.control(p.str('channelId') ?? '');
  pbx.assertValidState(ch);
  const media = playMedia(p);
  const pb = pbx.playbacks.queue({ channel: ch }, media, p.str('lang') ?? ch.language, playbackId);
  return {
    status: 201,
    body: playbackJson(pb),
    location: `/playbacks/${pb.id}`,
    afterResponse: () => pbx.playbacks.kick(pb),
  };
}

function playOnBridge(p: Params, pbx: Pbx, playbackId: string | undefined): HandlerResult {
  const bridge = requireBridge(pbx, p.str('bridgeId'));
  const media = playMedia(p);
  const pb = pbx.playbacks.queue({ bridge }, media, p.str('lang') ?? 'en', playbackId);
  return {
    status: 201,
    body: playbackJson(pb),
    location: `/playbacks/${pb.id}`,
    afterResponse: () => pbx.playbacks.kick(pb),
  };
}
