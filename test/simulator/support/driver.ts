/**
 * A minimal Stasis app for the fidelity tests, talking to the simulator the way the traces' app
 * talked to Asterisk: plain `fetch` for REST and the `ws` package for `/ari/events`. The replayer
 * sends each REST call of a trace once the simulator has produced the event that call reacted to
 * in the trace, with trace ids replaced by the simulator's.
 */
import WebSocket from 'ws';
import type { PbxSimulator } from '../../../src/simulator/index.ts';
import {
  IdMap,
  isEffectOf,
  triggerOf,
  waitKey,
  type Json,
  type RestLine,
  type TraceLine,
} from './trace.ts';

/** Default wait for an awaited event, real milliseconds. */
const WAIT_MS = 5000;

/** The app's event WebSocket; events of every connection accumulate in {@link events}. */
export class AppSocket {
  readonly events: Json[] = [];
  private ws: WebSocket | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly sim: PbxSimulator,
    readonly app: string,
    private readonly subscribeAll: boolean,
  ) {}

  /** Connect `/ari/events?app=<app>&api_key=...&subscribeAll=<subscribeAll>` and wait until open. */
  static async open(sim: PbxSimulator, app = 'crm-app', subscribeAll = false): Promise<AppSocket> {
    const socket = new AppSocket(sim, app, subscribeAll);
    await socket.connect();
    return socket;
  }

  async connect(): Promise<void> {
    const url = `${this.sim.url.replace(/^http/, 'ws')}/ari/events?app=${encodeURIComponent(this.app)}&api_key=${this.sim.username}:${this.sim.password}&subscribeAll=${String(this.subscribeAll)}`;
    const ws = new WebSocket(url);
    ws.on('message', (data) => {
      this.events.push(JSON.parse(data.toString()) as Json);
      for (const w of [...this.waiters]) w();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.ws = ws;
  }

  /** Close the WebSocket and wait until the close handshake is done. */
  async close(): Promise<void> {
    const ws = this.ws;
    this.ws = undefined;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
    });
  }

  /** Resolve once `pred` holds over the events received so far; reject after `timeoutMs`. */
  until(pred: (events: Json[]) => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    if (pred(this.events)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred(this.events)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `timed out waiting for ${what}; got ${this.events.map((e) => e.type).join(', ')}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Resolve with the first (or next after `from`) event matching `pred`. */
  async next(
    pred: (e: Json) => boolean,
    what: string,
    from = 0,
    timeoutMs = WAIT_MS,
  ): Promise<Json> {
    await this.until((events) => events.slice(from).some(pred), what, timeoutMs);
    return this.events.slice(from).find(pred) as Json;
  }
}

/** An ARI REST answer. */
export interface RestResult {
  status: number;
  contentType: string;
  body: unknown;
  bytes: Buffer;
}

/** Plain-fetch ARI REST calls with basic auth. */
export async function ari(
  sim: PbxSimulator,
  method: string,
  path: string,
  query: Record<string, string | number | boolean> = {},
  body?: unknown,
): Promise<RestResult> {
  const qs = new URLSearchParams(
    Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
  ).toString();
  const res = await fetch(`${sim.url}/ari${path}${qs ? `?${qs}` : ''}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`${sim.username}:${sim.password}`).toString('base64')}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const contentType = res.headers.get('content-type') ?? '';
  const parsed =
    contentType.startsWith('application/json') && bytes.length > 0
      ? (JSON.parse(bytes.toString('utf8')) as unknown)
      : undefined;
  return { status: res.status, contentType, body: parsed, bytes };
}

/** One replayed REST call: the trace line and what the simulator answered. */
export interface ReplayedCall {
  line: RestLine;
  result: RestResult;
}

/** Hooks of a replay. */
export interface ReplayHooks {
  /** Run at a trace note whose text starts with the key (e.g. closing/reopening the WebSocket). */
  notes?: Record<string, () => Promise<void>>;
  /** Run before each REST call is awaited and sent (e.g. to start a call the trace reacts to). */
  beforeRest?: (line: RestLine) => Promise<void>;
}

