/**
 * The notification-call flow's pure helpers: how a job's sounds become `play` media and what
 * message a job plays.
 */
import { expect } from 'chai';
import { mediaItem, messageVerbs } from '../../../src/calls/flows/notification.ts';

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
