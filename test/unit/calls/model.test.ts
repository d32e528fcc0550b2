import { expect } from 'chai';
import {
  legOutcomeFromCause,
  talkSeconds,
  unansweredDisposition,
  waitSeconds,
} from '../../../src/calls/model.ts';

describe('call model', () => {
  describe('legOutcomeFromCause', () => {
    it('maps the causes a real Asterisk reports for dialled legs (fixtures facts 4, 5)', () => {
      expect(legOutcomeFromCause(17, false)).to.equal('busy'); // 486 User busy
      expect(legOutcomeFromCause(19, false)).to.equal('no_answer'); // dial timeout
      expect(legOutcomeFromCause(18, false)).to.equal('no_answer');
      expect(legOutcomeFromCause(20, false)).to.equal('unavailable'); // offline endpoint
      expect(legOutcomeFromCause(34, false)).to.equal('failed'); // congestion
    });
    it('calls a leg the engine hung up itself canceled, whatever the cause', () => {
      expect(legOutcomeFromCause(16, true)).to.equal('canceled');
      expect(legOutcomeFromCause(17, true)).to.equal('canceled');
    });
  });

  describe('unansweredDisposition', () => {
    it('is no_answer when any operator let it ring', () => {
      expect(unansweredDisposition(['busy', 'no_answer', 'unavailable'])).to.equal('no_answer');
    });
    it('is busy when every reachable operator was busy', () => {
      expect(unansweredDisposition(['busy', 'unavailable'])).to.equal('busy');
    });
    it('is failed when nobody could be reached', () => {
      expect(unansweredDisposition(['unavailable', 'failed'])).to.equal('failed');
      expect(unansweredDisposition([])).to.equal('failed');
    });
  });

  describe('wait and talk time', () => {
    const startedAt = Date.parse('2026-11-21T10:00:00.000Z');
    it('measures wait until answer and talk from answer to end, in whole seconds', () => {
      const call = { startedAt, answeredAt: startedAt + 7_400, endedAt: startedAt + 67_600 };
      expect(waitSeconds(call, 0)).to.equal(7);
      expect(talkSeconds(call, 0)).to.equal(60);
    });
    it('counts the whole ring time as wait for unanswered calls, talk 0', () => {
      const call = { startedAt, endedAt: startedAt + 12_600 };
      expect(waitSeconds(call, 0)).to.equal(13);
      expect(talkSeconds(call, 0)).to.equal(0);
    });
  });
});
