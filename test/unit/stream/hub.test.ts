/**
 * The live stream's hub on SQLite (src/stream/hub.ts): it takes events from the engine's outbox
 * numbering (src/store/outbox-positions.ts) as they become durable and fans them out in position
 * order. These tests drive the numbering by hand and check what a console's socket receives.
 */
import { expect } from 'chai';
import { createEventEnvelope, type LifecycleEvent } from '../../../src/events/types.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { OutboxPositions } from '../../../src/store/outbox-positions.ts';
import { StreamHub, type StreamItem, type StreamSubscriber } from '../../../src/stream/hub.ts';
import { until } from '../../support/until.ts';

/** A deferred call lookup: resolves when the test says so. */
function deferredLookups(): {
  lookup: (callId: string) => Promise<readonly string[] | undefined>;
  pending: number;
  resolveAll: (extensions: readonly string[]) => void;
} {
  const waiting: Array<(extensions: readonly string[]) => void> = [];
  return {
    lookup: () => new Promise((resolve) => waiting.push(resolve)),
    get pending() {
      return waiting.length;
    },
    resolveAll(extensions) {
      for (const resolve of waiting.splice(0)) resolve(extensions);
    },
  };
}

function admin(): StreamSubscriber & { items: StreamItem[] } {
  const items: StreamItem[] = [];
  return { extension: undefined, items, deliver: (item) => items.push(item) };
}

const answered = (callId: string): LifecycleEvent =>
  createEventEnvelope('call.answered', callId, 3, { extension: '101', waitSec: 2 });
const started = (callId: string): LifecycleEvent =>
  createEventEnvelope('call.started', callId, 1, {
    direction: 'in',
    from: '79161234567',
    to: '74951234567',
    did: '74951234567',
  });

describe('stream hub on the engine-numbered outbox', () => {
  function hubOn(
    positions: OutboxPositions,
    lookup: (id: string) => Promise<readonly string[] | undefined>,
  ): StreamHub {
    return new StreamHub({
      events: {
        feed: () => Promise.resolve({ items: [], nextCursor: '' }),
        head: () => Promise.reject(new Error('not used on SQLite')),
        callEvents: () => Promise.resolve([]),
      },
      onAppended: () => () => {},
      live: positions,
      callExtensions: lookup,
      pollIntervalMs: 1000,
      logger: createSilentLogger(),
    });
  }

  it('a console that connects right after the last one left gets the next event at once, even while the hub was looking a call up', async () => {
    const positions = new OutboxPositions();
    positions.start(0);
    const lookups = deferredLookups();
    const hub = hubOn(positions, lookups.lookup);
    const first = admin();
    await hub.subscribe(first);
    // An event of a call the hub has not seen: it looks the call up (in the store, say).
    const [p1] = positions.allocate(1);
    positions.committed([{ position: p1!, event: answered('call-old') }]);
    expect(lookups.pending).to.equal(1);
    // The last console leaves meanwhile; another one opens.
    hub.unsubscribe(first);
    const second = admin();
    const from = await hub.subscribe(second);
    expect(from).to.equal(1);
    // A new call starts: its call.started is durable now.
    const [p2] = positions.allocate(1);
    positions.committed([{ position: p2!, event: started('call-new') }]);
    // The old lookup answers late.
    lookups.resolveAll(['101']);
    await until(() => second.items.length > 0, 'the new call reaches the second console', 2000);
    expect(second.items.map((i) => [i.position, i.event.type])).to.deep.equal([
      [2, 'call.started'],
    ]);
    expect(first.items).to.deep.equal([]);
  });
});
