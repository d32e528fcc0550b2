/**
 * The asterisk.fcgi-compatible path end to end: the engine, the simulator, a client
 * on a mapped workstation (127.0.0.1 = 101) sending the API key as `?api_key=`.
 */
import { expect } from 'chai';
import { apiRequest } from '../support/api.ts';
import { startTestBed, TEST_API_KEY, type TestBed } from '../support/engine.ts';

const KEY = `api_key=${TEST_API_KEY}`;

function fcgi(bed: TestBed, query: string) {
  return apiRequest(bed.engine.httpUrl, `/fcgi-bin/asterisk.fcgi?${query}&${KEY}`, { key: null });
}

describe('compat asterisk.fcgi (e2e)', function () {
  this.timeout(20_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  const start = (env: Record<string, string> = {}): Promise<TestBed> =>
    startTestBed({
      OPERATOR_IP_MAP: '127.0.0.1=101',
      COMPAT_PATH: '/fcgi-bin/asterisk.fcgi',
      ...env,
    });

  it('makecall=N: rings the operator at this workstation, then the customer; Answer: OK', async () => {
    bed = await start();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 500 });
    bed.sim.customers.set('*', { mode: 'answer', answerAfterMs: 1000, hangupAfterMs: 1000 });
    const res = await fcgi(bed, 'makecall=84957654321');
    expect(res.status).to.equal(200);
    expect(res.text).to.equal('Answer: OK\n');
    const callId = res.headers.get('x-call-id')!;
    const end = await bed.crm.waitForEnded(callId);
    expect(end.body.data).to.include({
      disposition: 'answered',
      answeredBy: '101',
      to: '+74957654321',
    });
  });

  it('makecall=N: Answer: Busy when the operator stays busy through every try', async () => {
    bed = await start({ CLICK_TO_CALL_TRIES: '1' });
    bed.sim.phones.set('101', { mode: 'busy' });
    const res = await fcgi(bed, 'makecall=84957654321');
    expect(res.text).to.equal('Answer: Busy\n');
    expect(res.headers.get('x-error-code')).to.equal('operator_unreachable');
    expect(
      bed.sim.requests.filter((r) => r.method === 'POST' && r.path === '/channels'),
    ).to.have.length(1);
  });

  it('makecall=N: Answer: Busy when the customer is busy', async () => {
    bed = await start();
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    bed.sim.customers.set('*', { mode: 'busy' });
    const res = await fcgi(bed, 'makecall=84957654321');
    expect(res.text).to.equal('Answer: Busy\n');
    // The reason comes from the call's ended snapshot, whether or not the engine still holds it.
    expect(res.headers.get('x-error-code')).to.equal('customer_unreachable');
  });

  it('makecall=N: Answer: Error from an address no operator is mapped to', async () => {
    bed = await start({ OPERATOR_IP_MAP: '10.0.0.5=101' });
    const res = await fcgi(bed, 'makecall=84957654321');
    expect(res.text).to.equal('Answer: Error\n');
    expect(bed.sim.requests.some((r) => r.method === 'POST' && r.path === '/channels')).to.equal(
      false,
    );
  });

  it('get_uniqueid_callerid and transfer=UNIQUEID&dest=9999 on a live inbound call', async () => {
    bed = await start();
    expect((await fcgi(bed, 'get_uniqueid_callerid')).text).to.equal('Answer: Error\n');
    bed.sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    const { channelId } = await bed.sim.injectInboundCall({
      from: '79161112233',
      to: '74951234567',
    });
    const started = await bed.crm.waitForWebhook((w) => w.body.type === 'call.started');
    await bed.crm.waitForWebhook(
      (w) => w.body.callId === started.body.callId && w.body.type === 'call.answered',
    );
    await bed.engine.calls.settled();
    const current = await fcgi(bed, 'get_uniqueid_callerid');
    expect(current.text).to.equal(`Answer: OK\nCallerID: 79161112233\nUniqueID: ${channelId}\n`);

    const transfer = await fcgi(bed, `transfer=${encodeURIComponent(channelId)}&dest=9999`);
    expect(transfer.text).to.equal('Answer: OK\n');
    await bed.crm.waitForEnded(started.body.callId);
    const cont = bed.sim.requests.find((r) => r.path === `/channels/${channelId}/continue`);
    expect(cont?.query).to.include({ context: 'service', extension: '9999', priority: '1' });
    const again = await fcgi(bed, `transfer=${encodeURIComponent(channelId)}&dest=9999`);
    expect(again.text).to.equal('Answer: Error\n');
  });

  it('refuses without a key, in the text format', async () => {
    bed = await start();
    const res = await apiRequest(bed.engine.httpUrl, '/fcgi-bin/asterisk.fcgi?makecall=1', {
      key: null,
    });
    expect(res.status).to.equal(401);
    expect(res.text).to.equal('Answer: Error\n');
  });
});
