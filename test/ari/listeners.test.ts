import { expect } from 'chai';
import sinon from 'sinon';
import { ChannelListenerRegistry, channelIdsOf, parseTargetUri } from '../../src/ari/listeners.ts';
import type { AriChannel, AriEvent } from '../../src/ari/types.ts';

const channel = (id: string): AriChannel => ({
  id,
  name: `PJSIP/101-${id}`,
  state: 'Up',
  caller: { name: '', number: '' },
  connected: { name: '', number: '' },
  accountcode: '',
  dialplan: { context: 'from-internal', exten: 's', priority: 1 },
  creationtime: '2026-11-21T16:05:33.389+0000',
  language: 'en',
});
const base = { timestamp: '2026-11-21T16:05:33.389+0000', application: 'crm-app' };
const stasisStart = (id: string): AriEvent => ({
  ...base,
  type: 'StasisStart',
  args: [],
  channel: channel(id),
});
const stasisEnd = (id: string): AriEvent => ({ ...base, type: 'StasisEnd', channel: channel(id) });
const destroyed = (id: string): AriEvent => ({
  ...base,
  type: 'ChannelDestroyed',
  channel: channel(id),
  cause: 16,
  cause_txt: 'Normal Clearing',
});
const bridgeFor = (id: string, members: string[]) => ({
  id,
  technology: 'simple_bridge',
  bridge_type: 'mixing',
  bridge_class: 'stasis',
  creator: 'Stasis',
  name: '',
  channels: members,
});

