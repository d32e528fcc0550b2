/**
 * What the Bitrix24 connector keeps across an engine restart (a store on disk, closed and
 * opened again between two connector instances): the CALL_ID a call was registered with (its
 * finish after the restart uses it, no second register) and the OAuth pair refreshed before the
 * restart (used instead of the configured, spent one).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createBitrix24Connector,
  type Bitrix24Connector,
} from '../../../src/connectors/bitrix24/connector.ts';
import { createEventEnvelope } from '../../../src/events/types.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { createConnectorState } from '../../../src/store/connector-state.ts';
import { createStore, type Store } from '../../../src/store/index.ts';
import { FakeBitrix24 } from '../../support/fake-bitrix24.ts';

const logger = createSilentLogger();
const CALL = '0b7e6a52-5a0e-4a43-9d55-6f1c1f7c1a01';

describe('Bitrix24 connector: state across a restart', function () {
  this.timeout(20_000);
  let portal: FakeBitrix24;
  let dir: string;
  let store: Store | undefined;

  beforeEach(async () => {
    portal = await FakeBitrix24.start();
    portal.users = new Map([[5, '101']]);
    dir = mkdtempSync(join(tmpdir(), 'ari-crm-b24-'));
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await portal.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function openStore(): Promise<Store> {
    store = createStore({ url: `sqlite:${join(dir, 'store.db')}`, logger });
    await store.migrate();
    return store;
  }

  function connector(s: Store): Bitrix24Connector {
    return createBitrix24Connector({
      url: portal.url,
      oauth: {
        clientId: portal.clientId,
        clientSecret: portal.clientSecret,
        oauthUrl: portal.oauthUrl,
        accessToken: 'access-token-1',
        refreshToken: 'refresh-token-1',
      },
      crmCreate: true,
      addToChat: true,
      entityTypes: ['CONTACT', 'COMPANY', 'LEAD'],
      defaultUserId: '1',
      overrides: [{ userId: '5', extension: '101' }],
      refreshMs: 0,
      timeoutMs: 5000,
      ratePerSec: 100,
      defaultRingTimeoutSec: 20,
      calls: { getCall: () => Promise.resolve(undefined) },
      state: () => createConnectorState(s.db, 'bitrix24'),
      logger,
    });
  }

  /** Translate and send an event's requests as the delivery does (retrying a refreshed 401 once). */
  async function deliver(
    c: Bitrix24Connector,
    event: Parameters<Bitrix24Connector['translate']>[0],
  ) {
    for (const request of await c.translate(event)) {
      let answer = await c.client.request(request);
      if (!answer.ok && answer.retryAfterMs === 0) {
        const again = await c.translate(event);
        answer = await c.client.request(again[again.length - 1]!);
      }
      expect(answer.ok, answer.ok ? '' : answer.detail).to.equal(true);
    }
  }

  it('the call registered before the restart is finished with its CALL_ID after it; the refreshed tokens are used', async () => {
    const first = connector(await openStore());
    await deliver(
      first,
      createEventEnvelope('call.started', CALL, 1, {
        direction: 'out',
        from: '101',
        to: '+74957654321',
      }),
    );
    const b24 = portal.callIdOf(CALL)!;
    expect(b24).to.be.a('string');
    // The access token expires; the refresh is kept in the store.
    portal.expireAccessToken();
    await deliver(
      first,
      createEventEnvelope('call.answered', CALL, 2, { extension: '101', waitSec: 3 }),
    );
    const refreshed = await first.call('user.get', { start: 0 });
    expect(refreshed.ok).to.equal(true);
    expect(portal.requests.filter((r) => r.method === 'oauth')).to.have.length(1);
    await store!.close();
    store = undefined;

    // "Restart": a new connector over the store opened again, configured with the spent tokens.
    const second = connector(await openStore());
    await deliver(
      second,
      createEventEnvelope('call.ended', CALL, 3, {
        direction: 'out',
        from: '101',
        to: '+74957654321',
        answeredBy: '101',
        disposition: 'answered',
        startedAt: '2026-12-06T08:30:00.000Z',
        answeredAt: '2026-12-06T08:30:03.000Z',
        endedAt: '2026-12-06T08:30:45.000Z',
        waitSec: 3,
        talkSec: 42,
      }),
    );
    const finish = portal.calls('telephony.externalcall.finish');
    expect(finish).to.have.length(1);
    expect(finish[0]!.form).to.deep.equal({
      CALL_ID: b24,
      USER_ID: '5',
      DURATION: '42',
      STATUS_CODE: '200',
      ADD_TO_CHAT: '1',
      auth: 'access-token-2',
    });
    expect(
      portal.requests.filter((r) => r.method === 'telephony.externalcall.register'),
    ).to.have.length(1);
    expect(portal.requests.filter((r) => r.method === 'oauth')).to.have.length(1);
  });
});
