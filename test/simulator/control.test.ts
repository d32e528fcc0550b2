/**
 * The simulator's control API as the engine mounts it under `/sim`: inject calls, set phone and
 * customer behaviours (validated), list channels, hang up the far end; errors `{code, message}`.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { AppSocket } from './support/driver.ts';
import type { Json } from './support/trace.ts';

describe('simulator control router', function () {
  this.timeout(10_000);
  let sim: PbxSimulator;
  let server: Server;
  let base: string;

  beforeEach(async () => {
    sim = await startSimulator({ timeScale: 0.02, extensions: ['201', '202'], trunk: 'carrier' });
    const app = express();
    app.use('/sim', sim.controlRouter());
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sim`;
  });

  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
    await sim.close();
  });

  async function call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  it('unregisters and registers a phone: endpoint offline/online, device UNAVAILABLE/NOT_INUSE', async () => {
    const off = await call('POST', '/phones/201/unregister');
    expect(off.status).to.equal(200);
    expect(off.body).to.include({ extension: '201', registered: false });
    expect(sim.phones.list().find((p) => p.extension === '201')?.registered).to.equal(false);
    const ari = async (path: string): Promise<Record<string, unknown>> => {
      const res = await fetch(`${sim.url}/ari${path}`, {
        headers: {
          authorization: `Basic ${Buffer.from(`${sim.username}:${sim.password}`).toString('base64')}`,
        },
      });
      return (await res.json()) as Record<string, unknown>;
    };
    expect(await ari('/endpoints/PJSIP/201')).to.include({ state: 'offline' });
    expect(await ari('/deviceStates/PJSIP%2F201')).to.include({ state: 'UNAVAILABLE' });
    expect((await call('POST', '/phones/201/register')).body).to.include({ registered: true });
    expect(await ari('/endpoints/PJSIP/201')).to.include({ state: 'online' });
    expect(await ari('/deviceStates/PJSIP%2F201')).to.include({ state: 'NOT_INUSE' });
    expect((await call('POST', '/phones/299/register')).status).to.equal(404);
  });

  it('lists the configured phones and validates behaviours with zod', async () => {
    const phones = await call('GET', '/phones');
    expect(phones.body).to.deep.equal([
      {
        extension: '201',
        behaviour: { mode: 'answer', answerAfterMs: 1000 },
        registered: true,
        channelIds: [],
      },
      {
        extension: '202',
        behaviour: { mode: 'answer', answerAfterMs: 1000 },
        registered: true,
        channelIds: [],
      },
    ]);
    expect(await call('PUT', '/phones/202', { mode: 'busy', afterMs: 200 })).to.deep.equal({
      status: 200,
      body: { extension: '202', behaviour: { mode: 'busy', afterMs: 200 } },
    });
    expect(sim.phones.get('202')).to.deep.equal({ mode: 'busy', afterMs: 200 });
    const bad = await call('PUT', '/phones/202', { mode: 'answer', answerAfterMs: -1 });
    expect(bad.status).to.equal(400);
    expect(bad.body).to.have.property('code', 'invalid_request');
    expect((await call('PUT', '/phones/202', { mode: 'sleep' })).status).to.equal(400);
    const spreadAlone = await call('PUT', '/phones/202', {
      mode: 'answer',
      answerAfterMs: 0,
      hangupSpreadMs: 1000,
    });
    expect(spreadAlone.status).to.equal(400);
    expect(JSON.stringify(spreadAlone.body)).to.contain('hangupSpreadMs needs hangupAfterMs');
    expect(await call('PUT', '/phones/999', { mode: 'ring' })).to.deep.include({ status: 404 });
    expect((await call('PUT', '/customers/*', { mode: 'ring' })).status).to.equal(200);
    expect((await call('PUT', '/customers/abc', { mode: 'ring' })).status).to.equal(400);
    // An answering machine (for answering-machine detection); an unknown voice is refused.
    const machine = { mode: 'answer', answerAfterMs: 500, voice: 'machine' };
    const set = await call('PUT', '/customers/74951110000', machine);
    expect([set.status, set.body]).to.deep.equal([
      200,
      { number: '74951110000', behaviour: machine },
    ]);
    const robot = await call('PUT', '/customers/74951110000', { ...machine, voice: 'robot' });
    expect(robot.status).to.equal(400);
    expect(JSON.stringify(robot.body)).to.contain('voice');
  });

  it('injects calls (409 app_not_connected without a WebSocket), lists channels and hangs up the far end', async () => {
    const refused = await call('POST', '/calls', { from: '79161234567', to: '74951234567' });
    expect(refused).to.deep.include({ status: 409 });
    expect(refused.body).to.have.property('code', 'app_not_connected');
    expect((await call('POST', '/calls', { from: 'x' })).status).to.equal(400);

    const socket = await AppSocket.open(sim);
    try {
      const created = await call('POST', '/calls', {
        from: '79161234567',
        to: '74951234567',
        callerName: 'Ivan',
      });
      expect(created.status).to.equal(201);
      const channelId = (created.body as { channelId: string }).channelId;
      const start = await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
      expect(start.channel).to.deep.include({
        id: channelId,
        state: 'Ring',
        caller: { name: 'Ivan', number: '79161234567' },
      });
      const listed = (await call('GET', '/channels')).body as Json[];
      expect(listed.map((c) => c.id)).to.deep.equal([channelId]);
      expect(await call('POST', `/channels/${channelId}/hangup`)).to.deep.equal({
        status: 204,
        body: undefined,
      });
      const hangup = await socket.next((e) => e.type === 'ChannelHangupRequest', 'HangupRequest');
      expect(hangup).to.deep.include({ cause: 127, tech_cause: 487 });
      expect((await call('POST', '/channels/nope/hangup')).status).to.equal(404);
    } finally {
      await socket.close();
    }
  });

  it('lets an operator dial out: from-internal sends the number to Stasis(app,outbound,<number>)', async () => {
    expect(
      (await call('POST', '/operator-calls', { extension: '299', to: '79161234567' })).status,
    ).to.equal(404);
    expect(
      (await call('POST', '/operator-calls', { extension: '201', to: 'abc' })).status,
    ).to.equal(400);
    const socket = await AppSocket.open(sim);
    try {
      const created = await call('POST', '/operator-calls', {
        extension: '201',
        to: '79161234567',
      });
      expect(created.status).to.equal(201);
      const start = await socket.next((e) => e.type === 'StasisStart', 'StasisStart');
      expect(start.args).to.deep.equal(['outbound', '79161234567']);
      expect(start.channel).to.deep.include({
        id: (created.body as { channelId: string }).channelId,
        state: 'Ring',
        caller: { name: 'Operator 201', number: '201' },
      });
      expect((start.channel as Json).dialplan).to.deep.include({
        context: 'from-internal',
        exten: '79161234567',
        priority: 2,
      });
      // `_XXXX.` as in asterisk-conf/extensions.conf: five digits are a customer number too.
      await call('POST', '/operator-calls', { extension: '201', to: '12345' });
      const short = await socket.next(
        (e) => e.type === 'StasisStart' && (e.args as string[])[1] === '12345',
        'StasisStart of a 5-digit number',
      );
      expect(short.args).to.deep.equal(['outbound', '12345']);
    } finally {
      await socket.close();
    }
  });

  it("answers bad bodies and out-of-range durations with the API's 4xx {code, message}, never 500", async () => {
    async function raw(
      path: string,
      headers: Record<string, string>,
      body: string | Uint8Array,
      method = 'PUT',
    ): Promise<{ status: number; body: unknown }> {
      const res = await fetch(`${base}${path}`, { method, headers, body });
      return { status: res.status, body: await res.json() };
    }
    const behaviour = JSON.stringify({ mode: 'busy' });
    expect(
      await raw('/phones/201', { 'content-type': 'application/json; charset=koi8-r' }, behaviour),
    ).to.deep.include({
      status: 415,
      body: {
        code: 'unsupported_charset',
        message:
          'the request body must be JSON in utf-8 (Content-Type: application/json; charset=utf-8)',
      },
    });
    expect(
      await raw(
        '/phones/201',
        { 'content-type': 'application/json', 'content-encoding': 'bogus' },
        behaviour,
      ),
    ).to.deep.equal({
      status: 415,
      body: {
        code: 'unsupported_content_encoding',
        message: 'the request body must be sent as is or with Content-Encoding gzip, deflate or br',
      },
    });
    const huge = JSON.stringify({
      from: '79161234567',
      to: '74951234567',
      callerName: 'x'.repeat(70_000),
    });
    const tooLarge = await raw('/calls', { 'content-type': 'application/json' }, huge, 'POST');
    expect(tooLarge).to.deep.equal({
      status: 413,
      body: { code: 'payload_too_large', message: 'the request body is too large' },
    });
    expect(
      await raw('/phones/201', { 'content-type': 'application/json' }, '{"mode":'),
    ).to.deep.equal({
      status: 400,
      body: { code: 'invalid_json', message: 'the request body is not valid JSON' },
    });
    expect(sim.phones.get('201')).to.deep.equal({ mode: 'answer', answerAfterMs: 1000 });

    // Node fires a timer of 1e308 ms after 1 ms: durations are whole ms, at most 24 h.
    const endless = await call('PUT', '/phones/201', { mode: 'answer', answerAfterMs: 1e308 });
    expect(endless).to.deep.equal({
      status: 400,
      body: {
        code: 'invalid_request',
        message: 'answerAfterMs: must be at most 86400000 ms (24 h)',
        field: 'answerAfterMs',
      },
    });
    expect(sim.phones.get('201')).to.deep.equal({ mode: 'answer', answerAfterMs: 1000 });
    expect(
      (await call('PUT', '/phones/201', { mode: 'answer', answerAfterMs: 1.5 })).body,
    ).to.deep.include({ code: 'invalid_request', field: 'answerAfterMs' });
    expect(
      (await call('PUT', '/phones/201', { mode: 'busy', afterMs: 86_400_001 })).body,
    ).to.deep.include({
      code: 'invalid_request',
      field: 'afterMs',
    });
    for (const field of ['hangupAfterMs', 'abandonAfterMs']) {
      const inbound = await call('POST', '/calls', {
        from: '79161234567',
        to: '74951234567',
        [field]: 1e308,
      });
      expect(inbound).to.deep.include({ status: 400 });
      expect(inbound.body).to.deep.include({ code: 'invalid_request', field });
      const outbound = await call('POST', '/operator-calls', {
        extension: '201',
        to: '79161234567',
        [field]: 1e308,
      });
      expect(outbound.body).to.deep.include({ code: 'invalid_request', field });
    }
    expect(
      (await call('POST', '/calls', { from: '79161234567', to: '1', extra: 1 })).body,
    ).to.deep.equal({
      code: 'invalid_request',
      message: 'extra: is not a known field',
      field: 'extra',
    });
    // 24 h is still a duration the simulator takes.
    expect(
      await call('PUT', '/phones/201', {
        mode: 'answer',
        answerAfterMs: 0,
        hangupAfterMs: 86_400_000,
      }),
    ).to.deep.include({ status: 200 });
  });

  it('DTMF: a phone presses digits after answering (/phones), a caller once answered (/calls), any channel on demand (/channels/:id/dtmf)', async () => {
    const press = (digits: string, afterMs: number) => ({ digits, afterMs, gapMs: 100 });
    expect(
      (
        await call('PUT', '/phones/201', {
          mode: 'answer',
          answerAfterMs: 100,
          dtmf: press('1x', 0),
        })
      ).status,
    ).to.equal(400);
    expect(
      await call('PUT', '/phones/201', {
        mode: 'answer',
        answerAfterMs: 100,
        dtmf: press('42', 500),
      }),
    ).to.deep.include({ status: 200 });
    const socket = await AppSocket.open(sim);
    const digitsOf = (id: string): string =>
      socket.events
        .filter((e) => e.type === 'ChannelDtmfReceived' && (e.channel as Json).id === id)
        .map((e) => String(e.digit))
        .join('');
    try {
      // The caller presses 7 once answered.
      const created = await call('POST', '/calls', {
        from: '79161234567',
        to: '74951234567',
        dtmf: { digits: '7', afterMs: 200, durationMs: 120 },
      });
      const callerId = (created.body as { channelId: string }).channelId;
      await socket.next((e) => e.type === 'StasisStart', 'caller StasisStart');
      await fetch(`${sim.url}/ari/channels/${callerId}/answer`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${sim.username}:${sim.password}`).toString('base64')}`,
        },
      });
      const seven = await socket.next(
        (e) => e.type === 'ChannelDtmfReceived' && (e.channel as Json).id === callerId,
        'the caller pressing 7',
      );
      expect(seven).to.deep.include({ digit: '7', duration_ms: 120 });
      // Operator 201 presses 4 then 2 after answering an originate.
      const op = await fetch(`${sim.url}/ari/channels?endpoint=PJSIP/201&app=crm-app`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${sim.username}:${sim.password}`).toString('base64')}`,
        },
      });
      const opId = ((await op.json()) as { id: string }).id;
      await socket.until(
        (events) =>
          events.some(
            (e) =>
              e.type === 'ChannelDtmfReceived' &&
              (e.channel as Json).id === opId &&
              e.digit === '2',
          ),
        'operator pressing 4, 2',
      );
      expect(digitsOf(opId)).to.equal('42');
      // On demand.
      expect(await call('POST', `/channels/${callerId}/dtmf`, { digits: '#' })).to.deep.equal({
        status: 204,
        body: undefined,
      });
      await socket.until(() => digitsOf(callerId) === '7#', 'the caller pressing #');
      expect((await call('POST', '/channels/nope/dtmf', { digits: '1' })).status).to.equal(404);
      expect((await call('POST', `/channels/${callerId}/dtmf`, { digits: '' })).status).to.equal(
        400,
      );
    } finally {
      await socket.close();
    }
  });

  it('speak: a phone that sent no audio starts speaking while AMD() listens; the verdict comes from what it hears now (/channels/:id/speak)', async () => {
    const auth = {
      authorization: `Basic ${Buffer.from(`${sim.username}:${sim.password}`).toString('base64')}`,
    };
    const socket = await AppSocket.open(sim);
    /** A customer answering with no audio, sent to [crm-amd] (30 s of analysis) once in Stasis. */
    const toAmd = async (number: string): Promise<string> => {
      const res = await fetch(
        `${sim.url}/ari/channels?endpoint=PJSIP/${number}@carrier&app=crm-app&appArgs=notify`,
        {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ variables: { CRM_AMD_TOTAL_ANALYSIS_MS: '30000' } }),
        },
      );
      const id = ((await res.json()) as { id: string }).id;
      await socket.next(
        (e) => e.type === 'StasisStart' && (e.channel as Json).id === id,
        'the customer in Stasis',
      );
      await fetch(`${sim.url}/ari/channels/${id}/continue?context=crm-amd&extension=s&priority=1`, {
        method: 'POST',
        headers: auth,
      });
      await socket.next(
        (e) => e.type === 'StasisEnd' && (e.channel as Json).id === id,
        'the customer sent to crm-amd',
      );
      return id;
    };
    const verdict = async (id: string): Promise<{ args: unknown; afterMs: number }> => {
      const back = await socket.next(
        (e) =>
          e.type === 'StasisStart' &&
          (e.channel as Json).id === id &&
          (e.args as string[])[0] === 'amd',
        'back from AMD',
      );
      const left = socket.events.find(
        (e) => e.type === 'StasisEnd' && (e.channel as Json).id === id,
      )!;
      return {
        args: back.args,
        afterMs: Date.parse(String(back.timestamp)) - Date.parse(String(left.timestamp)),
      };
    };
    try {
      sim.customers.set('*', { mode: 'answer', answerAfterMs: 100 });
      const machine = await toAmd('74950000001');
      expect(await call('POST', `/channels/${machine}/speak`, { voice: 'machine' })).to.deep.equal({
        status: 204,
        body: undefined,
      });
      const m = await verdict(machine);
      expect(m.args).to.deep.equal(['amd', 'MACHINE', 'LONGGREETING-1500-1500']);
      expect(m.afterMs).to.be.within(1500, 29_000);
      const human = await toAmd('74950000002');
      sim.speak(human, 'human');
      const h = await verdict(human);
      expect(h.args).to.deep.equal(['amd', 'HUMAN', 'HUMAN-800-800']);
      expect(h.afterMs).to.be.within(1300, 29_000);
      // Not in AMD(): nothing happens. Unknown channel, unknown voice: refused.
      expect((await call('POST', `/channels/${human}/speak`, { voice: 'human' })).status).to.equal(
        204,
      );
      expect((await call('POST', '/channels/nope/speak', { voice: 'human' })).status).to.equal(404);
      expect((await call('POST', `/channels/${human}/speak`, { voice: 'robot' })).status).to.equal(
        400,
      );
    } finally {
      await socket.close();
    }
  });
});
