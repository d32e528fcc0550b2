/**
 * Inbound calls routed to a call script (the CRM's route answer `{"verbs": [...]}`) on a real
 * Asterisk 22 (the kit), SIPp phones as callers and operators, the engine as a real process:
 * a menu whose digit (RFC 2833 DTMF from the caller's phone) goes to the CRM's actionUrl and
 * rings the operator it answers; a caller who presses nothing (the CRM asked with no digits, or
 * the script's next verb); the caller's message recorded, stored and served from a signed link.
 * Each checks what the CRM received (webhooks, the actionUrl's signed requests), the call record,
 * what the phones received, and that Asterisk has no channel, bridge or recording left.
 */
import { expect } from 'chai';
import { verifyWav } from '../../src/recordings/wav.ts';
import type { ReceivedVerbsRequest } from '../support/fake-crm.ts';
import { until } from '../support/until.ts';
import { type AcceptanceBed } from './support/bed.ts';
import { CALLER, DID, callIn, describeOnAsterisk, useAcceptanceBed } from './support/suite.ts';
import { Sipp } from './support/sipp.ts';

/**
 * The menu: a welcome (hello-world, about 1.4 s), then one digit (its prompt a beep, then
 * `timeoutSec` to press it) sent to the CRM's `actionUrl` (unless `actionUrl: false`).
 */
function menu(bed: AcceptanceBed, opts: { timeoutSec: number; actionUrl?: boolean }): unknown[] {
  return [
    { verb: 'play', media: ['sound:hello-world'] },
    {
      verb: 'gather',
      numDigits: 1,
      timeoutSec: opts.timeoutSec,
      prompts: [{ media: ['sound:beep'] }],
      ...(opts.actionUrl === false ? {} : { actionUrl: bed.crm.verbsUrl('?menu=main') }),
    },
  ];
}

