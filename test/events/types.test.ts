import { expect } from 'chai';
import { createEventEnvelope, type LifecycleEvent } from '../../src/events/types.ts';

const CALL = '0a0a0a0a-0000-4000-8000-00000000000a';

describe('lifecycle event envelope', () => {
  it('builds an envelope with a UUID id, ISO UTC time, call id, sequence and data', () => {
    const at = Date.UTC(2025, 0, 31, 9, 15, 2, 123);
    const event = createEventEnvelope(
      'call.answered',
      CALL,
      3,
      { extension: '101', waitSec: 7 },
      new Date(at),
    );
    expect(event.id).to.match(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(event).to.deep.include({
      type: 'call.answered',
      occurredAt: '2025-01-31T09:15:02.123Z',
      callId: CALL,
      sequence: 3,
      data: { extension: '101', waitSec: 7 },
    });
    expect(
      createEventEnvelope('call.answered', CALL, 3, { extension: '101', waitSec: 7 }, at)
        .occurredAt,
    ).to.equal('2025-01-31T09:15:02.123Z');
  });

  it('gives every event its own id', () => {
    const a = createEventEnvelope('call.transferred', CALL, 1, { to: '700', kind: 'service' });
    const b = createEventEnvelope('call.transferred', CALL, 1, { to: '700', kind: 'service' });
    expect(a.id).not.to.equal(b.id);
  });

  it('narrows data by type', () => {
    const event: LifecycleEvent = createEventEnvelope('call.ended', CALL, 5, {
      direction: 'in',
      from: '79161234567',
      to: '74951234567',
      disposition: 'no_answer',
      startedAt: '2025-01-31T09:15:00.000Z',
      endedAt: '2025-01-31T09:15:20.000Z',
      waitSec: 20,
      talkSec: 0,
    });
    if (event.type !== 'call.ended') throw new Error('unreachable');
    expect(event.data.disposition).to.equal('no_answer');
    expect((JSON.parse(JSON.stringify(event)) as { data: unknown }).data).not.to.have.property(
      'answeredAt',
    );
  });

  it('rejects a sequence that is not a positive integer', () => {
    for (const sequence of [0, -1, 1.5, Number.NaN]) {
      expect(() =>
        createEventEnvelope('call.ringing', CALL, sequence, {
          extension: '101',
          from: '1',
          to: '2',
        }),
      ).to.throw(RangeError);
    }
  });
});
