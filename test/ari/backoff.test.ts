import { expect } from 'chai';
import sinon from 'sinon';
import {
  CancellableSleeps,
  computeBackoffDelay,
  notInStasisRetryDelay,
} from '../../src/ari/backoff.ts';

describe('ARI backoff', () => {
  const opts = { initialDelayMs: 500, maxDelayMs: 10_000, jitter: 0 };

  it('doubles from the initial delay and caps at the maximum (no jitter)', () => {
    const delays = Array.from({ length: 8 }, (_, attempt) => computeBackoffDelay(attempt, opts));
    expect(delays).to.deep.equal([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('stays capped for huge attempt numbers (reconnecting forever)', () => {
    expect(computeBackoffDelay(10_000, opts)).to.equal(10_000);
    expect(computeBackoffDelay(Number.MAX_SAFE_INTEGER, opts)).to.equal(10_000);
  });

  it('jitter only shortens the delay, by at most the jitter fraction', () => {
    const jittered = { ...opts, jitter: 0.2 };
    expect(computeBackoffDelay(0, jittered, () => 0)).to.equal(500);
    expect(computeBackoffDelay(0, jittered, () => 0.999_999)).to.equal(400);
    expect(computeBackoffDelay(5, jittered, () => 0.5)).to.equal(9000);
    for (let i = 0; i < 200; i++) {
      const d = computeBackoffDelay(3, jittered);
      expect(d).to.be.within(3200, 4000);
    }
  });

  it('defaults to 20 % jitter and never goes below zero or above the cap', () => {
    for (let i = 0; i < 100; i++) {
      const d = computeBackoffDelay(i % 12, { initialDelayMs: 500, maxDelayMs: 10_000 });
      expect(d).to.be.within(0, 10_000);
    }
    expect(computeBackoffDelay(-3, opts)).to.equal(500);
    expect(computeBackoffDelay(2, { initialDelayMs: 500, maxDelayMs: 100, jitter: 0 })).to.equal(
      500,
    );
  });

  it('not-in-Stasis retry: 25 ms doubling (25, 50, 100, 200, 400)', () => {
    const o = { attempts: 6, delayMs: 25 };
    expect([1, 2, 3, 4, 5].map((r) => notInStasisRetryDelay(r, o))).to.deep.equal([
      25, 50, 100, 200, 400,
    ]);
  });

  it('a stop cuts retry waits short: wakeAll resolves every pending sleep at once, later sleeps wait again', async () => {
    const clock = sinon.useFakeTimers();
    try {
      const sleeps = new CancellableSleeps();
      const woke: string[] = [];
      void sleeps.sleep(10_000).then(() => woke.push('long'));
      void sleeps.sleep(50).then(() => woke.push('short'));
      await clock.tickAsync(50);
      expect(woke).to.deep.equal(['short']);
      sleeps.wakeAll();
      await clock.tickAsync(0);
      expect(woke).to.deep.equal(['short', 'long']);
      expect(clock.countTimers()).to.equal(0);
      void sleeps.sleep(100).then(() => woke.push('after'));
      await clock.tickAsync(99);
      expect(woke).to.have.length(2);
      await clock.tickAsync(1);
      expect(woke.at(-1)).to.equal('after');
    } finally {
      clock.restore();
    }
  });
});
