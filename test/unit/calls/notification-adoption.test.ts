/**
 * A notification call with answering-machine detection adopted after an engine restart, on the
 * call service with a scripted ARI gateway: the orderings a real restart can produce between the
 * channel's return into Stasis with the verdict (`StasisStart amd,<AMDSTATUS>,<AMDCAUSE>`), the
 * reconciliation's listing of the channels and the attempt taken over. Whatever the order, the
 * verdict decides once (a person hears the script once, a machine is hung up), and the attempt
 * ends with it. The end-to-end side is test/e2e/notification-amd-restart.test.ts.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import type { AriChannel, AriEvent, AriEventListener, AriGateway } from '../../../src/ari/types.ts';
import type { AttemptOutcome } from '../../../src/autocalls/model.ts';
import type { DialJob } from '../../../src/autocalls/dialer.ts';
import { CallService } from '../../../src/calls/service.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import type { UnfinishedCallRecord } from '../../../src/store/calls.ts';
import { ev } from '../../ari/support/events.ts';
import { unitCallDeps } from '../../support/call-deps.ts';

const CALL_ID = 'call-amd-1';
const CHANNEL_ID = 'cu-amd-1';

/** The customer channel as `GET /channels` lists it: in the AMD context, or back in Stasis. */
function listed(where: 'amd' | { stasisArgs: string }): AriChannel {
  return {
    id: CHANNEL_ID,
    name: 'PJSIP/client-trunk-00000001',
    state: 'Up',
    protocol_id: '',
    caller: { name: '', number: '74957654321' },
    connected: { name: '', number: '74957654321' },
    accountcode: '',
    dialplan:
      where === 'amd'
        ? { context: 'crm-amd', exten: 's', priority: 2, app_name: 'AMD', app_data: ',,,,,,,,' }
        : {
            context: 'crm-amd',
            exten: 's',
            priority: 3,
            app_name: 'Stasis',
            app_data: `crm-app,${where.stasisArgs}`,
          },
    creationtime: '2026-12-06T07:57:28.701+0000',
    language: 'en',
  };
}

/** The stored call the earlier run left: answered, sent to AMD (state `bridged`). */
const record: UnfinishedCallRecord = {
  id: CALL_ID,
  direction: 'out',
  state: 'bridged',
  from: '74957654321',
  to: '+74950000001',
  variables: { autocallId: '7', autocallAttempt: '1' },
  startedAt: '2026-12-06T07:57:28.000Z',
  answeredAt: '2026-12-06T07:57:29.000Z',
  waitSec: 1,
  talkSec: 0,
  updatedAt: '2026-12-06T07:57:29.000Z',
  lastSequence: 1,
  legs: [
    {
      channelId: CHANNEL_ID,
      role: 'customer',
      endpoint: 'PJSIP/74950000001@client-trunk',
      outcome: 'answered',
      createdAt: '2026-12-06T07:57:28.000Z',
      answeredAt: '2026-12-06T07:57:29.000Z',
    },
  ],
};

const job = (onMachine: 'hangup' | 'message' = 'hangup'): DialJob => ({
  id: 7,
  to: '+74950000001',
  endpoint: 'PJSIP/74950000001@client-trunk',
  script: {
    files: ['hello-world'],
    confirm: { digit: '1', prompt: ['beep'], timeoutSec: 5, repeats: 1 },
    amd: { enabled: true, onMachine },
  },
  tries: 3,
});

/** The call service after a restart, over a gateway whose answers and events the test scripts. */
function restartedService(opts: { listing: AriChannel[]; amdStatus?: string; amdCause?: string }) {
  const listeners = new Map<string, Set<AriEventListener>>();
  const played: string[][] = [];
  const channels = {
    list: sinon.stub().resolves(opts.listing),
    getVariable: sinon
      .stub()
      .callsFake((_id: string, variable: string) =>
        Promise.resolve(variable === 'AMDSTATUS' ? (opts.amdStatus ?? '') : (opts.amdCause ?? '')),
      ),
    play: sinon.stub().callsFake((_id: string, p: { media: string[] }) => {
      played.push(p.media);
      return Promise.resolve({});
    }),
    hangup: sinon.stub().resolves(),
    continueInDialplan: sinon.stub().resolves(),
  };
  const gateway = {
    app: 'crm-app',
    isConnected: () => true,
    channels,
    bridges: { list: sinon.stub().resolves([]), destroy: sinon.stub().resolves() },
    playbacks: { get: sinon.stub().resolves({}), stop: sinon.stub().resolves() },
    onChannel(channelId: string, listener: AriEventListener): () => void {
      const set = listeners.get(channelId) ?? new Set<AriEventListener>();
      set.add(listener);
      listeners.set(channelId, set);
      return () => set.delete(listener);
    },
  } as unknown as AriGateway;
  const logger = createSilentLogger();
  const service = new CallService(
    unitCallDeps(gateway, { logger, companyCallerId: '74957654321' }),
  );
  /** An ARI event as the gateway delivers it: to the channel's listeners, then the service. */
  const deliver = (event: AriEvent): void => {
    const id = 'channel' in event ? (event.channel as AriChannel).id : undefined;
    for (const listener of [...(listeners.get(id ?? '') ?? [])]) void listener(event);
    service.handleEvent(event);
  };
  /** Engine start-up: adopt the stored call, take its attempt over (before ARI connects). */
  const adopt = (dialJob: DialJob): Promise<AttemptOutcome> => {
    expect(service.adoptCalls([record])).to.equal(1);
    expect(service.adoptedNotificationAttempts()).to.deep.equal([
      { callId: CALL_ID, jobId: 7, attemptNo: 1 },
    ]);
    return service.notificationDialer.resumeAttempt!(
      CALL_ID,
      dialJob,
      1,
      new AbortController().signal,
    );
  };
  return { service, channels, played, deliver, adopt };
}

