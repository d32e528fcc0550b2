/**
 * The two races of a real Asterisk (fixtures facts 1 and 2), switched on in the simulator:
 * (a) the StasisStart of a created channel reaches the app before the HTTP answer to the create;
 * (b) channel commands sent right after a StasisStart answer 409 "Channel not in Stasis application".
 */
import { expect } from 'chai';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { ari, AppSocket } from './support/driver.ts';
import type { Json } from './support/trace.ts';

describe('simulator races', function () {
  this.timeout(10_000);
  let sim: PbxSimulator;
  let socket: AppSocket;

  beforeEach(async () => {
    sim = await startSimulator({ timeScale: 0.05 });
    socket = await AppSocket.open(sim);
  });

  afterEach(async () => {
    await socket?.close();
    await sim?.close();
  });

  it('(a) off by default: the create answer comes first, its StasisStart right after', async () => {
    const answer = await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      appArgs: 'operator,x',
      channelId: 'op-1',
    });
    expect(answer.status).to.equal(200);
    const eventsAtAnswer = socket.events.filter(
      (e) => (e.channel as Json | undefined)?.id === 'op-1',
    ).length;
    expect(eventsAtAnswer).to.equal(0);
    const start = await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
    expect(start).to.deep.include({ args: ['operator', 'x'] });
    expect((start.channel as Json).state).to.equal('Down');
  });

  it('(a) on: the StasisStart of a created channel arrives before the HTTP answer to the create', async () => {
    sim.setRaces({ stasisStartBeforeCreateResponse: true });
    for (let i = 0; i < 5; i++) {
      const before = socket.events.length;
      const answer = await ari(sim, 'POST', '/channels/create', {
        endpoint: 'PJSIP/102',
        app: 'crm-app',
        appArgs: 'operator',
        channelId: `op-${i}`,
      });
      expect(answer.status).to.equal(200);
      expect((answer.body as Json).id).to.equal(`op-${i}`);
      const early = socket.events.slice(before).map((e) => e.type);
      expect(early, `events seen when the answer to create #${i} arrived`).to.deep.equal([
        'ChannelDialplan',
        'ChannelVarset',
        'StasisStart',
      ]);
    }
  });

  it('(b) the first N channel commands after each StasisStart answer 409, later ones succeed', async () => {
    sim.setRaces({ notInStasisAfterStasisStart: 2 });
    sim.phones.set('101', { mode: 'ring' });
    const { channelId } = await sim.injectInboundCall({ from: '79161234567', to: '74951234567' });
    await socket.next((e) => e.type === 'StasisStart', 'inbound StasisStart');
    const ring1 = await ari(sim, 'POST', `/channels/${channelId}/ring`);
    const ring2 = await ari(sim, 'POST', `/channels/${channelId}/ring`);
    const ring3 = await ari(sim, 'POST', `/channels/${channelId}/ring`);
    expect([ring1.status, ring2.status, ring3.status]).to.deep.equal([409, 409, 204]);
    expect(ring1.body).to.deep.equal({ message: 'Channel not in Stasis application' });
    // GET and DELETE do not need the channel in Stasis; the budget is per channel and per StasisStart.
    expect((await ari(sim, 'GET', `/channels/${channelId}`)).status).to.equal(200);
    await ari(sim, 'POST', '/channels/create', {
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      channelId: 'op-b',
    });
    await socket.next(
      (e) => e.type === 'StasisStart' && (e.channel as Json).id === 'op-b',
      'operator StasisStart',
    );
    const dials = [];
    for (let i = 0; i < 3; i++)
      dials.push(
        (await ari(sim, 'POST', '/channels/op-b/dial', { caller: channelId, timeout: 10 })).status,
      );
    expect(dials).to.deep.equal([409, 409, 204]);
    await socket.next((e) => e.type === 'Dial' && e.dialstatus === 'RINGING', 'Dial RINGING');
  });

  it('(b) with a probability, commands in the first 100 simulated ms after StasisStart may answer 409', async () => {
    // Real time: at the suite's 0.05 the window is 5 real ms, which a busy machine overruns.
    await socket.close();
    await sim.close();
    sim = await startSimulator({ timeScale: 1 });
    socket = await AppSocket.open(sim);
    sim.setRaces({ notInStasisProbability: 1 });
    const { channelId } = await sim.injectInboundCall({ from: '79161234567', to: '74951234567' });
    await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
    const early = await ari(sim, 'POST', `/channels/${channelId}/answer`);
    expect(early.status).to.equal(409);
    expect(early.body).to.deep.equal({ message: 'Channel not in Stasis application' });
    sim.setRaces({ notInStasisProbability: 0 });
    expect((await ari(sim, 'POST', `/channels/${channelId}/answer`)).status).to.equal(204);
  });
});
