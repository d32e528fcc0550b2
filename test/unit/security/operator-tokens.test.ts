/**
 * Operator tokens: what a CRM mints for an operator's browser, and what the engine accepts.
 */
import { expect } from 'chai';
import {
  callInvolves,
  OperatorTokens,
  redactTokens,
} from '../../../src/security/operator-tokens.ts';

const KEY_A = 'a'.repeat(32);
const KEY_B = 'b'.repeat(32);

describe('operator tokens', () => {
  it('mints a token for one extension that verifies until it expires', () => {
    let now = Date.parse('2026-01-01T10:00:00Z');
    const tokens = new OperatorTokens({ secrets: [KEY_A], now: () => now });
    const minted = tokens.mint('101', 600, 'crm');
    expect(minted.expiresAt).to.equal('2026-01-01T10:10:00.000Z');
    expect(tokens.verify(minted.token)).to.deep.equal({
      ok: true,
      principal: { extension: '101', expiresAtMs: now + 600_000, issuedBy: 'crm' },
    });
    now += 600_000;
    expect(tokens.verify(minted.token)).to.deep.equal({ ok: false, reason: 'expired' });
  });

  it('refuses altered, foreign and malformed tokens', () => {
    const tokens = new OperatorTokens({ secrets: [KEY_A] });
    const { token } = tokens.mint('101', 600, 'crm');
    const [prefix, payload, sig] = token.split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), x: '102' }),
    ).toString('base64url');
    for (const bad of [
      `${prefix}.${forged}.${sig}`,
      `${token.slice(0, -2)}xx`,
      new OperatorTokens({ secrets: [KEY_B] }).mint('101', 600, 'crm').token,
      'ot1.',
      'not a token',
      '',
    ])
      expect(tokens.verify(bad), bad).to.deep.equal({ ok: false, reason: 'invalid' });
    expect(new OperatorTokens({ secrets: [] }).verify(token).ok).to.equal(false);
  });

  it('rotates: the first key signs, every key verifies', () => {
    const old = new OperatorTokens({ secrets: [KEY_A] }).mint('101', 600, 'crm').token;
    const rotated = new OperatorTokens({ secrets: [KEY_B, KEY_A] });
    expect(rotated.verify(old).ok).to.equal(true);
    const fresh = rotated.mint('101', 600, 'crm').token;
    expect(new OperatorTokens({ secrets: [KEY_B] }).verify(fresh).ok).to.equal(true);
    expect(new OperatorTokens({ secrets: [KEY_A] }).verify(fresh).ok).to.equal(false);
  });

  it('bounds the lifetime to 60 s - 1 day and needs a key', () => {
    const tokens = new OperatorTokens({ secrets: [KEY_A] });
    expect(() => tokens.mint('101', 59, 'crm')).to.throw(RangeError);
    expect(() => tokens.mint('101', 86_401, 'crm')).to.throw(RangeError);
    expect(() => new OperatorTokens({ secrets: [] }).mint('101', 600, 'crm')).to.throw(RangeError);
  });

  it('redacts token query parameters from URLs', () => {
    expect(redactTokens('/v1/stream?after=abc&token=ot1.x.y')).to.equal(
      '/v1/stream?after=abc&token=***',
    );
    expect(redactTokens('/v1/stream?token=ot1.x.y&after=1')).to.equal(
      '/v1/stream?token=***&after=1',
    );
  });

  it("knows an operator's calls: rung, answered, placed", () => {
    const inbound = { direction: 'in' as const, from: '7916', legs: [{ extension: '101' }, {}] };
    expect(callInvolves(inbound, '101')).to.equal(true);
    expect(callInvolves(inbound, '102')).to.equal(false);
    expect(callInvolves({ ...inbound, legs: [], answeredBy: '102' }, '102')).to.equal(true);
    expect(callInvolves({ direction: 'out', from: '103', legs: [] }, '103')).to.equal(true);
  });
});
