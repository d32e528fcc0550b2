import { expect } from 'chai';
import sinon from 'sinon';
import { MAX_PING_SLOTS, PingWheel, PING_TICK_MS } from '../../src/stream/ping-wheel.ts';

/** A socket stand-in that counts its pings. */
class Member {
  pings = 0;
  ping(): void {
    this.pings++;
  }
}

describe('live stream pings (PingWheel)', () => {
  let clock: sinon.SinonFakeTimers;
  let wheel: PingWheel<Member> | undefined;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => {
    wheel?.stop();
    wheel = undefined;
    clock.restore();
  });

  it('pings 1 000 consoles a few at a time, each once per interval', () => {
    wheel = new PingWheel<Member>(30_000);
    const members = Array.from({ length: 1000 }, () => new Member());
    for (const m of members) wheel.add(m);
    const perTick: number[] = [];
    let before = 0;
    for (let t = 0; t < 30_000; t += PING_TICK_MS) {
      clock.tick(PING_TICK_MS);
      const total = members.reduce((sum, m) => sum + m.pings, 0);
      perTick.push(total - before);
      before = total;
    }
    // Every socket pinged exactly once in the interval, never more than 4 in one tick (1000/300).
    expect(members.every((m) => m.pings === 1)).to.equal(true);
    expect(Math.max(...perTick)).to.equal(Math.ceil(1000 / MAX_PING_SLOTS));
    // And again in the next interval.
    clock.tick(30_000);
    expect(members.every((m) => m.pings === 2)).to.equal(true);
  });

  it('stops pinging a socket taken off, even one taken off by its own ping', () => {
    wheel = new PingWheel<Member>(1000);
    const kept = new Member();
    const gone = new Member();
    const w = wheel;
    const selfRemoving = new (class extends Member {
      override ping(): void {
        super.ping();
        w.delete(this);
      }
    })();
    for (const m of [kept, gone, selfRemoving]) wheel.add(m);
    wheel.delete(gone);
    clock.tick(3000);
    expect(kept.pings).to.equal(3);
    expect(gone.pings).to.equal(0);
    expect(selfRemoving.pings).to.equal(1);
    expect(wheel.size).to.equal(1);
  });

  it('pings everyone together when the interval is shorter than two ticks', () => {
    wheel = new PingWheel<Member>(150);
    const members = [new Member(), new Member(), new Member()];
    for (const m of members) wheel.add(m);
    clock.tick(149);
    expect(members.map((m) => m.pings)).to.deep.equal([0, 0, 0]);
    clock.tick(1);
    expect(members.map((m) => m.pings)).to.deep.equal([1, 1, 1]);
  });

  it('stops ticking when stopped', () => {
    wheel = new PingWheel<Member>(200);
    const m = new Member();
    wheel.add(m);
    wheel.stop();
    clock.tick(10_000);
    expect(m.pings).to.equal(0);
  });
});