/**
 * Replay the REST calls of `trace` against the simulator, each after its trigger event (see
 * {@link triggerOf}) has been seen on `socket`, mapping ids with `ids` (trace → simulator) as
 * answers reveal them.
 */
export async function replay(
  sim: PbxSimulator,
  socket: AppSocket,
  trace: TraceLine[],
  ids: IdMap,
  hooks: ReplayHooks = {},
): Promise<ReplayedCall[]> {
  const calls: ReplayedCall[] = [];
  for (let i = 0; i < trace.length; i++) {
    const line = trace[i] as TraceLine;
    if (line.kind === 'note') {
      for (const [prefix, action] of Object.entries(hooks.notes ?? {}))
        if (line.text.startsWith(prefix)) await action();
      continue;
    }
    if (line.kind !== 'rest') continue;
    await hooks.beforeRest?.(line);
    const trigger = triggerOf(trace, i);
    if (trigger) {
      const key = waitKey(ids.deep(trigger.line.event));
      let needed = 0;
      for (let j = 0; j <= trigger.index; j++) {
        const l = trace[j] as TraceLine;
        if (l.kind === 'event' && waitKey(ids.deep(l.event)) === key) needed++;
      }
      await socket.until(
        (events) => events.filter((e) => waitKey(e) === key).length >= needed,
        `${key} (#${needed}) before ${line.method} ${line.path}`,
      );
    }
    const query: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(line.query))
      query[k] = typeof v === 'string' ? ids.str(v) : v;
    const result = await ari(
      sim,
      line.method,
      ids.str(line.path),
      query,
      line.body === undefined ? undefined : ids.deep(line.body),
    );
    const traceId = (line.response as Json | null)?.id;
    const simId = (result.body as Json | undefined)?.id;
    if (typeof traceId === 'string' && typeof simId === 'string') ids.set(traceId, simId);
    calls.push({ line, result });
  }
  return calls;
}

/** Events of the trace (in order), ids mapped to the simulator's. */
export function traceEvents(trace: TraceLine[], ids: IdMap): Json[] {
  return trace
    .filter((l): l is Extract<TraceLine, { kind: 'event' }> => l.kind === 'event')
    .map((l) => ids.deep(l.event));
}

/** Whether an event is one of the REST call's own effects (re-exported for tests). */
export { isEffectOf };

/** Whether an event is about channel `id` (as `channel`, or `peer` for Dial events). */
export const about =
  (id: string) =>
  (e: Json): boolean =>
    ((e.channel ?? e.peer) as Json | undefined)?.id === id;

/**
 * Drive the simulator to an answered inbound call the way the engine would: the caller enters
 * Stasis, operator leg `op` (PJSIP/101, which must answer) is created and dialled, then both are
 * put in mixing bridge `b1` (the caller is answered first when `answerCaller`). Resolves with the
 * caller's channel id once `op` entered the bridge.
 */
export async function bridgeInboundCall(
  sim: PbxSimulator,
  socket: AppSocket,
  call: { from: string; to: string; answerCaller?: boolean },
): Promise<string> {
  const { channelId } = await sim.injectInboundCall({ from: call.from, to: call.to });
  await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
  await ari(sim, 'POST', '/channels/create', {
    endpoint: 'PJSIP/101',
    app: 'crm-app',
    channelId: 'op',
  });
  await ari(sim, 'POST', '/channels/op/dial', { caller: channelId });
  await socket.next((e) => e.type === 'Dial' && e.dialstatus === 'ANSWER', 'ANSWER');
  if (call.answerCaller) await ari(sim, 'POST', `/channels/${channelId}/answer`);
  await ari(sim, 'POST', '/bridges/b1', { type: 'mixing' });
  await ari(sim, 'POST', '/bridges/b1/addChannel', { channel: `${channelId},op` });
  await socket.next((e) => e.type === 'ChannelEnteredBridge' && about('op')(e), 'bridged');
  return channelId;
}
