import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { signedPayload, signWebhook, verifyWebhookSignature } from '../../src/events/signature.ts';

const SECRET = 'webhook-secret-0123456789abcdef';
const OLD_SECRET = 'old-webhook-secret-0123456789ab';
const BODY = '{"id":"e1","type":"call.started","data":{"from":"79161234567","name":"Иван"}}';
const NOW = 1_738_314_000;

describe('webhook signature', () => {
  it('signs "<t>.<raw body>" with HMAC-SHA256 as t=<sec>,v1=<hex>', () => {
    const header = signWebhook(SECRET, BODY, NOW + 0.9);
    const expected = createHmac('sha256', SECRET).update(`${NOW}.${BODY}`, 'utf8').digest('hex');
    expect(header).to.equal(`t=${NOW},v1=${expected}`);
    expect(signedPayload(NOW, BODY).toString('utf8')).to.equal(`${NOW}.${BODY}`);
  });

  it('verifies its own signature, from a string or the raw Buffer', () => {
    const header = signWebhook(SECRET, BODY, NOW);
    expect(verifyWebhookSignature(SECRET, header, BODY, { nowSec: NOW })).to.equal(true);
    expect(
      verifyWebhookSignature(SECRET, header, Buffer.from(BODY, 'utf8'), { nowSec: NOW + 10 }),
    ).to.equal(true);
  });

  it('rejects a changed body, a wrong secret and a stale or future timestamp', () => {
    const header = signWebhook(SECRET, BODY, NOW);
    expect(
      verifyWebhookSignature(SECRET, header, BODY.replace('79161234567', '79160000000'), {
        nowSec: NOW,
      }),
    ).to.equal(false);
    expect(
      verifyWebhookSignature('some-other-secret-0123456789', header, BODY, { nowSec: NOW }),
    ).to.equal(false);
    expect(verifyWebhookSignature(SECRET, header, BODY, { nowSec: NOW + 301 })).to.equal(false);
    expect(verifyWebhookSignature(SECRET, header, BODY, { nowSec: NOW - 301 })).to.equal(false);
    expect(verifyWebhookSignature(SECRET, header, BODY, { nowSec: NOW + 300 })).to.equal(true);
    expect(
      verifyWebhookSignature(SECRET, header, BODY, { nowSec: NOW + 1000, toleranceSec: 1000 }),
    ).to.equal(true);
  });

  it('supports secret rotation: several v1 values, several receiver secrets', () => {
    const both = signWebhook([SECRET, OLD_SECRET], BODY, NOW);
    expect(both.split(',')).to.have.length(3);
    expect(verifyWebhookSignature(OLD_SECRET, both, BODY, { nowSec: NOW })).to.equal(true);
    expect(verifyWebhookSignature(SECRET, both, BODY, { nowSec: NOW })).to.equal(true);
    const newOnly = signWebhook(SECRET, BODY, NOW);
    expect(verifyWebhookSignature([OLD_SECRET, SECRET], newOnly, BODY, { nowSec: NOW })).to.equal(
      true,
    );
    expect(verifyWebhookSignature([OLD_SECRET], newOnly, BODY, { nowSec: NOW })).to.equal(false);
  });

  it('returns false (never throws) on malformed headers', () => {
    const valid = signWebhook(SECRET, BODY, NOW);
    const v1 = valid.split('v1=')[1]!;
    for (const header of [
      undefined,
      '',
      'garbage',
      `v1=${v1}`,
      `t=${NOW}`,
      `t=abc,v1=${v1}`,
      `t=${NOW},v1=${v1.slice(0, 10)}`,
      `t=${NOW},v1=${'z'.repeat(64)}`,
      `t=${NOW},t=${NOW},v1=${v1}`,
      `t=${NOW},v0=${v1}`,
    ]) {
      expect(
        verifyWebhookSignature(SECRET, header, BODY, { nowSec: NOW }),
        String(header),
      ).to.equal(false);
    }
    expect(verifyWebhookSignature('', valid, BODY, { nowSec: NOW })).to.equal(false);
    expect(verifyWebhookSignature(SECRET, ` t=${NOW} , v1=${v1} `, BODY, { nowSec: NOW })).to.equal(
      true,
    );
  });

  it('refuses to sign without a secret', () => {
    expect(() => signWebhook('', BODY, NOW)).to.throw(/secret/);
    expect(() => signWebhook([], BODY, NOW)).to.throw(/secret/);
  });
});
