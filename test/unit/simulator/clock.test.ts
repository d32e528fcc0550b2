import { expect } from 'chai';
import sinon from 'sinon';
import { SimClock } from '../../../src/simulator/clock.js';

describe('simulated clock', () => {
  let timers: sinon.SinonFakeTimers;
  let perfNowMs: number;

  beforeEach(() => {
    perfNowMs = 1_000;
    sinon.stub(performance, 'now').callsFake(() => perfNowMs);
    // Only the timers are faked: performance.now is moved by hand, so the test can make a timer
    // fire before the clock has reached its due time, as Node's cached loop time does.
    timers = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });

  afterEach(() => {
    timers.restore();
    sinon.restore();
  });

  it('never runs a timer before its simulated time, even when the real timer fires early', () => {
    const clock = new SimClock(0.02); // 50x: 10 s simulated = 200 ms real
    const startSimMs = clock.nowMs();
    const fired: number[] = [];
    clock.after(10_000, () => fired.push(clock.nowMs() - startSimMs));

    perfNowMs += 199.7; // the real timer fires 0.3 ms early: 15 ms of simulated time
    timers.tick(200);
    expect(fired, 'ran 15 simulated ms early').to.deep.equal([]);

    perfNowMs += 0.3;
    timers.tick(1);
    expect(fired).to.have.length(1);
    expect(fired[0]).to.be.at.least(10_000);
  });

  it('a cancelled timer never runs, also after being re-armed', () => {
    const clock = new SimClock(0.02);
    let ran = false;
    const timer = clock.after(1_000, () => (ran = true));
    perfNowMs += 19;
    timers.tick(20);
    timer.cancel();
    perfNowMs += 100;
    timers.tick(100);
    expect(ran).to.equal(false);
  });
});
