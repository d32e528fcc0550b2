/**
 * Traces recorded from a real Asterisk 22 (copied from `shared/fixtures/ari/traces/` into
 * `test/simulator/traces/`): loading, mapping trace ids to the simulator's ids, and the normalised
 * views the fidelity tests compare (ChannelVarset noise, ids and timestamps left out).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Json = Record<string, unknown>;

export interface RestLine {
  kind: 'rest';
  t: number;
  method: string;
  path: string;
  query: Record<string, string | number | boolean>;
  body?: unknown;
  status: number;
  response: unknown;
}
export interface EventLine {
  kind: 'event';
  t: number;
  event: Json & { type: string };
}
export interface NoteLine {
  kind: 'note';
  t: number;
  text: string;
}
export type TraceLine = RestLine | EventLine | NoteLine;

const TRACE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'traces');

/** Load `traces/<name>.jsonl`. */
export function loadTrace(name: string): TraceLine[] {
  return readFileSync(join(TRACE_DIR, `${name}.jsonl`), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TraceLine);
}

/** Trace id → simulator id, applied to ids and to strings containing them (appArgs, app_data…). */
export class IdMap {
  private readonly map = new Map<string, string>();

  set(traceId: string, simId: string): void {
    if (traceId && !this.map.has(traceId)) this.map.set(traceId, simId);
  }

  has(traceId: string): boolean {
    return this.map.has(traceId);
  }

  id(traceId: string): string {
    return this.map.get(traceId) ?? traceId;
  }

  /** Replace every known trace id inside `text` (longest first). */
  str(text: string): string {
    if (this.map.size === 0) return text;
    const keys = [...this.map.keys()].sort((a, b) => b.length - a.length);
    const pattern = new RegExp(
      keys.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'),
      'g',
    );
    return text.replace(pattern, (k) => this.map.get(k) ?? k);
  }

  /** Deep-map every string of a JSON value. */
  deep<T>(value: T): T {
    if (typeof value === 'string') return this.str(value) as T;
    if (Array.isArray(value)) return value.map((v: unknown) => this.deep(v)) as T;
    if (value && typeof value === 'object') {
      const out: Json = {};
      for (const [k, v] of Object.entries(value as Json)) out[k] = this.deep(v);
      return out as T;
    }
    return value;
  }
}

/**
 * The entities an event is about: `channel:<id>`, `bridge:<id>`, `playback:<id>`,
 * `recording:<name>`, `device:<name>`, `endpoint:<tech>/<resource>`.
 */
export function entitiesOf(event: Json): string[] {
  const out: string[] = [];
  const ch = (event.channel ?? event.peer) as Json | undefined;
  if (ch && typeof ch.id === 'string') out.push(`channel:${ch.id}`);
  const bridge = event.bridge as Json | undefined;
  if (bridge && typeof bridge.id === 'string') out.push(`bridge:${bridge.id}`);
  const pb = event.playback as Json | undefined;
  if (pb && typeof pb.id === 'string') out.push(`playback:${pb.id}`);
  const rec = event.recording as Json | undefined;
  if (rec && typeof rec.name === 'string') out.push(`recording:${rec.name}`);
  const device = event.device_state as Json | undefined;
  if (device && typeof device.name === 'string') out.push(`device:${device.name}`);
  const endpoint = event.endpoint as Json | undefined;
  if (endpoint && typeof endpoint.resource === 'string')
    out.push(`endpoint:${String(endpoint.technology)}/${endpoint.resource}`);
  return out;
}

/** Channel names with their counter masked (`PJSIP/101-0000003e` → `PJSIP/101-########`). */
function maskName(name: unknown): unknown {
  return typeof name === 'string' ? name.replace(/-[0-9a-f]{8}$/, '-########') : name;
}

function channelView(ch: Json | undefined, withState: boolean): Json | undefined {
  if (!ch) return undefined;
  const view: Json = {
    id: ch.id,
    name: maskName(ch.name),
    caller: ch.caller,
    connected: ch.connected,
    accountcode: ch.accountcode,
    dialplan: ch.dialplan,
    language: ch.language,
  };
  if (withState) view.state = ch.state;
  return view;
}

