/**
 * Nothing of a call stays in memory after it (heap after 50,000 calls vs before: no
 * growth): a batch of calls of every flow runs through the simulator, and afterwards the call
 * service holds no call, channel, playback or watcher, the journal has nothing pending, the
 * webhook queue is empty and the gateway's per-channel listeners are back to their idle count.
 * Every call is still answered by the API, from the store.
 */
import { expect } from 'chai';
import type { CallSnapshot } from '../../src/calls/model.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';

/** Calls of each kind in the batch (200 in all). */
const KINDS = {
  /**
   * Inbound, greeting played (1.4 s), answered by 101, the caller hangs up. The caller is
   * answered for the greeting: talk time (150 s simulated, 3 s real) leaves room for the burst.
   */
  greeted: 40,
  /** Inbound, sequential: 102 busy, then 101 answers; the caller hangs up. */
  sequential: 30,
  /** Inbound, 103 rings (never answers); the caller abandons. */
  abandoned: 30,
  /** Inbound, answered by 101, then transferred to service number 9999 (channel released). */
  transferred: 20,
  /** Click-to-call: 101 answers, the customer answers and hangs up. */
  clickToCall: 40,
  /** Click-to-call: the customer is busy, the operator hears the beep (a playback). */
  customerBusy: 20,
  /** An operator (102) dials out; the customer answers and hangs up. */
  outbound: 20,
} as const;
const TOTAL = Object.values(KINDS).reduce((a, b) => a + b, 0);

const DID = '74951234567';
/** Caller / customer numbers by kind: prefix + index. */
const PREFIX = {
  greeted: '7916100',
  sequential: '7916200',
  abandoned: '7916300',
  transferred: '7916400',
  clickToCall: '7495100',
  customerBusy: '7495200',
  outbound: '7916500',
};
const numberOf = (kind: keyof typeof PREFIX, i: number): string =>
  `${PREFIX[kind]}${String(i).padStart(4, '0')}`;

/** Value of a gauge without labels. */
async function gaugeValue(bed: TestBed, name: string): Promise<number> {
  const metric = bed.engine.registry.getSingleMetric(name);
  expect(metric, name).to.not.equal(undefined);
  const { values } = await metric!.get();
  return values[0]?.value ?? 0;
}

