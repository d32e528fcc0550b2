/**
 * The script runner with a fake channel (./fake-channel.ts): verbs run in order, each verb's
 * outcome is reported, a hang-up in the middle of a verb stops its playback or recording through
 * ARI and ends the script, failing media or CRM do not end the call, verbs answered by the CRM
 * replace the rest of the script, dial and transfer go to the call's flow.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import { createSilentLogger } from '../../../../src/logging/logger.ts';
import { runScript, type ScriptRun } from '../../../../src/calls/verbs/runner.ts';
import { mediaUri, parseScript, type ScriptVerb } from '../../../../src/calls/verbs/schema.ts';
import type {
  VerbContext,
  VerbCrm,
  VerbCrmAnswer,
  VerbCrmRequest,
  VerbHost,
} from '../../../../src/calls/verbs/types.ts';
import { FakeChannel } from './fake-channel.ts';

function script(input: unknown[]): ScriptVerb[] {
  const parsed = parseScript(input);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.verbs;
}

/** A CRM that answers each request with the next answer given. */
function fakeCrm(
  ...answers: Array<VerbCrmAnswer | unknown[]>
): VerbCrm & { requests: Array<{ url: string; request: VerbCrmRequest }> } {
  const requests: Array<{ url: string; request: VerbCrmRequest }> = [];
  return {
    requests,
    fetchVerbs: (url, request) => {
      requests.push({ url, request });
      const next = answers.shift() ?? [];
      if (Array.isArray(next))
        return Promise.resolve({
          ok: true,
          verbs: next.length === 0 ? [] : script(next),
          durationMs: 3,
        });
      return Promise.resolve(next);
    },
  };
}

