/**
 * `sameJson` (src/calls/journal.ts): the journal writes a call's row or leg only when it would
 * serialise differently from what it last wrote, without serialising it.
 */
import { expect } from 'chai';
import { sameJson } from '../../../src/calls/journal.ts';

describe('sameJson', () => {
  it('says "same" exactly when JSON.stringify gives the same text, for JSON data', () => {
    const cases: Array<[unknown, unknown]> = [
      [
        { a: 1, b: 'x' },
        { a: 1, b: 'x' },
      ],
      [
        { a: 1, b: 'x' },
        { b: 'x', a: 1 },
      ],
      [{ a: 1 }, { a: 2 }],
      [{ a: 1 }, { a: '1' }],
      [{ a: undefined, b: 2 }, { b: 2 }],
      [{ b: 2 }, { b: 2, c: undefined }],
      [{ a: null }, {}],
      [{ v: { dealId: 'D-1' } }, { v: { dealId: 'D-1' } }],
      [{ v: { dealId: 'D-1' } }, { v: { dealId: 'D-2' } }],
      [{ v: { dealId: 'D-1' } }, { v: { dealId: 'D-1', extra: 'x' } }],
      [
        [1, 2, { c: 3 }],
        [1, 2, { c: 3 }],
      ],
      [
        [1, 2],
        [1, 2, 3],
      ],
      [[1, 2], { 0: 1, 1: 2 }],
      [{ at: new Date(5) }, { at: new Date(5) }],
      [{ at: new Date(5) }, { at: new Date(6) }],
      ['a', 'a'],
      [0, false],
      [null, null],
      [true, true],
    ];
    for (const [a, b] of cases) {
      // Key order aside (JSON.stringify keeps it, the store does not care): compare sorted.
      const text = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => sortKeys(x));
      const expected = text(a) === text(b);
      expect(sameJson(a, b), `${text(a)} vs ${text(b)}`).to.equal(expected);
      expect(sameJson(b, a), `${text(b)} vs ${text(a)}`).to.equal(expected);
    }
  });

  it('errs only towards "different": a Date against its ISO text, NaN against NaN', () => {
    expect(sameJson({ at: new Date(5) }, { at: new Date(5).toISOString() })).to.equal(false);
    expect(sameJson({ n: Number.NaN }, { n: Number.NaN })).to.equal(false);
  });
});

function sortKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).sort(([x], [y]) => x.localeCompare(y)),
  );
}
