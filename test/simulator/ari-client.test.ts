/**
 * The real ari-client (npm ari-client 2.2.0) loads the simulator's api-docs and drives it: the
 * resources and operation nicknames it builds, calls with query and body parameters, typed
 * events on its WebSocket, error messages as raw JSON (fixtures fact 10) and binary files.
 */
import ariClient from 'ari-client';
import { expect } from 'chai';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';

/** The subset of ari-client's dynamic API these tests use. */
type Op = (params?: Record<string, unknown>) => Promise<unknown>;
interface Client {
  [resource: string]: unknown;
  start(apps: string): Promise<void>;
  stop(): void;
  on(event: string, listener: (event: Record<string, unknown>, instance: unknown) => void): void;
}

function op(client: Client, resource: string, name: string): Op {
  const res = client[resource] as Record<string, Op | undefined> | undefined;
  const fn = res?.[name];
  if (!fn) throw new Error(`ari-client has no ${resource}.${name}`);
  return fn;
}

/** Resolve with the next event of `type` the client emits that matches `pred`. */
function nextEvent(
  client: Client,
  type: string,
  pred: (e: Record<string, unknown>) => boolean = () => true,
): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const listener = (e: Record<string, unknown>): void => {
      if (pred(e)) resolve(e);
    };
    client.on(type, listener);
  });
}

