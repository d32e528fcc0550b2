/**
 * Recordings, end to end: the engine on the PBX simulator through the real
 * ari-client records the bridge of a call, takes the WAV from Asterisk over ARI into its storage,
 * tells the CRM (`call.ended` with the link, then `recording.ready`), and serves the audio with
 * HTTP Range to an API key or a signed expiring link, as a CRM's audio player would fetch it.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load.ts';
import { lifecycleEventSchema } from '../../src/http/schemas.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { startEngine } from '../../src/main.ts';
import { audioFile } from '../../src/simulator/wav.ts';
import { startSimulator } from '../../src/simulator/index.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, TEST_API_KEY, TIME_SCALE, type TestBed } from '../support/engine.ts';
import { FakeCrm, type ReceivedWebhook } from '../support/fake-crm.ts';
import { AriFaultProxy } from '../recordings/support/fault-proxy.ts';
import { simulatedTimePasses } from '../support/sim-time.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';
const LINK_SECRET = 'e2e-recording-link-secret-0123456789abcdef';
let caller = 79180000000;
const nextCaller = (): string => String(++caller);

/** The call's webhook types, checking signatures and gap-free sequence numbers. */
function typesOf(bed: Pick<TestBed, 'crm'>, callId: string): string[] {
  const events = bed.crm.eventsOf(callId);
  events.forEach((w, i) => {
    expect(w.signatureValid, `signature of ${w.body.type}`).to.equal(true);
    expect(w.body.sequence, `sequence of ${w.body.type}`).to.equal(i + 1);
  });
  return events.map((w) => w.body.type);
}

/** What a player gets: status, headers, exact bytes. */
async function fetchAudio(
  url: string,
  init: { range?: string; key?: string; method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; bytes: Buffer; json?: { code: string } }> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.range) headers.range = init.range;
  if (init.key) headers.authorization = `Bearer ${init.key}`;
  const res = await fetch(url, { headers, method: init.method ?? 'GET' });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: { code: string } | undefined;
  if ((res.headers.get('content-type') ?? '').includes('json'))
    json = JSON.parse(bytes.toString('utf8')) as { code: string };
  return { status: res.status, headers: res.headers, bytes, json };
}

/** The engine's ARI requests about this call's recording (`rec-<callId>`). */
function recordingRequests(bed: Pick<TestBed, 'sim'>, callId: string): string[] {
  const name = `rec-${callId}`;
  return bed.sim.requests
    .filter((r) => r.path.includes(name) || (r.path.endsWith('/record') && r.query.name === name))
    .map((r) => `${r.method} ${r.path.replace(name, '{name}').replace(/br-[^/]+/, '{bridge}')}`);
}

/**
 * Simulated talk time of the calls these tests record, ms: 200 ms of real time at the test time
 * scale, so that the bridge (and its recording) is up before the hang-up on a busy machine.
 */
const TALK_MS = 10_000;

/**
 * An inbound call answered by 101 that the caller ends `talkMs` (simulated) after its recording
 * started (`recorded` false: after the answer); never, with `talkMs` undefined. (A hang-up at a
 * fixed time after the caller's answer could come before a loaded engine bridged and recorded
 * the call.)
 */
async function inboundCall(
  bed: Pick<TestBed, 'sim' | 'crm'>,
  talkMs: number | undefined = 3000,
  recorded = true,
): Promise<{ callId: string; from: string }> {
  const from = nextCaller();
  const recordings = new Set<string>();
  const off = bed.sim.onEvent((e) => {
    if (e.type === 'RecordingStarted')
      recordings.add(String((e.recording as { name: string }).name));
  });
  const { channelId } = await bed.sim.injectInboundCall({ from, to: DID });
  const started = await bed.crm.waitForWebhook(
    (w) => w.body.type === 'call.started' && w.body.data.from === from,
  );
  const callId = started.body.callId;
  if (talkMs !== undefined)
    void (async () => {
      if (recorded) await until(() => recordings.has(`rec-${callId}`), 'the recording started');
      else
        await bed.crm.waitForWebhook(
          (w) => w.body.type === 'call.answered' && w.body.callId === callId,
        );
      await simulatedTimePasses(bed.sim, talkMs);
      bed.sim.hangup(channelId);
    })()
      .catch(() => undefined) // the test failing meanwhile says why
      .finally(off);
  else off();
  return { callId, from };
}

