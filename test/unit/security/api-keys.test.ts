import { expect } from 'chai';
import { ApiKeyRing } from '../../../src/security/api-keys.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/config/load.ts';
import { securityConfigCheck } from '../../../src/security/config.ts';

const KEY_A = 'aaaaaaaaaaaaaaaaaaaaaaaa-key-a';
const KEY_B = 'bbbbbbbbbbbbbbbbbbbbbbbb-key-b';

describe('API keys', () => {
  it('names the key that matches, and nothing for near misses', () => {
    const ring = new ApiKeyRing([
      { name: 'crm', key: KEY_A },
      { name: 'shop', key: KEY_B },
    ]);
    expect(ring.configured).to.equal(true);
    expect(ring.verify(KEY_A)).to.equal('crm');
    expect(ring.verify(KEY_B)).to.equal('shop');
    expect(ring.verify(KEY_A.slice(0, -1))).to.equal(undefined);
    expect(ring.verify(`${KEY_A}x`)).to.equal(undefined);
    expect(ring.verify('')).to.equal(undefined);
    expect(new ApiKeyRing([]).configured).to.equal(false);
  });

  it('parses API_KEYS and refuses weak or duplicate keys without echoing them', () => {
    expect(loadConfig({ API_KEYS: `crm:${KEY_A}, shop:${KEY_B}` }).API_KEYS).to.deep.equal([
      { name: 'crm', key: KEY_A },
      { name: 'shop', key: KEY_B },
    ]);
    const problems = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).to.be.instanceOf(ConfigError);
        return (err as Error).message;
      }
      return '';
    };
    expect(problems({ API_KEYS: 'crm:short-secret' })).to.match(/API_KEYS: key "crm": .*24/);
    expect(problems({ API_KEYS: 'crm:short-secret' })).to.not.include('short-secret');
    expect(problems({ API_KEYS: `crm:${KEY_A},crm:${KEY_B}` })).to.match(/used twice/);
    expect(problems({ API_KEYS: `crm:${KEY_A},shop:${KEY_A}` })).to.match(/given twice/);
    expect(problems({ API_KEYS: `crm:${KEY_A},shop:${KEY_A}` })).to.not.include(KEY_A);
    expect(problems({ API_KEYS: KEY_A })).to.match(/API_KEYS: entry 1: expected name:key/);
    expect(problems({ API_KEYS: KEY_A })).to.not.include(KEY_A);
  });

  it('requires API keys in production', () => {
    const base = {
      NODE_ENV: 'production',
      ARI_URL: 'http://pbx:8088',
      ARI_PASSWORD: 'strong-pass',
    };
    expect(securityConfigCheck(loadConfig(base))).to.deep.equal([
      'API_KEYS: required when NODE_ENV=production (name:key,… with keys of at least 24 characters)',
    ]);
    expect(securityConfigCheck(loadConfig({ ...base, API_KEYS: `crm:${KEY_A}` }))).to.deep.equal(
      [],
    );
  });
});
