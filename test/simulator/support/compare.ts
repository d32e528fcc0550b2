/**
 * Assertions of the fidelity tests: the simulator's events and REST answers against a trace.
 */
import { expect } from 'chai';
import type { AppSocket, ReplayedCall } from './driver.ts';
import { traceEvents } from './driver.ts';
import { sequences, type IdMap, type Json, type TraceLine } from './trace.ts';

const VOLATILE = new Set([
  'creationtime',
  'protocol_id',
  'timestamp',
  'startup_time',
  'last_reload_time',
]);

/**
 * A REST answer without what legitimately differs between runs (times, SIP Call-IDs, name
 * counters). A new playback is answered `queued`, or `playing` when Asterisk's playback thread
 * started it before the answer was written (a race: dtmf-received shows `playing`,
 * autocall-playback `queued`), so both read `queued`.
 */
export function normalizeRest(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeRest);
  if (value && typeof value === 'object') {
    const out: Json = {};
    const obj = value as Json;
    if ('media_uri' in obj && 'target_uri' in obj && obj.state === 'playing')
      return normalizeRest({ ...obj, state: 'queued' });
    for (const [k, v] of Object.entries(value as Json)) {
      if (VOLATILE.has(k)) continue;
      out[k] =
        k === 'name' && typeof v === 'string'
          ? v.replace(/-[0-9a-f]{8}$/, '-########')
          : normalizeRest(v);
    }
    return out;
  }
  return value;
}

/**
 * Wait until the simulator has sent as many events per entity as the trace has, then compare the
 * per-channel/bridge/playback/recording sequences (ChannelVarset noise excluded).
 */
export async function expectSameEvents(
  socket: AppSocket,
  trace: TraceLine[],
  ids: IdMap,
): Promise<void> {
  const expected = sequences(traceEvents(trace, ids));
  try {
    await socket.until((events) => {
      const got = sequences(events);
      return [...expected].every(([entity, seq]) => (got.get(entity)?.length ?? 0) >= seq.length);
    }, 'every trace event');
  } catch {
    // fall through: the comparison below shows what is missing
  }
  const got = sequences(socket.events);
  for (const [entity, seq] of expected) {
    expect(got.get(entity) ?? [], `events of ${entity}`).to.deep.equal(seq);
  }
  expect([...got.keys()].sort(), 'entities with events').to.deep.equal([...expected.keys()].sort());
}

/** Options of {@link expectSameRest}. */
export interface RestCompareOptions {
  /** Check of a binary answer (e.g. a WAV file) instead of byte equality. */
  binary?: (call: ReplayedCall) => void;
}

/**
 * Every replayed REST call answered the trace's status; error bodies are identical, JSON bodies
 * equal after {@link normalizeRest}, 204s empty.
 */
export function expectSameRest(
  calls: ReplayedCall[],
  ids: IdMap,
  options: RestCompareOptions = {},
): void {
  for (const call of calls) {
    const { line, result } = call;
    const what = `${line.method} ${line.path} ${JSON.stringify(line.query)}`;
    expect(result.status, what).to.equal(line.status);
    const summary = line.response as Json | null;
    if (line.status === 204) {
      expect(result.bytes.length, `${what} body`).to.equal(0);
    } else if (line.status >= 400) {
      expect(result.body, `${what} error body`).to.deep.equal(line.response);
      expect(result.contentType, `${what} content type`).to.match(/^application\/json/);
    } else if (
      summary &&
      typeof summary === 'object' &&
      'contentType' in summary &&
      'bytes' in summary &&
      typeof summary.head === 'string'
    ) {
      expect(result.contentType, `${what} content type`).to.equal(summary.contentType);
      if (options.binary) options.binary(call);
      else expect(result.bytes.length, `${what} size`).to.equal(summary.bytes);
    } else {
      expect(normalizeRest(result.body), `${what} body`).to.deep.equal(
        normalizeRest(ids.deep(line.response)),
      );
    }
  }
}

/** Events per type, ChannelVarset per variable (`ChannelVarset:BRIDGEPEER`), sorted. */
export function eventVolume(events: Json[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) {
    const key = e.type === 'ChannelVarset' ? `ChannelVarset:${String(e.variable)}` : String(e.type);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * The simulator sent as many events of each type (and ChannelVarset of each variable) as the
 * real Asterisk did in the trace: the event volume an engine handles per call is the real one.
 */
export function expectSameVolume(socket: AppSocket, trace: TraceLine[]): void {
  const real = trace
    .filter((l): l is Extract<TraceLine, { kind: 'event' }> => l.kind === 'event')
    .map((l) => l.event);
  expect(eventVolume(socket.events), 'events per type').to.deep.equal(eventVolume(real));
}