describe('call script runner', function () {
  this.timeout(10_000);
  let channel: FakeChannel;
  let ctx: VerbContext;

  beforeEach(() => {
    channel = new FakeChannel();
    ctx = { callId: 'call-1', channel, logger: createSilentLogger() };
  });

  const outcomes = (run: ScriptRun) => run.results.map((r) => [r.verb, r.outcome, r.reason]);

  it('plays the media in order, one playback each, a URL as sound:<url> (padded)', async () => {
    const run = await runScript(
      ctx,
      script([
        { verb: 'play', media: ['sound:hello-world', 'http://media.example/a.wav'], loop: 2 },
        { verb: 'pause', sec: 0.1 },
      ]),
    );
    expect(run.ended).to.equal('completed');
    expect(channel.played()).to.deep.equal([
      'sound:hello-world',
      mediaUri('http://media.example/a.wav'),
      'sound:hello-world',
      mediaUri('http://media.example/a.wav'),
    ]);
    expect(outcomes(run)).to.deep.equal([
      ['play', 'completed', undefined],
      ['pause', 'completed', undefined],
    ]);
    expect(run.results[0]!.play!.playedItems).to.equal(4);
    expect(run.results[0]!.play!.playedMs).to.be.greaterThan(40);
  });

  it('unreachable media fails the play verb with the item, the other items play and the script goes on', async () => {
    channel.unreachable.add(mediaUri('http://down.example/a.wav'));
    const run = await runScript(
      ctx,
      script([
        { verb: 'play', media: ['http://down.example/a.wav', 'sound:beep'] },
        { verb: 'play', media: ['sound:hello-world'] },
      ]),
    );
    expect(run.ended).to.equal('completed');
    expect(outcomes(run)).to.deep.equal([
      ['play', 'failed', 'media_failed'],
      ['play', 'completed', undefined],
    ]);
    expect(run.results[0]!.play!.failedMedia).to.deep.equal([
      {
        index: 0,
        media: 'http://down.example/a.wav',
        detail: 'Asterisk could not play it (PlaybackFinished failed)',
      },
    ]);
    expect(channel.played()).to.deep.equal([
      mediaUri('http://down.example/a.wav'),
      'sound:beep',
      'sound:hello-world',
    ]);
  });

  it('a hang-up during a play stops the playback through ARI, reports hangup and ends the script', async () => {
    channel.endless.add('sound:long');
    const running = runScript(
      ctx,
      script([{ verb: 'play', media: ['sound:long', 'sound:beep'] }, { verb: 'hangup' }]),
    );
    await channel.playing_('sound:long');
    channel.farEndHangup(16);
    const run = await running;
    expect(run.ended).to.equal('hangup');
    expect(run.hangup).to.include({ event: 'ChannelHangupRequest', cause: 16 });
    expect(outcomes(run)).to.deep.equal([['play', 'hangup', undefined]]);
    const play = channel.ops.find((o) => o.op === 'play')!;
    expect(channel.ops).to.deep.include({
      op: 'stopPlayback',
      playbackId: (play as { playbackId: string }).playbackId,
    });
    expect(channel.played()).to.deep.equal(['sound:long']);
    expect(channel.ops.some((o) => o.op === 'hangup')).to.equal(false);
  });

  it('a channel already gone (play answers 404) ends the script as a hang-up', async () => {
    channel.gone = true;
    const run = await runScript(
      ctx,
      script([
        { verb: 'play', media: ['sound:a'] },
        { verb: 'pause', sec: 5 },
      ]),
    );
    expect(run.ended).to.equal('hangup');
    expect(outcomes(run)).to.deep.equal([['play', 'hangup', undefined]]);
  });

  describe('gather', () => {
    it('barge-in: a digit during the prompt stops it, skips the next prompts and counts', async () => {
      channel.endless.add('sound:menu');
      const running = runScript(
        ctx,
        script([
          {
            verb: 'gather',
            numDigits: 1,
            timeoutSec: 5,
            prompts: [{ media: ['sound:menu'] }, { media: ['sound:other'] }],
          },
        ]),
      );
      await channel.playing_('sound:menu');
      channel.press('1');
      const run = await running;
      expect(run.results[0]).to.deep.include({
        verb: 'gather',
        outcome: 'completed',
        gather: { digits: '1', reason: 'numDigits' },
      });
      expect(channel.ops.map((o) => o.op)).to.deep.equal(['play', 'stopPlayback']);
      expect(channel.played()).to.deep.equal(['sound:menu']);
    });

    it('finishOnKey ends it (the key is not part of the digits)', async () => {
      const running = runScript(
        ctx,
        script([
          { verb: 'gather', finishOnKey: '#', timeoutSec: 5, prompts: [{ media: ['sound:menu'] }] },
        ]),
      );
      await channel.playing_('sound:menu');
      channel.press('4');
      channel.press('2');
      channel.press('#');
      const run = await running;
      expect(run.results[0]!.gather).to.deep.equal({ digits: '42', reason: 'finishOnKey' });
    });

    it('timeoutSec is the wait after the prompts and between digits', async () => {
      const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      try {
        let over = false;
        const running = runScript(
          ctx,
          script([{ verb: 'gather', numDigits: 3, timeoutSec: 1 }]),
        ).finally(() => (over = true));
        await clock.tickAsync(600);
        channel.press('7');
        // 600 ms to the digit, then a whole second without another (not 1 s from the start).
        await clock.tickAsync(999);
        expect(over, 'over before a whole second after the digit').to.equal(false);
        await clock.tickAsync(1);
        const run = await running;
        expect(run.results[0]!.gather).to.deep.equal({ digits: '7', reason: 'timeout' });
      } finally {
        clock.restore();
      }
    });

    it('a hang-up ends it with reason hangup and the digits so far', async () => {
      const running = runScript(
        ctx,
        script([{ verb: 'gather', numDigits: 4, timeoutSec: 5 }, { verb: 'hangup' }]),
      );
      await new Promise((r) => setTimeout(r, 20));
      channel.press('5');
      channel.farEndHangup();
      const run = await running;
      expect(run.ended).to.equal('hangup');
      expect(run.results).to.have.length(1);
      expect(run.results[0]).to.deep.include({
        outcome: 'hangup',
        gather: { digits: '5', reason: 'hangup' },
      });
    });

    it('with actionUrl, posts the digits and the CRM verbs replace the rest of the script', async () => {
      const crm = fakeCrm([{ verb: 'play', media: ['sound:option-1'] }, { verb: 'hangup' }]);
      ctx = { ...ctx, crm, call: { from: '79161234567' } };
      const running = runScript(
        ctx,
        script([
          { verb: 'gather', numDigits: 1, timeoutSec: 5, actionUrl: 'https://crm.example/menu' },
          { verb: 'play', media: ['sound:never'] },
        ]),
      );
      await new Promise((r) => setTimeout(r, 20));
      channel.press('1');
      const run = await running;
      expect(crm.requests).to.deep.equal([
        {
          url: 'https://crm.example/menu',
          request: {
            callId: 'call-1',
            channelId: 'ch-1',
            verb: 'gather',
            digits: '1',
            reason: 'numDigits',
            call: { from: '79161234567' },
          },
        },
      ]);
      expect(run.results.map((r) => [r.round, r.index, r.verb, r.outcome])).to.deep.equal([
        [0, 0, 'gather', 'completed'],
        [1, 0, 'play', 'completed'],
        [1, 1, 'hangup', 'completed'],
      ]);
      expect(run.results[0]!.crm).to.deep.include({ result: 'ok', verbs: 2 });
      expect(run.ended).to.equal('ended_by_verb');
      expect(channel.played()).to.deep.equal(['sound:option-1']);
      expect(channel.ops.at(-1)).to.deep.equal({ op: 'hangup' });
    });

    it('with actionUrl, posts also when nothing was pressed (digits "", reason timeout)', async () => {
      const crm = fakeCrm([]);
      const run = await runScript(
        { ...ctx, crm },
        script([
          { verb: 'gather', numDigits: 1, timeoutSec: 1, actionUrl: 'https://crm.example/menu' },
          { verb: 'play', media: ['sound:never'] },
        ]),
      );
      expect(crm.requests.map((r) => [r.request.digits, r.request.reason])).to.deep.equal([
        ['', 'timeout'],
      ]);
      expect(run.results.map((r) => [r.verb, r.outcome])).to.deep.equal([['gather', 'completed']]);
      expect(channel.played()).to.deep.equal([]);
    });

    it('a prompt that cannot be played is skipped and the gather still listens', async () => {
      channel.unreachable.add(mediaUri('http://down.example/menu.wav'));
      const running = runScript(
        ctx,
        script([
          {
            verb: 'gather',
            numDigits: 1,
            timeoutSec: 5,
            prompts: [{ media: ['http://down.example/menu.wav'] }],
          },
        ]),
      );
      await channel.playing_(mediaUri('http://down.example/menu.wav'));
      await new Promise((r) => setTimeout(r, 20));
      channel.press('3');
      const run = await running;
      expect(run.results[0]).to.deep.include({
        outcome: 'completed',
        gather: { digits: '3', reason: 'numDigits' },
      });
      expect(run.results[0]!.play!.failedMedia.map((f) => f.media)).to.deep.equal([
        'http://down.example/menu.wav',
      ]);
    });

    it('a failing CRM fails the gather and the script goes on with its rest', async () => {
      const crm = fakeCrm({
        ok: false,
        reason: 'timeout',
        detail: 'no answer within 1500 ms',
        durationMs: 1500,
      });
      ctx = { ...ctx, crm };
      const running = runScript(
        ctx,
        script([
          { verb: 'gather', numDigits: 1, timeoutSec: 5, actionUrl: 'https://crm.example/menu' },
          { verb: 'play', media: ['sound:goodbye'] },
        ]),
      );
      await new Promise((r) => setTimeout(r, 20));
      channel.press('2');
      const run = await running;
      expect(outcomes(run)).to.deep.equal([
        ['gather', 'failed', 'crm_failed'],
        ['play', 'completed', undefined],
      ]);
      expect(run.results[0]!.gather).to.deep.equal({ digits: '2', reason: 'numDigits' });
      expect(run.results[0]!.crm).to.deep.include({ result: 'timeout' });
      expect(run.ended).to.equal('completed');
    });
  });

  it('redirect replaces the rest with the CRM verbs; an empty answer ends the script', async () => {
    ctx = {
      ...ctx,
      crm: fakeCrm(
        [
          { verb: 'pause', sec: 0.1 },
          { verb: 'redirect', url: 'http://crm.example/b' },
        ],
        [],
      ),
    };
    const run = await runScript(
      ctx,
      script([
        { verb: 'redirect', url: 'http://crm.example/a' },
        { verb: 'play', media: ['sound:never'] },
      ]),
    );
    expect(run.results.map((r) => [r.round, r.verb, r.outcome])).to.deep.equal([
      [0, 'redirect', 'completed'],
      [1, 'pause', 'completed'],
      [1, 'redirect', 'completed'],
    ]);
    expect(run.ended).to.equal('completed');
    expect(channel.played()).to.deep.equal([]);
  });

  it('a CRM redirecting forever is stopped after maxVerbs', async () => {
    const loop = {
      ok: true as const,
      verbs: script([{ verb: 'redirect', url: 'http://crm.example/loop' }]),
      durationMs: 1,
    };
    const crm: VerbCrm = { fetchVerbs: () => Promise.resolve(loop) };
    const run = await runScript({ ...ctx, crm }, loop.verbs, { maxVerbs: 5 });
    expect(run.ended).to.equal('verb_limit');
    expect(run.results).to.have.length(5);
  });

  it('redirect without a CRM client fails not_configured and the script goes on', async () => {
    const run = await runScript(
      ctx,
      script([
        { verb: 'redirect', url: 'http://crm.example/a' },
        { verb: 'pause', sec: 0.1 },
      ]),
    );
    expect(outcomes(run)).to.deep.equal([
      ['redirect', 'failed', 'crm_failed'],
      ['pause', 'completed', undefined],
    ]);
  });

  describe('record', () => {
    it('records with the ARI parameters and reports the name and duration', async () => {
      const run = await runScript(
        ctx,
        script([{ verb: 'record', maxSec: 3, maxSilenceSec: 2, beep: true, finishOnKey: '#' }]),
      );
      const op = channel.ops.find((o) => o.op === 'record');
      if (op?.op !== 'record') throw new Error('no record operation');
      const params = op.params;
      expect(params).to.deep.include({
        maxDurationSec: 3,
        maxSilenceSec: 2,
        beep: true,
        terminateOn: '#',
      });
      expect(params.name).to.match(/^vrec-[0-9a-f-]{36}$/);
      expect(run.results[0]).to.deep.include({
        outcome: 'completed',
        record: { name: params.name, format: 'wav', durationSec: 3, reason: 'maxSec' },
      });
    });

    it('a hang-up while recording stops the recording and reports what was recorded', async () => {
      channel.recordSec = 1000;
      const running = runScript(
        ctx,
        script([
          { verb: 'record', maxSec: 600 },
          { verb: 'play', media: ['sound:x'] },
        ]),
      );
      await new Promise((r) => setTimeout(r, 20));
      channel.farEndHangup();
      const run = await running;
      expect(run.ended).to.equal('hangup');
      expect(channel.ops.map((o) => o.op)).to.deep.equal(['record', 'stopRecording']);
      expect(run.results[0]).to.deep.include({ outcome: 'hangup' });
      expect(run.results[0]!.record).to.deep.include({ reason: 'hangup', durationSec: 1 });
    });
  });

  describe('record: the recording kept by the engine', () => {
    const kept = (name: string, durationSec = 0) => ({
      name,
      url: `http://engine/v1/calls/call-1/recordings/${name}?expires=1&sig=x`,
      expiresAt: '2030-01-01T00:00:00.000Z',
      bytes: 44 + durationSec * 16_000,
      durationSec,
    });

    it('the result carries the link, and the next CRM request the result', async () => {
      const asked: Array<[string, number | undefined]> = [];
      const crm = fakeCrm([]);
      const run = await runScript(
        {
          ...ctx,
          crm,
          keepRecording: (name, durationSec) => {
            asked.push([name, durationSec]);
            return Promise.resolve(kept(name, durationSec));
          },
        },
        script([
          { verb: 'record', maxSec: 2 },
          { verb: 'redirect', url: 'http://crm.example/next' },
        ]),
      );
      const record = run.results[0]!.record!;
      expect(asked).to.deep.equal([[record.name, 2]]);
      expect(run.results[0]!.outcome).to.equal('completed');
      expect(record).to.deep.include({
        url: kept(record.name).url,
        expiresAt: '2030-01-01T00:00:00.000Z',
        bytes: 32_044,
        durationSec: 2,
        reason: 'maxSec',
      });
      expect(crm.requests[0]!.request.recording).to.deep.equal(record);
    });

    it('a recording that cannot be kept fails the verb (recording_not_stored); the script goes on', async () => {
      const run = await runScript(
        {
          ...ctx,
          keepRecording: () => Promise.reject(new Error('Asterisk has no recording')),
        },
        script([
          { verb: 'record', maxSec: 1 },
          { verb: 'pause', sec: 0.1 },
        ]),
      );
      expect(outcomes(run)).to.deep.equal([
        ['record', 'failed', 'recording_not_stored'],
        ['pause', 'completed', undefined],
      ]);
      expect(run.results[0]!.record).to.deep.include({ storeError: 'Asterisk has no recording' });
      expect(run.results[0]!.record!.url).to.equal(undefined);
    });

    it('a caller hanging up during the recording still gets it kept', async () => {
      channel.recordSec = 1000;
      const names: string[] = [];
      const running = runScript(
        {
          ...ctx,
          keepRecording: (name, durationSec) => {
            names.push(name);
            return Promise.resolve(kept(name, durationSec));
          },
        },
        script([{ verb: 'record', maxSec: 600 }]),
      );
      await new Promise((r) => setTimeout(r, 20));
      channel.farEndHangup();
      const run = await running;
      expect(run.results[0]!.outcome).to.equal('hangup');
      expect(names).to.have.length(1);
      expect(run.results[0]!.record).to.deep.include({
        reason: 'hangup',
        url: kept(names[0]!).url,
      });
    });
  });

  describe('dial and transfer', () => {
    it('without a host they fail not_supported and the script goes on', async () => {
      const run = await runScript(
        ctx,
        script([
          { verb: 'dial', extensions: ['101'], ringTimeoutSec: 10 },
          { verb: 'transfer', to: 'service' },
          { verb: 'pause', sec: 0.1 },
        ]),
      );
      expect(outcomes(run)).to.deep.equal([
        ['dial', 'failed', 'not_supported'],
        ['transfer', 'failed', 'not_supported'],
        ['pause', 'completed', undefined],
      ]);
    });

    it('go to the host; a dial nobody answered continues the script, a transfer ends it', async () => {
      const calls: string[] = [];
      const host: VerbHost = {
        dial: (verb, channelId) => {
          calls.push(`dial ${verb.strategy} ${verb.extensions.join(',')} on ${channelId}`);
          return Promise.resolve({ outcome: 'completed', dialStatus: 'NOANSWER' });
        },
        transfer: (verb) => {
          calls.push(`transfer ${verb.to}`);
          return Promise.resolve({ outcome: 'completed' });
        },
      };
      const run = await runScript(
        { ...ctx, host },
        script([
          { verb: 'dial', extensions: ['101', '102'], strategy: 'sequential', ringTimeoutSec: 10 },
          { verb: 'transfer', to: '105' },
          { verb: 'play', media: ['sound:never'] },
        ]),
      );
      expect(calls).to.deep.equal(['dial sequential 101,102 on ch-1', 'transfer 105']);
      expect(run.results[0]!.host).to.deep.equal({ outcome: 'completed', dialStatus: 'NOANSWER' });
      expect(run.ended).to.equal('ended_by_verb');
      expect(channel.played()).to.deep.equal([]);
    });
  });

  it('a transfer is not a hang-up although the channel leaves Stasis before the host answers', async () => {
    const host: VerbHost = {
      dial: () => Promise.resolve({ outcome: 'failed', reason: 'unused' }),
      transfer: async () => {
        // Asterisk sends StasisEnd for the continue before the request's answer arrives.
        channel.emit({ type: 'StasisEnd', channel: { id: channel.id } });
        await new Promise((r) => setTimeout(r, 5));
        return { outcome: 'completed' };
      },
    };
    const run = await runScript(
      { ...ctx, host },
      script([
        { verb: 'transfer', to: 'service' },
        { verb: 'play', media: ['sound:never'] },
      ]),
    );
    expect(run.results.map((r) => [r.verb, r.outcome])).to.deep.equal([['transfer', 'completed']]);
    expect(run.ended).to.equal('ended_by_verb');
  });

  it('the caller stopping the script stops the verb running', async () => {
    channel.endless.add('sound:long');
    const stop = new AbortController();
    const running = runScript(ctx, script([{ verb: 'play', media: ['sound:long'] }]), {
      signal: stop.signal,
    });
    await channel.playing_('sound:long');
    stop.abort();
    const run = await running;
    expect(run.ended).to.equal('stopped');
    expect(channel.ops.map((o) => o.op)).to.deep.equal(['play', 'stopPlayback']);
  });

  it('reports each verb to onVerb as it ends', async () => {
    const seen: string[] = [];
    await runScript(ctx, script([{ verb: 'pause', sec: 0.1 }, { verb: 'hangup' }]), {
      onVerb: (r) => seen.push(`${r.verb}:${r.outcome}`),
    });
    expect(seen).to.deep.equal(['pause:completed', 'hangup:completed']);
  });
});
