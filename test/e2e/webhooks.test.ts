/**
 * Webhooks end to end: a CRM that fails never slows call handling, and once it recovers it gets
 * every event of every call, in order, signed.
 */
import { expect } from 'chai';
import { startTestBed, type TestBed } from '../support/engine.ts';

describe('lifecycle webhooks (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  it('keeps handling calls while the CRM answers 500, then delivers every event in per-call order', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    bed.sim.phones.set('102', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    bed.crm.onRoute((req) => ({
      body: {
        action: 'dial',
        strategy: 'ringall',
        extensions: [req.from.endsWith('1') ? '101' : '102'],
        ringTimeoutSec: 20,
      },
    }));
    bed.crm.webhookStatus = 500;
    const ended = new Promise<void>((resolve) => {
      let count = 0;
      bed.engine.calls.on('ended', () => {
        if (++count === 2) resolve();
      });
    });
    await bed.sim.injectInboundCall({ from: '79165550001', to: '74951234567' });
    await bed.sim.injectInboundCall({ from: '79165550002', to: '74951234567' });
    // Both calls run to the end while the CRM rejects every delivery.
    await ended;
    expect(bed.crm.webhooks).to.have.length(0);
    expect(bed.sim.channels()).to.have.length(0);

    bed.crm.webhookStatus = 200;
    const endedHooks = await Promise.all([
      bed.crm.waitForWebhook(
        (w) => w.body.type === 'call.ended' && w.body.data.from === '79165550001',
        15_000,
      ),
      bed.crm.waitForWebhook(
        (w) => w.body.type === 'call.ended' && w.body.data.from === '79165550002',
        15_000,
      ),
    ]);
    for (const end of endedHooks) {
      const events = bed.crm.eventsOf(end.body.callId);
      expect(events.map((w) => w.body.type)).to.deep.equal([
        'call.started',
        'call.ringing',
        'call.answered',
        'call.ended',
      ]);
      expect(events.map((w) => w.body.sequence)).to.deep.equal([1, 2, 3, 4]);
      expect(events.every((w) => w.signatureValid)).to.equal(true);
    }
    const retried = await bed.engine.registry.getSingleMetricAsString(
      'aricrm_webhook_deliveries_total',
    );
    expect(retried).to.match(/outcome="retried"} [1-9]/);
  });
});