const EVENT_FIELDS = [
  'args',
  'dialstatus',
  'dialstring',
  'forward',
  'cause',
  'cause_txt',
  'tech_cause',
  'soft',
  'dialplan_app',
  'dialplan_app_data',
  'caller_presentation',
  'caller_presentation_txt',
  'variable',
  'value',
];

/**
 * What the tests compare of an event: type, application, channel (state, caller, connected,
 * dialplan, masked name), event fields (cause, dialstatus, args…), bridge, playback and
 * recording — not timestamps, creation times, protocol ids or name counters.
 */
export function eventView(event: Json): Json {
  const view: Json = {
    type: event.type,
    application: event.application,
    asterisk_id: typeof event.asterisk_id === 'string',
  };
  for (const f of EVENT_FIELDS) if (f in event) view[f] = event[f];
  // The order of `Dial ""`, `Dial RINGING` and the Ringing state change is a race in Asterisk
  // (the traces show all orders), so a Dial's peer state is not compared.
  const dialPeer = event.type === 'Dial';
  const ch = channelView((event.channel ?? event.peer) as Json | undefined, !dialPeer);
  if (ch) view[event.peer ? 'peer' : 'channel'] = ch;
  const bridge = event.bridge as Json | undefined;
  if (bridge) {
    view.bridge = {
      id: bridge.id,
      technology: bridge.technology,
      bridge_type: bridge.bridge_type,
      bridge_class: bridge.bridge_class,
      creator: bridge.creator,
      name: bridge.name,
      channels: bridge.channels,
      video_mode: bridge.video_mode,
    };
  }
  if (event.playback) view.playback = event.playback;
  if (event.recording) view.recording = event.recording;
  if (event.device_state) view.device_state = event.device_state;
  if (event.endpoint) view.endpoint = event.endpoint;
  if (event.type === 'ChannelDtmfReceived') {
    view.digit = event.digit;
    view.duration_ms = event.duration_ms;
  }
  return view;
}

/** Sort key of events whose relative order is an Asterisk race (see {@link eventView}). */
function ringingRaceKey(view: Json): string | undefined {
  if (view.type === 'Dial' && (view.dialstatus === '' || view.dialstatus === 'RINGING'))
    return `Dial:${String(view.dialstatus)}`;
  if (view.type === 'ChannelStateChange' && (view.channel as Json | undefined)?.state === 'Ringing')
    return 'State:Ringing';
  return undefined;
}

/**
 * Per-entity sequences of event views (ChannelVarset left out), with runs of the racy ringing
 * events (`Dial ""`, `Dial RINGING`, state Ringing) put in a canonical order.
 */
export function sequences(events: Json[]): Map<string, Json[]> {
  const out = new Map<string, Json[]>();
  for (const e of events) {
    if (e.type === 'ChannelVarset') continue;
    const view = eventView(e);
    for (const entity of entitiesOf(e)) {
      let seq = out.get(entity);
      if (!seq) out.set(entity, (seq = []));
      seq.push(view);
    }
  }
  for (const seq of out.values()) {
    let i = 0;
    while (i < seq.length) {
      if (ringingRaceKey(seq[i] as Json) === undefined) {
        i++;
        continue;
      }
      let j = i;
      while (j < seq.length && ringingRaceKey(seq[j] as Json) !== undefined) j++;
      const run = seq
        .slice(i, j)
        .sort((a, b) => (ringingRaceKey(a) as string).localeCompare(ringingRaceKey(b) as string));
      seq.splice(i, j - i, ...run);
      i = j;
    }
  }
  return out;
}

/** A loose key to wait for "the same" event in the simulator's stream. */
export function waitKey(event: Json): string {
  const ch = (event.channel ?? event.peer) as Json | undefined;
  const parts = [String(event.type), entitiesOf(event).join('+')];
  if ('dialstatus' in event) parts.push(String(event.dialstatus));
  if (event.type === 'ChannelStateChange' && ch) parts.push(String(ch.state));
  const pb = event.playback as Json | undefined;
  if (pb) parts.push(String(pb.media_uri), String(pb.state));
  return parts.join('|');
}