describeOnAsterisk('real Asterisk: call scripts (verbs)', () => {
  let bed!: AcceptanceBed;
  useAcceptanceBed((b) => (bed = b));

  /** The actionUrl / redirect requests the CRM received for `callId`. */
  function verbsRequests(callId: string): ReceivedVerbsRequest[] {
    return bed.crm.verbsRequests.filter((r) => r.body.callId === callId);
  }

  /** The `verb result` log lines of `callId`, once the script ended. */
  async function verbResults(callId: string): Promise<Array<Record<string, unknown>>> {
    const lines = (): Array<Record<string, unknown>> =>
      bed.engine!.lines.filter((l) => l.callId === callId);
    await until(
      () => lines().some((l) => l.message === 'call script ended'),
      'the call script to end',
      10_000,
    );
    return lines().filter((l) => l.message === 'verb result');
  }

  it('menu: the caller presses 2, the actionUrl answers dial 102, 102 answers and is bridged', async () => {
    const { ports } = bed;
    bed.crm.onRoute(() => ({ body: { verbs: menu(bed, { timeoutSec: 10 }) } }));
    bed.crm.onVerbs((req) => ({
      body: {
        verbs:
          req.body.digits === '2'
            ? [{ verb: 'dial', extensions: ['102'], ringTimeoutSec: 15 }, { verb: 'hangup' }]
            : [{ verb: 'hangup' }],
      },
    }));
    // 102 answers after ringing 500 ms and hangs up after talking 2 s.
    const operator = Sipp.phone('op102', 'uas_answer_bye.xml', ports, ports.operators['102'], {
      pauseMs: 2000,
    });
    // The caller presses 2 five seconds after the answer: after the welcome, in the gather.
    const { caller, callId } = await callIn(bed, 'uac_dtmf2.xml', 5000);
    const ended = await bed.ended(callId, 40_000);
    await Promise.all([caller.passed(), operator.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    const answered = bed.crm.eventsOf(callId).find((w) => w.body.type === 'call.answered')!;
    expect(answered.body.data).to.include({ extension: '102' });
    expect(ended).to.include({
      direction: 'in',
      from: CALLER,
      did: DID,
      disposition: 'answered',
      answeredBy: '102',
      hangupBy: 'operator',
    });
    // The menu counts as waiting: the operator answered 5 s or more after the call started.
    expect(ended.waitSec).to.be.at.least(5);

    // The CRM got the digit from Asterisk's ChannelDtmfReceived, signed.
    const requests = verbsRequests(callId);
    expect(requests).to.have.length(1);
    expect(requests[0]!.url).to.equal('/verbs?menu=main');
    expect(requests[0]!.signatureValid).to.equal(true);
    expect(requests[0]!.body).to.deep.include({
      verb: 'gather',
      digits: '2',
      reason: 'numDigits',
      call: { from: CALLER, to: DID },
    });
    expect(requests[0]!.body.channelId).to.be.a('string');
    const results = (await verbResults(callId)).map((l) => [
      l.verb,
      l.outcome,
      l.digits ?? l.answeredExtension,
    ]);
    expect(results).to.deep.equal([
      ['play', 'completed', undefined],
      ['gather', 'completed', '2'],
      ['dial', 'completed', '102'],
    ]);
    const call = await bed.call(callId);
    expect(call).to.include({ state: 'ended', answeredBy: '102', disposition: 'answered' });
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK']);
    expect(operator.sentRequests()).to.deep.equal(['BYE']);
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    await bed.asterisk.waitIdle();
  });

  it('menu: the caller presses nothing; the CRM gets no digits (timeout) and answers hangup', async () => {
    bed.crm.onRoute(() => ({ body: { verbs: menu(bed, { timeoutSec: 2 }) } }));
    bed.crm.onVerbs((req) => ({
      body: { verbs: req.body.digits === '' ? [{ verb: 'hangup' }] : [] },
    }));
    const { caller, callId } = await callIn(bed, 'uac_wait_bye.xml');
    const ended = await bed.ended(callId, 30_000);
    await caller.passed();

    expect(bed.webhookTypes(callId)).to.deep.equal(['call.started', 'call.ended']);
    expect(ended).to.include({
      disposition: 'no_answer',
      hangupBy: 'system',
      endReason: 'script_hangup',
      talkSec: 0,
    });
    expect(ended).to.not.have.property('answeredBy');
    const requests = verbsRequests(callId);
    expect(requests).to.have.length(1);
    expect(requests[0]!.signatureValid).to.equal(true);
    expect(requests[0]!.body).to.deep.include({ verb: 'gather', digits: '', reason: 'timeout' });
    const results = await verbResults(callId);
    expect(results.map((l) => [l.verb, l.outcome])).to.deep.equal([
      ['play', 'completed'],
      ['gather', 'completed'],
      ['hangup', 'completed'],
    ]);
    // Waited the 2 s after the prompt before giving up.
    expect(results[1]!.gatherReason).to.equal('timeout');
    expect(results[1]!.durationMs).to.be.at.least(2000);
    // Answered for the menu, then hung up by the engine.
    expect(caller.receivedResponses()).to.include('200');
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    await bed.asterisk.waitIdle();
  });

  it('a gather without actionUrl times out and the script goes on: dial 101, who answers', async () => {
    const { ports } = bed;
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          ...menu(bed, { timeoutSec: 2, actionUrl: false }),
          { verb: 'dial', extensions: ['101'], ringTimeoutSec: 15 },
        ],
      },
    }));
    const operator = Sipp.phone('op101', 'uas_answer_bye.xml', ports, ports.operators['101'], {
      pauseMs: 1500,
    });
    const { caller, callId } = await callIn(bed, 'uac_wait_bye.xml');
    const ended = await bed.ended(callId, 30_000);
    await Promise.all([caller.passed(), operator.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
    ]);
    expect(ended).to.include({ disposition: 'answered', answeredBy: '101', hangupBy: 'operator' });
    expect(verbsRequests(callId)).to.have.length(0);
    const results = await verbResults(callId);
    expect(results.map((l) => [l.verb, l.outcome, l.gatherReason ?? l.dialStatus])).to.deep.equal([
      ['play', 'completed', undefined],
      ['gather', 'completed', 'timeout'],
      ['dial', 'completed', 'ANSWER'],
    ]);
    await bed.asterisk.waitIdle();
  });

  it('a dial with noAnswer "end": 101 rings out, the caller goes to the no-answer dialplan, the next verb never runs', async () => {
    const { ports } = bed;
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          { verb: 'dial', extensions: ['101'], ringTimeoutSec: 2, noAnswer: 'end' },
          { verb: 'dial', extensions: ['102'], ringTimeoutSec: 10 },
        ],
      },
    }));
    const ringing = Sipp.phone('op101', 'uas_ring.xml', ports, ports.operators['101']);
    // The bed's NO_ANSWER_DIALPLAN is service,9999,1: Answer, Playback(hello-world), Hangup.
    const { caller, callId } = await callIn(bed, 'uac_wait_bye.xml');
    const ended = await bed.ended(callId, 30_000);
    await Promise.all([caller.passed(), ringing.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal(['call.started', 'call.ringing', 'call.ended']);
    expect(ended).to.include({
      disposition: 'no_answer',
      endReason: 'nobody_answered',
      talkSec: 0,
    });
    expect(ringing.receivedRequests()).to.deep.equal(['INVITE', 'CANCEL', 'ACK']);
    // Answered by the service number's dialplan, hung up by it after the playback; 102 never rang.
    expect(caller.receivedResponses()).to.include('200');
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    const results = await verbResults(callId);
    expect(results.map((l) => [l.verb, l.dialStatus])).to.deep.equal([['dial', 'NOANSWER']]);
    await bed.asterisk.waitIdle();
  });

  it("record: the caller's speech is recorded, stored, its signed link sent to the CRM and served as a WAV", async () => {
    bed.crm.onRoute(() => ({
      body: {
        verbs: [
          { verb: 'record', maxSec: 3, beep: true },
          { verb: 'redirect', url: bed.crm.verbsUrl('?after=record') },
        ],
      },
    }));
    bed.crm.onVerbs(() => ({ body: { verbs: [{ verb: 'hangup' }] } }));
    // The caller talks (about 7 s of G.711 speech) from the answer on.
    const { caller, callId } = await callIn(bed, 'uac_talk.xml');
    const ended = await bed.ended(callId, 40_000);
    await caller.passed();
    expect(ended).to.include({ disposition: 'no_answer', endReason: 'script_hangup' });

    // The redirect after the record told the CRM about the recording (docs/verbs.md, record).
    const requests = verbsRequests(callId);
    expect(requests).to.have.length(1);
    expect(requests[0]!.signatureValid).to.equal(true);
    const recording = requests[0]!.body.recording as Record<string, unknown>;
    expect(recording).to.include({ format: 'wav', reason: 'maxSec' });
    // Asterisk stops a recording once its clock of whole seconds passed maxSec (3 to 4 s of
    // audio here) and reports the duration in whole seconds: 3, or 4 for a long one.
    expect(recording.durationSec).to.be.within(2, 4);
    const name = String(recording.name);
    expect(name).to.match(/^vrec-[0-9a-f-]{36}$/);
    const url = new URL(String(recording.url));
    expect(url.pathname).to.equal(`/v1/calls/${callId}/recordings/${name}`);
    expect(Date.parse(String(recording.expiresAt))).to.be.greaterThan(Date.now());

    // The signed link plays without an API key: a WAV of the caller's speech.
    const answer = await fetch(url);
    expect(answer.status).to.equal(200);
    expect(answer.headers.get('content-type')).to.equal('audio/wav');
    const file = Buffer.from(await answer.arrayBuffer());
    expect(file.length).to.equal(recording.bytes);
    expect(file.subarray(0, 4).toString('ascii')).to.equal('RIFF');
    const wav = verifyWav(file, Number(recording.durationSec));
    expect(wav).to.include({ sampleRate: 8000, channels: 1, bitsPerSample: 16 });
    // Asterisk stops a recording once its clock of whole seconds passed maxSec: 3 to 4 s here.
    expect(wav.durationMs).to.be.within(2900, 4100);
    // Speech, not silence: the RTP the caller's phone sent reached the file.
    const samples = file.subarray(file.length - wav.dataBytes);
    let loud = 0;
    for (let i = 0; i + 1 < samples.length; i += 2)
      if (Math.abs(samples.readInt16LE(i)) > 500) loud++;
    expect(loud, 'samples louder than silence').to.be.greaterThan(8000 * 0.2);

    const [result] = (await verbResults(callId)).filter((l) => l.verb === 'record');
    expect(result).to.include({ outcome: 'completed', recording: name, recordingStored: true });
    // The call's details list it; it was deleted from Asterisk once stored.
    const call = (
      await bed.api<{ scriptRecordings?: Array<Record<string, unknown>> }>(`/v1/calls/${callId}`)
    ).body;
    expect(call.scriptRecordings?.map((r) => [r.name, r.bytes])).to.deep.equal([
      [name, file.length],
    ]);
    expect((await bed.asterisk.ari<unknown[]>('/recordings/stored')).body).to.deep.equal([]);
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    await bed.asterisk.waitIdle();
  });
});
