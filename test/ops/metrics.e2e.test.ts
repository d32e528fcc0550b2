/**
 * GET /metrics of a real engine after calls went through it: the
 * exposition passes `promtool check metrics`, and the series an operator graphs exist with the
 * right values: live calls and ended calls by direction and disposition, CRM request duration,
 * webhook deliveries and outbox depth, ARI connection, events and errors, HTTP request duration by
 * route template, process metrics. No call id, channel id or phone number is ever a label value.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';
import { parseExposition, valueOf, type Exposition } from './support/exposition.ts';
import { promtoolCheckMetrics, requirePromtool } from './support/promtool.ts';

const DID = '74951234567';
const ANSWERED_CALLER = '79165550101';
const BUSY_CALLER = '79165550102';
const CUSTOMER = '+74957654321';

async function scrape(bed: TestBed): Promise<{ text: string; exposition: Exposition }> {
  const res = await apiRequest(bed.engine.httpUrl, '/metrics', { key: null });
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
  return { text: res.text, exposition: parseExposition(res.text) };
}

describe('GET /metrics (e2e)', function () {
  this.timeout(30_000);
  let bed: TestBed | undefined;
  /** What the scenario observed. */
  let run: {
    liveInboundCalls: number | undefined;
    busyDisposition: string;
    callIds: string[];
    channelIds: string[];
    webhooksReceived: number;
    text: string;
    exposition: Exposition;
  };
  const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
    valueOf(run.exposition, name, labels);
  const typeOf = (name: string): string | undefined => run.exposition.types.get(name);

  before(async () => {
    bed = await startTestBed();
    const { sim, crm, engine } = bed;
    crm.onRoute((req) => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        extensions: [req.from === BUSY_CALLER ? '102' : '101'],
        ringTimeoutSec: 20,
      },
    }));
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    sim.phones.set('102', { mode: 'busy' });
    const callIds: string[] = [];

    // 1. An inbound call answered by 101 and still talking: one live inbound call.
    const { channelId } = await sim.injectInboundCall({ from: ANSWERED_CALLER, to: DID });
    const started = await crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.from === ANSWERED_CALLER,
    );
    callIds.push(started.body.callId);
    await crm.waitForWebhook(
      (w) => w.body.type === 'call.answered' && w.body.callId === started.body.callId,
    );
    const live = await scrape(bed);
    const ended = once(engine.calls, 'ended');
    sim.hangup(channelId);
    await ended;

    // 2. An inbound call to a busy operator.
    await sim.injectInboundCall({ from: BUSY_CALLER, to: DID });
    const busyEnd = await crm.waitForWebhook(
      (w) => w.body.type === 'call.ended' && w.body.data.from === BUSY_CALLER,
    );
    callIds.push(busyEnd.body.callId);

    // 3. A click-to-call through the API, then its state, an unknown call, an unknown path and
    //    a request without a key.
    sim.customers.set('*', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const created = await apiRequest<{ id: string }>(engine.httpUrl, '/v1/calls', {
      body: { operator: '101', to: CUSTOMER },
    });
    expect(created.status).to.equal(202);
    callIds.push(created.body.id);
    await crm.waitForEnded(created.body.id);
    expect((await apiRequest(engine.httpUrl, `/v1/calls/${created.body.id}`)).status).to.equal(200);
    const unknownCall = '00000000-0000-4000-8000-000000000000';
    expect((await apiRequest(engine.httpUrl, `/v1/calls/${unknownCall}`)).status).to.equal(404);
    expect((await apiRequest(engine.httpUrl, '/no/such/path')).status).to.equal(404);
    expect(
      (await apiRequest(engine.httpUrl, `/v1/calls/${unknownCall}`, { key: null })).status,
    ).to.equal(401);
    expect(await engine.webhooks.drain(5000)).to.equal(true);

    const final = await scrape(bed);
    run = {
      liveInboundCalls: valueOf(live.exposition, 'aricrm_calls_active', { direction: 'in' }),
      busyDisposition: String(busyEnd.body.data.disposition),
      callIds,
      channelIds: sim.requests
        .map((r) => /^\/channels\/([^/]+)/.exec(r.path)?.[1])
        .filter((id): id is string => id !== undefined && id !== 'create'),
      webhooksReceived: crm.webhooks.length,
      ...final,
    };
  });

  after(async () => {
    await bed?.stop();
    bed = undefined;
  });

  it('passes promtool check metrics (format and naming lint)', function () {
    const promtool = requirePromtool(this);
    const check = promtoolCheckMetrics(promtool, run.text);
    expect(check.output, 'promtool check metrics').to.equal('');
    expect(check.status).to.equal(0);
  });

  it('counts live calls by direction and ended calls by direction and disposition', () => {
    expect(run.liveInboundCalls, 'live inbound calls while one talks').to.equal(1);
    expect(typeOf('aricrm_calls_active')).to.equal('gauge');
    expect(value('aricrm_calls_active', { direction: 'in' })).to.equal(0);
    expect(value('aricrm_calls_active', { direction: 'out' })).to.equal(0);
    expect(typeOf('aricrm_calls_ended_total')).to.equal('counter');
    const ended = (direction: string, disposition: string): number | undefined =>
      value('aricrm_calls_ended_total', { direction, disposition });
    expect(ended('in', 'answered')).to.equal(1);
    expect(ended('in', run.busyDisposition)).to.equal(1);
    expect(ended('out', 'answered')).to.equal(1);
  });

  it('times CRM requests by operation and outcome, counts webhook deliveries and the outbox depth', () => {
    // Route cache off in the test bed: both inbound calls asked the CRM, both got an answer.
    expect(typeOf('aricrm_crm_request_duration_seconds')).to.equal('histogram');
    expect(
      value('aricrm_crm_request_duration_seconds_count', { operation: 'route', outcome: 'ok' }),
    ).to.equal(2);
    expect(run.webhooksReceived).to.be.at.least(10);
    expect(value('aricrm_webhook_deliveries_total', { outcome: 'delivered' })).to.equal(
      run.webhooksReceived,
    );
    expect(value('aricrm_webhook_deliveries_total', { outcome: 'dead' })).to.equal(0);
    expect(typeOf('aricrm_webhook_queue_depth')).to.equal('gauge');
    expect(value('aricrm_webhook_queue_depth')).to.equal(0);
  });

  it('reports the ARI connection, reconnects, events by type and command errors', () => {
    expect(typeOf('aricrm_ari_connected')).to.equal('gauge');
    expect(value('aricrm_ari_connected')).to.equal(1);
    expect(value('aricrm_ari_reconnects_total')).to.equal(0);
    expect(value('aricrm_ari_events_total', { type: 'StasisStart' })).to.be.at.least(3);
    expect(value('aricrm_ari_events_total', { type: 'ChannelDestroyed' })).to.be.at.least(3);
    expect(typeOf('aricrm_ari_command_errors_total')).to.equal('counter');
  });

  it('times HTTP requests by method, route template and status', () => {
    const http = (method: string, route: string, status: string): number | undefined =>
      value('aricrm_http_request_duration_seconds_count', { method, route, status });
    expect(typeOf('aricrm_http_request_duration_seconds')).to.equal('histogram');
    expect(http('POST', '/v1/calls', '202')).to.equal(1);
    expect(http('GET', '/v1/calls/:id', '200')).to.equal(1);
    expect(http('GET', '/v1/calls/:id', '404')).to.equal(1);
    expect(http('GET', 'unmatched', '404')).to.equal(1);
    expect(http('GET', 'unmatched', '401')).to.equal(1);
    expect(http('GET', '/metrics', '200')).to.equal(1);
  });

  it('documents every metric it exposes in docs/operations.md, and only metrics that exist', async () => {
    const doc = await readFile(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    const exposed = [...run.exposition.types.keys()].filter(
      (name) => !/^aricrm_(process|nodejs)_/.test(name),
    );
    for (const name of exposed) expect(doc, name).to.include(`\`${name}\``);
    // Some metrics are registered on first use (e.g. reconciliation): look for them in the code.
    const srcDir = new URL('../../src/', import.meta.url);
    const files = (await readdir(srcDir, { recursive: true })).filter((f) => f.endsWith('.ts'));
    const source = (await Promise.all(files.map((f) => readFile(new URL(f, srcDir), 'utf8')))).join(
      '\n',
    );
    const documented = [...doc.matchAll(/^\| `(aricrm_[a-z0-9_]+)`/gm)].map((match) => match[1]!);
    expect(documented.length).to.be.at.least(exposed.length);
    for (const name of documented) expect(source, `${name} in src/`).to.include(`'${name}'`);
  });

  it('exposes process metrics under the same prefix and never a call, channel or number as a label', () => {
    expect(typeOf('aricrm_process_cpu_seconds_total')).to.equal('counter');
    expect(value('aricrm_process_resident_memory_bytes')).to.be.greaterThan(0);
    expect(typeOf('aricrm_nodejs_eventloop_lag_seconds')).to.equal('gauge');
    for (const name of run.exposition.types.keys()) expect(name).to.match(/^aricrm_[a-z0-9_]+$/);
    expect(run.channelIds).to.have.length.greaterThan(0);
    for (const sample of run.exposition.samples) {
      for (const [label, labelValue] of Object.entries(sample.labels)) {
        expect(labelValue, `${sample.name}{${label}}`).to.not.match(/\d{7,}/);
        for (const id of [...run.callIds, ...run.channelIds])
          expect(labelValue, `${sample.name}{${label}}`).to.not.include(id);
      }
    }
  });
});