/** Entities a REST call acts on, to tell its own effects from the events that triggered it. */
function restTargets(line: RestLine): {
  channels: Set<string>;
  bridges: Set<string>;
  created: Set<string>;
} {
  const channels = new Set<string>();
  const bridges = new Set<string>();
  const created = new Set<string>();
  const seg = line.path.split('/').filter(Boolean);
  if (seg[0] === 'channels' && seg[1] && seg[1] !== 'create') channels.add(seg[1]);
  if (seg[0] === 'bridges' && seg[1]) bridges.add(seg[1]);
  const channelParam = line.query.channel;
  if (typeof channelParam === 'string') for (const c of channelParam.split(',')) channels.add(c);
  const response = line.response as Json | null;
  if (response && typeof response === 'object' && typeof response.id === 'string')
    created.add(response.id);
  return { channels, bridges, created };
}

/** Event types a REST operation causes on its targets. */
function effectTypes(line: RestLine): string[] {
  const seg = line.path.split('/').filter(Boolean);
  const op =
    line.method +
    ' ' +
    (seg[0] === 'channels'
      ? (seg[2] ?? (seg[1] === 'create' ? 'create' : seg[1] ? 'id' : ''))
      : seg[0] === 'bridges'
        ? (seg[2] ?? (seg[1] ? 'id' : ''))
        : seg[0]);
  switch (op) {
    case 'DELETE id':
      return seg[0] === 'channels'
        ? [
            'ChannelHangupRequest',
            'ChannelLeftBridge',
            'StasisEnd',
            'ChannelDestroyed',
            'Dial',
            'PlaybackFinished',
            'RecordingFinished',
          ]
        : ['BridgeDestroyed', 'ChannelLeftBridge', 'RecordingFinished'];
    case 'POST dial':
      return [
        'ChannelConnectedLine',
        'Dial',
        'ChannelStateChange',
        'ChannelHangupRequest',
        'StasisEnd',
        'ChannelDestroyed',
      ];
    case 'POST answer':
      return ['ChannelStateChange'];
    case 'POST addChannel':
      return ['ChannelEnteredBridge', 'ChannelLeftBridge', 'ChannelConnectedLine'];
    case 'POST removeChannel':
      return ['ChannelLeftBridge', 'ChannelConnectedLine'];
    case 'POST record':
      return ['RecordingStarted'];
    case 'POST play':
      return ['PlaybackStarted'];
    case 'POST continue':
      return ['StasisEnd', 'ChannelLeftBridge', 'ChannelDialplan'];
    default:
      return [];
  }
}

/** Whether `event` is an effect of the REST call `line` (a failed call has no effects). */
export function isEffectOf(event: Json, line: RestLine): boolean {
  if (line.status >= 400) return false;
  const targets = restTargets(line);
  const ids = entitiesOf(event);
  if (ids.some((e) => targets.created.has(e.slice(e.indexOf(':') + 1)))) return true;
  // Device and endpoint states follow the channels a call creates, dials or hangs up.
  if (
    (event.type === 'DeviceStateChanged' || event.type === 'EndpointStateChange') &&
    (targets.channels.size > 0 || targets.created.size > 0)
  )
    return true;
  const types = effectTypes(line);
  if (!types.includes(String(event.type))) return false;
  const rec = event.recording as Json | undefined;
  if (rec && typeof rec.target_uri === 'string') {
    const [kind, id = ''] = rec.target_uri.split(':');
    if (
      (kind === 'bridge' && targets.bridges.has(id)) ||
      (kind === 'channel' && targets.channels.has(id))
    )
      return true;
  }
  return ids.some((e) => {
    const [kind, id = ''] = [e.slice(0, e.indexOf(':')), e.slice(e.indexOf(':') + 1)];
    return (
      (kind === 'channel' && targets.channels.has(id)) ||
      (kind === 'bridge' && targets.bridges.has(id))
    );
  });
}

/**
 * The trace event a REST call reacted to: the latest earlier event that is neither ChannelVarset
 * noise nor an effect of the call itself; undefined when the previous line is a REST call (the
 * call simply followed it).
 */
export function triggerOf(
  trace: TraceLine[],
  index: number,
): { line: EventLine; index: number } | undefined {
  const rest = trace[index] as RestLine;
  for (let j = index - 1; j >= 0; j--) {
    const l = trace[j] as TraceLine;
    if (l.kind === 'rest') return undefined;
    if (l.kind === 'note') continue;
    if (l.event.type === 'ChannelVarset' || isEffectOf(l.event, rest)) continue;
    return { line: l, index: j };
  }
  return undefined;
}
