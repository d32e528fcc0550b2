import { expect } from 'chai';
import { parseRouteSpec } from '../../src/crm/route.ts';

describe('parseRouteSpec (FALLBACK_ROUTE)', () => {
  it('parses ringall with the default ring timeout', () => {
    expect(parseRouteSpec('ringall:101,102,103', 20)).to.deep.equal({
      action: {
        type: 'dial',
        strategy: 'ringall',
        extensions: ['101', '102', '103'],
        ringTimeoutSec: 20,
      },
    });
  });

  it('parses sequential with an explicit timeout', () => {
    expect(parseRouteSpec('sequential:101,102:timeout=15', 20)).to.deep.equal({
      action: {
        type: 'dial',
        strategy: 'sequential',
        extensions: ['101', '102'],
        ringTimeoutSec: 15,
      },
    });
  });

  it('parses hangup', () => {
    expect(parseRouteSpec('hangup', 20)).to.deep.equal({ action: { type: 'hangup' } });
  });

  it('tolerates whitespace, a trailing comma and duplicate extensions', () => {
    expect(parseRouteSpec('  ringall : 101 , 102, 101, : timeout=600 ', 20)).to.deep.equal({
      action: {
        type: 'dial',
        strategy: 'ringall',
        extensions: ['101', '102'],
        ringTimeoutSec: 600,
      },
    });
  });

  const bad: Array<[string, RegExp]> = [
    ['', /empty spec/],
    ['queue:101', /unknown action "queue"/],
    ['RINGALL:101', /unknown action/],
    ['ringall', /wrong number/],
    ['ringall:', /no extensions/],
    ['ringall:,,', /no extensions/],
    ['ringall:101,abc', /extension "abc" is not 2-10 digits/],
    ['ringall:1', /extension "1"/],
    ['ringall:12345678901', /extension "12345678901"/],
    ['ringall:101:timeout=0', /timeout=SEC/],
    ['ringall:101:timeout=601', /timeout=SEC/],
    ['ringall:101:timeout=abc', /timeout=SEC/],
    ['ringall:101:wait=5', /timeout=SEC/],
    ['ringall:101:timeout=5:extra', /wrong number/],
    ['hangup:timeout=20', /hangup takes no parameters/],
  ];
  for (const [spec, message] of bad) {
    it(`rejects ${JSON.stringify(spec)} with a clear error`, () => {
      expect(() => parseRouteSpec(spec, 20))
        .to.throw(Error, message)
        .with.property('message')
        .that.includes(`invalid route spec "${spec}"`)
        .and.includes('expected ringall:');
    });
  }

  it('rejects an unusable default ring timeout', () => {
    expect(() => parseRouteSpec('ringall:101', 0)).to.throw(/default ring timeout/);
    expect(() => parseRouteSpec('ringall:101', 1.5)).to.throw(/default ring timeout/);
  });
});
