import { expect } from 'chai';
import { contentRange, notModified, parseRange } from '../../src/recordings/range.ts';

const SIZE = 48044;

describe('HTTP Range parsing', () => {
  it('reads the single ranges audio players send', () => {
    expect(parseRange('bytes=0-99', SIZE)).to.deep.equal({ kind: 'partial', start: 0, end: 99 });
    expect(parseRange('bytes=100-', SIZE)).to.deep.equal({
      kind: 'partial',
      start: 100,
      end: SIZE - 1,
    });
    expect(parseRange('bytes=-500', SIZE)).to.deep.equal({
      kind: 'partial',
      start: SIZE - 500,
      end: SIZE - 1,
    });
    expect(parseRange(' Bytes = 5-5 ', SIZE)).to.deep.equal({ kind: 'partial', start: 5, end: 5 });
  });

  it('clips a range running past the end, and a suffix longer than the file', () => {
    expect(parseRange('bytes=48000-99999', SIZE)).to.deep.equal({
      kind: 'partial',
      start: 48000,
      end: SIZE - 1,
    });
    expect(parseRange('bytes=-100000', SIZE)).to.deep.equal({
      kind: 'partial',
      start: 0,
      end: SIZE - 1,
    });
  });

  it('is unsatisfiable past the end, for an empty suffix, and for any range of an empty file', () => {
    expect(parseRange(`bytes=${SIZE}-`, SIZE)).to.deep.equal({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=60000-60001', SIZE)).to.deep.equal({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', SIZE)).to.deep.equal({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).to.deep.equal({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-5', 0)).to.deep.equal({ kind: 'unsatisfiable' });
  });

  it('ignores what it does not serve: no header, other units, bad syntax, several ranges', () => {
    for (const header of [
      undefined,
      '',
      'items=0-5',
      'bytes=',
      'bytes=-',
      'bytes=abc',
      'bytes=5-1',
      'bytes=1-2-3',
      'bytes=0-1,5-9',
      'bytes=99999999999999999999-',
    ])
      expect(parseRange(header, SIZE), String(header)).to.deep.equal({ kind: 'full' });
  });

  it('writes Content-Range for 206 and 416', () => {
    expect(contentRange({ kind: 'partial', start: 0, end: 99 }, SIZE)).to.equal('bytes 0-99/48044');
    expect(contentRange({ kind: 'unsatisfiable' }, SIZE)).to.equal('bytes */48044');
    expect(contentRange({ kind: 'full' }, SIZE)).to.equal(undefined);
  });
});

describe('conditional requests (If-None-Match, If-Modified-Since)', () => {
  const file = { etag: '"3c2c-1a2b"', lastModified: new Date('2026-03-01T10:00:00.750Z') };
  const now = Date.parse('2026-03-02T00:00:00Z');

  it('If-None-Match: 304 for the current ETag, compared weakly, in a list, or *', () => {
    for (const header of ['"3c2c-1a2b"', 'W/"3c2c-1a2b"', '"old", W/"3c2c-1a2b"', '*', ' * '])
      expect(notModified({ ifNoneMatch: header }, file, now), header).to.equal(true);
    for (const header of ['"3c2c"', '3c2c-1a2b', '"3C2C-1A2B"', ''])
      expect(notModified({ ifNoneMatch: header }, file, now), header).to.equal(false);
  });

  it('If-Modified-Since: 304 when the file (to the second) is not newer; ignored with If-None-Match', () => {
    const since = (ifModifiedSince: string): boolean => notModified({ ifModifiedSince }, file, now);
    expect(since('Sun, 01 Mar 2026 10:00:00 GMT')).to.equal(true);
    expect(since('Sun, 01 Mar 2026 11:00:00 GMT')).to.equal(true);
    expect(since('Sun, 01 Mar 2026 09:59:59 GMT')).to.equal(false);
    expect(since('not a date')).to.equal(false);
    expect(since('Fri, 01 Jan 2027 00:00:00 GMT'), 'a date in the future').to.equal(false);
    expect(
      notModified(
        { ifNoneMatch: '"old"', ifModifiedSince: 'Sun, 01 Mar 2026 11:00:00 GMT' },
        file,
        now,
      ),
    ).to.equal(false);
    expect(notModified({}, file, now)).to.equal(false);
  });
});
