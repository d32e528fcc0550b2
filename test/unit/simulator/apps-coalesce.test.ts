/**
 * The simulator's event WebSockets (src/simulator/apps.ts): the events of one tick go out in one
 * TCP write (the connection is corked until the tick ends), in order and unchanged; `onEvent`
 * listeners can ask for some event types only.
 */
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import type { WebSocket } from 'ws';
import { AppRegistry } from '../../../src/simulator/apps.ts';

/** A WebSocket that writes each frame (its text) to `transport`, as ws does. */
function fakeSocket(transport: PassThrough): WebSocket {
  return {
    OPEN: 1,
    readyState: 1,
    send(text: string, cb: () => void) {
      transport.write(`${text}\n`, cb);
    },
  } as unknown as WebSocket;
}

describe('simulator app WebSockets', () => {
  it('cork the connection for the rest of the tick: its events go out together, in order', async () => {
    const transport = new PassThrough();
    const written: string[] = [];
    transport.on('data', (chunk: Buffer) => written.push(String(chunk)));
    const apps = new AppRegistry();
    apps.attach('crm-app', fakeSocket(transport), false, '2026-11-22T00:00:00.000+0000', transport);
    const sent = ['ChannelHangupRequest', 'StasisEnd', 'ChannelDestroyed'].map((type) =>
      apps.deliver('crm-app', { type }),
    );
    expect(transport.writableCorked, 'corked until the tick ends').to.equal(1);
    await Promise.all(sent);
    expect(transport.writableCorked).to.equal(0);
    const frames = written.join('').trim().split('\n');
    expect(frames.map((f) => (JSON.parse(f) as { type: string }).type)).to.deep.equal([
      'ChannelHangupRequest',
      'StasisEnd',
      'ChannelDestroyed',
    ]);
    await apps.deliver('crm-app', { type: 'StasisStart' });
    expect(transport.writableCorked).to.equal(0);
  });

  it('a listener given event types sees only those, every one still goes out', async () => {
    const transport = new PassThrough();
    const written: string[] = [];
    transport.on('data', (chunk: Buffer) => written.push(String(chunk)));
    const apps = new AppRegistry();
    apps.attach('crm-app', fakeSocket(transport), false, '2026-11-22T00:00:00.000+0000', transport);
    const dials: string[] = [];
    const all: string[] = [];
    apps.onEvent((event) => dials.push(event.type), ['Dial']);
    apps.onEvent((event) => all.push(event.type));
    await Promise.all(
      ['ChannelVarset', 'Dial', 'ChannelStateChange', 'Dial'].map((type) =>
        apps.deliver('crm-app', { type, dialstatus: 'RINGING' }),
      ),
    );
    expect(dials).to.deep.equal(['Dial', 'Dial']);
    expect(all).to.deep.equal(['ChannelVarset', 'Dial', 'ChannelStateChange', 'Dial']);
    expect(written.join('').trim().split('\n')).to.have.length(4);
  });
});
