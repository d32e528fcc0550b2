/** Event payloads shaped like the ones recorded from Asterisk 22 (shared/fixtures/ari/traces). */
import type { AriChannel, AriEvent } from '../../../src/ari/types.ts';

export const APP = 'crm-app';

export function ariChannel(id: string, state: AriChannel['state'] = 'Up'): AriChannel {
  return {
    id,
    name: `PJSIP/101-${id.slice(-8)}`,
    state,
    protocol_id: '',
    caller: { name: '79161234567', number: '79161234567' },
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: {
      context: 'from-pstn',
      exten: '74951234567',
      priority: 2,
      app_name: 'Stasis',
      app_data: 'crm-app,inbound',
    },
    creationtime: '2026-11-21T16:05:33.356+0000',
    language: 'en',
  };
}

const base = () => ({
  timestamp: '2026-11-21T16:05:33.356+0000',
  application: APP,
  asterisk_id: '02:fc:00:00:00:01',
});

export const ev = {
  stasisStart: (id: string, args: string[] = ['inbound', '74951234567']): AriEvent => ({
    ...base(),
    type: 'StasisStart',
    args,
    channel: ariChannel(id, 'Ring'),
  }),
  stasisEnd: (id: string): AriEvent => ({ ...base(), type: 'StasisEnd', channel: ariChannel(id) }),
  stateChange: (id: string, state: AriChannel['state']): AriEvent => ({
    ...base(),
    type: 'ChannelStateChange',
    channel: ariChannel(id, state),
  }),
  hangupRequest: (id: string, cause = 16): AriEvent => ({
    ...base(),
    type: 'ChannelHangupRequest',
    channel: ariChannel(id),
    cause,
  }),
  destroyed: (id: string, cause = 16, causeTxt = 'Normal Clearing'): AriEvent => ({
    ...base(),
    type: 'ChannelDestroyed',
    channel: ariChannel(id),
    cause,
    cause_txt: causeTxt,
  }),
  varset: (id: string, variable: string, value: string): AriEvent => ({
    ...base(),
    type: 'ChannelVarset',
    channel: ariChannel(id),
    variable,
    value,
  }),
};
