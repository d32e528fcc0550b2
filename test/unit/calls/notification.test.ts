/**
 * The notification-call flow's pure helpers: how a job's sounds become `play` media and what
 * message a job plays.
 */
import { expect } from 'chai';
import { amdVariables, mediaItem, messageVerbs } from '../../../src/calls/flows/notification.ts';

describe('notification flow: the message of a job', () => {
  it('turns every form of sound a job accepts into a play media item', () => {
    expect(mediaItem('hello-world')).to.equal('sound:hello-world');
    expect(mediaItem('custom/notice')).to.equal('sound:custom/notice');
    expect(mediaItem('sound:custom/notice')).to.equal('sound:custom/notice');
    expect(mediaItem('https://crm.example/car.wav')).to.equal('https://crm.example/car.wav');
    expect(mediaItem('sound:http://crm.example/car.wav')).to.equal('http://crm.example/car.wav');
  });

  it('plays the files in one play verb, or runs the verbs; nothing valid gives no message', () => {
    expect(messageVerbs({ files: ['hello-world', 'https://crm.example/a.wav'] })).to.deep.equal([
      { verb: 'play', media: ['sound:hello-world', 'https://crm.example/a.wav'] },
    ]);
    expect(
      messageVerbs({ verbs: [{ verb: 'play', media: ['sound:beep'] }, { verb: 'hangup' }] }),
    ).to.deep.equal([{ verb: 'play', media: ['sound:beep'] }, { verb: 'hangup' }]);
    expect(messageVerbs({ verbs: [{ verb: 'pause', sec: 0 }] })).to.equal(undefined);
    expect(messageVerbs({})).to.equal(undefined);
  });
});

describe('notification flow: answering-machine detection settings', () => {
  it('sends the job AMD settings to AMD() as CRM_AMD_* channel variables, only those set', () => {
    expect(
      amdVariables({
        enabled: true,
        initialSilenceMs: 3000,
        greetingMs: 2000,
        afterGreetingSilenceMs: 900,
        totalAnalysisTimeMs: 4000,
        maximumNumberOfWords: 3,
      }),
    ).to.deep.equal({
      CRM_AMD_INITIAL_SILENCE_MS: '3000',
      CRM_AMD_GREETING_MS: '2000',
      CRM_AMD_AFTER_GREETING_SILENCE_MS: '900',
      CRM_AMD_TOTAL_ANALYSIS_MS: '4000',
      CRM_AMD_MAX_WORDS: '3',
    });
    expect(amdVariables({ enabled: true })).to.deep.equal({});
    expect(amdVariables({ enabled: false, greetingMs: 2000 })).to.deep.equal({});
    expect(amdVariables(undefined)).to.deep.equal({});
  });
});
