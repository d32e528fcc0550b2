import { expect } from 'chai';
import { ConfigError } from '../../../src/config/load.ts';
import {
  absoluteLinkUses,
  listenAddressKind,
  publicUrlConfigCheck,
  publicUrlWarning,
  type PublicUrlSettings,
} from '../../../src/config/public-url.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { loadEngineConfig, startEngine } from '../../../src/main.ts';

/** What production in a Docker container looks like, recording every call, without PUBLIC_URL. */
const DOCKER: PublicUrlSettings = {
  NODE_ENV: 'production',
  PUBLIC_URL: undefined,
  HTTP_HOST: '0.0.0.0',
  RECORD_CALLS: 'all',
  CRM_CONNECTOR: 'webhook',
  BITRIX24_WEBHOOK_URL: undefined,
};

/** The environment of a production engine that is otherwise complete. */
const PRODUCTION_ENV = {
  NODE_ENV: 'production',
  ARI_URL: 'http://asterisk:8088',
  ARI_PASSWORD: 'a-real-ari-password-0123',
  API_KEYS: 'crm:0123456789abcdef0123456789abcdef',
  RECORDING_LINK_SECRET: 'r'.repeat(32),
  HTTP_HOST: '0.0.0.0',
  RECORD_CALLS: 'all',
};

