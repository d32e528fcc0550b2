import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { RecordingLinks } from '../../src/recordings/links.ts';

const SECRET = 'recording-link-secret-0123456789abcdef';
const CALL = '0a0a0a0a-0000-4000-8000-00000000000a';

describe('recording links', () => {
  let nowMs = Date.UTC(2025, 0, 31, 9, 0, 0);
  const links = (): RecordingLinks =>
    new RecordingLinks({
      secret: SECRET,
      ttlSec: 3600,
      baseUrl: 'https://engine.example.com/',
      now: () => nowMs,
    });

  beforeEach(() => {
    nowMs = Date.UTC(2025, 0, 31, 9, 0, 0);
  });

  it('signs /v1/calls/{id}/recording with expires (unix s) and a hex HMAC-SHA256 a CRM can recompute', () => {
    const link = links().sign(CALL);
    const expires = nowMs / 1000 + 3600;
    expect(link.expiresAtSec).to.equal(expires);
    const url = new URL(link.url);
    expect(url.origin + url.pathname).to.equal(
      `https://engine.example.com/v1/calls/${CALL}/recording`,
    );
    expect(url.searchParams.get('expires')).to.equal(String(expires));
    const expected = createHmac('sha256', SECRET)
      .update(`recording:${CALL}:${expires}`)
      .digest('hex');
    expect(url.searchParams.get('sig')).to.equal(expected);
  });

  it('signs a call script recording as /v1/calls/{id}/recordings/{name}; links do not open each other', () => {
    const name = 'vrec-11111111-2222-4333-8444-555555555555';
    const signer = links();
    const url = new URL(signer.sign(CALL, name).url);
    const expires = String(nowMs / 1000 + 3600);
    expect(url.origin + url.pathname).to.equal(
      `https://engine.example.com/v1/calls/${CALL}/recordings/${name}`,
    );
    const sig = url.searchParams.get('sig');
    expect(sig).to.equal(
      createHmac('sha256', SECRET).update(`recording:${CALL}/${name}:${expires}`).digest('hex'),
    );
    expect(signer.verify(CALL, expires, sig, name)).to.equal('valid');
    // Not for another name, nor for the call's own recording; nor the call's link for the name.
    expect(signer.verify(CALL, expires, sig, `${name.slice(0, -1)}6`)).to.equal('invalid');
    expect(signer.verify(CALL, expires, sig)).to.equal('invalid');
    const callSig = new URL(signer.sign(CALL).url).searchParams.get('sig');
    expect(signer.verify(CALL, expires, callSig, name)).to.equal('invalid');
  });

  it('accepts its own link until it expires, then says expired', () => {
    const signer = links();
    const url = new URL(signer.sign(CALL).url);
    const expires = url.searchParams.get('expires');
    const sig = url.searchParams.get('sig');
    expect(signer.verify(CALL, expires, sig)).to.equal('valid');
    nowMs += 3599_000;
    expect(signer.verify(CALL, expires, sig)).to.equal('valid');
    nowMs += 1000;
    expect(signer.verify(CALL, expires, sig)).to.equal('expired');
  });

  it('rejects an altered call id, expiry or signature, a foreign key, and malformed values', () => {
    const signer = links();
    const url = new URL(signer.sign(CALL).url);
    const expires = url.searchParams.get('expires')!;
    const sig = url.searchParams.get('sig')!;
    const other = '0a0a0a0a-0000-4000-8000-00000000000b';
    expect(signer.verify(other, expires, sig)).to.equal('invalid');
    expect(signer.verify(CALL, String(Number(expires) + 86_400), sig)).to.equal('invalid');
    const flipped = (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1);
    expect(signer.verify(CALL, expires, flipped)).to.equal('invalid');
    const foreign = new RecordingLinks({ secret: `${SECRET}-other`, ttlSec: 3600 });
    const theirs = new URL(foreign.sign(CALL).url, 'http://x');
    expect(
      signer.verify(CALL, theirs.searchParams.get('expires'), theirs.searchParams.get('sig')),
    ).to.equal('invalid');
    for (const [e, s] of [
      [undefined, sig],
      [expires, undefined],
      ['12.5', sig],
      ['-1', sig],
      [expires, sig.toUpperCase()],
      [expires, sig.slice(0, 63)],
      [[expires], sig],
    ] as Array<[unknown, unknown]>)
      expect(signer.verify(CALL, e, s)).to.equal('invalid');
  });

  it('says invalid, not expired, for an expired link with a wrong signature', () => {
    const signer = links();
    const url = new URL(signer.sign(CALL).url);
    nowMs += 7200_000;
    expect(signer.verify(CALL, url.searchParams.get('expires'), '0'.repeat(64))).to.equal(
      'invalid',
    );
  });

  it('uses the base URL set later (the listen address) and refuses weak settings', () => {
    const signer = new RecordingLinks({ secret: SECRET, ttlSec: 60 });
    expect(signer.sign(CALL).url.startsWith(`/v1/calls/${CALL}/recording?`)).to.equal(true);
    signer.setBaseUrl('http://127.0.0.1:3000');
    expect(signer.sign(CALL).url.startsWith(`http://127.0.0.1:3000/v1/calls/${CALL}/`)).to.equal(
      true,
    );
    expect(() => new RecordingLinks({ secret: 'short', ttlSec: 60 })).to.throw(RangeError);
    expect(() => new RecordingLinks({ secret: SECRET, ttlSec: 0 })).to.throw(RangeError);
  });
});