describe('simulator with the real ari-client', function () {
  this.timeout(10_000);
  let sim: PbxSimulator;
  let client: Client;

  beforeEach(async () => {
    sim = await startSimulator({ timeScale: 0.05 });
    client = (await ariClient.connect(sim.url, sim.username, sim.password)) as unknown as Client;
  });

  afterEach(async () => {
    // ari-client's stop() throws when start() was never called.
    if ((client as { _ws?: unknown } | undefined)?._ws) client.stop();
    await sim?.close();
  });

  it('builds the same resources and operation nicknames as on Asterisk 22', () => {
    const expected: Record<string, string[]> = {
      asterisk: ['getInfo'],
      channels: [
        'list',
        'originate',
        'originateWithId',
        'create',
        'get',
        'hangup',
        'continueInDialplan',
        'answer',
        'ring',
        'ringStop',
        'play',
        'playWithId',
        'record',
        'getChannelVar',
        'setChannelVar',
        'dial',
      ],
      bridges: [
        'list',
        'create',
        'createWithId',
        'get',
        'destroy',
        'addChannel',
        'removeChannel',
        'play',
        'playWithId',
        'record',
      ],
      playbacks: ['get', 'stop'],
      recordings: ['getStored', 'getStoredFile', 'deleteStored', 'listStored'],
      endpoints: ['list', 'get'],
      deviceStates: ['list', 'get'],
      applications: ['list', 'get'],
    };
    for (const [resource, ops] of Object.entries(expected)) {
      for (const name of ops)
        expect(op(client, resource, name), `${resource}.${name}`).to.be.a('function');
    }
  });

  it('lists, creates with variables and a client id, bridges, records and fetches the WAV as a Buffer', async () => {
    await client.start('crm-app');
    expect(await op(client, 'channels', 'list')()).to.deep.equal([]);
    const info = (await op(client, 'asterisk', 'getInfo')()) as { system: { version: string } };
    expect(info.system.version).to.equal('22.10.1');

    const inbound = nextEvent(client, 'StasisStart', (e) => (e.args as string[])[0] === 'inbound');
    const { channelId: callerId } = await sim.injectInboundCall({
      from: '79161234567',
      to: '74951234567',
    });
    const start = await inbound;
    expect(start.args).to.deep.equal(['inbound', '74951234567']);

    const opStart = nextEvent(client, 'StasisStart', (e) => (e.args as string[])[0] === 'operator');
    const created = (await op(
      client,
      'channels',
      'create',
    )({
      endpoint: 'PJSIP/101',
      app: 'crm-app',
      appArgs: `operator,${callerId}`,
      channelId: 'op-1',
      variables: { 'CALLERID(name)': 'CRM: Ivan Petrov', 'CALLERID(num)': '79161234567' },
    })) as { id: string; state: string; caller: { name: string; number: string } };
    expect(created).to.include({ id: 'op-1', state: 'Down' });
    expect(created.caller).to.deep.equal({ name: 'CRM: Ivan Petrov', number: '79161234567' });
    const opStasis = await opStart;
    expect((opStasis.channel as { id: string }).id).to.equal('op-1');

    const answered = nextEvent(client, 'Dial', (e) => e.dialstatus === 'ANSWER');
    await op(client, 'channels', 'dial')({ channelId: 'op-1', caller: callerId, timeout: 5 });
    await answered;
    await op(client, 'channels', 'answer')({ channelId: callerId });
    const bridge = (await op(
      client,
      'bridges',
      'createWithId',
    )({ bridgeId: 'br-1', type: 'mixing', name: 'call-1' })) as { id: string; technology: string };
    expect(bridge).to.include({ id: 'br-1', technology: 'simple_bridge' });
    const entered = nextEvent(
      client,
      'ChannelEnteredBridge',
      (e) => (e.channel as { id: string }).id === 'op-1',
    );
    await op(client, 'bridges', 'addChannel')({ bridgeId: 'br-1', channel: [callerId, 'op-1'] });
    await entered;
    const recStarted = nextEvent(client, 'RecordingStarted');
    const rec = (await op(
      client,
      'bridges',
      'record',
    )({ bridgeId: 'br-1', name: 'rec-1', format: 'wav', maxDurationSeconds: 3 })) as {
      state: string;
    };
    expect(rec.state).to.equal('queued');
    const started = (await recStarted) as { timestamp: string };
    const finished = await nextEvent(client, 'RecordingFinished');
    expect(finished.recording).to.deep.include({ name: 'rec-1', state: 'done', duration: 3 });

    const stored = (await op(client, 'recordings', 'getStored')({ recordingName: 'rec-1' })) as {
      name: string;
      format: string;
    };
    expect(stored).to.include({ name: 'rec-1', format: 'wav' });
    const file = await op(client, 'recordings', 'getStoredFile')({ recordingName: 'rec-1' });
    expect(Buffer.isBuffer(file)).to.equal(true);
    // 8 kHz 16-bit mono after a 44-byte header, as in the inbound-answered trace, up to the
    // clock's whole-second tick after 3 s (Asterisk compares time() values): 3 to 4 s.
    const startMs = Date.parse(started.timestamp.replace('+0000', 'Z'));
    const frames = Math.floor(((Math.floor(startMs / 1000) + 4) * 1000 - startMs) / 20);
    const bytes = (file as Buffer).length;
    expect(bytes).to.be.within(44 + 320 * (frames - 1), 44 + 320 * (frames + 1));
    expect((file as Buffer).readUInt32LE(4)).to.equal(bytes - 8);
    expect((file as Buffer).subarray(0, 4).toString('ascii')).to.equal('RIFF');
    expect((file as Buffer).subarray(8, 12).toString('ascii')).to.equal('WAVE');
  });

  it("rejects with Asterisk's raw JSON error body as the message (fact 10)", async () => {
    const errors: string[] = [];
    for (const call of [
      () => op(client, 'channels', 'get')({ channelId: 'does-not-exist' }),
      () => op(client, 'bridges', 'addChannel')({ bridgeId: 'does-not-exist', channel: 'x' }),
      () =>
        op(client, 'channels', 'originate')({ endpoint: 'PJSIP/nosuchendpoint', app: 'crm-app' }),
      () => op(client, 'recordings', 'getStoredFile')({ recordingName: 'none-such' }),
    ]) {
      try {
        await call();
        errors.push('resolved');
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    expect(errors).to.deep.equal([
      '{"message":"Channel not found"}',
      '{"message":"Bridge not found"}',
      '{"error":"Allocation failed"}',
      '{"message":"Recording not found"}',
    ]);
  });

  it('promotes event properties to resource instances using the events.json models', async () => {
    await client.start('crm-app');
    const got = new Promise<unknown>((resolve) =>
      client.on('StasisStart', (_e, instance) => resolve(instance)),
    );
    await sim.injectInboundCall({ from: '79161234567', to: '74951234567' });
    const channel = (await got) as { id: string; answer?: unknown };
    expect(channel.id).to.be.a('string');
    expect(channel.answer).to.be.a('function');
  });
});
