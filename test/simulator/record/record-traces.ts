/**
 * Records ARI traces from the real Asterisk 22.10.1 kit into `test/simulator/traces/`, in the
 * format of the existing traces (one JSON line per REST call + answer, event, or note; `t` in ms
 * since the start of the scenario). The app connects like the engine (`/ari/events?app=crm-app&
 * subscribeAll=false`), SIPp processes are the phones, a local HTTP server serves WAV media.
 *
 *   npx tsx test/simulator/record/record-traces.ts [scenario ...]   # all when none given
 *
 * Scenarios: dtmf-received, play-http-media, device-endpoint-state, event-filter, amd-continue.
 * The Asterisk runs in its own home (`/tmp/h-simfid-ast`, or $RECORD_HOME) on the ports of
 * {@link DEFAULT_PORTS} (each shifted by $RECORD_PORT_SHIFT); it and every SIPp process are
 * stopped at the end, also on failure.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { DEFAULT_PORTS, Kit, Phone } from './kit.ts';

type Json = Record<string, unknown>;
type Query = Record<string, string | number | boolean>;

const TRACE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'traces');
const APP = 'crm-app';
const CALLER = '79161234567';
const DID = '74951234567';
const COMPANY = '74957654321';

/** One scenario's recording: REST calls, events and notes, in order. */
class Recorder {
  readonly lines: Json[] = [];
  readonly events: Json[] = [];
  private readonly t0 = Date.now();
  private ws: WebSocket | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly kit: Kit,
    readonly name: string,
  ) {
    this.note(name);
  }

  private t(): number {
    return Date.now() - this.t0;
  }

  note(text: string): void {
    this.lines.push({ t: this.t(), kind: 'note', text });
    console.log(`  [${this.name}] ${text}`);
  }

  async connect(): Promise<void> {
    const url = `${this.kit.ariUrl.replace(/^http/, 'ws')}/ari/events?app=${APP}&api_key=${this.kit.username}:${this.kit.password}&subscribeAll=false`;
    const ws = new WebSocket(url);
    ws.on('message', (data) => {
      const event = JSON.parse(data.toString()) as Json;
      this.lines.push({ t: this.t(), kind: 'event', event });
      this.events.push(event);
      for (const w of [...this.waiters]) w();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.ws = ws;
  }

  async close(): Promise<void> {
    const ws = this.ws;
    this.ws = undefined;
    if (!ws) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
    });
  }

  /** An ARI REST call, recorded with its answer (binary answers summarised). */
  async rest(method: string, path: string, query: Query = {}, body?: unknown): Promise<Json> {
    const qs = new URLSearchParams(
      Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();
    const res = await fetch(`${this.kit.ariUrl}/ari${path}${qs ? `?${qs}` : ''}`, {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`${this.kit.username}:${this.kit.password}`).toString('base64')}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const contentType = res.headers.get('content-type') ?? '';
    let response: unknown = null;
    if (bytes.length > 0) {
      response = contentType.startsWith('application/json')
        ? (JSON.parse(bytes.toString('utf8')) as unknown)
        : { contentType, bytes: bytes.length, head: bytes.subarray(0, 16).toString('hex') };
    }
    const line: Json = { t: this.t(), kind: 'rest', method, path, query };
    if (body !== undefined) line.body = body;
    line.status = res.status;
    line.response = response;
    this.lines.push(line);
    return { status: res.status, body: response };
  }

  /** Resolve with the first event (after index `from`) matching `pred`. */
  next(pred: (e: Json) => boolean, what: string, timeoutMs = 15_000, from = 0): Promise<Json> {
    const found = () => this.events.slice(from).find(pred);
    const hit = found();
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const e = found();
        if (!e) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.name}: timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Wait a little for stragglers (events that may still come), without awaiting anything. */
  settle(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  write(): void {
    const file = join(TRACE_DIR, `${this.name}.jsonl`);
    writeFileSync(file, this.lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    console.log(`wrote ${file} (${this.lines.length} lines, ${this.events.length} events)`);
  }
}

const chan = (e: Json): Json => (e.channel ?? e.peer ?? {}) as Json;
const isType =
  (type: string, id?: string) =>
  (e: Json): boolean =>
    e.type === type && (id === undefined || chan(e).id === id);

/** A WAV (RIFF PCM 8 kHz 16-bit mono) of `ms` milliseconds of a 440 Hz tone. */
function toneWav(ms: number): Buffer {
  const samples = Math.round((8000 * ms) / 1000);
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++)
    data.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** Local HTTP media server: `/prompt.wav` (2 s tone), `/missing.wav` 404; requests noted. */
async function mediaServer(rec: () => Recorder): Promise<{ server: Server; port: number }> {
  const wav = toneWav(2000);
  const server = createServer((req: IncomingMessage, res) => {
    rec().note(`media server: ${req.method} ${req.url}`);
    if (req.url?.startsWith('/prompt.wav')) {
      res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': wav.length });
      res.end(req.method === 'HEAD' ? undefined : wav);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

interface Ctx {
  kit: Kit;
  phones: Phone[];
  sippDir: string;
  mediaPort: number;
  current: { rec?: Recorder };
}

function phone(ctx: Ctx, scenario: string, args: string[], echo = true): Phone {
  const p = new Phone(scenario, args, ctx.sippDir, echo);
  ctx.phones.push(p);
  return p;
}

/**
 * A phone answering on `port` (SIPp `scenario`, one call), `pauseMs` its talk time (`-d`) as the
 * scenario uses it.
 */
function answeringPhone(ctx: Ctx, scenario: string, port: number, pauseMs: number): Phone {
  return phone(ctx, scenario, ['-p', String(port), '-m', '1', '-d', String(pauseMs)]);
}

/**
 * Originate a call to the customer through `client-trunk` into the app with `appArgs` (POST
 * /channels) and wait for its StasisStart (among the events from index `from`); resolves with the
 * channel id.
 */
async function originateCustomer(rec: Recorder, appArgs: string, from = 0): Promise<string> {
  const orig = await rec.rest('POST', '/channels', {
    endpoint: `PJSIP/${CALLER}@client-trunk`,
    app: APP,
    appArgs,
    callerId: COMPANY,
    timeout: 30,
  });
  const id = String((orig.body as Json).id);
  await rec.next(isType('StasisStart', id), 'StasisStart', 15_000, from);
  return id;
}

/**
 * An inbound caller through pstn-in (SIPp uac.xml), talking `talkMs` after the answer; `echo`
 * false: it does not send back the RTP (and DTMF) it receives.
 */
function inboundCaller(ctx: Ctx, talkMs: number, echo = true): Phone {
  const { sip, pstn } = ctx.kit.ports;
  return phone(
    ctx,
    'uac.xml',
    [
      `127.0.0.1:${sip}`,
      '-p',
      String(pstn),
      '-s',
      DID,
      '-key',
      'caller',
      CALLER,
      '-d',
      String(talkMs),
      '-m',
      '1',
    ],
    echo,
  );
}

/**
 * dtmf-received: originate a customer (SIPp uas_answer_dtmf1: answers after 500 ms, presses 1
 * 1.5 s later) into Stasis, play hello-world; the digit arrives as ChannelDtmfReceived; the app
 * hangs up. Then inbound calls bridged with operator 101 pressing 1 in the bridge: a plain
 * `mixing` bridge (two RTP channels: native_rtp) and a `mixing,dtmf_events` one.
 */
async function dtmfReceived(ctx: Ctx): Promise<void> {
  const rec = new Recorder(ctx.kit, 'dtmf-received');
  ctx.current.rec = rec;
  await rec.connect();
  const { trunk, operators } = ctx.kit.ports;
  const customer = answeringPhone(ctx, 'uas_answer_dtmf1.xml', trunk, 500);
  const id = await originateCustomer(rec, 'autocall,dtmf');
  await rec.rest('POST', `/channels/${id}/play`, { media: 'sound:hello-world' });
  const dtmf = await rec.next(isType('ChannelDtmfReceived', id), 'ChannelDtmfReceived');
  rec.note(`customer pressed ${String(dtmf.digit)} (${String(dtmf.duration_ms)} ms)`);
  await rec.rest('DELETE', `/channels/${id}`);
  await rec.next(isType('ChannelDestroyed', id), 'ChannelDestroyed');
  await customer.done;

  for (const type of ['mixing', 'mixing,dtmf_events']) {
    rec.note(`inbound call in a ${type} bridge with operator 101, who presses 1`);
    const op = answeringPhone(ctx, 'uas_answer_dtmf1.xml', operators[0], 500);
    const from = rec.events.length;
    const caller = inboundCaller(ctx, 4000, false);
    const start = await rec.next(isType('StasisStart'), 'inbound StasisStart', 15_000, from);
    const callerId = String(chan(start).id);
    await rec.rest('POST', `/channels/${callerId}/ring`);
    const created = await rec.rest('POST', '/channels/create', {
      endpoint: 'PJSIP/101',
      app: APP,
      appArgs: `operator,${callerId}`,
    });
    const opId = String((created.body as Json).id);
    await rec.next(isType('StasisStart', opId), 'operator StasisStart', 15_000, from);
    await rec.rest('POST', `/channels/${opId}/dial`, { caller: callerId, timeout: 10 });
    await rec.next((e) => e.type === 'Dial' && e.dialstatus === 'ANSWER', 'ANSWER', 15_000, from);
    await rec.rest('POST', `/channels/${callerId}/answer`);
    const bridge = await rec.rest('POST', '/bridges', { type });
    const bridgeId = String((bridge.body as Json).id);
    await rec.rest('POST', `/bridges/${bridgeId}/addChannel`, { channel: `${callerId},${opId}` });
    await rec.next(isType('StasisEnd', callerId), 'caller hangs up', 15_000, from);
    const digits = rec.events.slice(from).filter(isType('ChannelDtmfReceived'));
    rec.note(
      `DTMF events while bridged (${type}): ${digits.map((d) => `${String(chan(d).name)} ${String(d.digit)}`).join(', ') || 'none'}`,
    );
    await rec.rest('DELETE', `/channels/${opId}`);
    await rec.next(isType('ChannelDestroyed', opId), 'operator destroyed', 15_000, from);
    await rec.rest('DELETE', `/bridges/${bridgeId}`);
    await rec.next(isType('BridgeDestroyed'), 'BridgeDestroyed', 15_000, from);
    await Promise.all([op.done, caller.done]);
  }
  await rec.settle(300);
  await rec.close();
  rec.write();
}

/**
 * play-http-media: an answered customer; play `sound:http://…/prompt.wav` (a 2 s WAV served
 * locally), then a URL answering 404, then a URL nobody listens on; the app hangs up.
 */
async function playHttpMedia(ctx: Ctx): Promise<void> {
  const rec = new Recorder(ctx.kit, 'play-http-media');
  ctx.current.rec = rec;
  await rec.connect();
  const customer = answeringPhone(ctx, 'uas_answer.xml', ctx.kit.ports.trunk, 300);
  const id = await originateCustomer(rec, 'autocall,http');
  const base = `http://127.0.0.1:${ctx.mediaPort}`;
  for (const [label, media] of [
    ['a 2 s WAV over HTTP', `sound:${base}/prompt.wav`],
    ['the same URL again (cached)', `sound:${base}/prompt.wav`],
    ['a URL answering 404', `sound:${base}/missing.wav`],
    ['a URL nobody listens on', 'sound:http://127.0.0.1:9/unreachable.wav'],
  ] as const) {
    rec.note(`play ${label}`);
    const from = rec.events.length;
    const pb = await rec.rest('POST', `/channels/${id}/play`, { media });
    if (pb.status !== 201) continue;
    const pbId = String((pb.body as Json).id);
    await rec.next(
      (e) => e.type === 'PlaybackFinished' && (e.playback as Json).id === pbId,
      `PlaybackFinished of ${label}`,
      15_000,
      from,
    );
  }
  await rec.rest('DELETE', `/channels/${id}`);
  await rec.next(isType('ChannelDestroyed', id), 'ChannelDestroyed');
  await customer.done;
  await rec.settle(300);
  await rec.close();
  rec.write();
}

/**
 * device-endpoint-state: subscribe the app to `endpoint:PJSIP/101` and `deviceState:PJSIP/101`
 * (and the errors for unknown sources); originate 101 (rings 1 s, answers), hang up; a custom
 * `Stasis:` device state; unsubscribe; the same call again shows no state events.
 */
async function deviceEndpointState(ctx: Ctx): Promise<void> {
  const rec = new Recorder(ctx.kit, 'device-endpoint-state');
  ctx.current.rec = rec;
  await rec.connect();
  await rec.rest('GET', `/applications/${APP}`);
  await rec.rest('POST', `/applications/${APP}/subscription`, {
    eventSource: 'endpoint:PJSIP/101,deviceState:PJSIP/101',
  });
  await rec.rest('POST', `/applications/${APP}/subscription`, { eventSource: 'foo:bar' });
  await rec.rest('POST', `/applications/${APP}/subscription`, {
    eventSource: 'endpoint:PJSIP/999',
  });
  await rec.rest('POST', `/applications/${APP}/subscription`, {
    eventSource: 'deviceState:Stasis:agent-7',
  });
  await rec.rest('GET', '/deviceStates/PJSIP%2F101');
  const { operators } = ctx.kit.ports;
  const call = async (label: string): Promise<void> => {
    rec.note(label);
    const op = answeringPhone(ctx, 'uas_answer.xml', operators[0], 1000);
    const from = rec.events.length;
    const orig = await rec.rest('POST', '/channels', {
      endpoint: 'PJSIP/101',
      app: APP,
      appArgs: 'presence',
      callerId: COMPANY,
      timeout: 30,
    });
    const id = String((orig.body as Json).id);
    await rec.next(isType('StasisStart', id), 'StasisStart', 15_000, from);
    await rec.rest('GET', '/deviceStates/PJSIP%2F101');
    await rec.rest('GET', '/endpoints/PJSIP/101');
    await rec.rest('DELETE', `/channels/${id}`);
    await rec.next(isType('ChannelDestroyed', id), 'ChannelDestroyed', 15_000, from);
    await op.done;
    await rec.settle(500);
  };
  await call('originate 101 (rings 1 s, answers), hang up');
  await rec.rest('PUT', '/deviceStates/Stasis:agent-7', { deviceState: 'INUSE' });
  await rec
    .next(
      (e) => e.type === 'DeviceStateChanged' && (e.device_state as Json).name === 'Stasis:agent-7',
      'custom DeviceStateChanged',
      3000,
    )
    .catch(() => rec.note('no DeviceStateChanged for Stasis:agent-7'));
  await rec.rest('GET', `/applications/${APP}`);
  await rec.rest('DELETE', `/applications/${APP}/subscription`, {
    eventSource: 'endpoint:PJSIP/101,deviceState:PJSIP/101,deviceState:Stasis:agent-7',
  });
  await rec.rest('DELETE', `/applications/${APP}/subscription`, {
    eventSource: 'endpoint:PJSIP/101',
  });
  await rec.rest('DELETE', '/deviceStates/Stasis:agent-7');
  await call('unsubscribed: the same call again');
  await rec.rest('GET', `/applications/${APP}`);
  await rec.close();
  rec.write();
}

/**
 * event-filter: `PUT /applications/{app}/eventFilter` (disallow ChannelVarset, then an allowed
 * list, then reset, then a bad body); an inbound call bridged with 101 under the disallow filter
 * shows which events still arrive; a filter is forgotten with the application (WebSocket closed,
 * nothing in the app).
 */
async function eventFilter(ctx: Ctx): Promise<void> {
  const rec = new Recorder(ctx.kit, 'event-filter');
  ctx.current.rec = rec;
  await rec.connect();
  await rec.rest('PUT', `/applications/${APP}/eventFilter`, undefined, {
    disallowed: [{ type: 'ChannelVarset' }, { type: 'ChannelDialplan' }],
  });
  await rec.rest('GET', `/applications/${APP}`);
  const { operators } = ctx.kit.ports;
  const op = answeringPhone(ctx, 'uas_answer.xml', operators[0], 1000);
  const caller = inboundCaller(ctx, 2000);
  const start = await rec.next(isType('StasisStart'), 'inbound StasisStart');
  const callerId = String(chan(start).id);
  await rec.rest('POST', `/channels/${callerId}/ring`);
  const created = await rec.rest('POST', '/channels/create', {
    endpoint: 'PJSIP/101',
    app: APP,
    appArgs: `operator,${callerId}`,
  });
  const opId = String((created.body as Json).id);
  await rec.next(isType('StasisStart', opId), 'operator StasisStart');
  await rec.rest('POST', `/channels/${opId}/dial`, { caller: callerId, timeout: 10 });
  await rec.next((e) => e.type === 'Dial' && e.dialstatus === 'ANSWER', 'ANSWER');
  await rec.rest('POST', `/channels/${callerId}/answer`);
  const bridge = await rec.rest('POST', '/bridges', { type: 'mixing' });
  const bridgeId = String((bridge.body as Json).id);
  await rec.rest('POST', `/bridges/${bridgeId}/addChannel`, { channel: `${callerId},${opId}` });
  await rec.next(isType('StasisEnd', callerId), 'caller hangs up');
  await rec.rest('DELETE', `/channels/${opId}`);
  await rec.next(isType('ChannelDestroyed', opId), 'operator destroyed');
  await rec.rest('DELETE', `/bridges/${bridgeId}`);
  await rec.next(isType('BridgeDestroyed'), 'BridgeDestroyed');
  await Promise.all([op.done, caller.done]);
  await rec.settle(300);
  rec.note('an allowed list: only StasisStart and StasisEnd');
  await rec.rest('PUT', `/applications/${APP}/eventFilter`, undefined, {
    allowed: [{ type: 'StasisStart' }, { type: 'StasisEnd' }],
  });
  await rec.rest('PUT', `/applications/${APP}/eventFilter`, undefined, {
    allowed: [{ type: 'StasisStart' }, { type: 'StasisEnd' }],
    disallowed: [{ type: 'StasisEnd' }],
  });
  const customer = answeringPhone(ctx, 'uas_answer.xml', ctx.kit.ports.trunk, 300);
  const from = rec.events.length;
  const id = await originateCustomer(rec, 'filtered', from);
  await rec.rest('DELETE', `/channels/${id}`);
  await customer.done;
  await rec.settle(1000);
  rec.note('bad filters and the reset');
  await rec.rest('PUT', `/applications/${APP}/eventFilter`, undefined, { allowed: 'nope' });
  await rec.rest('PUT', `/applications/${APP}/eventFilter`, undefined, {
    allowed: [{ kind: 'StasisStart' }],
  });
  await rec.rest('PUT', `/applications/${APP}/eventFilter`, undefined, {
    allowed: [{ type: 'NoSuchEvent' }],
  });
  await rec.rest('PUT', '/applications/no-such-app/eventFilter', undefined, {});
  await rec.rest('PUT', `/applications/${APP}/eventFilter`);
  await rec.rest('GET', `/applications/${APP}`);
  rec.note('a filter, then the WebSocket closes with nothing in the app');
  await rec.rest('PUT', `/applications/${APP}/eventFilter`, undefined, {
    disallowed: [{ type: 'ChannelVarset' }],
  });
  rec.note('closing the app WebSocket');
  await rec.close();
  await rec.settle(300);
  await rec.rest('GET', `/applications/${APP}`);
  await rec.connect();
  rec.note('WebSocket reopened');
  await rec.rest('GET', `/applications/${APP}`);
  await rec.close();
  rec.write();
}

/**
 * amd-continue: answering-machine detection. A customer (SIPp uas_answer: answers, sends no
 * audio) is originated into Stasis with the CRM_AMD_* variables; once in Stasis the app continues
 * it to the `[crm-amd]` context of the project's extensions.conf (AMD(), then
 * `Stasis(crm-app,amd,${AMDSTATUS},${AMDCAUSE})`). Twice: with the defaults (2.5 s of initial
 * silence), then with a total analysis time of 1 s. The app hangs up after the verdict.
 */
async function amdContinue(ctx: Ctx): Promise<void> {
  const rec = new Recorder(ctx.kit, 'amd-continue');
  ctx.current.rec = rec;
  await rec.connect();
  const runs: Array<{ what: string; variables: Record<string, string> }> = [
    { what: 'amd.conf defaults', variables: {} },
    { what: 'total analysis time 1000 ms', variables: { CRM_AMD_TOTAL_ANALYSIS_MS: '1000' } },
  ];
  for (const run of runs) {
    rec.note(`AMD with ${run.what}`);
    const from = rec.events.length;
    const customer = answeringPhone(ctx, 'uas_answer.xml', ctx.kit.ports.trunk, 300);
    const orig = await rec.rest(
      'POST',
      '/channels',
      {
        endpoint: `PJSIP/${CALLER}@client-trunk`,
        app: APP,
        appArgs: 'notify,1,amd',
        callerId: COMPANY,
        timeout: 30,
      },
      { variables: { AUTOCALL_ID: '1', ...run.variables } },
    );
    const id = String((orig.body as Json).id);
    await rec.next(isType('StasisStart', id), 'StasisStart', 15_000, from);
    await rec.rest('POST', `/channels/${id}/continue`, {
      context: 'crm-amd',
      extension: 's',
      priority: 1,
    });
    const back = await rec.next(
      (e) =>
        (isType('StasisStart', id)(e) && (e.args as string[])[0] === 'amd') ||
        isType('ChannelDestroyed', id)(e),
      'back in Stasis or destroyed',
      20_000,
      from,
    );
    if (back.type === 'StasisStart') {
      rec.note(`back in Stasis with args ${JSON.stringify(back.args)}`);
      await rec.rest('GET', `/channels/${id}/variable`, { variable: 'AMDSTATUS' });
      await rec.rest('DELETE', `/channels/${id}`);
      await rec.next(isType('ChannelDestroyed', id), 'ChannelDestroyed', 15_000, from);
    } else {
      rec.note(`the channel was destroyed after continue: cause ${String(back.cause)}`);
    }
    await customer.done;
    await rec.settle(300);
  }
  await rec.close();
  rec.write();
}

const SCENARIOS: Record<string, (ctx: Ctx) => Promise<void>> = {
  'dtmf-received': dtmfReceived,
  'play-http-media': playHttpMedia,
  'device-endpoint-state': deviceEndpointState,
  'event-filter': eventFilter,
  'amd-continue': amdContinue,
};

async function main(): Promise<void> {
  if (!Kit.available()) {
    console.error('record-traces: ../shared/asterisk/run.sh not found; nothing recorded');
    process.exit(2);
  }
  const names = process.argv.slice(2);
  for (const n of names) if (!SCENARIOS[n]) throw new Error(`unknown scenario ${n}`);
  const home = process.env.RECORD_HOME ?? '/tmp/h-simfid-ast';
  const kit = new Kit(home, DEFAULT_PORTS);
  const ctx: Ctx = { kit, phones: [], sippDir: `${home}-sipp`, mediaPort: 0, current: {} };
  const media = await mediaServer(() => ctx.current.rec as Recorder);
  ctx.mediaPort = media.port;
  const stopAll = async (): Promise<void> => {
    await Promise.all(ctx.phones.map((p) => p.stop()));
    await kit.stop();
    media.server.close();
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    await kit.start();
    console.log(`Asterisk up at ${kit.ariUrl}`);
    for (const name of names.length > 0 ? names : Object.keys(SCENARIOS)) {
      console.log(`recording ${name}`);
      await (SCENARIOS[name] as (c: Ctx) => Promise<void>)(ctx);
      await Promise.all(ctx.phones.map((p) => p.stop()));
      ctx.phones.length = 0;
    }
  } catch (err) {
    for (const p of ctx.phones)
      if (p.output)
        console.error(
          p.output
            .split('\n')
            .filter((l) => !/^[ -]/.test(l))
            .join('\n'),
        );
    throw err;
  } finally {
    await stopAll();
  }
}

await main();
