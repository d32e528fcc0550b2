/**
 * The simulator's answering-machine detection: the verdict AMD() gives on each kind of answer,
 * with the arguments the `[crm-amd]` context passes (empty ones keep amd.conf's defaults).
 */
import { expect } from 'chai';
import { amdSettings, amdVerdict, AMD_DEFAULTS } from '../../../src/simulator/amd.ts';

describe('simulator: AMD() verdicts', () => {
  it('reads AMD() arguments, empty or bad ones keeping the defaults', () => {
    expect(amdSettings(',,,,,,,,')).to.deep.equal(AMD_DEFAULTS);
    expect(amdSettings('3000,,900,1000,,,,,')).to.deep.equal({
      initialSilenceMs: 3000,
      greetingMs: 1500,
      afterGreetingSilenceMs: 900,
      totalAnalysisMs: 1000,
    });
  });

  it('a phone sending no audio is NOTSURE with the analysed time the kit reports', () => {
    // Recorded on the kit (amd-continue): TOOLONG-4900 for 5000 ms, TOOLONG-900 for 1000 ms.
    expect(amdVerdict('none', AMD_DEFAULTS)).to.deep.equal({
      status: 'NOTSURE',
      cause: 'TOOLONG-4900',
      afterMs: 5000,
    });
    expect(amdVerdict('none', { ...AMD_DEFAULTS, totalAnalysisMs: 1000 }).cause).to.equal(
      'TOOLONG-900',
    );
  });

  it('a machine is MACHINE after the greeting time, a person HUMAN after hello and silence', () => {
    expect(amdVerdict('machine', AMD_DEFAULTS)).to.deep.equal({
      status: 'MACHINE',
      cause: 'LONGGREETING-1500-1500',
      afterMs: 1500,
    });
    expect(amdVerdict('human', AMD_DEFAULTS)).to.deep.equal({
      status: 'HUMAN',
      cause: 'HUMAN-800-800',
      afterMs: 1300,
    });
    // A verdict that would come after the total analysis time is not reached.
    expect(amdVerdict('machine', { ...AMD_DEFAULTS, totalAnalysisMs: 1000 }).status).to.equal(
      'NOTSURE',
    );
  });
});
