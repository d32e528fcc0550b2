import { expect } from 'chai';
import { snapshotCall, type Call } from '../../src/calls/model.ts';
import { InvalidCursorError, type CallRecord } from '../../src/store/index.ts';
import { callId, endedCall, forEachDialect, modelInboundCall, modelLeg } from './helpers.ts';

const T0 = Date.UTC(2025, 0, 31, 9, 15, 0);

const leg = modelLeg;

/** A live inbound call in the model, at its first state (routing). */
const newInboundCall = (id: string): Call => modelInboundCall(id, { variables: { deal: '42' } });

forEachDialect('store: calls', ({ store }) => {
  it('writes a call at every state change: created, ringing, answered, ended', async () => {
    const id = callId();
    const call = newInboundCall(id);
    const write = (now: number): Promise<void> =>
      store().calls.upsertCall(snapshotCall(call, now), { legs: [...call.legs.values()], at: now });

    await write(T0);
    let stored = await store().calls.getCall(id);
    expect(stored?.state).to.equal('routing');
    expect(stored?.variables).to.deep.equal({ deal: '42' });
    expect(stored?.legs.map((l) => l.channelId)).to.deep.equal(['in-1']);

    call.customer = { id: 'c-7', name: 'Ivan' };
    call.phase = 'dialing';
    call.legs.set(
      'op-1',
      leg('op-1', 'operator', {
        extension: '101',
        endpoint: 'PJSIP/101',
        dialed: true,
        ringing: true,
        createdAt: T0 + 1000,
      }),
    );
    await write(T0 + 2000);
    stored = await store().calls.getCall(id);
    expect(stored?.state).to.equal('operator_ringing');
    expect(stored?.customer).to.deep.equal({ id: 'c-7', name: 'Ivan' });
    expect(stored?.legs.map((l) => [l.channelId, l.extension])).to.deep.equal([
      ['in-1', undefined],
      ['op-1', '101'],
    ]);
    expect(stored?.waitSec).to.equal(2);

    call.phase = 'bridged';
    call.answeredAt = T0 + 7000;
    call.answeredBy = '101';
    const op = call.legs.get('op-1')!;
    op.answered = true;
    op.answeredAt = T0 + 7000;
    op.outcome = 'answered';
    await write(T0 + 7000);
    stored = await store().calls.getCall(id);
    expect(stored?.state).to.equal('bridged');
    expect(stored?.answeredAt).to.equal('2025-01-31T09:15:07.000Z');
    expect(stored?.answeredBy).to.equal('101');

    call.phase = 'ended';
    call.endedAt = T0 + 67_000;
    call.disposition = 'answered';
    call.hangupBy = 'caller';
    for (const l of call.legs.values()) {
      l.ended = true;
      l.endedAt = T0 + 67_000;
      l.cause = 16;
      l.causeText = 'Normal Clearing';
    }
    await write(T0 + 67_000);
    stored = await store().calls.getCall(id);
    expect(stored).to.deep.include({
      state: 'ended',
      direction: 'in',
      from: '79161234567',
      to: '74951234567',
      did: '74951234567',
      disposition: 'answered',
      hangupBy: 'caller',
      startedAt: '2025-01-31T09:15:00.000Z',
      endedAt: '2025-01-31T09:16:07.000Z',
      waitSec: 7,
      talkSec: 60,
      updatedAt: '2025-01-31T09:16:07.000Z',
    });
    expect(stored?.legs[1]).to.deep.equal({
      channelId: 'op-1',
      role: 'operator',
      extension: '101',
      endpoint: 'PJSIP/101',
      outcome: 'answered',
      cause: 16,
      causeText: 'Normal Clearing',
      createdAt: '2025-01-31T09:15:01.000Z',
      answeredAt: '2025-01-31T09:15:07.000Z',
      endedAt: '2025-01-31T09:16:07.000Z',
    });
    expect(stored?.legs[0]?.createdAt).to.equal('2025-01-31T09:15:00.000Z');
  });

  it('journalSeq is what setJournalSeq last committed, beyond 32 bits, and survives a rolled-back batch', async () => {
    const before = await store().calls.journalSeq();
    const big = 2 ** 40 + before + 7;
    await store().calls.setJournalSeq(big);
    expect(await store().calls.journalSeq()).to.equal(big);
    // A journal transaction that fails takes its seq with it.
    const failed = store().writeBatch(async (repos) => {
      await repos.calls.setJournalSeq(big + 1);
      await repos.calls.upsertLegs('no-such-call', [{ channelId: 'x', role: 'operator' }]);
    });
    await failed.then(
      () => expect.fail('the batch should fail'),
      () => undefined,
    );
    expect(await store().calls.journalSeq()).to.equal(big);
    await store().calls.setJournalSeq(before);
  });

  it('is idempotent: the same snapshot twice gives the same rows', async () => {
    const snap = endedCall();
    await store().calls.upsertCall(snap, { at: T0 });
    const first = await store().calls.getCall(snap.id);
    await store().calls.upsertCall(snap, { at: T0 });
    expect(await store().calls.getCall(snap.id)).to.deep.equal(first);
    const legs = await store().db.selectFrom('call_legs').select('channel_id').execute();
    expect(legs).to.have.length(2);
  });

  it('a late live snapshot does not reopen an ended call, and snapshot legs keep stored times', async () => {
    const snap = endedCall();
    await store().calls.upsertCall(snap, {
      legs: [
        { channelId: snap.legs[0]!.channelId, role: 'caller', createdAt: T0, endedAt: T0 + 5000 },
      ],
    });
    await store().calls.upsertCall({
      ...snap,
      state: 'bridged',
      disposition: undefined,
      endedAt: undefined,
    });
    const stored = await store().calls.getCall(snap.id);
    expect(stored?.state).to.equal('ended');
    expect(stored?.disposition).to.equal('answered');
    expect(stored?.legs[0]?.endedAt).to.equal('2025-01-31T09:15:05.000Z');
  });

  it('keeps recording fields across later snapshots and updates them with setRecording', async () => {
    const snap = endedCall();
    await store().calls.upsertCall(snap, { recording: { name: 'rec-1', status: 'recording' } });
    await store().calls.upsertCall(snap);
    expect((await store().calls.getCall(snap.id))?.recording).to.deep.equal({
      name: 'rec-1',
      status: 'recording',
    });
    expect(
      await store().calls.setRecording(snap.id, {
        path: '2025/01/31/rec-1.wav',
        status: 'stored',
        bytes: 5_000_000_000,
        durationSec: 60,
      }),
    ).to.equal(true);
    expect((await store().calls.getCall(snap.id))?.recording).to.deep.equal({
      name: 'rec-1',
      path: '2025/01/31/rec-1.wav',
      status: 'stored',
      bytes: 5_000_000_000,
      durationSec: 60,
    });
    expect(await store().calls.setRecording(callId(), { status: 'failed' })).to.equal(false);
  });

  it('upsertLegs merges legs and fails for an unknown call', async () => {
    const snap = endedCall({ legs: [] });
    await store().calls.upsertCall(snap);
    await store().calls.upsertLegs(snap.id, [
      { channelId: 'a', role: 'caller', createdAt: T0 },
      { channelId: 'b', role: 'operator', extension: '102', createdAt: T0 + 1 },
    ]);
    await store().calls.upsertLegs(snap.id, [
      { channelId: 'b', role: 'operator', outcome: 'busy', cause: 17 },
    ]);
    const legs = (await store().calls.getCall(snap.id))?.legs;
    expect(legs?.map((l) => [l.channelId, l.extension, l.outcome, l.cause])).to.deep.equal([
      ['a', undefined, undefined, undefined],
      ['b', '102', 'busy', 17],
    ]);
    let error: unknown;
    await store()
      .calls.upsertLegs(callId(), [{ channelId: 'x', role: 'caller' }])
      .catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(Error);
  });

  it('unfinishedCalls returns live calls only, oldest first', async () => {
    const a = endedCall({
      state: 'bridged',
      endedAt: undefined,
      startedAt: '2025-01-31T10:00:00.000Z',
    });
    const b = endedCall();
    const c = endedCall({ state: 'routing', startedAt: '2025-01-31T09:00:00.000Z' });
    for (const s of [a, b, c]) await store().calls.upsertCall(s);
    const live = await store().calls.unfinishedCalls();
    expect(live.map((x) => x.id)).to.deep.equal([c.id, a.id]);
    expect(live[1]?.legs).to.have.length(2);
  });

  it("keeps the customer card's link for the call details, the history and restart reconciliation", async () => {
    const link = 'https://crm.example.com/customers/42?tab=deals';
    const call = newInboundCall(callId());
    call.customer = { id: 'c-42', name: 'Ivan Petrov', link };
    call.phase = 'dialing';
    await store().calls.upsertCall(snapshotCall(call, T0), { at: T0 });
    const card = { id: 'c-42', name: 'Ivan Petrov', link };
    expect((await store().calls.getCall(call.id))?.customer).to.deep.equal(card);
    const live = await store().calls.unfinishedCalls();
    expect(live.find((c) => c.id === call.id)?.customer).to.deep.equal(card);
    const page = await store().calls.listCalls({ limit: 10 });
    expect(page.items.find((c) => c.id === call.id)?.customer).to.deep.equal(card);

    // A card with only a link is still a card; a later snapshot without one clears it.
    call.customer = { link };
    await store().calls.upsertCall(snapshotCall(call, T0 + 1000), { at: T0 + 1000 });
    expect((await store().calls.getCall(call.id))?.customer).to.deep.equal({ link });
    call.customer = { name: 'Ivan Petrov' };
    await store().calls.upsertCall(snapshotCall(call, T0 + 2000), { at: T0 + 2000 });
    expect((await store().calls.getCall(call.id))?.customer).to.deep.equal({
      name: 'Ivan Petrov',
    });
  });

  describe('listCalls', () => {
    const minute = (m: number): string => new Date(T0 + m * 60_000).toISOString();
    let calls: Record<string, string>;

    beforeEach(async () => {
      const defs = {
        inAnswered: endedCall({ startedAt: minute(0) }),
        inMissed: endedCall({
          startedAt: minute(1),
          from: '79990000001',
          answeredBy: undefined,
          disposition: 'no_answer',
          legs: [{ channelId: 'm-op', role: 'operator', extension: '102', outcome: 'no_answer' }],
        }),
        outBusy: endedCall({
          direction: 'out',
          startedAt: minute(2),
          from: '103',
          to: '79161234567',
          did: undefined,
          answeredBy: '103',
          disposition: 'busy',
          legs: [{ channelId: 'o-op', role: 'caller', extension: '103' }],
        }),
        outAnswered: endedCall({
          direction: 'out',
          startedAt: minute(3),
          from: '101',
          to: '79995556677',
          did: undefined,
          answeredBy: '101',
        }),
      };
      calls = {};
      for (const [name, snap] of Object.entries(defs)) {
        await store().calls.upsertCall(snap);
        calls[name] = snap.id;
      }
    });

    const ids = (items: CallRecord[]): string[] => items.map((c) => c.id);

    it('returns every call newest first with legs', async () => {
      const page = await store().calls.listCalls({ limit: 10 });
      expect(ids(page.items)).to.deep.equal([
        calls.outAnswered,
        calls.outBusy,
        calls.inMissed,
        calls.inAnswered,
      ]);
      expect(page.nextCursor).to.equal(undefined);
      expect(page.items[0]?.legs).to.have.length(2);
    });

    it('filters by time range: from inclusive, to exclusive', async () => {
      const page = await store().calls.listCalls({
        from: new Date(minute(1)),
        to: new Date(minute(3)),
        limit: 10,
      });
      expect(ids(page.items)).to.deep.equal([calls.outBusy, calls.inMissed]);
    });

    it('filters by number on either side', async () => {
      const page = await store().calls.listCalls({ number: '79161234567', limit: 10 });
      expect(ids(page.items)).to.deep.equal([calls.outBusy, calls.inAnswered]);
      const none = await store().calls.listCalls({ number: '7916', limit: 10 });
      expect(none.items).to.deep.equal([]);
    });

    it('filters by extension: answered by it or had a leg on it', async () => {
      expect(
        ids((await store().calls.listCalls({ extension: '101', limit: 10 })).items),
      ).to.deep.equal([calls.outAnswered, calls.inAnswered]);
      expect(
        ids((await store().calls.listCalls({ extension: '102', limit: 10 })).items),
      ).to.deep.equal([calls.inMissed]);
    });

    it('filters by direction and disposition, combined', async () => {
      expect(
        ids((await store().calls.listCalls({ direction: 'out', limit: 10 })).items),
      ).to.deep.equal([calls.outAnswered, calls.outBusy]);
      expect(
        ids(
          (await store().calls.listCalls({ direction: 'in', disposition: 'answered', limit: 10 }))
            .items,
        ),
      ).to.deep.equal([calls.inAnswered]);
      expect(
        ids(
          (await store().calls.listCalls({ disposition: ['busy', 'no_answer'], limit: 10 })).items,
        ),
      ).to.deep.equal([calls.outBusy, calls.inMissed]);
      expect((await store().calls.listCalls({ disposition: [], limit: 10 })).items).to.deep.equal(
        [],
      );
    });

    it('rejects bad limits and foreign cursors', async () => {
      for (const limit of [0, -1, 1.5, 501]) {
        let error: unknown;
        await store()
          .calls.listCalls({ limit })
          .catch((err: unknown) => (error = err));
        expect(error, `limit ${limit}`).to.be.instanceOf(RangeError);
      }
      for (const cursor of ['garbage', Buffer.from('["feed",1]').toString('base64url')]) {
        let error: unknown;
        await store()
          .calls.listCalls({ limit: 1, cursor })
          .catch((err: unknown) => (error = err));
        expect(error).to.be.instanceOf(InvalidCursorError);
      }
    });
  });

  it('paginates newest first without duplicates or skips, ties broken by id, stable under inserts', async () => {
    const sameTime = '2025-02-01T12:00:00.000Z';
    const expected: string[] = [];
    for (let i = 0; i < 23; i++) {
      const snap = endedCall({
        // Groups of 4 calls share a start time, so the id tiebreak matters.
        startedAt:
          i < 8 ? sameTime : new Date(Date.UTC(2025, 1, 1, 11, 0, 0) - i * 1000).toISOString(),
      });
      await store().calls.upsertCall(snap);
      expected.push(snap.id);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store().calls.listCalls({ limit: 5, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((c) => c.id));
      cursor = page.nextCursor;
      pages++;
      // A newer call arriving mid-pagination must not shift later pages.
      if (pages === 2)
        await store().calls.upsertCall(endedCall({ startedAt: '2025-03-01T00:00:00.000Z' }));
    } while (cursor);
    expect(pages).to.equal(5);
    expect(new Set(seen).size).to.equal(seen.length);
    // Newest first: the 8 calls sharing the latest start time by id descending, then the others
    // (inserted with decreasing start times) in insertion order.
    const order = [...expected.slice(0, 8).sort().reverse(), ...expected.slice(8)];
    expect(seen).to.deep.equal(order);
  });
  it('tells which channel ids are legs of a stored call, ended or not (a leftover is not a new caller)', async () => {
    const ended = endedCall({
      legs: [
        { channelId: 'known-caller', role: 'caller' },
        { channelId: 'op-known', role: 'operator', extension: '101', outcome: 'answered' },
      ],
    });
    await store().calls.upsertCall(ended);
    const live = modelInboundCall(callId(), {
      legs: new Map([['live-caller', leg('live-caller', 'caller')]]),
      callerChannelId: 'live-caller',
    });
    await store().calls.upsertCall(snapshotCall(live, T0), { legs: [...live.legs.values()] });

    const known = await store().calls.knownChannels([
      'known-caller',
      'never-seen',
      'live-caller',
      'op-known',
      'known-caller',
    ]);
    expect([...known].sort()).to.deep.equal(['known-caller', 'live-caller', 'op-known']);
    expect(await store().calls.knownChannels([])).to.deep.equal(new Set());
    // More ids than one query takes.
    const many = Array.from({ length: 1200 }, (_, i) => `unknown-${i}`);
    expect([...(await store().calls.knownChannels([...many, 'op-known']))]).to.deep.equal([
      'op-known',
    ]);
  });
});