describe('memory after calls (e2e)', function () {
  this.timeout(60_000);
  let bed: TestBed;
  afterEach(async () => {
    await bed?.stop();
  });

  it(`holds nothing of ${TOTAL} finished calls of every flow`, async () => {
    bed = await startTestBed();
    const { engine, sim, crm } = bed;
    crm.setMaxListeners(2 * KINDS.transferred + 10); // the transfers wait for their webhooks
    sim.phones.set('101', { mode: 'answer', answerAfterMs: 200 });
    sim.phones.set('102', { mode: 'busy' });
    sim.phones.set('103', { mode: 'ring' });
    sim.customers.set('*', { mode: 'answer', answerAfterMs: 200, hangupAfterMs: 300 });
    for (let i = 0; i < KINDS.customerBusy; i++)
      sim.customers.set(numberOf('customerBusy', i), { mode: 'busy' });
    crm.onRoute(({ from }) => {
      if (from.startsWith(PREFIX.greeted))
        return {
          body: {
            action: 'dial',
            strategy: 'ringall',
            extensions: ['101'],
            ringTimeoutSec: 20,
            greeting: ['sound:hello-world'],
          },
        };
      if (from.startsWith(PREFIX.sequential))
        return {
          body: {
            action: 'dial',
            strategy: 'sequential',
            extensions: ['102', '101'],
            ringTimeoutSec: 20,
          },
        };
      if (from.startsWith(PREFIX.abandoned))
        return {
          body: {
            action: 'dial',
            strategy: 'ringall',
            extensions: ['103'],
            ringTimeoutSec: 20,
          },
        };
      return {
        body: { action: 'dial', strategy: 'ringall', extensions: ['101'], ringTimeoutSec: 20 },
      };
    });

    const idleListeners = await gaugeValue(bed, 'aricrm_ari_channel_listeners');
    const ended = new Map<string, CallSnapshot>();
    const released = new Set<string>();
    const allReleased = new Promise<void>((resolve) => {
      engine.calls.on('ended', (call) => void ended.set(call.id, call));
      engine.calls.on('released', (id) => {
        released.add(id);
        if (released.size === TOTAL) resolve();
      });
    });

    // Inbound calls whose id the test needs (transfers) come from their call.answered webhook.
    const transfers: Array<Promise<void>> = [];
    const placed: Array<Promise<unknown>> = [];
    for (let i = 0; i < KINDS.greeted; i++)
      placed.push(
        sim.injectInboundCall({ from: numberOf('greeted', i), to: DID, hangupAfterMs: 150_000 }),
      );
    for (let i = 0; i < KINDS.sequential; i++)
      placed.push(
        sim.injectInboundCall({ from: numberOf('sequential', i), to: DID, hangupAfterMs: 300 }),
      );
    for (let i = 0; i < KINDS.abandoned; i++)
      placed.push(
        sim.injectInboundCall({ from: numberOf('abandoned', i), to: DID, abandonAfterMs: 400 }),
      );
    for (let i = 0; i < KINDS.transferred; i++) {
      const from = numberOf('transferred', i);
      placed.push(sim.injectInboundCall({ from, to: DID }));
      transfers.push(
        (async () => {
          const started = await crm.waitForWebhook(
            (w) => w.body.type === 'call.started' && w.body.data.from === from,
            20_000,
          );
          await crm.waitForWebhook(
            (w) => w.body.callId === started.body.callId && w.body.type === 'call.answered',
            20_000,
          );
          await engine.calls.transferCall(started.body.callId, { kind: 'service', to: '9999' });
        })(),
      );
    }
    for (let i = 0; i < KINDS.clickToCall; i++)
      engine.calls.startClickToCall({
        operator: '101',
        to: `+${numberOf('clickToCall', i)}`,
        tries: 1,
        triesPeriodSec: 1,
      });
    for (let i = 0; i < KINDS.customerBusy; i++)
      engine.calls.startClickToCall({
        operator: '101',
        to: `+${numberOf('customerBusy', i)}`,
        tries: 1,
        triesPeriodSec: 1,
      });
    for (let i = 0; i < KINDS.outbound; i++)
      placed.push(sim.injectOperatorCall({ extension: '102', to: numberOf('outbound', i) }));
    await Promise.all(placed);
    await Promise.all(transfers);

    await Promise.race([
      allReleased,
      new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            reject(
              new Error(
                `only ${released.size} of ${TOTAL} calls released (${ended.size} ended); held: ${JSON.stringify(engine.calls.memoryFootprint())}`,
              ),
            ),
          45_000,
        ).unref(),
      ),
    ]);
    await engine.calls.settled();

    // Every call ran to its end as its flow says.
    const dispositions = (prefix: string): string[] => {
      const calls = [...ended.values()].filter(
        (c) => c.from.startsWith(prefix) || c.to.replace(/^\+/, '').startsWith(prefix),
      );
      return [...new Set(calls.map((c) => c.disposition ?? 'none'))];
    };
    expect(ended.size).to.equal(TOTAL);
    expect(dispositions(PREFIX.greeted)).to.deep.equal(['answered']);
    expect(dispositions(PREFIX.sequential)).to.deep.equal(['answered']);
    expect(dispositions(PREFIX.abandoned)).to.deep.equal(['canceled']);
    expect(dispositions(PREFIX.transferred)).to.deep.equal(['answered']);
    expect(dispositions(PREFIX.clickToCall)).to.deep.equal(['answered']);
    expect(dispositions(PREFIX.customerBusy)).to.deep.equal(['busy']);
    expect(dispositions(PREFIX.outbound)).to.deep.equal(['answered']);

    // Nothing of them is left in memory.
    expect(engine.calls.activeCalls()).to.deep.equal([]);
    expect(engine.calls.trackedChannels()).to.equal(0);
    expect(engine.calls.memoryFootprint()).to.deep.equal({
      calls: 0,
      channels: 0,
      playbacks: 0,
      watchedCalls: 0,
    });
    expect(engine.calls.liveOriginatedCalls()).to.equal(0);
    expect(
      await engine.registry.getSingleMetricAsString('aricrm_call_handler_errors_total'),
    ).to.match(/aricrm_call_handler_errors_total 0$/m);
    expect(engine.journal.backlog()).to.equal(0);
    expect(engine.journal.tracked(), 'calls the journal still tracks').to.equal(0);
    expect(await engine.webhooks.drain(10_000)).to.equal(true);
    expect(engine.webhooks.pending()).to.equal(0);
    expect(await gaugeValue(bed, 'aricrm_ari_channel_listeners')).to.equal(idleListeners);
    for (const ext of ['101', '102', '103'])
      expect(engine.calls.currentCallOf(ext), `current call of ${ext}`).to.equal(undefined);

    // The store answers for every one of them, through the API.
    for (const id of ended.keys()) {
      const res = await apiRequest<{ state: string }>(engine.httpUrl, `/v1/calls/${id}`);
      expect(res.status, `GET /v1/calls/${id}`).to.equal(200);
      expect(res.body.state).to.equal('ended');
    }
  });
});
