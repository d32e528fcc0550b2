/**
 * ARI outages in the simulator: `refuseConnections` makes the simulated Asterisk unreachable
 * (REST and WebSocket) while the PBX keeps running, like a network failure between the engine and
 * a real Asterisk; the app's channels stay in Stasis (fixtures fact 13) and nothing is replayed.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import WebSocket from 'ws';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { about, ari, AppSocket, bridgeInboundCall } from './support/driver.ts';
import type { Json } from './support/trace.ts';
import { until } from '../support/until.ts';

const CALLER = '79161234567';
const DID = '74951234567';

/** Whether a WebSocket to the app can be opened now. */
function wsOpens(sim: PbxSimulator): Promise<boolean> {
  const url = `${sim.url.replace(/^http/, 'ws')}/ari/events?app=probe&api_key=${sim.username}:${sim.password}`;
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.terminate();
      resolve(true);
    });
    ws.once('error', () => resolve(false));
  });
}

describe('simulator ARI outage', function () {
  this.timeout(10_000);
  let sim: PbxSimulator;
  let socket: AppSocket;

  beforeEach(async () => {
    sim = await startSimulator({ timeScale: 0.02 });
    socket = await AppSocket.open(sim);
  });

  afterEach(async () => {
    await socket?.close();
    await sim?.close();
  });

  it('cuts REST and WebSocket while the PBX keeps its channels; nothing is replayed afterwards', async () => {
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 100 });
    const channelId = await bridgeInboundCall(sim, socket, { from: CALLER, to: DID });
    const sent: string[] = [];
    sim.onEvent((e) => sent.push(e.type));

    const closed = new Promise<void>((resolve) =>
      (socket as unknown as { ws: WebSocket }).ws.once('close', () => resolve()),
    );
    sim.refuseConnections();
    await closed; // the open WebSocket is cut
    expect(sim.refusingConnections()).to.equal(true);
    let restError: unknown;
    await ari(sim, 'GET', '/channels').catch((err: unknown) => (restError = err));
    expect(restError, 'REST is unreachable too').to.be.instanceOf(Error);
    expect(await wsOpens(sim)).to.equal(false);

    // The PBX runs on: the operator hangs up, a new caller is rejected (no WebSocket, fact 14).
    sim.hangup('op');
    let rejected: unknown;
    await sim
      .injectInboundCall({ from: CALLER, to: DID })
      .catch((err: unknown) => (rejected = err));
    expect(rejected).to.have.property('reason', 'app_not_connected');
    expect(sim.channels().map((c) => c.id)).to.deep.equal([channelId]);
    expect(sent, 'events meanwhile are dropped').to.deep.equal([]);

    sim.acceptConnections();
    expect(sim.refusingConnections()).to.equal(false);
    const app = await ari(sim, 'GET', '/applications/crm-app');
    expect(app.body).to.deep.include({ channel_ids: [channelId], bridge_ids: ['b1'] });
    const bridge = await ari(sim, 'GET', '/bridges/b1');
    expect((bridge.body as Json).channels).to.deep.equal([channelId]);
    const before = socket.events.length;
    await socket.connect();
    sim.hangup(channelId);
    await socket.next(
      (e) => e.type === 'StasisEnd' && about(channelId)(e),
      'caller StasisEnd after the outage',
      before,
    );
    expect(socket.events.slice(before).filter(about('op'))).to.deep.equal([]);
  });

  it('accepts connections again by itself after forMs', async () => {
    sim.refuseConnections(150);
    expect(await wsOpens(sim)).to.equal(false);
    await until(() => !sim.refusingConnections(), 'connections accepted again by themselves');
    expect((await ari(sim, 'GET', '/channels')).status).to.equal(200);
    expect(await wsOpens(sim)).to.equal(true);
  });

  describe('control routes', () => {
    let server: Server;
    let base: string;

    beforeEach(async () => {
      const app = express();
      app.use('/sim', sim.controlRouter());
      server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sim`;
    });

    afterEach(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    const post = (path: string, body?: unknown): Promise<Response> =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
      });

    it('starts and ends an outage and drops the WebSockets; validates forMs', async () => {
      expect((await post('/ari/refuse', { forMs: 60_000 })).status).to.equal(204);
      expect(sim.refusingConnections()).to.equal(true);
      expect((await post('/ari/accept')).status).to.equal(204);
      expect(sim.refusingConnections()).to.equal(false);
      const bad = await post('/ari/refuse', { forMs: -1 });
      expect(bad.status).to.equal(400);
      expect(await bad.json()).to.have.property('code', 'invalid_request');

      await socket.connect(); // the outage cut the first one
      const closed = new Promise<void>((resolve) =>
        (socket as unknown as { ws: WebSocket }).ws.once('close', () => resolve()),
      );
      expect((await post('/ari/drop')).status).to.equal(204);
      await closed;
      expect((await ari(sim, 'GET', '/channels')).status, 'REST still works').to.equal(200);
    });
  });
});
