import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../../src/config/load.ts';
import { streamAdminReserve } from '../../../src/stream/index.ts';
import { CONFIG_KEYS } from '../../../src/config/schema.ts';
import { renderConfigDoc, renderEnvExample } from '../../../src/config/reference.ts';

describe('configuration', () => {
  it('starts with defaults: simulator mode, crm-app, fallback ring-all', () => {
    const config = loadConfig({});
    expect(config.ARI_URL).to.equal(undefined);
    expect(config.ARI_APP).to.equal('crm-app');
    expect(config.CRM_TIMEOUT_MS).to.equal(1500);
    expect(config.FALLBACK_ROUTE).to.equal('ringall:101,102,103');
    expect(config.TRUNKS).to.deep.equal([{ prefix: '*', template: 'PJSIP/{number}@client-trunk' }]);
  });

  it('names every bad variable and what it expects, in one line', () => {
    try {
      loadConfig({ HTTP_PORT: 'eighty', ARI_URL: 'ftp://pbx', TRUNKS: '7=nothing' });
      expect.fail('should have thrown');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).to.not.include('\n');
      expect(message).to.match(/HTTP_PORT: .*number/);
      expect(message).to.match(/ARI_URL: expected an http\(s\) URL/);
      expect(message).to.match(/TRUNKS: bad entry "7=nothing"/);
    }
  });

  it('names a bad stream origin in the one-line error instead of crashing on it', () => {
    expect(() =>
      loadConfig({ STREAM_ALLOWED_ORIGINS: 'https://crm.example.com,nope,https://x.test/path' }),
    ).to.throw(
      ConfigError,
      /STREAM_ALLOWED_ORIGINS: "nope" is not an origin like https:\/\/crm\.example\.com.*"https:\/\/x\.test\/path" is not an origin/,
    );
    const config = loadConfig({ STREAM_ALLOWED_ORIGINS: 'https://crm.example.com/, *' });
    expect(config.STREAM_ALLOWED_ORIGINS).to.deep.equal(['https://crm.example.com', '*']);
  });

  it('any malformed value of any variable is a one-line ConfigError naming it, never a crash', () => {
    const malformed = ['nope', '', ' ', '%%%', '-1', '1e308', 'x=y=z', ',,,', '*', 'http://', '['];
    for (const key of CONFIG_KEYS)
      for (const value of malformed) {
        try {
          loadConfig({ [key]: value });
        } catch (err) {
          expect(err, `${key}=${JSON.stringify(value)}`).to.be.instanceOf(ConfigError);
          expect((err as Error).message, `${key}=${JSON.stringify(value)}`).to.include(key);
        }
      }
  });

  it('refuses to run on the simulator in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).to.throw(
      ConfigError,
      /ARI_URL: required when NODE_ENV=production/,
    );
  });

  it('requires a strong webhook secret when webhooks are configured', () => {
    expect(() => loadConfig({ CRM_WEBHOOK_URL: 'http://crm.local/hooks' })).to.throw(
      ConfigError,
      /WEBHOOK_SECRET/,
    );
    expect(() =>
      loadConfig({ CRM_WEBHOOK_URL: 'http://crm.local/hooks', WEBHOOK_SECRET: 'short' }),
    ).to.throw(ConfigError, /WEBHOOK_SECRET: must be at least 16 characters/);
  });

  it('takes a PostgreSQL schema per engine, and refuses one for SQLite or a bad name', () => {
    const pg = 'postgres://engine@db.local:5432/calls';
    expect(loadConfig({ DATABASE_URL: pg, DATABASE_SCHEMA: 'pbx_msk' }).DATABASE_SCHEMA).to.equal(
      'pbx_msk',
    );
    expect(() => loadConfig({ DATABASE_SCHEMA: 'pbx_msk' })).to.throw(
      ConfigError,
      /DATABASE_SCHEMA: only for a PostgreSQL DATABASE_URL/,
    );
    expect(() => loadConfig({ DATABASE_URL: pg, DATABASE_SCHEMA: 'Robert"; drop' })).to.throw(
      ConfigError,
      /DATABASE_SCHEMA: expected a lower-case PostgreSQL identifier/,
    );
  });

  it('keeps a tenth of the live stream places (at most 10) for admin streams by default, and refuses a reserve that leaves operators none', () => {
    expect(streamAdminReserve(loadConfig({}))).to.equal(10);
    expect(streamAdminReserve(loadConfig({ STREAM_MAX_SOCKETS: '50' }))).to.equal(5);
    // A small cap set before the reserve existed still starts and leaves operators every place.
    expect(streamAdminReserve(loadConfig({ STREAM_MAX_SOCKETS: '9' }))).to.equal(0);
    expect(loadConfig({ STREAM_ADMIN_RESERVE: '0' }).STREAM_ADMIN_RESERVE).to.equal(0);
    expect(
      loadConfig({ STREAM_MAX_SOCKETS: '5', STREAM_ADMIN_RESERVE: '4' }).STREAM_ADMIN_RESERVE,
    ).to.equal(4);
    expect(() => loadConfig({ STREAM_MAX_SOCKETS: '5', STREAM_ADMIN_RESERVE: '5' })).to.throw(
      ConfigError,
      /STREAM_ADMIN_RESERVE: must be below STREAM_MAX_SOCKETS \(5 >= 5\)/,
    );
    expect(() => loadConfig({ STREAM_MAX_SOCKETS: '10', STREAM_ADMIN_RESERVE: '10' })).to.throw(
      ConfigError,
      /lower it/,
    );
    expect(() => loadConfig({ STREAM_ADMIN_RESERVE: '-1' })).to.throw(
      ConfigError,
      /STREAM_ADMIN_RESERVE/,
    );
  });

  it('parses the no-answer dialplan location', () => {
    expect(loadConfig({ NO_ANSWER_DIALPLAN: 'voicemail,s' }).NO_ANSWER_DIALPLAN).to.deep.equal({
      context: 'voicemail',
      extension: 's',
      priority: 1,
    });
  });

  it('documents every variable in .env.example and docs/configuration.md, generated from the schema', () => {
    const example = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
    const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    for (const key of CONFIG_KEYS) {
      expect(example, key).to.match(new RegExp(`^# ${key}=`, 'm'));
      expect(doc, key).to.include(`| \`${key}\` |`);
    }
    expect(example, 'run npm run config:docs').to.equal(renderEnvExample());
    expect(doc, 'run npm run config:docs').to.equal(renderConfigDoc());
  });
});
