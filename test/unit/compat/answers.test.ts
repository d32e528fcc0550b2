import { expect } from 'chai';
import {
  autocallStatusAnswer,
  compatCallerId,
  formatAnswer,
  makecallOutcome,
  uniqueIdCallerIdAnswer,
} from '../../../src/compat/answers.ts';

describe('compat answers (asterisk.fcgi text format)', () => {
  it('writes Answer first, then Key: value lines, each ended by a newline', () => {
    expect(formatAnswer('OK')).to.equal('Answer: OK\n');
    expect(formatAnswer('Busy')).to.equal('Answer: Busy\n');
    expect(formatAnswer('OK', [['AutoCallID', '9999']])).to.equal('Answer: OK\nAutoCallID: 9999\n');
    expect(formatAnswer('Error', [['X', 'a\r\nb']])).to.equal('Answer: Error\nX: a b\n');
  });

  it('answers get_uniqueid_callerid with CallerID and UniqueID, or only Answer: Error', () => {
    const current = {
      callId: 'c1',
      customerChannelId: '1738314902.17',
      callerId: { number: '79161234567', name: 'Ivan' },
      direction: 'in' as const,
      state: 'bridged' as const,
    };
    expect(uniqueIdCallerIdAnswer(current)).to.equal(
      'Answer: OK\nCallerID: 79161234567\nUniqueID: 1738314902.17\n',
    );
    expect(uniqueIdCallerIdAnswer({ ...current, callerId: { number: '', name: '' } })).to.equal(
      'Answer: OK\nCallerID: unknown\nUniqueID: 1738314902.17\n',
    );
    // A click-to-call still ringing the operator has no customer channel: not established.
    expect(uniqueIdCallerIdAnswer({ ...current, customerChannelId: '' })).to.equal(
      'Answer: Error\n',
    );
    expect(uniqueIdCallerIdAnswer(undefined)).to.equal('Answer: Error\n');
  });

  it('shows a number as CallerID, anything else as unknown', () => {
    expect(compatCallerId('+74957654321')).to.equal('+74957654321');
    expect(compatCallerId('anonymous')).to.equal('unknown');
    expect(compatCallerId('')).to.equal('unknown');
  });

  it('decides makecall: OK once the customer rings, Busy when ended busy, Error otherwise', () => {
    expect(makecallOutcome({ state: 'dialing_operator' })).to.equal(undefined);
    expect(makecallOutcome({ state: 'operator_ringing' })).to.equal(undefined);
    expect(makecallOutcome({ state: 'dialing_customer' })).to.equal(undefined);
    expect(makecallOutcome({ state: 'customer_ringing' })).to.equal('OK');
    expect(makecallOutcome({ state: 'bridged' })).to.equal('OK');
    expect(makecallOutcome({ state: 'ended', disposition: 'answered' })).to.equal('OK');
    expect(makecallOutcome({ state: 'ended', disposition: 'busy' })).to.equal('Busy');
    expect(makecallOutcome({ state: 'ended', disposition: 'no_answer' })).to.equal('Error');
    expect(makecallOutcome({ state: 'ended', disposition: 'failed' })).to.equal('Error');
    expect(makecallOutcome(undefined)).to.equal('Error');
  });
});

describe('compat answers: autocallstatus', () => {
  it('answers each notification-call status in the daemon’s words', () => {
    const answers = Object.fromEntries(
      (
        [
          'queued',
          'in_progress',
          'delivered',
          'busy',
          'no_answer',
          'failed',
          'canceled',
          'machine',
        ] as const
      ).map((s) => [s, formatAnswer(autocallStatusAnswer(s))]),
    );
    expect(answers).to.deep.equal({
      queued: 'Answer: Queued\n',
      in_progress: 'Answer: Queued\n',
      delivered: 'Answer: OK (Sent)\n',
      busy: 'Answer: Busy\n',
      no_answer: 'Answer: NO ANSWER\n',
      failed: 'Answer: Error\n',
      canceled: 'Answer: Error\n',
      machine: 'Answer: NO ANSWER\n',
    });
  });
});
