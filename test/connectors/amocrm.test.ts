/**
 * The amoCRM connector's translation without an engine: which finished calls wait for their
 * recording (and for how long), the disposition → call_status / call_result table, the phone
 * query of the contact search, and amoCRM's problem JSON as the rejection message.
 */
import { expect } from 'chai';
import { createAmoCrmConnector } from '../../src/connectors/amocrm/connector.ts';
import { callResult, callStatus, phoneQuery } from '../../src/connectors/amocrm/mapping.ts';
import { TranslationDeferred } from '../../src/connectors/delivery.ts';
import type { LifecycleEvent } from '../../src/events/types.ts';
import { createLogger } from '../../src/logging/logger.ts';
import type { CallRecord } from '../../src/store/index.ts';
import { FakeAmoCrm } from '../support/fake-amocrm.ts';

const TOKEN = 'amocrm-long-lived-token-0123456789';
const ENDED_AT = '2026-12-06T09:00:00.000Z';

function endedEvent(recordingUrl?: string): LifecycleEvent {
  return {
    id: 'e1',
    type: 'call.ended',
    occurredAt: ENDED_AT,
    callId: 'c1',
    sequence: 4,
    data: {
      direction: 'in',
      from: '+79161234567',
      to: '74951234567',
      answeredBy: '101',
      disposition: 'answered',
      startedAt: '2026-12-06T08:59:00.000Z',
      answeredAt: '2026-12-06T08:59:10.000Z',
      endedAt: ENDED_AT,
      waitSec: 10,
      talkSec: 50,
      ...(recordingUrl === undefined ? {} : { recordingUrl }),
    },
  };
}

function connectorWith(
  recordingStatus: string | undefined,
  nowMs: number,
  url = 'http://127.0.0.1:9',
) {
  const record = {
    id: 'c1',
    direction: 'in',
    legs: [],
    ...(recordingStatus === undefined ? {} : { recording: { status: recordingStatus } }),
  } as unknown as CallRecord;
  return createAmoCrmConnector({
    url,
    token: TOKEN,
    users: [{ userId: '1001', extension: '101' }],
    source: 'ari-crm',
    recordingWaitSec: 60,
    timeoutMs: 2000,
    ratePerSec: 7,
    defaultRingTimeoutSec: 20,
    calls: { getCall: () => Promise.resolve(record) },
    logger: createLogger({ level: 'error' }),
    now: () => nowMs,
  });
}

describe('amoCRM connector: translation', () => {
  const link = 'https://engine.example/v1/calls/c1/recording?expires=1&sig=ab';

  it('adds a call without a recording at once, with the answering operator as responsible user', async () => {
    const [request] = await connectorWith(undefined, Date.parse(ENDED_AT)).translate(endedEvent());
    expect(request).to.deep.include({ method: 'POST', path: '/api/v4/calls' });
    expect(request!.json).to.deep.equal([
      {
        direction: 'inbound',
        uniq: 'c1',
        duration: 50,
        source: 'ari-crm',
        phone: '+79161234567',
        call_status: 4,
        call_result: 'Answered by 101',
        responsible_user_id: 1001,
        created_by: 1001,
        created_at: Date.parse('2026-12-06T08:59:00.000Z') / 1000,
      },
    ]);
  });

  it('holds a recorded call while its recording is being stored, within AMOCRM_RECORDING_WAIT_SEC', async () => {
    const connector = connectorWith('recording', Date.parse(ENDED_AT) + 5_000);
    let thrown: unknown;
    try {
      await connector.translate(endedEvent(link));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(TranslationDeferred);
    expect((thrown as TranslationDeferred).retryAfterMs).to.be.within(1, 1000);
    expect((thrown as Error).message).to.include('waiting for the recording');
  });

  it('adds the call with the link once the recording is stored', async () => {
    const [request] = await connectorWith('stored', Date.parse(ENDED_AT) + 5_000).translate(
      endedEvent(link),
    );
    expect((request!.json as Array<Record<string, unknown>>)[0]).to.include({ link });
  });

  it('adds the call without a link when the recording failed', async () => {
    const [request] = await connectorWith('failed', Date.parse(ENDED_AT) + 5_000).translate(
      endedEvent(link),
    );
    expect((request!.json as Array<Record<string, unknown>>)[0]).to.not.have.property('link');
  });

  it('adds the call with its link after the wait even if the recording is not stored yet', async () => {
    const [request] = await connectorWith('recording', Date.parse(ENDED_AT) + 61_000).translate(
      endedEvent(link),
    );
    expect((request!.json as Array<Record<string, unknown>>)[0]).to.include({ link });
  });

  it('maps dispositions to call_status and call_result', () => {
    expect(callStatus('answered')).to.equal(4);
    expect(callStatus('busy')).to.equal(7);
    expect(callStatus('no_answer')).to.equal(6);
    expect(callStatus('canceled')).to.equal(6);
    expect(callStatus('failed')).to.equal(6);
    expect(callStatus('failed', 'destination_not_allowed')).to.equal(5);
    expect(callResult('in', 'canceled', undefined)).to.equal('Caller hung up before an answer');
    expect(callResult('out', 'canceled', undefined)).to.equal('Canceled');
    expect(callResult('out', 'no_answer', undefined)).to.equal('No answer');
  });

  it('searches contacts by the last 10 digits of the number', () => {
    expect(phoneQuery('+7 (916) 123-45-67')).to.equal('9161234567');
    expect(phoneQuery('89161234567')).to.equal('9161234567');
    expect(phoneQuery('101')).to.equal('101');
  });

  it("reports amoCRM's validation errors as the rejection message", async () => {
    const amo = await FakeAmoCrm.start(TOKEN);
    try {
      amo.failNext('POST /api/v4/calls', {
        status: 400,
        body: {
          'validation-errors': [
            {
              request_id: '0',
              errors: [{ code: 'NotBlank', path: 'phone', detail: 'This field is missing.' }],
            },
          ],
          title: 'Bad Request',
          status: 400,
          detail: 'Request validation failed',
        },
      });
      const connector = connectorWith(undefined, Date.now(), amo.url);
      const answer = await connector.client.request({
        method: 'POST',
        path: '/api/v4/calls',
        json: [],
      });
      expect(answer).to.deep.include({ ok: false, kind: 'rejected', status: 400 });
      expect((answer as { detail: string }).detail).to.equal(
        'HTTP 400: Bad Request: Request validation failed — phone: This field is missing.',
      );
    } finally {
      await amo.close();
    }
  });
});
