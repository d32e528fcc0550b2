/**
 * The connectors' state (`connector_state`): JSON values by key per connector, replaced on
 * write, purged by prefix and age.
 */
import { expect } from 'chai';
import { createConnectorState } from '../../src/store/connector-state.ts';
import { forEachDialect } from './helpers.ts';

forEachDialect('store: connector state', ({ store }) => {
  it('keeps a value per connector and key, replaces it on write, deletes it', async () => {
    const bitrix = createConnectorState(store().db, 'bitrix24');
    const other = createConnectorState(store().db, 'amocrm');
    expect(await bitrix.get('oauth')).to.equal(undefined);
    await bitrix.set('oauth', { accessToken: 'a1', refreshToken: 'r1' });
    await bitrix.set('oauth', { accessToken: 'a2', refreshToken: 'r2' });
    await other.set('oauth', { accessToken: 'x' });
    expect(await bitrix.get('oauth')).to.deep.equal({ accessToken: 'a2', refreshToken: 'r2' });
    expect(await other.get('oauth')).to.deep.equal({ accessToken: 'x' });
    await bitrix.delete('oauth');
    expect(await bitrix.get('oauth')).to.equal(undefined);
    expect(await other.get('oauth')).to.deep.equal({ accessToken: 'x' });
  });

  it('purges the keys of a prefix written before a time, and only those', async () => {
    const state = createConnectorState(store().db, 'bitrix24');
    await state.set('call:a', { callId: 'A' });
    await state.set('call:b', { callId: 'B' });
    await state.set('oauth', { accessToken: 't' });
    expect(await state.purge('call:', new Date(Date.now() - 60_000))).to.equal(0);
    expect(await state.purge('call:', new Date(Date.now() + 60_000))).to.equal(2);
    expect(await state.get('call:a')).to.equal(undefined);
    expect(await state.get('oauth')).to.deep.equal({ accessToken: 't' });
  });
});
