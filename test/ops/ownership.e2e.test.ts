/**
 * One engine per store, end to end (src/store/ownership.ts; docs/operations.md): a second engine
 * started by mistake on the same DATA_DIR refuses to start before it connects to Asterisk or the
 * CRM, and the running engine goes on owning its calls.
 */
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { createLogger } from '../../src/logging/logger.ts';
import { startEngine } from '../../src/main.ts';
import { StoreInUseError } from '../../src/store/index.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';

describe('one engine per store (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed | undefined;
  afterEach(async () => {
    await bed?.stop();
    bed = undefined;
  });

  it('a second engine on the same DATA_DIR refuses to start; the first keeps handling calls', async () => {
    bed = await startTestBed();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    const requestsBefore = bed.sim.requests.length;
    const logs = new PassThrough();
    logs.resume();
    const refused = await startEngine(
      { ...bed.engine.config, HTTP_PORT: 0 },
      { logger: createLogger({ level: 'error', stream: logs }), simulator: bed.sim },
    ).then(
      () => expect.fail('the second engine started'),
      (err: unknown) => err,
    );
    expect(refused).to.be.instanceOf(StoreInUseError);
    expect((refused as Error).message).to.include(bed.dataDir);
    // It never talked to Asterisk (no REST request, no WebSocket taking over crm-app).
    expect(bed.sim.requests.length).to.equal(requestsBefore);

    const from = '79165550101';
    await bed.sim.injectInboundCall({ from, to: '74951234567' });
    const started = await bed.crm.waitForWebhook(
      (w) => w.body.type === 'call.started' && w.body.data.from === from,
    );
    const ended = await bed.crm.waitForEnded(started.body.callId);
    expect(ended.body.data).to.include({ disposition: 'answered', answeredBy: '101' });
  });
});
