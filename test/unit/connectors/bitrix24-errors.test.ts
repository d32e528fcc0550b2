/**
 * How the Bitrix24 connector reads the portal's error answers (`{"error", "error_description"}`)
 * whatever their HTTP status: token errors refresh the tokens and the call goes through, load
 * limits are retried, validation errors are rejected with the portal's message.
 */
import { expect } from 'chai';
import {
  createBitrix24Connector,
  type Bitrix24Connector,
} from '../../../src/connectors/bitrix24/connector.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { error, FakeBitrix24 } from '../../support/fake-bitrix24.ts';

describe('Bitrix24 connector: error answers', function () {
  this.timeout(20_000);
  let portal: FakeBitrix24;
  let connector: Bitrix24Connector;

  beforeEach(async () => {
    portal = await FakeBitrix24.start();
    connector = createBitrix24Connector({
      url: portal.url,
      oauth: {
        clientId: portal.clientId,
        clientSecret: portal.clientSecret,
        oauthUrl: portal.oauthUrl,
        accessToken: portal.accessToken,
        refreshToken: portal.refreshToken,
      },
      crmCreate: true,
      addToChat: true,
      entityTypes: ['CONTACT'],
      defaultUserId: '1',
      overrides: [],
      refreshMs: 0,
      timeoutMs: 5000,
      ratePerSec: 100,
      defaultRingTimeoutSec: 20,
      calls: { getCall: () => Promise.resolve(undefined) },
      state: () => undefined,
      logger: createSilentLogger(),
    });
  });
  afterEach(async () => {
    await portal.close();
  });

  it('expired_token in a 400 answer: the tokens are refreshed and the request goes through with the new one', async () => {
    portal.script(
      'user.get',
      error(400, 'expired_token', 'The access token provided has expired.'),
    );
    const answer = await connector.call('user.get', { start: 0 });
    expect(answer.ok).to.equal(true);
    expect(portal.requests.map((r) => r.method)).to.deep.equal(['user.get', 'oauth', 'user.get']);
    expect(portal.requests[2]!.form.auth).to.equal('access-token-2');
  });

  it('QUERY_LIMIT_EXCEEDED is retried (not rejected), whatever the status', async () => {
    portal.script('user.get', error(400, 'QUERY_LIMIT_EXCEEDED', 'Too many requests'));
    const answer = await connector.call('user.get', { start: 0 });
    expect(answer).to.deep.include({ ok: false, kind: 'retry', status: 400 });
  });

  it('a validation error is rejected with the portal message; an error in a 200 answer too', async () => {
    portal.script('user.get', error(400, 'ERROR_ARGUMENT', 'Argument "start" is not valid'));
    const rejected = await connector.call('user.get', { start: 0 });
    expect(rejected).to.deep.include({
      ok: false,
      kind: 'rejected',
      status: 400,
      detail: 'HTTP 400: ERROR_ARGUMENT: Argument "start" is not valid',
    });
    portal.script('user.get', error(200, 'ERROR_CORE', 'Something went wrong'));
    const in200 = await connector.call('user.get', { start: 0 });
    expect(in200).to.deep.include({
      ok: false,
      kind: 'rejected',
      detail: 'ERROR_CORE: Something went wrong',
    });
  });
});
