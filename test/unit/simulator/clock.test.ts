import { expect } from 'chai';
import sinon from 'sinon';
import { SimClock } from '../../../src/simulator/clock.js';

/** The next turn of the event loop (the clock reads the time once per turn). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('simulated clock', () => {
  let timers: sinon.SinonFakeTimers;
  let perfNowMs: number;

  beforeEach(() => {
    perfNowMs = 1_000;
    sinon.stub(performance, 'now').callsFake(() => perfNowMs);
    // Only the timers are faked: performance.now is moved by hand, so the test can make a timer
    // fire before the clock has reached its due time, as Node's cached loop time does, or long
    // after it, as on a loaded machine.
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

  it('a timer the event loop runs late runs at its due simulated time: a loaded machine does not stretch simulated durations', async () => {
    const clock = new SimClock(0.02);
    const startSimMs = clock.nowMs();
    const fired: Array<[string, number]> = [];
    const at = (name: string) => () => fired.push([name, clock.nowMs() - startSimMs]);
    clock.after(1_400, at('first')); // 28 ms real
    clock.after(2_800, at('second')); // 56 ms real

    perfNowMs += 128; // the loop was busy: both real timers are due, 100 ms (5 s simulated) late
    timers.tick(60);
    expect(fired, 'the first at its time, the second still 1.4 s away').to.deep.equal([
      ['first', 1_400],
    ]);
    perfNowMs += 28;
    timers.tick(28);
    expect(fired).to.deep.equal([
      ['first', 1_400],
      ['second', 2_800],
    ]);
    await nextTurn();
    perfNowMs += 10;
    expect(clock.nowMs() - startSimMs, 'time goes on from there').to.equal(2_800 + 500);
  });

  it('never runs past a timer that is due but has not run: what happens meanwhile happens at its due time', async () => {
    const clock = new SimClock(0.02);
    const startSimMs = clock.nowMs();
    let firedAt = 0;
    clock.after(1_000, () => (firedAt = clock.nowMs() - startSimMs));
    await nextTurn();
    perfNowMs += 60; // 3 s simulated: an ARI request is answered before the late timer runs
    expect(clock.nowMs() - startSimMs).to.equal(1_000);
    timers.tick(60);
    expect(firedAt).to.equal(1_000);
    await nextTurn();
    perfNowMs += 2;
    expect(clock.nowMs() - startSimMs).to.equal(1_100);
  });

  it('runs timers in the order of their simulated due times, each at its time, when the real timers fire out of order', async () => {
    const clock = new SimClock(0.02);
    const startSimMs = clock.nowMs();
    const fired: Array<[string, number]> = [];
    const at = (name: string) => () => fired.push([name, clock.nowMs() - startSimMs]);
    clock.after(1_000, at('first')); // real timer in 20 ms
    await nextTurn();
    perfNowMs += 5; // 250 simulated ms later, without the real timers moving
    clock.after(800, at('second')); // due at 1050, but its real timer comes first, in 16 ms
    perfNowMs += 100; // both late
    timers.tick(100);
    expect(fired, 'the second waits for the first').to.deep.equal([['first', 1_000]]);
    perfNowMs += 1;
    timers.tick(1);
    expect(fired).to.deep.equal([
      ['first', 1_000],
      ['second', 1_050],
    ]);
  });

  it('timers due at the same simulated moment run together in one turn, in the order they were armed', async () => {
    const clock = new SimClock(0.02);
    const startSimMs = clock.nowMs();
    const fired: Array<[string, number]> = [];
    const at = (name: string) => () => fired.push([name, clock.nowMs() - startSimMs]);
    clock.after(1_000, at('first')); // real timer in 20 ms
    await nextTurn();
    perfNowMs += 1; // 50 simulated ms later
    clock.after(950, at('second')); // the same moment, its real timer in 19 ms
    perfNowMs += 19;
    timers.tick(19); // only the second's real timer fires: I/O could come before the first's
    expect(fired, 'both, with nothing between them').to.deep.equal([
      ['first', 1_000],
      ['second', 1_000],
    ]);
    timers.tick(5);
    expect(fired, 'each runs once').to.have.length(2);
  });

  it('one action happens at one simulated moment, even when the process is suspended in the middle of it', async () => {
    const clock = new SimClock(0.02);
    const startSimMs = clock.nowMs();
    const eventAt = clock.nowMs() - startSimMs; // an event emitted...
    perfNowMs += 5; // ...the operating system suspends the process for 5 ms (250 ms simulated)...
    let firedAt = 0;
    clock.after(1_000, () => (firedAt = clock.nowMs() - startSimMs)); // ...the timer armed after it
    perfNowMs += 20;
    timers.tick(20);
    expect(firedAt - eventAt).to.equal(1_000);
    await nextTurn();
    perfNowMs += 1;
    expect(clock.nowMs() - startSimMs, 'the next turn reads the time again').to.equal(1_050);
  });
});