describe('PUBLIC_URL and the links the engine hands out', () => {
  it('tells wildcard and loopback listen addresses from reachable ones', () => {
    for (const host of ['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0'])
      expect(listenAddressKind(host), host).to.equal('wildcard');
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
      expect(listenAddressKind(host), host).to.equal('loopback');
    for (const host of ['10.0.0.5', '192.168.1.50', 'fd00::5', 'engine.internal', 'engine'])
      expect(listenAddressKind(host), host).to.equal(undefined);
  });

  it('names what needs absolute links: recording, retailCRM, Bitrix24 with its application', () => {
    expect(absoluteLinkUses({ ...DOCKER, RECORD_CALLS: 'none' })).to.deep.equal([]);
    expect(absoluteLinkUses({ ...DOCKER, RECORD_CALLS: 'inbound' })).to.deep.equal([
      'recording links (RECORD_CALLS=inbound)',
    ]);
    expect(
      absoluteLinkUses({ ...DOCKER, RECORD_CALLS: 'none', CRM_CONNECTOR: 'retailcrm' })[0],
    ).to.match(/retailCRM.*CRM_CONNECTOR=retailcrm/);
    expect(
      absoluteLinkUses({ ...DOCKER, RECORD_CALLS: 'none', CRM_CONNECTOR: 'bitrix24' })[0],
    ).to.match(/Bitrix24.*CRM_CONNECTOR=bitrix24/);
    // A Bitrix24 inbound webhook cannot bind events: nothing calls the engine back.
    expect(
      absoluteLinkUses({
        ...DOCKER,
        RECORD_CALLS: 'none',
        CRM_CONNECTOR: 'bitrix24',
        BITRIX24_WEBHOOK_URL: 'https://b24.example.com/rest/1/abc/',
      }),
    ).to.deep.equal([]);
  });

  it('refuses production when recording links would name 0.0.0.0 or a loopback address', () => {
    const [problem] = publicUrlConfigCheck(DOCKER);
    expect(problem).to.match(/^PUBLIC_URL: required when NODE_ENV=production/);
    expect(problem).to.include('0.0.0.0').and.include('RECORD_CALLS=all');
    const check = (over: Partial<PublicUrlSettings>): string[] =>
      publicUrlConfigCheck({ ...DOCKER, ...over });
    expect(check({ HTTP_HOST: '127.0.0.1' })[0]).to.include('loopback');
    expect(check({ PUBLIC_URL: 'https://pbx-engine.example.com' })).to.deep.equal([]);
    expect(check({ HTTP_HOST: '10.0.0.5' })).to.deep.equal([]);
    expect(check({ RECORD_CALLS: 'none' })).to.deep.equal([]);
    expect(check({ NODE_ENV: 'development' })).to.deep.equal([]);
    expect(check({ RECORD_CALLS: 'none', CRM_CONNECTOR: 'retailcrm' })).to.have.length(1);
  });

  it('is one of the start-up checks: the engine does not start, and says PUBLIC_URL', async () => {
    let error: unknown;
    try {
      loadEngineConfig(PRODUCTION_ENV);
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).problems).to.have.length(1);
    expect((error as ConfigError).message).to.match(
      /PUBLIC_URL: required when NODE_ENV=production/,
    );
    expect(
      loadEngineConfig({ ...PRODUCTION_ENV, PUBLIC_URL: 'https://pbx-engine.example.com' })
        .PUBLIC_URL,
    ).to.equal('https://pbx-engine.example.com');
    // startEngine checks it too (before it opens anything).
    const config = loadConfig(PRODUCTION_ENV);
    let refused: unknown;
    try {
      await startEngine(config);
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(ConfigError);
    expect((refused as Error).message).to.include('PUBLIC_URL');
  });

  it('otherwise warns, naming the listen address links start with', () => {
    const dev = { ...DOCKER, NODE_ENV: 'development' as const };
    const warning = publicUrlWarning(dev, 'http://0.0.0.0:3000');
    expect(warning?.message).to.match(/^PUBLIC_URL is not set: recording links/);
    expect(warning?.message).to.include('http://0.0.0.0:3000').and.include('nobody can open');
    expect(warning?.uses).to.deep.equal(['recording links (RECORD_CALLS=all)']);
    expect(publicUrlWarning(dev, 'http://127.0.0.1:3000')?.message).to.include(
      'only this machine can open',
    );
    // A wildcard address still names call script recordings; loopback without recording is the
    // local demo: nothing to say.
    const quiet = { ...dev, RECORD_CALLS: 'none' as const };
    expect(publicUrlWarning(quiet, 'http://[::]:3000')?.message).to.include(
      'call script recordings',
    );
    expect(publicUrlWarning(quiet, 'http://127.0.0.1:3000')).to.equal(undefined);
    // A specific address others may reach: development stays quiet (production: the next test).
    expect(publicUrlWarning(dev, 'http://10.0.0.5:3000')).to.equal(undefined);
    expect(
      publicUrlWarning({ ...dev, PUBLIC_URL: 'https://e.example.com' }, 'http://0.0.0.0:3000'),
    ).to.equal(undefined);
  });

  it('warns in production on a specific listen address: the links are plain HTTP to it', () => {
    const onLan = { ...DOCKER, HTTP_HOST: '10.0.0.5' };
    // Production starts there (the address may be the one the CRM reaches)…
    expect(publicUrlConfigCheck(onLan)).to.deep.equal([]);
    // …and says what the links look like and how to set PUBLIC_URL.
    const warning = publicUrlWarning(onLan, 'http://10.0.0.5:3000');
    expect(warning?.message).to.match(
      /^PUBLIC_URL is not set: recording links \(RECORD_CALLS=all\)/,
    );
    expect(warning?.message)
      .to.include('http://10.0.0.5:3000/v1/…, plain HTTP')
      .and.include('a reverse proxy with TLS, a NAT')
      .and.include('PUBLIC_URL=https://');
    expect(warning?.message).to.not.include('\n');
    expect(warning?.uses).to.deep.equal(['recording links (RECORD_CALLS=all)']);
    expect(
      publicUrlWarning({ ...onLan, CRM_CONNECTOR: 'retailcrm' }, 'http://[fd00::5]:3000')?.message,
    )
      .to.include('CRM_CONNECTOR=retailcrm')
      .and.include('http://[fd00::5]:3000/v1/…');
    // Without a feature needing them, call script recordings still get links.
    expect(
      publicUrlWarning({ ...onLan, RECORD_CALLS: 'none' }, 'http://10.0.0.5:3000')?.message,
    ).to.include('links to call script recordings');
    // Quiet with PUBLIC_URL, and outside production.
    expect(
      publicUrlWarning({ ...onLan, PUBLIC_URL: 'https://e.example.com' }, 'http://10.0.0.5:3000'),
    ).to.equal(undefined);
    for (const env of ['development', 'test'] as const)
      expect(publicUrlWarning({ ...onLan, NODE_ENV: env }, 'http://10.0.0.5:3000')).to.equal(
        undefined,
      );
  });
});
