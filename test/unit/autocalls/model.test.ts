import { expect } from 'chai';
import {
  classifyResult,
  nextStep,
  takeSlots,
  unansweredResult,
  windowOpen,
  type CallingWindow,
} from '../../../src/autocalls/model.ts';

const T = Date.UTC(2025, 0, 31, 9, 0, 0); // a Friday, 12:00 in Moscow (UTC+3)

describe('autocalls: attempt results and retries', () => {
  it('tells busy, no answer, refused and congested destinations apart from dial status and cause', () => {
    expect(unansweredResult('BUSY', 17)).to.equal('busy');
    expect(unansweredResult('CHANUNAVAIL', 17)).to.equal('busy');
    expect(unansweredResult('NOANSWER', 19)).to.equal('no_answer');
    expect(unansweredResult('CHANUNAVAIL', 1)).to.equal('rejected'); // unallocated number
    expect(unansweredResult('CONGESTION', 21)).to.equal('rejected'); // call rejected
    expect(unansweredResult('CONGESTION', 34)).to.equal('congestion');
    expect(unansweredResult('CHANUNAVAIL')).to.equal('congestion');
    expect(unansweredResult('CANCEL', 16)).to.equal('canceled');
    expect(unansweredResult('FAILED')).to.equal('failed');
  });

  it('retries busy, unanswered, unconfirmed, cut-short, congested and lost attempts; never refused or failed ones', () => {
    for (const r of [
      'busy',
      'no_answer',
      'not_confirmed',
      'cut_short',
      'congestion',
      'lost',
    ] as const)
      expect(classifyResult(r).retry, r).to.equal(true);
    for (const r of ['delivered', 'machine', 'canceled', 'rejected', 'failed'] as const)
      expect(classifyResult(r).retry, r).to.equal(false);
    expect(classifyResult('not_confirmed').status).to.equal('no_answer');
    expect(classifyResult('congestion').status).to.equal('failed');
  });

  it('queues the next try triesPeriodSec after the attempt ended, until every try is used', () => {
    const state = { tries: 3, triesPeriodSec: 60, cancelRequested: false };
    expect(nextStep({ ...state, attemptsMade: 1 }, 'busy', T)).to.deep.equal({
      kind: 'retry',
      nextAttemptAt: T + 60_000,
    });
    expect(nextStep({ ...state, attemptsMade: 3 }, 'no_answer', T)).to.deep.equal({
      kind: 'final',
      status: 'no_answer',
    });
    expect(nextStep({ ...state, attemptsMade: 1 }, 'rejected', T)).to.deep.equal({
      kind: 'final',
      status: 'failed',
    });
    expect(nextStep({ ...state, attemptsMade: 1 }, 'delivered', T)).to.deep.equal({
      kind: 'final',
      status: 'delivered',
    });
  });

  it('ends a canceled job canceled, unless its message was delivered', () => {
    const state = { tries: 3, triesPeriodSec: 60, cancelRequested: true, attemptsMade: 1 };
    expect(nextStep(state, 'busy', T)).to.deep.equal({ kind: 'final', status: 'canceled' });
    expect(nextStep(state, 'delivered', T)).to.deep.equal({ kind: 'final', status: 'delivered' });
  });
});

describe('autocalls: calling window', () => {
  const w: CallingWindow = {
    from: '09:00',
    to: '18:00',
    timezone: 'Europe/Moscow',
    days: ['mon', 'tue', 'wed', 'thu', 'fri'],
  };

  it('is open between from and to, local time of its time zone, on its days only', () => {
    expect(windowOpen(w, T)).to.equal(true); // Fri 12:00 MSK
    expect(windowOpen(w, T - 3 * 3600_000 - 1)).to.equal(false); // Fri 08:59:59 MSK
    expect(windowOpen(w, T + 6 * 3600_000)).to.equal(false); // Fri 18:00 MSK: to is excluded
    expect(windowOpen(w, T + 24 * 3600_000)).to.equal(false); // Sat 12:00
    expect(windowOpen({ ...w, timezone: 'America/New_York' }, T)).to.equal(false); // 04:00 NY
    expect(windowOpen(undefined, T)).to.equal(true);
  });

  it('spans midnight when from is later than to (the day is the day the span starts)', () => {
    const night: CallingWindow = { from: '21:00', to: '06:00', timezone: 'UTC', days: ['fri'] };
    expect(windowOpen(night, Date.UTC(2025, 0, 31, 22, 0))).to.equal(true); // Fri 22:00
    expect(windowOpen(night, Date.UTC(2025, 1, 1, 5, 59))).to.equal(true); // Sat 05:59 (Fri's span)
    expect(windowOpen(night, Date.UTC(2025, 1, 1, 22, 0))).to.equal(false); // Sat 22:00
    expect(windowOpen(night, Date.UTC(2025, 0, 31, 5, 0))).to.equal(false); // Fri 05:00 (Thu's span)
  });
});

describe('autocalls: pacing', () => {
  it('spaces calls 1000/callsPerSecond ms apart', () => {
    let next = T;
    let started = 0;
    for (let ms = 0; ms < 10_000; ms += 10) {
      const slots = takeSlots(next, 20, T + ms, 100);
      started += slots.allowed;
      next = slots.nextSlotAt;
    }
    expect(started).to.be.within(199, 201);
  });

  it('does not save up more than one second of slots while idle', () => {
    expect(takeSlots(T, 5, T + 3600_000, 1000).allowed).to.equal(5);
    expect(takeSlots(T, 0.5, T + 3600_000, 1000).allowed).to.equal(1);
    expect(takeSlots(T + 500, 1, T, 10).allowed).to.equal(0);
  });
});
