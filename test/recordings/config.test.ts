import { expect } from 'chai';
import { loadConfig } from '../../src/config/load.ts';
import {
  recordingSettings,
  recordingsConfigCheck,
  shouldRecord,
} from '../../src/recordings/config.ts';

describe('recording policy and settings', () => {
  it('records by RECORD_CALLS and direction unless the call says otherwise', () => {
    const table: Array<[Parameters<typeof shouldRecord>[0], 'in' | 'out', boolean, boolean]> = [
      ['none', 'in', false, false],
      ['none', 'out', false, false],
      ['all', 'in', true, true],
      ['all', 'out', true, true],
      ['inbound', 'in', true, true],
      ['inbound', 'out', false, false],
      ['outbound', 'in', false, false],
      ['outbound', 'out', true, true],
    ];
    for (const [mode, direction, expected] of table)
      expect(shouldRecord(mode, direction), `${mode} ${direction}`).to.equal(expected);
    expect(shouldRecord('none', 'in', true)).to.equal(true);
    expect(shouldRecord('all', 'out', false)).to.equal(false);
  });

  it('defaults: nothing recorded, files in <DATA_DIR>/recordings, links for 7 days, 5 tries', () => {
    const settings = recordingSettings(loadConfig({ DATA_DIR: '/var/lib/ari-crm' }));
    expect(settings).to.deep.include({
      mode: 'none',
      directory: '/var/lib/ari-crm/recordings',
      linkSecret: undefined,
      linkTtlSec: 604_800,
      publicUrl: undefined,
      deleteFromAsterisk: true,
      download: { attempts: 5, initialDelayMs: 2000, maxDelayMs: 60_000 },
    });
  });

  it('reads every variable', () => {
    const settings = recordingSettings(
      loadConfig({
        RECORD_CALLS: 'inbound',
        RECORDINGS_DIR: '/srv/rec',
        RECORDING_LINK_SECRET: 'x'.repeat(32),
        RECORDING_LINK_TTL_SEC: '3600',
        PUBLIC_URL: 'https://engine.example.com',
        RECORDING_DELETE_FROM_ASTERISK: 'false',
        RECORDING_DOWNLOAD_ATTEMPTS: '3',
        RECORDING_RETRY_DELAY_MS: '100',
      }),
    );
    expect(settings).to.deep.equal({
      mode: 'inbound',
      directory: '/srv/rec',
      linkSecret: 'x'.repeat(32),
      linkTtlSec: 3600,
      publicUrl: 'https://engine.example.com',
      deleteFromAsterisk: false,
      download: { attempts: 3, initialDelayMs: 100, maxDelayMs: 60_000 },
    });
    expect(() => loadConfig({ RECORD_CALLS: 'some' })).to.throw(/RECORD_CALLS/);
    expect(() => loadConfig({ RECORDING_LINK_SECRET: 'short' })).to.throw(/RECORDING_LINK_SECRET/);
  });

  it('requires a link secret in production when calls are recorded', () => {
    expect(
      recordingsConfigCheck({
        NODE_ENV: 'production',
        RECORD_CALLS: 'all',
        RECORDING_LINK_SECRET: undefined,
      }),
    ).to.have.length(1);
    expect(
      recordingsConfigCheck({
        NODE_ENV: 'production',
        RECORD_CALLS: 'none',
        RECORDING_LINK_SECRET: undefined,
      }),
    ).to.deep.equal([]);
    expect(
      recordingsConfigCheck({
        NODE_ENV: 'development',
        RECORD_CALLS: 'all',
        RECORDING_LINK_SECRET: undefined,
      }),
    ).to.deep.equal([]);
  });
});
