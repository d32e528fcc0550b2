/**
 * Graceful stop (SIGTERM): the engine stops taking API requests at once
 * (503 shutting_down, /readyz 503 so a load balancer drains it, /healthz and /metrics still
 * answer), keeps delivering pending webhooks to a slow, failing, then recovering CRM until they
 * are all delivered (or SHUTDOWN_TIMEOUT_MS passed), and never hangs up calls in progress.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { AriConnectionError } from '../../src/ari/errors.ts';
import { startEngine, type Engine } from '../../src/main.ts';
import type { CallRecord } from '../../src/store/calls.ts';
import { apiRequest } from '../support/api.ts';
import { collectingLogger, startTestBed, type TestBed } from '../support/engine.ts';
import { until } from '../support/until.ts';
import { Receiver } from '../events/receiver.ts';

const DID = '74951234567';

/** Resolve once the simulator has sent `count` events of `type`. */
function simEvents(bed: TestBed, type: string, count: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const off = bed.sim.onEvent((event) => {
      if (event.type === type && ++seen === count) {
        off();
        resolve();
      }
    });
  });
}

describe('graceful stop (e2e)', function () {
  this.timeout(30_000);
  let bed: TestBed | undefined;
  let receiver: Receiver | undefined;
  let restarted: Engine | undefined;
  afterEach(async () => {
    await restarted?.stop();
    restarted = undefined;
    await bed?.stop();
    await receiver?.close();
    bed = undefined;
    receiver = undefined;
  });

  it('refuses new API requests, answers /readyz 503 and delivers pending webhooks to a recovering CRM before stopping', async () => {
    // The CRM first holds the requests (slow), then answers 503 (failing), then 204 (recovered).
    let crmMode: 'slow' | 'failing' | 'recovered' = 'slow';
    const held: ServerResponse[] = [];
    receiver = await Receiver.start((_req, res) => {
      if (crmMode === 'slow') held.push(res);
      else res.writeHead(crmMode === 'failing' ? 503 : 204).end();
    });
    bed = await startTestBed({ CRM_WEBHOOK_URL: receiver.url, SHUTDOWN_TIMEOUT_MS: '20000' });
    const { engine } = bed;
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const ended = once(engine.calls, 'ended');
    await bed.sim.injectInboundCall({ from: '79165550201', to: DID });
    await ended;
    await engine.calls.settled();
    await receiver.waitForRequests(1);
    expect(receiver.delivered).to.have.length(0);
    expect(engine.webhooks.pending()).to.be.greaterThan(0);

    let stopped = false;
    const stopping = engine.stop().then(() => {
      stopped = true;
    });

    // New API requests: refused, and the client is told to close the connection.
    const create = await apiRequest(engine.httpUrl, '/v1/calls', {
      body: { operator: '101', to: '+74957654321' },
    });
    expect(create.status).to.equal(503);
    expect(create.body).to.include({ code: 'shutting_down' });
    expect(create.body.message).to.be.a('string');
    expect(create.headers.get('connection')).to.equal('close');
    const state = await apiRequest(engine.httpUrl, '/v1/calls/any-call');
    expect(state.status).to.equal(503);
    expect(state.body).to.include({ code: 'shutting_down' });
    const compat = await apiRequest(
      engine.httpUrl,
      `${engine.config.COMPAT_PATH}?action=makecall&from=101&to=74957654321`,
    );
    // The compat path answers in the asterisk.fcgi daemon's text format, the code in X-Error-Code.
    expect(compat.status).to.equal(503);
    expect(compat.text.trim()).to.equal('Answer: Error');
    expect(compat.headers.get('x-error-code')).to.equal('shutting_down');
    expect(
      bed.sim.requests.filter((r) => r.method === 'POST' && r.path === '/channels'),
    ).to.deep.equal([]);

    // The load balancer sees us not ready; liveness and metrics still answer.
    const ready = await apiRequest(engine.httpUrl, '/readyz', { key: null });
    expect(ready.status).to.equal(503);
    expect(ready.body).to.deep.include({ status: 'not_ready' });
    expect(ready.body.checks).to.deep.include({
      ari: { status: 'ok' },
      shutdown: { status: 'failed', reason: 'the engine is shutting down' },
    });
    expect((await apiRequest(engine.httpUrl, '/healthz', { key: null })).status).to.equal(200);
    const metrics = await apiRequest(engine.httpUrl, '/metrics', { key: null });
    expect(metrics.status).to.equal(200);
    expect(metrics.text).to.match(/^aricrm_webhook_queue_depth [1-4]$/m);

    // The CRM fails the held request, then the retry; the engine keeps going.
    crmMode = 'failing';
    for (const res of held.splice(0)) res.writeHead(503).end();
    await receiver.waitForRequests(2, 10_000);
    expect(stopped).to.equal(false);

    // Recovered: every event of the call arrives, in order, before the engine stops.
    crmMode = 'recovered';
    await stopping;
    expect(receiver.delivered.map((r) => r.event.type)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(engine.webhooks.pending()).to.equal(0);
    const messages = bed.logs.map((l) => String(l.message));
    expect(messages.some((m) => m.startsWith('stopping'))).to.equal(true);
    expect(messages.at(-1)).to.equal('stopped');
    expect(messages).to.not.include('pending webhooks were not all delivered before shutdown');
    expect(bed.logs.filter((l) => l.level === 'error')).to.deep.equal([]);
    // Closed at last: nothing listens any more.
    let refused = false;
    await fetch(`${engine.httpUrl}/healthz`).catch(() => {
      refused = true;
    });
    expect(refused).to.equal(true);
  });

  it('leaves calls in progress up in Asterisk and gives up on webhooks after SHUTDOWN_TIMEOUT_MS', async () => {
    bed = await startTestBed({ SHUTDOWN_TIMEOUT_MS: '300' });
    const { engine, sim } = bed;
    bed.crm.webhookStatus = 500;
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const bridged = simEvents(bed, 'ChannelEnteredBridge', 2);
    await sim.injectInboundCall({ from: '79165550202', to: DID });
    await bridged;
    await engine.calls.settled();
    expect(engine.calls.activeCalls().map((c) => c.state)).to.deep.equal(['bridged']);
    const channelsBefore = sim.channels().map((c) => `${c.id}:${c.state}`);
    expect(channelsBefore).to.have.length(2);
    const requestsBefore = sim.requests.length;

    const startedAt = Date.now();
    await engine.stop();
    expect(Date.now() - startedAt).to.be.at.least(290);

    // Both legs are still up and bridged: the engine sent nothing to hang up or tear down.
    expect(sim.channels().map((c) => `${c.id}:${c.state}`)).to.deep.equal(channelsBefore);
    const sentDuringStop = sim.requests.slice(requestsBefore);
    expect(sentDuringStop.filter((r) => r.method === 'DELETE')).to.deep.equal([]);
    const warning = bed.logs.find(
      (l) => l.message === 'pending webhooks were not all delivered before shutdown',
    );
    expect(warning?.level).to.equal('warn');
    expect(warning?.pending).to.be.greaterThan(0);
    expect(bed.logs.at(-1)?.message).to.equal('stopped');
  });

  it('does not ring a click-to-call operator again once the engine stopped, and the next start ends the call', async () => {
    bed = await startTestBed();
    const { engine, sim, crm } = bed;
    const originates = (): number =>
      sim.requests.filter((r) => r.method === 'POST' && r.path === '/channels').length;
    // The operator is busy: the engine waits `triesPeriodSec` to ring them again.
    sim.phones.set('101', { mode: 'busy' });
    const triesPeriodSec = 3;
    const res = await apiRequest(engine.httpUrl, '/v1/calls', {
      body: { operator: '101', to: '84957654321', tries: 2, triesPeriodSec },
    });
    expect(res.status).to.equal(202);
    const callId = res.body.id as string;
    await until(
      () => bed!.logs.some((l) => l.message === 'operator did not answer; retrying'),
      'the retry to be scheduled',
    );
    const retryAt = Date.now() + triesPeriodSec * 1000;
    expect(originates()).to.equal(1);
    // The operator would answer now.
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });

    await engine.stop();
    expect(Date.now()).to.be.below(retryAt - 500); // stopped well before the retry was due
    // Past the retry time: the stopped engine placed no call.
    await new Promise((resolve) => setTimeout(resolve, retryAt + 500 - Date.now()));
    expect(originates()).to.equal(1);
    expect(sim.channels()).to.deep.equal([]);
    expect(bed.logs.at(-1)?.message).to.equal('stopped');
    // A command of the stopped engine is refused, not sent.
    const requests = sim.requests.length;
    const late = await engine.gateway.channels.list().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(late).to.be.instanceOf(AriConnectionError);
    expect((late as AriConnectionError).asteriskMessage).to.equal('the engine has stopped');
    expect(sim.requests.length).to.equal(requests);

    // The call was not lost: the next start adopts it and ends it (its operator is gone).
    const { logger } = collectingLogger('info');
    restarted = await startEngine(engine.config, { logger, simulator: sim });
    const ended = await crm.waitForEnded(callId);
    expect(ended.body.data).to.include({ endReason: 'operator_unreachable' });
    expect(originates()).to.equal(1);
  });

  it('stores the route a CRM answers while the engine disconnects from ARI: its call.ended is sent by the next start, not a reconciled end', async () => {
    bed = await startTestBed({ CRM_TIMEOUT_MS: '5000' });
    const { engine, sim, crm } = bed;
    // The CRM answers the route lookup only once the stopping engine has disconnected from ARI.
    const gatewayStopped = until(
      () => bed!.logs.some((l) => l.message === 'ARI gateway stopped'),
      'the engine to disconnect from ARI',
    );
    crm.onRoute(() => ({
      body: { action: 'hangup' },
      hold: gatewayStopped,
    }));
    await sim.injectInboundCall({ from: '79165550203', to: DID });
    await until(() => crm.routeRequests.length === 1, 'the route lookup');
    const callId = crm.routeRequests[0]!.body.callId;
    await crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === 'call.started');

    await engine.stop();
    const messages = bed.logs.map((l) => String(l.message));
    expect(messages.indexOf('route decided')).to.be.greaterThan(
      messages.indexOf('ARI gateway stopped'),
    );
    // Nothing was dropped (or warned about) during the stop.
    const duringStop = bed.logs.slice(messages.findIndex((m) => m.startsWith('stopping')));
    expect(duringStop.filter((l) => l.level === 'warn' || l.level === 'error')).to.deep.equal([]);
    expect(crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal(['call.started']);

    // The next start sends the stored end: the CRM's hang-up, not a call the caller abandoned.
    const { logger } = collectingLogger('info');
    restarted = await startEngine(engine.config, { logger, simulator: sim });
    const ended = await crm.waitForEnded(callId);
    expect(ended.body.data).to.include({
      disposition: 'failed',
      hangupBy: 'system',
      endReason: 'route_hangup',
    });
    expect(crm.eventsOf(callId).map((w) => w.body.type)).to.deep.equal([
      'call.started',
      'call.ended',
    ]);
    expect(await restarted.store.calls.getCall(callId)).to.include({
      state: 'ended',
      endReason: 'route_hangup',
    });
    // The caller's channel was hung up while ARI was closed (its end never reported): the call's
    // details still show it ended, when the call did.
    const details = await apiRequest<CallRecord>(restarted.httpUrl, `/v1/calls/${callId}`);
    expect(details.status).to.equal(200);
    expect(details.body.endedAt).to.be.a('string');
    expect(details.body.legs.map((leg) => [leg.role, leg.endedAt])).to.deep.equal([
      ['caller', details.body.endedAt],
    ]);
  });

  it('hangs up at the next start a caller whose hang-up was lost while ARI closed, and only that channel', async () => {
    bed = await startTestBed({ CRM_TIMEOUT_MS: '5000' });
    const { engine, sim, crm } = bed;
    // A call that stays up across the restart: its channels must survive the clean-up.
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    crm.onRoute(() => ({ body: { action: 'dial', strategy: 'ringall', extensions: ['101'] } }));
    const bridged = simEvents(bed, 'ChannelEnteredBridge', 2);
    await sim.injectInboundCall({ from: '79165550204', to: DID });
    await bridged;
    await engine.calls.settled();
    const liveChannels = sim.channels().map((c) => c.id);
    expect(liveChannels).to.have.length(2);

    // The CRM answers `hangup` once the engine has disconnected from ARI, and Asterisk's HTTP
    // server is unreachable by then: the hang-up of the caller never reaches Asterisk.
    const gatewayStopped = until(
      () => bed!.logs.some((l) => l.message === 'ARI gateway stopped'),
      'the engine to disconnect from ARI',
    );
    crm.onRoute(() => ({
      body: { action: 'hangup' },
      hold: gatewayStopped.then(() => sim.refuseConnections()),
    }));
    const { channelId } = await sim.injectInboundCall({ from: '79165550205', to: DID });
    await until(() => crm.routeRequests.length === 2, 'the route lookup');
    const callId = crm.routeRequests[1]!.body.callId;
    await engine.stop();
    expect(bed.logs.find((l) => l.message === 'hangup failed')).to.include({
      callId,
      legChannelId: channelId,
    });
    // The store has the call as ended, Asterisk still has its caller in the app.
    expect(sim.channels().map((c) => c.id)).to.have.members([...liveChannels, channelId]);
    sim.acceptConnections();

    // The next start hangs the caller up, says so, and leaves the live call alone.
    const { logger, logs } = collectingLogger('info');
    restarted = await startEngine(engine.config, { logger, simulator: sim });
    await until(() => !sim.channels().some((c) => c.id === channelId), 'the caller hung up');
    const line = logs.find((l) => l.channelId === channelId && l.level === 'warn');
    expect(line?.message).to.equal('hanging up a channel of no live call');
    expect(line).to.include({ stasisArgs: `inbound,${DID}` });
    expect(sim.channels().map((c) => c.id)).to.have.members(liveChannels);
    expect(restarted.calls.activeCalls().map((c) => c.state)).to.deep.equal(['bridged']);
    // No new call for that channel: the ended call is the only one it had.
    expect(await restarted.store.calls.getCall(callId)).to.include({
      state: 'ended',
      endReason: 'route_hangup',
    });
    expect(crm.routeRequests).to.have.length(2);
  });
});
