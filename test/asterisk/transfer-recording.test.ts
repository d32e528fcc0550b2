/**
 * Transfers and recordings on a real Asterisk 22 (the kit): a caller transferred to the service
 * number 9999 (the kit's dialplan answers, plays hello-world and hangs up), blind transfers to
 * operator 102 of an inbound call and of a click-to-call, a recorded call whose file the
 * engine fetched from Asterisk and serves with HTTP Range, a recorded call that ended while the
 * engine was cut off from ARI, a recording whose start was lost as ARI was cut (recorded once the
 * engine reconnected), and a copy an earlier engine left in Asterisk deleted by the next one.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { type AcceptanceBed } from './support/bed.ts';
import {
  callAnsweredBy101,
  describeOnAsterisk,
  hangUpByApi,
  routeTo,
  callIn,
  useAcceptanceBed,
} from './support/suite.ts';
import { Sipp } from './support/sipp.ts';
import { until } from '../support/until.ts';

describeOnAsterisk('real Asterisk: transfers and recordings', () => {
  let bed!: AcceptanceBed;
  useAcceptanceBed((b) => (bed = b));

  /** Wait until Asterisk has operator 102's channel up (answered). */
  async function target102Up(): Promise<void> {
    await until(
      async () =>
        (await bed.asterisk.ari<Array<{ name: string; state: string }>>('/channels')).body.some(
          (c) => c.name.startsWith('PJSIP/102-') && c.state === 'Up',
        ),
      'operator 102 to be on the call',
      20_000,
    );
  }

  /** The extensions of the `call.ringing` webhooks of `callId` after its first answer. */
  function ringingAfterAnswer(callId: string): unknown[] {
    const events = bed.crm.eventsOf(callId).sort((a, b) => a.body.sequence - b.body.sequence);
    const answered = events.findIndex((w) => w.body.type === 'call.answered');
    return events
      .slice(answered + 1)
      .filter((w) => w.body.type === 'call.ringing')
      .map((w) => w.body.data.extension);
  }

  it('inbound call transferred to the service number 9999: operator BYE, caller hears it', async () => {
    const { callId, operator, caller } = await callAnsweredBy101(bed);
    const transfer = await bed.api(`/v1/calls/${callId}/transfer`, { body: { to: '9999' } });
    expect(transfer.status, transfer.text).to.equal(200);
    const ended = await bed.ended(callId);
    // The service dialplan answers the caller again? No: it continues the answered channel,
    // plays hello-world and hangs up: the caller gets the BYE from there.
    await Promise.all([caller.passed(), operator.passed()]);

    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.transferred',
      'call.ended',
    ]);
    expect(bed.crm.eventsOf(callId)[3]!.body.data).to.deep.equal({ to: '9999', kind: 'service' });
    expect(ended).to.include({ answeredBy: '101', disposition: 'answered' });
    const call = await bed.call(callId);
    expect(call).to.include({ disposition: 'answered', endReason: 'transferred' });
    expect(operator.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    await bed.asterisk.waitIdle();
  });

  it('inbound call blind-transferred to operator 102: 102 rings and answers, 101 gets a BYE', async () => {
    const { ports } = bed;
    routeTo(bed, ['101']);
    const first = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    const target = Sipp.phone('op102', 'uas_answer.xml', ports, ports.operators['102'], {
      pauseMs: 1000,
    });
    const { caller, callId } = await callIn(bed, 'uac_wait_bye.xml');
    await bed.waitFor(callId, 'call.answered');
    const transfer = await bed.api(`/v1/calls/${callId}/transfer`, {
      body: { to: '102', kind: 'extension' },
    });
    expect(transfer.status, transfer.text).to.be.oneOf([200, 202]);
    const transferred = await bed.waitFor(callId, 'call.transferred');
    expect(transferred.body.data).to.deep.equal({ to: '102', kind: 'extension' });
    await first.passed();
    await target102Up();
    expect((await bed.call(callId)).state).to.equal('bridged');
    const ended = await hangUpByApi(bed, callId);
    await Promise.all([caller.passed(), target.passed()]);

    const types = bed.webhookTypes(callId);
    expect(types.slice(0, 3)).to.deep.equal(['call.started', 'call.ringing', 'call.answered']);
    expect(types).to.include('call.transferred');
    expect(types.at(-1)).to.equal('call.ended');
    expect(ringingAfterAnswer(callId)).to.deep.equal(['102']);
    expect(ended).to.include({ answeredBy: '102', disposition: 'answered' });
    expect(first.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect(target.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect(caller.receivedRequests()).to.deep.equal(['BYE']);
    await bed.asterisk.waitIdle();
  });

  it('click-to-call blind-transferred to operator 102: the customer ends up with 102', async () => {
    const { ports } = bed;
    const first = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    const customer = Sipp.phone('customer', 'uas_answer.xml', ports, ports.trunk, {
      pauseMs: 500,
    });
    const target = Sipp.phone('op102', 'uas_answer.xml', ports, ports.operators['102'], {
      pauseMs: 1000,
    });
    const created = await bed.api('/v1/calls', { body: { operator: '101', to: '+74957654321' } });
    expect(created.status, created.text).to.equal(202);
    const callId = String(created.body.id);
    await bed.waitFor(callId, 'call.answered');
    const transfer = await bed.api(`/v1/calls/${callId}/transfer`, {
      body: { to: '102', kind: 'extension' },
    });
    expect(transfer.status, transfer.text).to.be.oneOf([200, 202]);
    const transferred = await bed.waitFor(callId, 'call.transferred');
    expect(transferred.body.data).to.deep.equal({ to: '102', kind: 'extension' });
    await first.passed();
    await target102Up();
    const ended = await hangUpByApi(bed, callId);
    await Promise.all([customer.passed(), target.passed()]);

    expect(bed.webhookTypes(callId)).to.include('call.transferred');
    expect(ringingAfterAnswer(callId)).to.deep.equal(['102']);
    expect(ended).to.include({ direction: 'out', answeredBy: '102', disposition: 'answered' });
    expect(first.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect(target.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    expect(customer.receivedRequests()).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    await bed.asterisk.waitIdle();
  });

  it('a recorded call: fetched from Asterisk, served with Range, deleted from Asterisk', async () => {
    const { ports } = bed;
    routeTo(bed, ['101'], { record: true });
    const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
      pauseMs: 500,
    });
    const { caller, callId } = await callIn(bed, 'uac.xml', 3000);
    const ended = await bed.ended(callId);
    await Promise.all([caller.passed(), operator.passed()]);
    const ready = (
      await bed.waitFor(callId, 'recording.ready', 30_000).catch(async (error: Error) => {
        const { recording } = await bed.call(callId);
        throw new Error(
          `${error.message}; recording: ${JSON.stringify(recording)}; engine log:\n${bed.engineLog(callId)}`,
        );
      })
    ).body.data;
    expect(bed.webhookTypes(callId)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.ended',
      'recording.ready',
    ]);
    expect(ended.recordingUrl).to.be.a('string');
    expect(ready).to.include({ format: 'wav' });
    expect(ready.durationSec).to.be.within(2, 4);
    const bytes = Number(ready.bytes);
    // 8 kHz 16-bit mono: about 16 000 bytes a second of talk.
    expect(bytes).to.be.within(2 * 16_000, 5 * 16_000);

    const head = await fetch(`${bed.httpUrl}/v1/calls/${callId}/recording`, {
      headers: {
        authorization: `Bearer ${'test-api-key-0123456789abcdef'}`,
        range: 'bytes=0-43',
      },
    });
    expect(head.status).to.equal(206);
    expect(head.headers.get('content-range')).to.equal(`bytes 0-43/${bytes}`);
    const header = Buffer.from(await head.arrayBuffer());
    expect(header.length).to.equal(44);
    expect(header.subarray(0, 4).toString('ascii')).to.equal('RIFF');
    expect(header.subarray(8, 12).toString('ascii')).to.equal('WAVE');
    expect(header.readUInt32LE(24), 'sample rate').to.equal(8000);
    // The signed link works without a key, for a suffix range too.
    const tail = await fetch(String(ready.recordingUrl), { headers: { range: 'bytes=-100' } });
    expect(tail.status).to.equal(206);
    expect(tail.headers.get('content-range')).to.equal(
      `bytes ${bytes - 100}-${bytes - 1}/${bytes}`,
    );
    expect((await tail.arrayBuffer()).byteLength).to.equal(100);
    const call = await bed.call(callId);
    expect(call.recording).to.include({ status: 'stored', bytes });
    // Stored by the engine, so deleted from Asterisk.
    await until(
      async () => (await bed.asterisk.ari<unknown[]>('/recordings/stored')).body.length === 0,
      'the recording to be deleted from Asterisk',
      10_000,
    );
    await bed.asterisk.waitIdle();
  });

  it('a recorded call ended while ARI was cut: reconciled on reconnect, its recording stored and recording.ready within seconds', async () => {
    const { caller, callId, operator } = await callAnsweredBy101(bed, {
      callerHangsUpAfterMs: 3000,
      record: true,
    });
    await bed.waitBridged();
    // Asterisk records it (the engine's record request has been carried out: cutting before
    // that would lose the request itself, and with it the recording).
    await until(
      async () => (await bed.asterisk.ari(`/recordings/live/rec-${callId}`)).status === 200,
      'the call recorded in Asterisk',
      10_000,
    );
    // The engine loses Asterisk while the call is recorded; the caller hangs up meanwhile, so
    // the engine sees neither the hang-up nor what becomes of the recording.
    bed.proxy.cut(true);
    await caller.passed();
    bed.proxy.restore();
    // Reconnected, the engine ends the call (the operator is hung up, the bridge destroyed: the
    // recording ends then, and its RecordingFinished may never reach the engine).
    await bed.ended(callId, 30_000);
    const endedAt = Date.now();
    await operator.passed();
    const ready = (await bed.waitFor(callId, 'recording.ready', 15_000)).body.data;
    expect(Date.now() - endedAt, 'recording.ready after call.ended, ms').to.be.below(10_000);
    expect(ready).to.include({ format: 'wav' });
    expect(ready.durationSec).to.be.within(1, 6);
    expect((await bed.call(callId)).recording).to.include({ status: 'stored' });
    await bed.asterisk.waitIdle();
  });

  it('a recording start lost as the ARI connection is cut: once reconnected, the engine records the call still going on; recording.ready at its end', async () => {
    // The connection to Asterisk is cut as the engine's record request goes out: Asterisk never
    // gets it (armed before the call comes in, so it catches the call's first record request).
    const lost = bed.proxy.loseRequest(/^POST \/ari\/bridges\/[^/?\s]+\/record/);
    const { callId, operator, caller } = await callAnsweredBy101(bed, { record: true });
    await lost;
    const name = `rec-${callId}`;
    // Reconnected, the engine finds no recording in Asterisk while the call goes on: it records
    // the call's bridge then.
    await until(
      async () => (await bed.asterisk.ari(`/recordings/live/${name}`)).status === 200,
      'the call recorded in Asterisk after the reconnect',
      20_000,
    );
    // Some of the call in the recording (8 kHz 16-bit mono: 16 000 bytes a second) before the end.
    const file = join(bed.asterisk.home, 'spool', 'recording', `${name}.wav`);
    await until(
      async () => ((await stat(file).catch(() => undefined))?.size ?? 0) >= 44 + 24_000,
      '1.5 s of the call recorded',
      10_000,
    );
    await hangUpByApi(bed, callId);
    await Promise.all([caller.passed(), operator.passed()]);
    const ready = (await bed.waitFor(callId, 'recording.ready', 30_000)).body.data;
    expect(ready).to.include({ format: 'wav' });
    expect(ready.durationSec).to.be.at.least(1);
    expect((await bed.call(callId)).recording).to.include({ status: 'stored' });
    await bed.asterisk.waitIdle();
  });

  it('a copy left in Asterisk of a recording the store says is stored: the next engine deletes it once connected', async function () {
    this.timeout(150_000);
    const { ports } = bed;
    const storedInAsterisk = async (): Promise<string[]> =>
      (await bed.asterisk.ari<Array<{ name: string }>>('/recordings/stored')).body.map(
        (r) => r.name,
      );
    try {
      // An engine that keeps Asterisk's copies: the recording is stored and left there.
      await bed.stopEngine();
      await bed.startEngine({ RECORDING_DELETE_FROM_ASTERISK: 'false' });
      routeTo(bed, ['101'], { record: true });
      const operator = Sipp.phone('op101', 'uas_answer.xml', ports, ports.operators['101'], {
        pauseMs: 500,
      });
      const { caller, callId } = await callIn(bed, 'uac.xml', 2000);
      // A RecordingFinished the engine did not get is made up for by its look-up of the
      // recording in Asterisk 2 s after the call's end.
      await bed.waitFor(callId, 'recording.ready', 30_000);
      await Promise.all([caller.passed(), operator.passed()]);
      expect((await bed.call(callId)).recording).to.include({ status: 'stored' });
      expect(await storedInAsterisk()).to.deep.equal([`rec-${callId}`]);
    } finally {
      // The next engine deletes copies (the suite's default): the copy goes at its connect.
      await bed.stopEngine();
      await bed.startEngine();
    }
    await until(
      async () => (await storedInAsterisk()).length === 0,
      'the copy deleted from Asterisk by the next engine',
      10_000,
    );
    // The engine logs the clean-up once Asterisk answered its DELETE: the list of stored
    // recordings can be empty a moment before that line arrives.
    const cleanUpLine = 'deleted recordings an earlier run had stored but left in Asterisk';
    await bed.engine!.waitForLine((l) => l.message === cleanUpLine, 10_000);
    const cleanUp = (bed.engine?.lines ?? []).filter((l) => l.message === cleanUpLine);
    expect(cleanUp.map((l) => l.deleted)).to.deep.equal([1]);
    await bed.asterisk.waitIdle();
  });
});
