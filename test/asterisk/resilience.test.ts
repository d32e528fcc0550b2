/**
 * Resilience and load on a real Asterisk 22 (the kit): the engine killed with SIGKILL during a
 * bridged call and started again (it adopts the call from its store and hangs it up correctly),
 * the ARI WebSocket cut from outside the engine (a TCP proxy between the engine and Asterisk
 * drops every connection and refuses new ones while the caller hangs up; the engine reconciles
 * when it gets back), and 50 simultaneous inbound calls, all answered and cleaned up.
 */
import { expect } from 'chai';
import { type AcceptanceBed } from './support/bed.ts';
import {
  CALLER,
  DID,
  callAnsweredBy101,
  describeOnAsterisk,
  hangUpByApi,
  routeTo,
  callIn,
  useAcceptanceBed,
} from './support/suite.ts';
import { Sipp } from './support/sipp.ts';
import { until } from '../support/until.ts';

describeOnAsterisk('real Asterisk: resilience and load', function () {
  this.timeout(120_000);
  let bed!: AcceptanceBed;
  useAcceptanceBed((b) => (bed = b));

  /**
   * Operator 103 dials a customer from the desk phone (the caller waits for a BYE, the customer
   * answers after 300 ms); resolves once the call is answered and bridged in Asterisk.
   */
  async function deskCallBridged(): Promise<{ liveId: string; desk: Sipp; customer: Sipp }> {
    const { ports } = bed;
    const customer = Sipp.phone('customer', 'uas_answer.xml', ports, ports.trunk, {
      pauseMs: 300,
    });
    const firstStarted = bed.nextCallStarted();
    const desk = Sipp.deskPhone('op103-desk', 'uac_wait_bye.xml', ports, {
      extension: '103',
      number: '89161234567',
    });
    const liveId = (await firstStarted).body.callId;
    await bed.waitFor(liveId, 'call.answered');
    await bed.waitBridged();
    return { liveId, desk, customer };
  }

  it('engine killed -9 during a bridged call: restarted, it adopts the call and hangs it up', async () => {
    const { callId, operator, caller } = await callAnsweredBy101(bed);
    await bed.waitBridged();
    await bed.killEngine();
    // Asterisk keeps both channels bridged while no engine is connected.
    const bridges = await bed.asterisk.ari<Array<{ channels: string[] }>>('/bridges');
    expect(bridges.body.map((b) => b.channels.length)).to.deep.equal([2]);

    await bed.startEngine();
    const recovered = await bed.waitFor(callId, 'call.recovered');
    expect(recovered.body.data).to.include({
      reason: 'engine_restart',
      state: 'bridged',
      answeredBy: '101',
    });
    expect((await bed.call(callId)).state).to.equal('bridged');
    const ended = await hangUpByApi(bed, callId);
    await Promise.all([caller.passed(), operator.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.recovered',
      'call.ended',
    ]);
    expect(ended).to.include({ answeredBy: '101', disposition: 'answered' });
    const call = await bed.call(callId);
    expect(call).to.include({ state: 'ended', endReason: 'api_hangup' });
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    await bed.asterisk.waitIdle();
  });

  it('ARI WebSocket cut while bridged, the caller hangs up meanwhile: reconciled on reconnect', async () => {
    const { caller, callId, operator } = await callAnsweredBy101(bed, {
      callerHangsUpAfterMs: 3000,
    });
    await bed.waitBridged();
    // Every connection between the engine and Asterisk dropped, new ones refused.
    bed.proxy.cut(true);
    await caller.passed();
    // Asterisk never hangs up the other party of a bridge: the operator is still on the line.
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK']);
    expect(bed.crm.eventsOf(callId).map((w) => w.body.type)).to.not.include('call.ended');
    bed.proxy.restore();
    const ended = await bed.ended(callId, 30_000);
    await operator.passed();

    expect(bed.engine!.lines.map((l) => l.message)).to.include.members([
      'ARI WebSocket closed; reconnecting',
      'ARI reconnected',
    ]);
    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(ended).to.include({ answeredBy: '101', disposition: 'answered' });
    expect(ended.hangupBy).to.be.oneOf(['caller', 'system']);
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect((await bed.call(callId)).state).to.equal('ended');
    await bed.asterisk.waitIdle();
  });

  it('ARI WebSocket cut and back at once: the bridged call is recovered and still controlled', async () => {
    const { callId, operator, caller } = await callAnsweredBy101(bed);
    await bed.waitBridged();
    const reconnects = (): number =>
      bed.engine!.lines.filter((l) => l.message === 'ARI reconnected').length;
    const before = reconnects();
    bed.proxy.cut(false);
    const recovered = await bed.waitFor(callId, 'call.recovered', 30_000);
    expect(reconnects()).to.be.greaterThan(before);
    expect(recovered.body.data).to.include({
      reason: 'ari_reconnect',
      state: 'bridged',
      answeredBy: '101',
    });
    // Still the engine's call: the API hangs both parties up.
    const ended = await hangUpByApi(bed, callId);
    await Promise.all([caller.passed(), operator.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.recovered',
      'call.ended',
    ]);
    expect(ended).to.include({ answeredBy: '101', disposition: 'answered' });
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    await bed.asterisk.waitIdle();
  });

  it('the answer to the bridge creation is lost (connection cut): bridged after the reconnect, nothing leaks', async () => {
    const { ports } = bed;
    routeTo(bed, ['101']);
    // Asterisk creates the call's bridge, then every connection to the engine drops.
    // (bridges.createWithId: POST /ari/bridges/<bridgeId>?type=mixing&name=…)
    const lost = bed.proxy.loseAnswerTo(/^POST \/ari\/bridges\/[^/?\s]+[? ]/);
    const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    const { caller, callId } = await callIn(bed, 'uac_wait_bye.xml');
    await Promise.race([
      lost,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('no bridge creation seen')), 20_000),
      ),
    ]);
    await bed.waitFor(callId, 'call.recovered', 30_000);
    // The two parties end up in one bridge, and it is the only one.
    await until(
      async () => {
        const bridges = await bed.asterisk.ari<Array<{ channels: string[] }>>('/bridges');
        return bridges.body.length === 1 && bridges.body[0]!.channels.length === 2;
      },
      'caller and operator in the one bridge of the call',
      20_000,
    );
    const ended = await hangUpByApi(bed, callId);
    await Promise.all([caller.passed(), operator.passed()]);
    expect(ended).to.include({ answeredBy: '101', disposition: 'answered' });
    // No bridge left behind in Asterisk (the one whose creation was not confirmed included).
    await bed.asterisk.waitIdle(5_000);
  });

  it('a caller whose hang-up was lost while the stopping engine closed ARI is hung up by the next start', async () => {
    // The CRM answers `hangup` only once the stopping engine has disconnected from ARI, and by
    // then Asterisk is unreachable: the hang-up of the caller is lost.
    await bed.stopEngine();
    await bed.startEngine({ CRM_TIMEOUT_MS: '8000' });
    const engine = bed.engine!;
    bed.crm.onRoute(() => ({
      body: { action: 'hangup' },
      hold: engine
        .waitForLine((l) => l.message === 'ARI gateway stopped', 60_000)
        .then(() => bed.proxy.cut(true)),
    }));
    // The caller is never answered: hung up with the normal cause, it gets 603 Decline.
    const { caller, callId } = await callIn(bed, 'uac_declined.xml');
    await until(() => bed.crm.routeRequests.some((r) => r.body.callId === callId), 'the lookup');
    await bed.stopEngine();
    const failed = engine.lines.find((l) => l.message === 'hangup failed');
    expect(failed).to.include({ callId });
    const channelId = String(failed!.legChannelId);
    const inAsterisk =
      await bed.asterisk.ari<Array<{ id: string; dialplan: { app_data: string } }>>('/channels');
    expect(inAsterisk.body.map((c) => [c.id, c.dialplan.app_data])).to.deep.equal([
      [channelId, `crm-app,inbound,${DID}`],
    ]);

    bed.proxy.restore();
    await bed.startEngine();
    await caller.passed();
    const line = await bed.engine!.waitForLine(
      (l) => l.message === 'hanging up a channel of no live call',
    );
    expect(line).to.include({ channelId, stasisArgs: `inbound,${DID}` });
    expect(await bed.call(callId)).to.include({ state: 'ended', endReason: 'route_hangup' });
    expect(bed.webhookTypes(callId)).to.deep.equal(['call.started', 'call.ended']);
    await bed.asterisk.waitIdle();
  });

  it('a caller arriving while the WebSocket is closed is rejected by Asterisk, even though the app still holds channels', async () => {
    const { ports } = bed;
    const { liveId, desk, customer } = await deskCallBridged();
    bed.proxy.cut(true);
    // Asterisk keeps the app (it holds the live call's channels) but deactivated: Stasis() fails
    // at once ("Stasis app 'crm-app' not active"), STASISSTATUS=FAILED; without a dialplan
    // fallback the caller is declined.
    await until(
      async () =>
        (await bed.asterisk.ari<Array<{ name: string }>>('/applications')).body.length === 1,
      'the app still listed',
    );
    const caller = Sipp.caller('caller', 'uac_declined.xml', ports, { did: DID, caller: CALLER });
    await caller.passed();
    const channels = await bed.asterisk.ari<Array<{ dialplan: { app_data: string } }>>('/channels');
    expect(channels.body.map((c) => c.dialplan.app_data).sort()).to.deep.equal([
      `crm-app,customer,${liveId}`,
      'crm-app,outbound,89161234567',
    ]);
    bed.proxy.restore();
    await bed.waitFor(liveId, 'call.recovered', 30_000);
    await hangUpByApi(bed, liveId);
    await Promise.all([desk.passed(), customer.passed()]);
    await bed.asterisk.waitIdle();
  });

  it('a caller whose StasisStart was lost with a silently dead WebSocket is routed at the reconnect and answered, not hung up', async function () {
    this.timeout(120_000);
    const { ports } = bed;
    // A live call across the outage: operator 103 dialled a customer, bridged.
    const { liveId, desk, customer } = await deskCallBridged();

    // The ARI WebSocket goes silent (packets dropped, nobody closes anything): Asterisk still has
    // the app connected, lets the next caller in and writes its StasisStart into the void.
    routeTo(bed, ['101']);
    const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    bed.proxy.silenceEvents();
    const startedBefore = bed.crm.webhooks.length;
    const caller = Sipp.caller('caller', 'uac_wait_bye.xml', ports, { did: DID, caller: CALLER });
    const inApp = async (): Promise<string | undefined> => {
      const channels =
        await bed.asterisk.ari<Array<{ id: string; dialplan: { app_data: string } }>>('/channels');
      return channels.body.find((c) => c.dialplan.app_data === `crm-app,inbound,${DID}`)?.id;
    };
    await until(async () => (await inApp()) !== undefined, 'the caller in the Stasis app');
    const channelId = (await inApp())!;
    expect(bed.crm.webhooks.slice(startedBefore).map((w) => w.body.type)).to.deep.equal([]);

    // The engine's ping timeout drops the connection; it reconnects and finds the caller.
    const engine = bed.engine!;
    await engine.waitForLine(
      (l) => l.message === 'ARI WebSocket peer did not answer ping; dropping the connection',
      40_000,
    );
    const started = await bed.nextCallStarted(30_000);
    const callId = started.body.callId;
    expect(started.body.data).to.include({ direction: 'in', from: CALLER, did: DID });
    await bed.waitFor(callId, 'call.answered');
    const line = await engine.waitForLine(
      (l) => l.message === 'routing a caller whose StasisStart was missed',
    );
    expect(line).to.include({ channelId, stasisArgs: `inbound,${DID}` });
    expect(
      engine.lines.some(
        (l) => l.message === 'hanging up a channel of no live call' && l.channelId === channelId,
      ),
    ).to.equal(false);
    expect(bed.crm.routeRequests.filter((r) => r.body.callId === callId)).to.have.length(1);
    // The live call was kept through it.
    await bed.waitFor(liveId, 'call.recovered');

    const ended = await hangUpByApi(bed, callId);
    expect(ended).to.include({ answeredBy: '101', disposition: 'answered' });
    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect((await bed.call(callId)).legs.find((l) => l.role === 'caller')?.channelId).to.equal(
      channelId,
    );
    await hangUpByApi(bed, liveId);
    await Promise.all([caller.passed(), operator.passed(), desk.passed(), customer.passed()]);
    await bed.asterisk.waitIdle();
  });

  it('50 simultaneous inbound calls: all answered by 101, all ended, nothing left', async function () {
    this.timeout(180_000);
    const { ports } = bed;
    routeTo(bed, ['101']);
    const CALLS = 50;
    const startedBefore = new Set(
      bed.crm.webhooks.filter((w) => w.body.type === 'call.started').map((w) => w.body.callId),
    );
    const operator = Sipp.phone('op101-load', 'uas_answer.xml', ports, ports.operators['101'], {
      calls: CALLS,
      pauseMs: 200,
    });
    // 50 calls within one second, each talking 8 s: all 50 are up at the same time.
    const callers = Sipp.caller('callers', 'uac.xml', ports, {
      did: DID,
      caller: CALLER,
      pauseMs: 8000,
      extra: ['-m', String(CALLS), '-r', String(CALLS), '-rp', '1000', '-l', String(CALLS)],
    });
    const newCalls = (): string[] => [
      ...new Set(
        bed.crm.webhooks
          .filter((w) => w.body.type === 'call.started' && !startedBefore.has(w.body.callId))
          .map((w) => w.body.callId),
      ),
    ];
    const endedCount = (): number =>
      newCalls().filter((id) => bed.crm.eventsOf(id).some((w) => w.body.type === 'call.ended'))
        .length;
    await until(() => endedCount() === CALLS, `${CALLS} calls to end`, 90_000);
    await Promise.all([callers.passed(60_000), operator.passed(60_000)]);

    const ids = newCalls();
    expect(ids).to.have.length(CALLS);
    const spans: Array<[number, number]> = [];
    for (const id of ids) {
      expect(bed.webhookTypes(id)).to.deep.equal([
        'call.started',
        'call.ringing',
        'call.answered',
        'call.ended',
      ]);
      const events = bed.crm.eventsOf(id);
      const ended = events.find((w) => w.body.type === 'call.ended')!.body.data;
      expect(ended).to.include({
        answeredBy: '101',
        disposition: 'answered',
        hangupBy: 'caller',
      });
      const answeredAt = Date.parse(String(ended.answeredAt));
      spans.push([answeredAt, Date.parse(String(ended.endedAt))]);
    }
    const peak = Math.max(...spans.map(([t]) => spans.filter(([a, e]) => a <= t && t < e).length));
    expect(peak, 'calls bridged at the same moment').to.equal(CALLS);
    await bed.asterisk.waitIdle(30_000);
  });
});
