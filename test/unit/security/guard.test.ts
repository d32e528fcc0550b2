import { expect } from 'chai';
import { Registry } from 'prom-client';
import { loadConfig } from '../../../src/config/load.ts';
import { HttpError } from '../../../src/http/errors.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { parseCustomerNumber } from '../../../src/numbers/phone.ts';
import { compileDialPattern, DestinationPolicy } from '../../../src/security/destinations.ts';
import { CallGuard, OperatorDialGuard } from '../../../src/security/guard.ts';
import { createSecurityMetrics } from '../../../src/security/metrics.ts';
import { securityConfigCheck } from '../../../src/security/config.ts';

const n = (text: string): ReturnType<typeof parseCustomerNumber> => parseCustomerNumber(text, 'RU');

describe('toll-fraud guard', () => {
  describe('destination allow-list', () => {
    it("allows only the default region's numbers by default", () => {
      const policy = new DestinationPolicy(undefined, 'RU');
      expect(policy.entries).to.deep.equal(['RU']);
      expect(policy.allows(n('+74957654321'))).to.equal(true);
      expect(policy.allows(n('+79161234567'))).to.equal(true);
      expect(policy.allows(n('+77011234567'))).to.equal(false); // Kazakhstan shares +7
      expect(policy.allows(n('+442079460958'))).to.equal(false);
    });

    it('takes countries, prefixes (with or without +), patterns and *', () => {
      const policy = new DestinationPolicy(['KZ', '+7495', '44', '_79[0-2]XXXXXXXX'], 'RU');
      expect(policy.allows(n('+74957654321'))).to.equal(true);
      expect(policy.allows(n('+78127654321'))).to.equal(false);
      expect(policy.allows(n('+77011234567'))).to.equal(true);
      expect(policy.allows(n('+442079460958'))).to.equal(true);
      expect(policy.allows(n('+79501234567'))).to.equal(false);
      expect(policy.allows(n('+79011234567'))).to.equal(true);
      expect(new DestinationPolicy(['*'], 'RU').allows(n('+12133734253'))).to.equal(true);
    });

    it('compiles Asterisk-style patterns', () => {
      expect(compileDialPattern('_+7XXX').source).to.equal('^7[0-9][0-9][0-9]$');
      expect(compileDialPattern('_7NZ.').test('72100')).to.equal(true);
      expect(compileDialPattern('_7NZ.').test('721')).to.equal(false);
      expect(compileDialPattern('_7!').test('7')).to.equal(true);
      expect(() => compileDialPattern('_7[12')).to.throw(SyntaxError);
    });

    it('denies premium-rate and other high-cost number types inside the allow-list by default; toll-free, mobile and fixed lines pass', () => {
      const policy = new DestinationPolicy(undefined, 'RU');
      const premium = n('+7 809 123-45-67');
      expect(policy.allows(premium)).to.equal(true); // a Russian number: the allow-list admits it
      expect(policy.deniedType(premium)).to.deep.equal({
        type: 'PREMIUM_RATE',
        description: 'a premium-rate number',
      });
      expect(policy.deniedType(n('+7 800 123-45-67'))).to.equal(undefined); // toll-free
      expect(policy.deniedType(n('+7 916 123-45-67'))).to.equal(undefined); // mobile
      expect(policy.deniedType(n('+7 495 765-43-21'))).to.equal(undefined); // fixed line
      const world = new DestinationPolicy(['*'], 'RU');
      expect(world.deniedType(n('+44 909 879 0000'))?.type).to.equal('PREMIUM_RATE');
      expect(world.deniedType(n('+44 7031 234567'))?.type).to.equal('PERSONAL_NUMBER');
      expect(world.deniedType(n('+1 900 555 1234'))?.type).to.equal('PREMIUM_RATE');
      expect(world.deniedType(n('+44 800 123 4567'))).to.equal(undefined);
      expect(new DestinationPolicy(undefined, 'RU', []).deniedType(premium)).to.equal(undefined);
      expect(
        new DestinationPolicy(undefined, 'RU', ['MOBILE']).deniedType(n('+79161234567'))?.type,
      ).to.equal('MOBILE');
    });

    it('reads DESTINATION_DENIED_TYPES: default premium-rate, shared-cost, personal and UAN; none; unknown types refused', () => {
      expect(loadConfig({}).DESTINATION_DENIED_TYPES).to.deep.equal([
        'PREMIUM_RATE',
        'SHARED_COST',
        'PERSONAL_NUMBER',
        'UAN',
      ]);
      expect(
        loadConfig({ DESTINATION_DENIED_TYPES: 'none' }).DESTINATION_DENIED_TYPES,
      ).to.deep.equal([]);
      expect(
        loadConfig({ DESTINATION_DENIED_TYPES: 'PREMIUM_RATE, VOIP' }).DESTINATION_DENIED_TYPES,
      ).to.deep.equal(['PREMIUM_RATE', 'VOIP']);
      expect(() => loadConfig({ DESTINATION_DENIED_TYPES: 'premium' })).to.throw(
        /DESTINATION_DENIED_TYPES: unknown number type "premium"/,
      );
    });

    it('refuses malformed entries in the configuration', () => {
      expect(() => loadConfig({ DESTINATION_ALLOWLIST: 'Russia' })).to.throw(
        /DESTINATION_ALLOWLIST: bad entry "Russia"/,
      );
      expect(() => loadConfig({ DESTINATION_ALLOWLIST: 'XX' })).to.throw(/DESTINATION_ALLOWLIST/);
      expect(securityConfigCheck(loadConfig({ DESTINATION_ALLOWLIST: '_7[9-1]X' }))[0]).to.match(
        /^DESTINATION_ALLOWLIST: bad pattern _7\[9-1\]X/,
      );
    });
  });

  describe('CallGuard', () => {
    function guard(live = 0, perMinute = 2, max = 3): { guard: CallGuard; registry: Registry } {
      const registry = new Registry();
      return {
        registry,
        guard: new CallGuard({
          destinations: new DestinationPolicy(undefined, 'RU'),
          callsPerMinute: perMinute,
          maxLiveCalls: max,
          liveCalls: () => live,
          logger: createSilentLogger(),
          metrics: createSecurityMetrics(registry),
        }),
      };
    }
    const request = (keyName: string, to = '+74957654321') => ({
      keyName,
      number: n(to),
      operator: '101',
    });
    async function refusal(promise: Promise<void>): Promise<HttpError> {
      try {
        await promise;
      } catch (err) {
        expect(err).to.be.instanceOf(HttpError);
        return err as HttpError;
      }
      throw new Error('expected a refusal');
    }

    it('admits, then rate-limits per key with Retry-After, and counts refusals by reason', async () => {
      const { guard: g, registry } = guard();
      await g.admit(request('crm'));
      await g.admit(request('crm'));
      const err = await refusal(g.admit(request('crm')));
      expect(err).to.include({ status: 429, code: 'rate_limited' });
      expect(Number(err.headers?.['Retry-After'])).to.be.within(1, 60);
      await g.admit(request('shop'));
      const foreign = await refusal(g.admit(request('shop', '+442079460958')));
      expect(foreign).to.include({ status: 403, code: 'destination_not_allowed' });
      const text = await registry.metrics();
      expect(text).to.include(
        'aricrm_call_guard_refusals_total{source="api",reason="rate_limited"} 1',
      );
      expect(text).to.include(
        'aricrm_call_guard_refusals_total{source="api",reason="destination_not_allowed"} 1',
      );
    });

    it('refuses a premium-rate number with 403 destination_type_not_allowed, counted by reason, before the rate limit', async () => {
      const { guard: g, registry } = guard();
      const premium = await refusal(g.admit(request('crm', '+78091234567')));
      expect(premium).to.include({ status: 403, code: 'destination_type_not_allowed' });
      expect(premium.message).to.equal(
        'calls to +78091234567 are not allowed: it is a premium-rate number (PREMIUM_RATE, denied by DESTINATION_DENIED_TYPES)',
      );
      expect(premium.details).to.deep.equal({ field: 'to', numberType: 'PREMIUM_RATE' });
      await g.admit(request('crm', '+78001234567')); // toll-free
      await g.admit(request('crm', '+79161234567')); // mobile
      expect(await registry.getSingleMetricAsString('aricrm_call_guard_refusals_total')).to.include(
        'aricrm_call_guard_refusals_total{source="api",reason="destination_type_not_allowed"} 1',
      );
    });

    it('refuses beyond the cap of live originated calls', async () => {
      const { guard: g } = guard(3);
      expect(await refusal(g.admit(request('crm')))).to.include({
        status: 429,
        code: 'too_many_calls',
      });
    });
  });

  describe('OperatorDialGuard (numbers dialled from operator phones)', () => {
    function dialGuard(entries?: string[]): { guard: OperatorDialGuard; registry: Registry } {
      const registry = new Registry();
      return {
        registry,
        guard: new OperatorDialGuard({
          destinations: new DestinationPolicy(entries, 'RU'),
          region: 'RU',
          logger: createSilentLogger(),
          metrics: createSecurityMetrics(registry),
        }),
      };
    }
    const dial = (g: OperatorDialGuard, number: string) =>
      g.check({ number, extension: '101', callId: 'c1' });

    it('reads numbers as dialled in DEFAULT_REGION and applies the allow-list and denied types', async () => {
      const { guard: g, registry } = dialGuard();
      expect(dial(g, '89161234567')).to.equal(undefined);
      expect(dial(g, '74957654321')).to.equal(undefined);
      expect(dial(g, '88001234567')).to.equal(undefined); // toll-free
      expect(dial(g, '88091234567')).to.deep.equal({
        reason: 'destination_type_not_allowed',
        message:
          'calls to +78091234567 are not allowed: it is a premium-rate number (PREMIUM_RATE, denied by DESTINATION_DENIED_TYPES)',
        numberType: 'PREMIUM_RATE',
      });
      expect(dial(g, '81012133734253')).to.include({ reason: 'destination_not_allowed' });
      const text = await registry.metrics();
      expect(text).to.include(
        'aricrm_call_guard_refusals_total{source="operator_phone",reason="destination_type_not_allowed"} 1',
      );
      expect(text).to.include(
        'aricrm_call_guard_refusals_total{source="operator_phone",reason="destination_not_allowed"} 1',
      );
    });

    it('checks a number it cannot read by its digits: refused by a country rule, admitted by * or a matching prefix', () => {
      expect(dial(dialGuard().guard, '12133734253')).to.include({
        reason: 'destination_not_allowed',
        message: 'calls to +12133734253 are not allowed (destination allow-list)',
      });
      expect(dial(dialGuard(['*']).guard, '12133734253')).to.equal(undefined);
      expect(dial(dialGuard(['RU', '1213']).guard, '12133734253')).to.equal(undefined);
    });
  });
});