describe('ARI channel listener registry', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  it('finds the channels an event is about', () => {
    expect([...channelIdsOf(stasisStart('a'))]).to.deep.equal(['a']);
    const dial: AriEvent = {
      ...base,
      type: 'Dial',
      dialstatus: 'RINGING',
      peer: channel('op'),
      caller: channel('in'),
    };
    expect([...channelIdsOf(dial)].sort()).to.deep.equal(['in', 'op']);
    const entered: AriEvent = {
      ...base,
      type: 'ChannelEnteredBridge',
      channel: channel('b'),
      bridge: bridgeFor('br', ['a', 'b']),
    };
    expect([...channelIdsOf(entered)].sort()).to.deep.equal(['a', 'b']);
    const played: AriEvent = {
      ...base,
      type: 'PlaybackStarted',
      playback: { id: 'pb', media_uri: 'sound:beep', target_uri: 'channel:a', state: 'playing' },
    };
    expect([...channelIdsOf(played)]).to.deep.equal(['a']);
    const bridgePlay: AriEvent = {
      ...base,
      type: 'PlaybackFinished',
      playback: { id: 'pb', media_uri: 'sound:beep', target_uri: 'bridge:br', state: 'done' },
    };
    expect([...channelIdsOf(bridgePlay, () => ['x', 'y'])]).to.deep.equal(['x', 'y']);
    expect(parseTargetUri('channel:')).to.equal(undefined);
    expect(parseTargetUri(42)).to.equal(undefined);
  });

  it('never throws on malformed events', () => {
    const weird = {
      type: 'StasisStart',
      channel: null,
      bridge: 'nope',
      playback: { target_uri: 5 },
    } as unknown as AriEvent;
    expect([...channelIdsOf(weird)]).to.deep.equal([]);
    const registry = new ChannelListenerRegistry({ graceMs: 10 });
    registry.add('a', () => undefined);
    expect(registry.listenersFor(weird)).to.deep.equal([]);
    registry.afterDelivery(weird);
    expect(registry.count()).to.equal(1);
  });

  it('delivers each listener once per event even when it is registered on several involved channels', () => {
    const registry = new ChannelListenerRegistry({ graceMs: 10 });
    const fn = sinon.spy();
    registry.add('in', fn);
    registry.add('op', fn);
    const dial: AriEvent = {
      ...base,
      type: 'Dial',
      dialstatus: 'ANSWER',
      peer: channel('op'),
      caller: channel('in'),
    };
    expect(registry.listenersFor(dial)).to.deep.equal([fn]);
  });

  it('drops a channel listeners right after ChannelDestroyed', () => {
    const counts: number[] = [];
    const registry = new ChannelListenerRegistry({
      graceMs: 2000,
      onCountChange: (n) => counts.push(n),
    });
    registry.add('a', () => undefined);
    registry.add('a', () => undefined);
    registry.add('b', () => undefined);
    expect(registry.count()).to.equal(3);
    expect(registry.listenersFor(destroyed('a'))).to.have.length(2);
    registry.afterDelivery(destroyed('a'));
    expect(registry.count()).to.equal(1);
    expect(registry.has('a')).to.equal(false);
    expect(counts).to.deep.equal([1, 2, 3, 1]);
  });

  it('drops them graceMs after StasisEnd when no ChannelDestroyed follows (dialplan channel)', () => {
    const registry = new ChannelListenerRegistry({ graceMs: 2000 });
    registry.add('dp', () => undefined);
    registry.afterDelivery(stasisEnd('dp'));
    clock.tick(1999);
    expect(registry.count()).to.equal(1);
    clock.tick(1);
    expect(registry.count()).to.equal(0);
    expect(registry.channelCount()).to.equal(0);
  });

  it('a new StasisStart within the grace period keeps the listeners', () => {
    const registry = new ChannelListenerRegistry({ graceMs: 2000 });
    registry.add('dp', () => undefined);
    registry.afterDelivery(stasisEnd('dp'));
    clock.tick(1000);
    registry.afterDelivery(stasisStart('dp'));
    clock.tick(5000);
    expect(registry.count()).to.equal(1);
  });

  it('ChannelDestroyed during the grace period removes at once and cancels the timer', () => {
    const registry = new ChannelListenerRegistry({ graceMs: 2000 });
    registry.add('c', () => undefined);
    registry.afterDelivery(stasisEnd('c'));
    registry.afterDelivery(destroyed('c'));
    expect(registry.count()).to.equal(0);
    expect(clock.countTimers()).to.equal(0);
  });

  it('unsubscribe is idempotent and does not touch a later registration for the same channel', () => {
    const registry = new ChannelListenerRegistry({ graceMs: 10 });
    const off = registry.add('a', () => undefined);
    registry.afterDelivery(destroyed('a'));
    const second = sinon.spy();
    registry.add('a', second);
    off();
    off();
    expect(registry.count()).to.equal(1);
    expect(registry.listenersFor(stasisStart('a'))).to.deep.equal([second]);
  });

  it('tracks bridge members for bridge-targeted playbacks and forgets destroyed bridges', () => {
    const registry = new ChannelListenerRegistry({ graceMs: 10 });
    const a = sinon.spy();
    registry.add('a', a);
    const entered: AriEvent = {
      ...base,
      type: 'ChannelEnteredBridge',
      channel: channel('a'),
      bridge: bridgeFor('br', ['a']),
    };
    registry.listenersFor(entered);
    const played: AriEvent = {
      ...base,
      type: 'PlaybackStarted',
      playback: { id: 'pb', media_uri: 'sound:beep', target_uri: 'bridge:br', state: 'playing' },
    };
    expect(registry.listenersFor(played)).to.deep.equal([a]);
    registry.listenersFor({ ...base, type: 'BridgeDestroyed', bridge: bridgeFor('br', []) });
    expect(registry.listenersFor(played)).to.deep.equal([]);
  });

  it('clear() drops everything including pending timers', () => {
    const registry = new ChannelListenerRegistry({ graceMs: 2000 });
    registry.add('a', () => undefined);
    registry.afterDelivery(stasisEnd('a'));
    registry.clear();
    expect(registry.count()).to.equal(0);
    expect(clock.countTimers()).to.equal(0);
  });
});
