/**
 * Which operators' streams an event goes to.
 */
import { expect } from 'chai';
import { Involvement } from '../../../src/stream/involvement.ts';

const event = (type: string, data: Record<string, unknown>, callId = 'c1') => ({
  type,
  callId,
  data,
});

describe('live stream: who an event is for', () => {
  it('a ring-all call: every rung operator gets the answer and the end, the card of each', () => {
    const t = new Involvement();
    expect(t.recipients(event('call.started', { direction: 'in', from: '7916' }))).to.deep.equal(
      [],
    );
    expect(t.recipients(event('call.ringing', { extension: '101' }))).to.deep.equal(['101']);
    expect(t.recipients(event('call.ringing', { extension: '102' }))).to.have.members([
      '101',
      '102',
    ]);
    expect(t.recipients(event('call.answered', { extension: '102' }))).to.have.members([
      '101',
      '102',
    ]);
    expect(t.recipients(event('call.ended', { answeredBy: '102' }))).to.have.members([
      '101',
      '102',
    ]);
    // Other calls are not theirs.
    expect(t.recipients(event('call.started', { direction: 'in' }, 'c2'))).to.deep.equal([]);
  });

  it('an outbound call is its operator’s from the start; a transfer adds the target', () => {
    const t = new Involvement();
    expect(t.recipients(event('call.started', { direction: 'out', from: '103' }))).to.deep.equal([
      '103',
    ]);
    expect(
      t.recipients(event('call.transferred', { kind: 'extension', to: '104' })),
    ).to.have.members(['103', '104']);
    expect(
      t.recipients(event('call.transferred', { kind: 'service', to: '9999' })),
    ).to.have.members(['103', '104']);
  });

  it('operator.state goes to its extension; autocall events to nobody', () => {
    const t = new Involvement();
    expect(
      t.recipients({ type: 'operator.state', callId: 'operator-101', data: { extension: '101' } }),
    ).to.deep.equal(['101']);
    expect(t.recipients(event('autocall.finished', { jobId: 1 }, 'autocall-1'))).to.deep.equal([]);
  });

  it('asks for a lookup only for a call seen mid-way', () => {
    const t = new Involvement();
    expect(t.needsLookup(event('call.ended', {}))).to.equal(true);
    expect(t.needsLookup(event('call.ringing', { extension: '101' }))).to.equal(false);
    t.seed('c1', ['105']);
    expect(t.needsLookup(event('call.ended', {}))).to.equal(false);
    expect(t.recipients(event('call.ended', {}))).to.deep.equal(['105']);
  });

  it('forgets the oldest calls past its bound', () => {
    const t = new Involvement(2);
    for (const id of ['a', 'b', 'c']) t.recipients(event('call.ringing', { extension: '101' }, id));
    expect(t.knows('a')).to.equal(false);
    expect(t.knows('c')).to.equal(true);
  });
});
