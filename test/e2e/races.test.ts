/**
 * The two races a real Asterisk shows (fixtures facts 1 and 2), switched on in the simulator:
 * the engine must still ring, bridge and clean up every call.
 */
import { expect } from 'chai';
import { startTestBed, type TestBed } from '../support/engine.ts';

describe('ARI races (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  it('survives StasisStart before the create answer and 409 "not in Stasis" right after StasisStart', async () => {
    bed = await startTestBed();
    bed.sim.setRaces({ stasisStartBeforeCreateResponse: true, notInStasisAfterStasisStart: 2 });
    bed.crm.onRoute(() => ({
      body: { action: 'dial', strategy: 'ringall', extensions: ['101', '102'], ringTimeoutSec: 20 },
    }));
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 300, hangupAfterMs: 20_000 });
    bed.sim.phones.set('102', { mode: 'ring' });
    const from = '79169990001';
    await bed.sim.injectInboundCall({ from, to: '74951234567' });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.from === from,
    );
    const end = await bed.crm.waitForEnded(started.body.callId);
    expect(end.body.data).to.include({
      disposition: 'answered',
      answeredBy: '101',
      hangupBy: 'operator',
    });
    // Asterisk refused some commands with 409 and the engine retried them until they went through.
    const refused = bed.sim.requests.filter((r) => r.status === 409);
    expect(refused.length).to.be.greaterThan(0);
    for (const r of refused) {
      expect(
        bed.sim.requests.some(
          (ok) =>
            ok.method === r.method && ok.path === r.path && ok.status >= 200 && ok.status < 300,
        ),
      ).to.equal(true, `${r.method} ${r.path} retried`);
    }
    expect(bed.sim.channels()).to.have.length(0);
  });
});
