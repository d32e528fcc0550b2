/**
 * The call script schema: valid scripts parse (with defaults), bad ones are refused with the
 * path of the bad field as the user wrote it (`verbs[2].timeoutSec`), and media / URLs that are
 * unsafe for Asterisk are refused.
 */
import { expect } from 'chai';
import { HttpError } from '../../../../src/http/errors.ts';
import {
  mediaUri,
  MIN_HTTP_MEDIA_URL_LENGTH,
  parseScript,
  parseScriptOrThrow,
  verbsAnswerSchema,
  type ScriptIssue,
} from '../../../../src/calls/verbs/schema.ts';

function issuesOf(input: unknown): ScriptIssue[] {
  const parsed = parseScript(input);
  if (parsed.ok) throw new Error('expected the script to be refused');
  return parsed.issues;
}

describe('call script schema', () => {
  it('accepts every verb and fills the defaults', () => {
    const parsed = parseScript([
      { verb: 'play', media: ['sound:hello-world', 'https://crm.example/m/42.wav?t=1'], loop: 2 },
      { verb: 'pause', sec: 1.5 },
      {
        verb: 'gather',
        numDigits: 1,
        finishOnKey: '#',
        timeoutSec: 5,
        prompts: [{ media: ['sound:digits/1'] }, { verb: 'play', media: ['sound:beep'] }],
        actionUrl: 'https://crm.example/ivr',
      },
      { verb: 'record', maxSec: 60, maxSilenceSec: 5, beep: true, finishOnKey: '#' },
      { verb: 'dial', extensions: ['101', '102'], ringTimeoutSec: 20 },
      { verb: 'transfer', to: 'service' },
      { verb: 'transfer', to: '105' },
      { verb: 'redirect', url: 'http://crm.example/next' },
      { verb: 'hangup' },
    ]);
    expect(parsed.ok).to.equal(true);
    if (!parsed.ok) return;
    expect(parsed.verbs).to.have.length(9);
    expect(parsed.verbs[4]).to.deep.include({ verb: 'dial', strategy: 'ringall' });
    const gatherNoPrompts = parseScript([{ verb: 'gather', timeoutSec: 3 }]);
    expect(gatherNoPrompts.ok && gatherNoPrompts.verbs[0]).to.deep.include({ prompts: [] });
  });

  it('names the path of the bad field', () => {
    const issues = issuesOf([
      { verb: 'play', media: ['sound:hello-world'] },
      { verb: 'pause', sec: 1 },
      { verb: 'gather', timeoutSec: 0 },
    ]);
    expect(issues.map((i) => i.path)).to.deep.equal(['verbs[2].timeoutSec']);
  });

  it('names nested paths: a prompt media item, an unknown field, an unknown verb', () => {
    const issues = issuesOf([
      { verb: 'gather', timeoutSec: 5, prompts: [{ media: ['sound:ok', 'sound:../etc/passwd'] }] },
      { verb: 'record', maxSec: 10, colour: 'red' },
      { verb: 'say', text: 'hello' },
    ]);
    const paths = issues.map((i) => i.path);
    expect(paths).to.include('verbs[0].prompts[0].media[1]');
    expect(paths).to.include('verbs[1].colour');
    expect(paths).to.include('verbs[2].verb');
    expect(issues.find((i) => i.path === 'verbs[1].colour')!.message).to.equal(
      'is not a known field',
    );
  });

  it('bounds every number', () => {
    const cases: Array<[unknown, string]> = [
      [{ verb: 'play', media: ['sound:a'], loop: 0 }, 'verbs[0].loop'],
      [{ verb: 'play', media: ['sound:a'], loop: 21 }, 'verbs[0].loop'],
      [{ verb: 'pause', sec: 301 }, 'verbs[0].sec'],
      [{ verb: 'pause', sec: 0 }, 'verbs[0].sec'],
      [{ verb: 'gather', timeoutSec: 61 }, 'verbs[0].timeoutSec'],
      [{ verb: 'gather', timeoutSec: 5, numDigits: 33 }, 'verbs[0].numDigits'],
      [{ verb: 'gather', timeoutSec: 5, numDigits: 1.5 }, 'verbs[0].numDigits'],
      [{ verb: 'record', maxSec: 3601 }, 'verbs[0].maxSec'],
      [{ verb: 'record', maxSec: 10, maxSilenceSec: 0 }, 'verbs[0].maxSilenceSec'],
      [{ verb: 'dial', extensions: ['101'], ringTimeoutSec: 601 }, 'verbs[0].ringTimeoutSec'],
      [{ verb: 'dial', extensions: [], ringTimeoutSec: 10 }, 'verbs[0].extensions'],
    ];
    for (const [verb, path] of cases) {
      expect(
        issuesOf([verb]).map((i) => i.path),
        JSON.stringify(verb),
      ).to.deep.equal([path]);
    }
  });

  it('refuses unsafe media: traversal, commas, other schemes, credentials, more than 10 items', () => {
    for (const media of [
      'sound:../../etc/passwd',
      'sound:hello.wav',
      'sound:hello,world',
      'sound:hello world',
      'sound:',
      'recording:x',
      'file:///etc/passwd',
      'ftp://x.example/a.wav',
      'http://x.example/a,b.wav',
      'http://user:secret@x.example/a.wav',
      'hello-world',
    ]) {
      expect(
        issuesOf([{ verb: 'play', media: [media] }]).map((i) => i.path),
        media,
      ).to.deep.equal(['verbs[0].media[0]']);
    }
    const eleven = Array.from({ length: 11 }, () => 'sound:beep');
    expect(issuesOf([{ verb: 'play', media: eleven }]).map((i) => i.path)).to.deep.equal([
      'verbs[0].media',
    ]);
    expect(issuesOf([{ verb: 'play', media: [] }]).map((i) => i.path)).to.deep.equal([
      'verbs[0].media',
    ]);
  });

  it('refuses non-http(s) URLs for actionUrl and redirect', () => {
    expect(
      issuesOf([{ verb: 'gather', timeoutSec: 5, actionUrl: 'javascript:alert(1)' }]).map(
        (i) => i.path,
      ),
    ).to.deep.equal(['verbs[0].actionUrl']);
    expect(issuesOf([{ verb: 'redirect', url: 'not a url' }]).map((i) => i.path)).to.deep.equal([
      'verbs[0].url',
    ]);
  });

  it('refuses an empty script and one that is not a list', () => {
    expect(issuesOf([]).map((i) => i.path)).to.deep.equal(['verbs']);
    expect(issuesOf({ verb: 'hangup' }).map((i) => i.path)).to.deep.equal(['verbs']);
  });

  it('refuses a bad script for the API with a 400 invalid_script naming the field', () => {
    const thrown = (() => {
      try {
        parseScriptOrThrow([{ verb: 'hangup' }, { verb: 'record', maxSec: 0 }]);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(thrown).to.be.instanceOf(HttpError);
    expect(thrown).to.deep.include({
      status: 400,
      code: 'invalid_script',
      message: 'verbs[1].maxSec: Too small: expected number to be >=1',
    });
    expect((thrown as HttpError).details).to.deep.equal({
      field: 'verbs[1].maxSec',
      issues: [{ path: 'verbs[1].maxSec', message: 'Too small: expected number to be >=1' }],
    });
    expect(parseScriptOrThrow([{ verb: 'hangup' }])).to.deep.equal([{ verb: 'hangup' }]);
  });

  it('plays a URL as sound:<url> and a sound as is', () => {
    expect(mediaUri('sound:hello-world')).to.equal('sound:hello-world');
    const long = `http://h.example/${'a'.repeat(MIN_HTTP_MEDIA_URL_LENGTH)}.wav`;
    expect(mediaUri(long)).to.equal(`sound:${long}`);
  });

  it('pads a short URL with a fragment ending in its extension (Asterisk cuts the cached file path to the URL length)', () => {
    const uri = mediaUri('http://h.example/a.wav?v=2');
    expect(uri).to.match(/^sound:http:\/\/h\.example\/a\.wav\?v=2#_+\.wav$/);
    expect(uri.length - 'sound:'.length).to.equal(MIN_HTTP_MEDIA_URL_LENGTH);
    // What the media server is asked for is the URL as given (clients drop the fragment).
    const url = new URL(uri.slice('sound:'.length));
    expect(`${url.origin}${url.pathname}${url.search}`).to.equal('http://h.example/a.wav?v=2');
    expect(mediaUri('https://h.example/play')).to.match(/^sound:https:\/\/h\.example\/play#_+$/);
    expect(mediaUri('http://h.example/a.wav#t')).to.match(
      /^sound:http:\/\/h\.example\/a\.wav#t_+\.wav$/,
    );
  });

  it('accepts a CRM answer with an empty list (it ends the script)', () => {
    expect(verbsAnswerSchema.parse({ verbs: [], other: 1 })).to.deep.equal({ verbs: [] });
  });
});