function readyOf(bed: Pick<TestBed, 'crm'>, callId: string): Promise<ReceivedWebhook> {
  return bed.crm.waitForWebhook(
    (w) => w.body.type === 'recording.ready' && w.body.callId === callId,
    10_000,
  );
}

/** A link to `callId`'s recording signed like the engine does, with any expiry (a CRM could). */
function signedLink(base: string, callId: string, expires: number): string {
  const sig = createHmac('sha256', LINK_SECRET)
    .update(`recording:${callId}:${expires}`)
    .digest('hex');
  return `${base}/v1/calls/${callId}/recording?expires=${expires}&sig=${sig}`;
}

async function metric(bed: Pick<TestBed, 'engine'>, line: string): Promise<number> {
  const text = (await apiRequest(bed.engine.httpUrl, '/metrics', { key: null })).text;
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

describe('recordings (e2e: engine + simulator + CRM + HTTP)', function () {
  this.timeout(30_000);

  describe('a recorded inbound call', () => {
    let bed: TestBed;
    let callId: string;
    let ended: ReceivedWebhook;
    let ready: ReceivedWebhook;
    /** The call's recording as `GET /v1/calls/{id}` showed it once recording.ready had arrived. */
    let recordAtReady: Record<string, unknown> | undefined;

    before(async () => {
      bed = await startTestBed({ RECORD_CALLS: 'all', RECORDING_LINK_SECRET: LINK_SECRET });
      bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 1000 });
      ({ callId } = await inboundCall(bed, 15_000));
      ended = await bed.crm.waitForEnded(callId);
      ready = await readyOf(bed, callId);
      recordAtReady = (
        await apiRequest<{ recording?: Record<string, unknown> }>(
          bed.engine.httpUrl,
          `/v1/calls/${callId}`,
        )
      ).body.recording;
      // recording.ready goes out once the file is stored; the DELETE in Asterisk runs alongside.
      await until(
        () => recordingRequests(bed, callId).some((r) => r.startsWith('DELETE ')),
        'the recording deleted from Asterisk',
      );
    });
    after(async () => {
      await bed?.stop();
    });

    it('records the bridge, stores the WAV, deletes it from Asterisk, sends recording.ready after call.ended', async () => {
      expect(typesOf(bed, callId)).to.deep.equal([
        'call.started',
        'call.ringing',
        'call.answered',
        'call.ended',
        'recording.ready',
      ]);
      expect(recordingRequests(bed, callId)).to.deep.equal([
        'POST /bridges/{bridge}/record',
        'GET /recordings/stored/{name}/file',
        'DELETE /recordings/stored/{name}',
      ]);
      // Both bodies are what the OpenAPI document (webhooks) says.
      lifecycleEventSchema.parse(ended.body);
      lifecycleEventSchema.parse(ready.body);
      const record = bed.sim.requests.find((r) => r.path.endsWith('/record'))!;
      expect(record.query).to.include({ name: `rec-${callId}`, format: 'wav' });

      const data = ready.body.data as {
        recordingUrl: string;
        expiresAt: string;
        bytes: number;
        durationSec: number;
        format: string;
      };
      // 20 ms frames of 8 kHz 16-bit mono after a 44-byte header; the caller talked 15 s after
      // the recording started. It stops when the engine destroys the bridge after the hang-up, a
      // few real ms later, which the test time scale (x50) turns into simulated seconds on a busy
      // machine: at least the 15 s, not pinned to them.
      expect((data.bytes - 44) % 320).to.equal(0);
      expect(data.durationSec).to.equal(Math.floor((data.bytes - 44) / 16000));
      expect(data.durationSec).to.be.at.least(15).and.below(60);
      expect(data.format).to.equal('wav');
      expect(Date.parse(data.expiresAt) - Date.now()).to.be.within(604_700_000, 604_800_000);
      expect(new URL(data.recordingUrl).pathname).to.equal(`/v1/calls/${callId}/recording`);
      expect(new URL(data.recordingUrl).origin).to.equal(bed.engine.httpUrl);
      const endedUrl = new URL(String(ended.body.data.recordingUrl));
      expect(endedUrl.pathname).to.equal(`/v1/calls/${callId}/recording`);
      expect(endedUrl.searchParams.get('sig')).to.match(/^[0-9a-f]{64}$/);

      // The file in the engine's storage is exactly what Asterisk recorded.
      const day = new Date(Date.parse(String(ended.body.data.startedAt)))
        .toISOString()
        .slice(0, 10)
        .split('-');
      const onDisk = readFileSync(join(bed.dataDir, 'recordings', ...day, `${callId}.wav`));
      expect(onDisk).to.deep.equal(audioFile('wav', (data.bytes - 44) / 320));

      // Asterisk no longer holds it; the call's record says where it is.
      const left = await fetch(`${bed.sim.url}/ari/recordings/stored`, {
        headers: { authorization: `Basic ${Buffer.from('asterisk:asterisk').toString('base64')}` },
      });
      expect(await left.json()).to.deep.equal([]);
      const stored = await apiRequest<{ recording: Record<string, unknown> }>(
        bed.engine.httpUrl,
        `/v1/calls/${callId}`,
      );
      expect(stored.body.recording).to.deep.include({
        status: 'stored',
        bytes: data.bytes,
        durationSec: data.durationSec,
        name: `rec-${callId}`,
      });
      // `stored` commits with recording.ready: a CRM that looks the call up on the webhook
      // already sees it.
      expect(recordAtReady).to.deep.include({ status: 'stored', bytes: data.bytes });
      const fresh = await fetchAudio(String(stored.body.recording.url));
      expect(fresh.status).to.equal(200);
      expect(await metric(bed, 'aricrm_recordings_stored_total')).to.equal(1);
    });

    it('warns once at start that PUBLIC_URL is not set, naming the address links start with', () => {
      const warnings = bed.logs.filter((l) =>
        String(l.message).startsWith('PUBLIC_URL is not set'),
      );
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.include({ level: 'warn', linkBase: bed.engine.httpUrl });
      expect(String(warnings[0]!.message))
        .to.include('recording links (RECORD_CALLS=all)')
        .and.include(`${bed.engine.httpUrl}, which only this machine can open`);
    });

    it('serves the audio with HTTP Range: exact bytes in a 206, 416 outside, the whole file in a 200', async () => {
      const url = String((ready.body.data as { recordingUrl: string }).recordingUrl);
      const size = (ready.body.data as { bytes: number }).bytes;
      const expected = audioFile('wav', (size - 44) / 320);

      const full = await fetchAudio(url);
      expect(full.status).to.equal(200);
      expect(full.headers.get('content-type')).to.equal('audio/wav');
      expect(full.headers.get('accept-ranges')).to.equal('bytes');
      expect(full.headers.get('content-length')).to.equal(String(size));
      expect(full.bytes).to.deep.equal(expected);

      const middle = await fetchAudio(url, { range: 'bytes=1000-1999' });
      expect(middle.status).to.equal(206);
      expect(middle.headers.get('content-range')).to.equal(`bytes 1000-1999/${size}`);
      expect(middle.headers.get('content-length')).to.equal('1000');
      expect(middle.headers.get('accept-ranges')).to.equal('bytes');
      expect(middle.bytes).to.deep.equal(expected.subarray(1000, 2000));
      expect(middle.bytes).not.to.deep.equal(expected.subarray(2000, 3000));

      const header = await fetchAudio(url, { range: 'bytes=0-11' });
      expect(header.bytes.toString('hex')).to.equal(
        Buffer.concat([Buffer.from('RIFF'), expected.subarray(4, 8), Buffer.from('WAVE')]).toString(
          'hex',
        ),
      );
      const tail = await fetchAudio(url, { range: 'bytes=-100' });
      expect(tail.status).to.equal(206);
      expect(tail.headers.get('content-range')).to.equal(`bytes ${size - 100}-${size - 1}/${size}`);
      expect(tail.bytes).to.deep.equal(expected.subarray(size - 100));
      const rest = await fetchAudio(url, { range: `bytes=${size - 10}-` });
      expect(rest.bytes).to.deep.equal(expected.subarray(size - 10));

      const outside = await fetchAudio(url, { range: `bytes=${size}-` });
      expect(outside.status).to.equal(416);
      expect(outside.headers.get('content-range')).to.equal(`bytes */${size}`);
      expect(outside.json?.code).to.equal('range_not_satisfiable');

      const head = await fetchAudio(url, { method: 'HEAD', range: 'bytes=0-99' });
      expect(head.status).to.equal(206);
      expect(head.headers.get('content-length')).to.equal('100');
      expect(head.bytes.length).to.equal(0);

      // With the API key instead of a link.
      const path = `${bed.engine.httpUrl}/v1/calls/${callId}/recording`;
      const byKey = await fetchAudio(path, { key: TEST_API_KEY, range: 'bytes=44-99' });
      expect(byKey.status).to.equal(206);
      expect(byKey.bytes).to.deep.equal(expected.subarray(44, 100));
    });

    it('answers 304 to a player that already holds the current file (If-None-Match, If-Modified-Since), GET and HEAD', async () => {
      const url = String((ready.body.data as { recordingUrl: string }).recordingUrl);
      const size = (ready.body.data as { bytes: number }).bytes;
      const first = await fetchAudio(url);
      const etag = first.headers.get('etag')!;
      const lastModified = first.headers.get('last-modified')!;
      expect(etag).to.match(/^"[^"]+"$/);

      for (const [name, value] of [
        ['same ETag', etag],
        ['weak form of the ETag', `W/${etag}`],
        ['ETag in a list', `"stale", ${etag}`],
        ['*', '*'],
      ] as const) {
        for (const method of ['GET', 'HEAD']) {
          const again = await fetchAudio(url, { method, headers: { 'if-none-match': value } });
          expect(again.status, `${method} If-None-Match ${name}`).to.equal(304);
          expect(again.bytes.length).to.equal(0);
          expect(again.headers.get('etag')).to.equal(etag);
          expect(again.headers.get('last-modified')).to.equal(lastModified);
        }
      }
      // The validator is checked before Range: a player resuming a copy it holds gets 304.
      const ranged = await fetchAudio(url, {
        range: 'bytes=0-99',
        headers: { 'if-none-match': etag },
      });
      expect(ranged.status).to.equal(304);

      const other = await fetchAudio(url, { headers: { 'if-none-match': '"another-file"' } });
      expect(other.status).to.equal(200);
      expect(other.bytes.length).to.equal(size);

      const since = await fetchAudio(url, { headers: { 'if-modified-since': lastModified } });
      expect(since.status).to.equal(304);
      const before = new Date(Date.parse(lastModified) - 60_000).toUTCString();
      const older = await fetchAudio(url, { headers: { 'if-modified-since': before } });
      expect(older.status).to.equal(200);
      // If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
      const mismatch = await fetchAudio(url, {
        headers: { 'if-none-match': '"another-file"', 'if-modified-since': lastModified },
      });
      expect(mismatch.status).to.equal(200);
      // If-Range needs a strong match: a weak validator sends the whole file.
      const weakIfRange = await fetchAudio(url, {
        range: 'bytes=0-99',
        headers: { 'if-range': `W/${etag}` },
      });
      expect(weakIfRange.status).to.equal(200);
    });

    it('signed links: a valid one plays without a key; expired or altered → 403; nothing → 401', async () => {
      const base = bed.engine.httpUrl;
      const now = Math.floor(Date.now() / 1000);
      const valid = signedLink(base, callId, now + 60);
      expect((await fetchAudio(valid, { range: 'bytes=0-3' })).bytes.toString()).to.equal('RIFF');

      const expired = await fetchAudio(signedLink(base, callId, now - 1));
      expect(expired.status).to.equal(403);
      expect(expired.json?.code).to.equal('link_expired');

      const u = new URL(valid);
      const sig = u.searchParams.get('sig')!;
      const alteredSig = new URL(valid);
      alteredSig.searchParams.set('sig', (sig[0] === '0' ? '1' : '0') + sig.slice(1));
      const alteredExpiry = new URL(valid);
      alteredExpiry.searchParams.set('expires', String(now + 86_400));
      const otherCall = valid.replace(callId, '00000000-0000-4000-8000-000000000000');
      for (const link of [alteredSig.href, alteredExpiry.href, otherCall]) {
        const answer = await fetchAudio(link);
        expect(answer.status, link).to.equal(403);
        expect(answer.json?.code, link).to.equal('link_invalid');
      }
      // A link to the recording does not open the rest of the API.
      const elsewhere = await fetchAudio(
        `${base}/v1/calls/${callId}?expires=${u.searchParams.get('expires')}&sig=${sig}`,
      );
      expect(elsewhere.status).to.equal(401);
      const bare = await fetchAudio(`${base}/v1/calls/${callId}/recording`);
      expect(bare.status).to.equal(401);
      expect(bare.json?.code).to.equal('unauthorized');
    });

    it('answers 409 while the call is still being recorded, 404 for unknown and unrecorded calls', async () => {
      bed.crm.onRoute((req) => ({
        body: {
          action: 'dial',
          extensions: ['101'],
          ...(req.from === '79189999999' ? { record: false } : {}),
        },
      }));
      const recordingStarted = new Promise<string>((resolve) => {
        const off = bed.sim.onEvent((e) => {
          if (e.type !== 'RecordingStarted') return;
          off();
          resolve(String((e.recording as { name: string }).name));
        });
      });
      const { callId: live } = await inboundCall(bed, undefined);
      expect(await recordingStarted).to.equal(`rec-${live}`);
      const path = `/v1/calls/${live}/recording`;
      const pending = await apiRequest(bed.engine.httpUrl, path);
      expect(pending.status).to.equal(409);
      expect(pending.body.code).to.equal('recording_not_ready');
      await apiRequest(bed.engine.httpUrl, `/v1/calls/${live}/hangup`, { method: 'POST' });
      await readyOf(bed, live);
      expect((await apiRequest(bed.engine.httpUrl, path)).status).to.equal(200);

      await bed.sim.injectInboundCall({ from: '79189999999', to: DID, hangupAfterMs: 1000 });
      const unrecorded = (
        await bed.crm.waitForWebhook(
          (w) => w.body.type === 'call.started' && w.body.data.from === '79189999999',
        )
      ).body.callId;
      const end = await bed.crm.waitForEnded(unrecorded);
      expect(end.body.data).not.to.have.property('recordingUrl');
      const none = await apiRequest(bed.engine.httpUrl, `/v1/calls/${unrecorded}/recording`);
      expect(none.status).to.equal(404);
      expect(none.body.code).to.equal('recording_not_found');
      const unknown = await apiRequest(
        bed.engine.httpUrl,
        '/v1/calls/00000000-0000-4000-8000-000000000000/recording',
      );
      expect(unknown.status).to.equal(404);
      expect(unknown.body.code).to.equal('call_not_found');
    });
  });

  describe('which calls are recorded', () => {
    let bed: TestBed;
    afterEach(async () => {
      await bed?.stop();
    });

    /** Whether the engine asked Asterisk to record this call's bridge. */
    const recorded = (callId: string): boolean =>
      bed.sim.requests.some(
        (r) => r.path.endsWith('/record') && JSON.stringify(r.query).includes(callId),
      );

    it('RECORD_CALLS=inbound: inbound calls yes, operator-dialled no, unless the CRM or the click-to-call request says otherwise', async () => {
      bed = await startTestBed({ RECORD_CALLS: 'inbound' });
      bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
      bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 500, hangupAfterMs: TALK_MS });

      const inbound = await inboundCall(bed, TALK_MS);
      await readyOf(bed, inbound.callId);
      expect(recorded(inbound.callId)).to.equal(true);

      await bed.sim.injectOperatorCall({
        extension: '102',
        to: '79161234500',
        hangupAfterMs: 3000,
      });
      const out = await bed.crm.waitForWebhook(
        (w) => w.body.type === 'call.started' && w.body.data.to === '79161234500',
      );
      const outEnd = await bed.crm.waitForEnded(out.body.callId);
      expect(outEnd.body.data.disposition).to.equal('answered');
      expect(outEnd.body.data).not.to.have.property('recordingUrl');
      expect(recorded(out.body.callId)).to.equal(false);
      expect(typesOf(bed, out.body.callId)).not.to.include('recording.ready');

      const click = await apiRequest<{ id: string }>(bed.engine.httpUrl, '/v1/calls', {
        body: { operator: '101', to: '+74957654321', record: true },
      });
      expect(click.status).to.equal(202);
      const clickEnd = await bed.crm.waitForEnded(click.body.id);
      expect(clickEnd.body.data.recordingUrl).to.be.a('string');
      await readyOf(bed, click.body.id);
      expect(typesOf(bed, click.body.id).slice(-2)).to.deep.equal([
        'call.ended',
        'recording.ready',
      ]);

      bed.crm.onRoute(() => ({ body: { action: 'dial', extensions: ['101'], record: false } }));
      const optedOut = await inboundCall(bed, TALK_MS, false);
      const optedOutEnd = await bed.crm.waitForEnded(optedOut.callId);
      expect(optedOutEnd.body.data.disposition).to.equal('answered');
      expect(optedOutEnd.body.data).not.to.have.property('recordingUrl');
      expect(recorded(optedOut.callId)).to.equal(false);
    });

    it('RECORD_CALLS=outbound: operator-dialled calls yes, inbound no unless the CRM asks', async () => {
      bed = await startTestBed({ RECORD_CALLS: 'outbound' });
      bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
      bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 500, hangupAfterMs: TALK_MS });

      await bed.sim.injectOperatorCall({ extension: '102', to: '79161234501' });
      const out = await bed.crm.waitForWebhook(
        (w) => w.body.type === 'call.started' && w.body.data.to === '79161234501',
      );
      await readyOf(bed, out.body.callId);
      expect(recorded(out.body.callId)).to.equal(true);

      const inbound = await inboundCall(bed, TALK_MS, false);
      const end = await bed.crm.waitForEnded(inbound.callId);
      expect(end.body.data).not.to.have.property('recordingUrl');
      expect(recorded(inbound.callId)).to.equal(false);

      bed.crm.onRoute(() => ({ body: { action: 'dial', extensions: ['101'], record: true } }));
      const asked = await inboundCall(bed, TALK_MS);
      await readyOf(bed, asked.callId);
      expect(recorded(asked.callId)).to.equal(true);
    });
  });

  describe('download failures (Asterisk answers 403 "The recording file could not be opened")', () => {
    const FILE = /^\/ari\/recordings\/stored\/[^/]+\/file$/;
    const CANNOT_OPEN = { message: 'The recording file could not be opened' };
    let stopAll: (() => Promise<void>) | undefined;

    afterEach(async () => {
      await stopAll?.();
      stopAll = undefined;
    });

    /** The test bed with the engine talking to ARI through a fault proxy. */
    async function startBedBehindProxy(env: Record<string, string>) {
      const crm = await FakeCrm.start();
      const sim = await startSimulator({ timeScale: TIME_SCALE });
      const proxy = await AriFaultProxy.start(sim.url);
      const dataDir = mkdtempSync(join(tmpdir(), 'ari-crm-rec-e2e-'));
      const config = loadConfig({
        NODE_ENV: 'test',
        HTTP_PORT: '0',
        ARI_URL: proxy.url,
        CRM_ROUTE_URL: crm.routeUrl,
        CRM_WEBHOOK_URL: crm.webhookUrl,
        WEBHOOK_SECRET: crm.secret,
        CRM_ROUTE_CACHE_TTL_MS: '0',
        API_KEYS: `test:${TEST_API_KEY}`,
        DATA_DIR: dataDir,
        RECORD_CALLS: 'all',
        RECORDING_DOWNLOAD_ATTEMPTS: '3',
        RECORDING_RETRY_DELAY_MS: '20',
        ...env,
      });
      const logger = createLogger({ level: 'error', stream: new PassThrough().resume() });
      const engine = await startEngine(config, { logger, simulator: sim });
      sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
      stopAll = async () => {
        await engine.stop();
        await proxy.close();
        await sim.close();
        await crm.close();
        rmSync(dataDir, { recursive: true, force: true });
      };
      return { engine, sim, crm, proxy };
    }

    it('retries a failed download with backoff and stores the recording when Asterisk recovers', async () => {
      const bed = await startBedBehindProxy({});
      bed.proxy.fail('GET', FILE, 2, 403, CANNOT_OPEN);
      const { callId } = await inboundCall(bed, TALK_MS);
      const ready = await readyOf(bed, callId);
      expect(bed.proxy.seen(FILE).map((r) => r.faulted)).to.deep.equal([true, true, false]);
      expect(typesOf(bed, callId).slice(-2)).to.deep.equal(['call.ended', 'recording.ready']);
      const audio = await fetchAudio(String(ready.body.data.recordingUrl));
      expect(audio.status).to.equal(200);
      expect(audio.bytes.length).to.equal(ready.body.data.bytes);
      expect(
        await metric(bed, 'aricrm_recording_download_retries_total{stage="download"}'),
      ).to.equal(2);
      expect(await metric(bed, 'aricrm_recording_failures_total{stage="download"}')).to.equal(0);
    });

    it('reports a recording whose every try failed: failed in the call record, counted, 404 recording_failed, kept in Asterisk', async () => {
      const bed = await startBedBehindProxy({});
      bed.proxy.fail('GET', FILE, 100, 403, CANNOT_OPEN);
      const { callId } = await inboundCall(bed, TALK_MS);
      const ended = await bed.crm.waitForEnded(callId);
      expect(ended.body.data.recordingUrl).to.be.a('string'); // it was being recorded
      await until(
        async () => (await bed.engine.store.calls.getCall(callId))?.recording?.status === 'failed',
        'the recording to be reported failed',
      );
      expect(bed.proxy.seen(FILE)).to.have.length(3); // RECORDING_DOWNLOAD_ATTEMPTS
      expect(await metric(bed, 'aricrm_recording_failures_total{stage="download"}')).to.equal(1);
      expect(
        await metric(bed, 'aricrm_recording_download_retries_total{stage="download"}'),
      ).to.equal(2);
      expect(typesOf(bed, callId)).not.to.include('recording.ready');
      const answer = await apiRequest(bed.engine.httpUrl, `/v1/calls/${callId}/recording`);
      expect(answer.status).to.equal(404);
      expect(answer.body.code).to.equal('recording_failed');
      const link = await fetchAudio(String(ended.body.data.recordingUrl));
      expect(link.status).to.equal(404);
      expect(link.json?.code).to.equal('recording_failed');
      // Nothing was deleted: the file can still be recovered from Asterisk.
      expect(bed.proxy.seen(/^\/ari\/recordings\/stored\/[^/]+$/, 'DELETE')).to.have.length(0);
      const left = await fetch(`${bed.sim.url}/ari/recordings/stored`, {
        headers: { authorization: `Basic ${Buffer.from('asterisk:asterisk').toString('base64')}` },
      });
      expect(await left.json()).to.deep.equal([{ name: `rec-${callId}`, format: 'wav' }]);
    });
  });
});