const backFromAmd = (status: string, cause: string): AriEvent => {
  const event = ev.stasisStart(CHANNEL_ID, ['amd', status, cause]);
  return event.type === 'StasisStart'
    ? { ...event, channel: listed({ stasisArgs: `amd,${status},${cause}` }) }
    : event;
};

/** Let the per-call chain run what was queued. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('notification flow: a call in answering-machine detection adopted after a restart', () => {
  it('back in Stasis with HUMAN before the calls are reconciled: the script runs once, from the confirm prompt; the verdict is kept', async () => {
    const t = restartedService({ listing: [listed({ stasisArgs: 'amd,HUMAN,HUMAN-800-800' })] });
    const outcome = t.adopt(job());
    // The WebSocket is open, the reconciliation not started yet: the channel comes back.
    t.deliver(backFromAmd('HUMAN', 'HUMAN-800-800'));
    await settle();
    await t.service.reconcile();
    await settle();
    expect(t.played).to.deep.equal([['sound:beep']]);
    expect(t.channels.hangup.called).to.equal(false);
    expect(t.channels.continueInDialplan.called).to.equal(false);
    // The customer hangs up during the prompt.
    t.deliver(ev.destroyed(CHANNEL_ID));
    expect(await outcome).to.deep.include({
      outcome: 'not_confirmed',
      amdStatus: 'HUMAN',
      amdCause: 'HUMAN-800-800',
      callId: CALL_ID,
    });
  });

  it('back in Stasis with MACHINE before the calls are reconciled: hung up at once, machine', async () => {
    const t = restartedService({
      listing: [listed({ stasisArgs: 'amd,MACHINE,LONGGREETING-1500-1500' })],
    });
    const outcome = t.adopt(job());
    t.deliver(backFromAmd('MACHINE', 'LONGGREETING-1500-1500'));
    await settle();
    expect(t.channels.hangup.callCount).to.equal(1);
    // The reconciliation finds the ended call's channel still listed: it asks again.
    await t.service.reconcile();
    await settle();
    expect(t.played).to.deep.equal([]);
    t.deliver(ev.destroyed(CHANNEL_ID));
    expect(await outcome).to.deep.include({ outcome: 'machine', amdStatus: 'MACHINE' });
  });

  it('listed in the AMD context, back in Stasis while the reconciliation runs: the verdict from the StasisStart, the script once', async () => {
    const t = restartedService({ listing: [listed('amd')] });
    const outcome = t.adopt(job());
    const reconciled = t.service.reconcile();
    // Arrives while the reconciliation waits for its listing: queued behind it.
    t.deliver(backFromAmd('NOTSURE', 'TOOLONG-4800'));
    await reconciled;
    await settle();
    expect(t.played).to.deep.equal([['sound:beep']]);
    t.deliver(ev.destroyed(CHANNEL_ID));
    expect(await outcome).to.deep.include({ outcome: 'not_confirmed', amdStatus: 'NOTSURE' });
  });

  it('listed back in Stasis, its StasisStart never seen: the verdict read from the channel (onMachine message: the message, no prompt)', async () => {
    const t = restartedService({
      listing: [listed({ stasisArgs: 'amd,MACHINE,LONGGREETING-1500-1500' })],
      amdStatus: 'MACHINE',
      amdCause: 'LONGGREETING-1500-1500',
    });
    const outcome = t.adopt(job('message'));
    await t.service.reconcile();
    await settle();
    expect(t.played).to.deep.equal([['sound:hello-world']]);
    // Its StasisStart, late on the WebSocket, changes nothing.
    t.deliver(backFromAmd('MACHINE', 'LONGGREETING-1500-1500'));
    await settle();
    expect(t.played).to.have.length(1);
    t.deliver(ev.destroyed(CHANNEL_ID));
    expect(await outcome).to.deep.include({
      outcome: 'machine',
      amdStatus: 'MACHINE',
      amdCause: 'LONGGREETING-1500-1500',
    });
  });

  it('listed in Stasis with no verdict (stopped before detection started): detection starts, as from the beginning', async () => {
    const t = restartedService({ listing: [listed({ stasisArgs: `notify,7,${CALL_ID}` })] });
    const outcome = t.adopt(job());
    await t.service.reconcile();
    await settle();
    expect(t.channels.continueInDialplan.args).to.deep.equal([
      [CHANNEL_ID, { context: 'crm-amd', extension: 's', priority: 1 }],
    ]);
    expect(t.played).to.deep.equal([]);
    t.deliver(backFromAmd('HUMAN', 'HUMAN-800-800'));
    await settle();
    expect(t.played).to.deep.equal([['sound:beep']]);
    t.deliver(ev.destroyed(CHANNEL_ID));
    expect(await outcome).to.deep.include({ outcome: 'not_confirmed', amdStatus: 'HUMAN' });
  });
});
