/**
 * What a restarted engine finds in the store about recordings an earlier run left unsettled
 * (`store.calls.unsettledRecordings()`), and the ended call it rebuilds from it to send
 * `recording.ready` on (`endedCallFromRecord`): its snapshot is the stored call, so writing it
 * again with the event changes nothing else, and its sequence continues the stored one.
 */
import { expect } from 'chai';
import { createEventEnvelope } from '../../src/events/types.ts';
import { snapshotCall } from '../../src/calls/model.ts';
import { endedCallFromRecord } from '../../src/recordings/recovery.ts';
import { callEvents, endedCall, forEachDialect } from '../store/helpers.ts';

forEachDialect('recordings left unsettled by an earlier run', ({ store }) => {
  it('lists the calls still `recording`, ended or not, with their last sequence and whether recording.ready is stored', async () => {
    const calls = store().calls;
    const downloading = endedCall(); // ended, download pending
    const talking = endedCall({ state: 'bridged', endedAt: undefined, disposition: undefined });
    const readyOut = endedCall(); // recording.ready committed, `stored` not yet written
    const stored = endedCall();
    const failed = endedCall();
    const unrecorded = endedCall();
    for (const call of [downloading, talking, readyOut, stored, failed, unrecorded])
      await calls.upsertCall(call);
    for (const call of [downloading, talking, readyOut])
      await calls.setRecording(call.id, { name: `rec-${call.id}`, status: 'recording' });
    await calls.setRecording(stored.id, { status: 'stored', path: 'x.wav', bytes: 44 });
    await calls.setRecording(failed.id, { status: 'failed' });
    await store().events.appendEvents([
      ...callEvents(downloading.id, 4),
      ...callEvents(talking.id, 3),
      ...callEvents(readyOut.id, 4),
      createEventEnvelope('recording.ready', readyOut.id, 5, {
        recordingUrl: 'http://127.0.0.1/v1/calls/x/recording?expires=1&sig=00',
        expiresAt: '2025-02-07T09:16:08.000Z',
        bytes: 48_044,
        durationSec: 3,
        format: 'wav',
      }),
      ...callEvents(stored.id, 4),
    ]);

    const found = await calls.unsettledRecordings();
    expect(
      found.map((r) => ({
        id: r.id,
        state: r.state,
        lastSequence: r.lastSequence,
        ready: r.recordingReadyStored,
      })),
    ).to.deep.equal([
      { id: downloading.id, state: 'ended', lastSequence: 4, ready: false },
      { id: talking.id, state: 'bridged', lastSequence: 3, ready: false },
      { id: readyOut.id, state: 'ended', lastSequence: 5, ready: true },
    ]);
    expect(found[0]!.recording).to.deep.equal({
      name: `rec-${downloading.id}`,
      status: 'recording',
    });
    expect(found[0]!.legs).to.have.length(2);
  });

  it('rebuilds an ended call whose snapshot is the stored call and whose next event follows the stored ones', async () => {
    const calls = store().calls;
    const original = endedCall({
      customer: { id: 'C-7', name: 'Ivan Petrov' },
      variables: { dealId: 'D-5' },
      hangupBy: 'system',
      endReason: 'reconciled',
      answeredAt: '2025-01-31T09:15:07.250Z',
      endedAt: '2025-01-31T09:16:09.750Z',
      talkSec: 63,
    });
    await calls.upsertCall(original, {
      legs: [
        { ...original.legs[0]!, createdAt: '2025-01-31T09:15:00.000Z' },
        {
          ...original.legs[1]!,
          createdAt: '2025-01-31T09:15:01.000Z',
          answeredAt: '2025-01-31T09:15:07.250Z',
          endedAt: '2025-01-31T09:16:09.750Z',
          cause: 16,
          causeText: 'Normal Clearing',
        },
      ],
    });
    await calls.setRecording(original.id, { name: `rec-${original.id}`, status: 'recording' });
    await store().events.appendEvents(callEvents(original.id, 4));
    const before = (await calls.getCall(original.id))!;
    const [record] = await calls.unsettledRecordings();

    const call = endedCallFromRecord(record!);
    expect(call.nextSequence).to.equal(5);
    expect(call.phase).to.equal('ended');
    // Written again as the call journal does with recording.ready (the clock has moved on).
    await calls.upsertCall(snapshotCall(call, Date.now()), {
      legs: [...call.legs.values()],
      at: Date.now(),
    });
    const after = (await calls.getCall(original.id))!;
    const { updatedAt: _after, ...rest } = after;
    const { updatedAt: _before, ...restBefore } = before;
    expect(rest).to.deep.equal(restBefore);
    expect(after).to.deep.include({ waitSec: 7, talkSec: 63, endReason: 'reconciled' });
  });
});
