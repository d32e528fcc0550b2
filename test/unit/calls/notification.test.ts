/**
 * The notification-call flow's pure helpers (how a job's sounds become `play` media and what
 * message a job plays), and the order of its first steps: the call is in the store before its
 * channel is originated.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import type { AriGateway } from '../../../src/ari/types.ts';
import type { DialJob } from '../../../src/autocalls/dialer.ts';
import { NotificationFlow } from '../../../src/calls/flows/notification.ts';
import { amdVariables } from '../../../src/calls/flows/notification-amd.ts';
import { NOTIFICATION_STORE_WAIT_MS } from '../../../src/calls/flows/notification-originate.ts';
import { mediaItem, messageVerbs } from '../../../src/calls/flows/notification-script.ts';
import { CallNotifier } from '../../../src/calls/notifier.ts';
import { CallRuntime } from '../../../src/calls/runtime.ts';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../../src/logging/logger.ts';
import { unitCallDeps } from '../../support/call-deps.ts';

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

describe('notification flow: the call is stored before its channel exists', () => {
  const JOB: DialJob = {
    id: 7,
    to: '+74957654321',
    endpoint: 'PJSIP/74957654321@client-trunk',
    script: { files: ['hello-world'] },
    tries: 1,
  };

  /** The flow on a runtime whose journal writes only when the test says so. */
  function setUp() {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const logger = createLogger({ level: 'warn', stream });
    const originate = sinon.stub().returns(new Promise(() => undefined)); // rings on
    const gateway = {
      channels: { originate },
      onChannel: () => () => undefined,
    } as unknown as AriGateway;
    const waiting: Array<() => void> = [];
    const journal = {
      record: () => undefined,
      whenWritten: (_callId: string, written: () => void) => void waiting.push(written),
    };
    const rt = new CallRuntime(
      unitCallDeps(gateway, {
        notifier: new CallNotifier([], logger, Date.now, journal),
        journal,
        logger,
      }),
      { ended: () => undefined, released: () => undefined },
    );
    const flow = new NotificationFlow(rt, { defaultCallerId: '74950000000' });
    rt.registerFlow(flow);
    return {
      flow,
      originate,
      lines,
      stream,
      waiting,
      writeAll: () => waiting.splice(0).forEach((w) => w()),
    };
  }

  /** Let the flow's promise chains run. */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };

  afterEach(() => sinon.restore());

  it('originates the customer channel only once the journal has written the call (an engine killed before leaves no channel that no engine knows of)', async () => {
    const { flow, originate, waiting, writeAll } = setUp();
    void flow.dial(JOB, 1, new AbortController().signal);
    await settle();
    expect(waiting, 'waiting for the store').to.have.length.at.least(1);
    expect(originate.called, 'originated before the store held the call').to.equal(false);
    writeAll();
    await settle();
    expect(originate.calledOnce).to.equal(true);
    expect(originate.firstCall.args[0]).to.deep.include({ endpoint: JOB.endpoint });
  });

  it('places the call all the same, with a warning, when the store does not write it in time', async () => {
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { flow, originate, lines, stream } = setUp();
    void flow.dial(JOB, 1, new AbortController().signal);
    await settle();
    await clock.tickAsync(NOTIFICATION_STORE_WAIT_MS - 1);
    expect(originate.called).to.equal(false);
    await clock.tickAsync(1);
    await settle();
    expect(originate.calledOnce).to.equal(true);
    if (lines.length === 0) await once(stream, 'data');
    expect(lines.map((l) => [l.level, l.message])).to.deep.equal([
      ['warn', 'notification call placed before the store holds it (store slow)'],
    ]);
  });
});
