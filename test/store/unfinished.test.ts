/**
 * `unfinishedCalls()` for restart reconciliation: each unfinished call comes with the
 * highest event sequence stored for it, so an adopted call's next event continues the sequence
 * instead of colliding with a stored one.
 */
import { expect } from 'chai';
import { callEvents, endedCall, forEachDialect } from './helpers.ts';

forEachDialect('unfinished calls for restart reconciliation', ({ store }) => {
  it('gives each unfinished call the last event sequence stored for it (0 when none)', async () => {
    const talking = endedCall({ state: 'bridged', endedAt: undefined });
    const silent = endedCall({ state: 'routing', endedAt: undefined, answeredAt: undefined });
    const over = endedCall();
    for (const call of [talking, silent, over]) await store().calls.upsertCall(call);
    await store().events.appendEvents([...callEvents(talking.id, 3), ...callEvents(over.id, 5)]);
    const live = await store().calls.unfinishedCalls();
    expect(Object.fromEntries(live.map((c) => [c.id, c.lastSequence]))).to.deep.equal({
      [talking.id]: 3,
      [silent.id]: 0,
    });
    expect(live.find((c) => c.id === talking.id)!.legs).to.have.length(2);
  });
});
