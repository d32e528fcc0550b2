import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../../src/logging/logger.ts';

function capture(): {
  lines: Array<Record<string, unknown>>;
  logger: ReturnType<typeof createLogger>;
} {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n'))
      if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { lines, logger: createLogger({ level: 'debug', stream }) };
}

describe('JSON logger', () => {
  it('writes one JSON object per line with level, message, timestamp and call fields of child loggers', () => {
    const { lines, logger } = capture();
    logger
      .child({ callId: 'c-1', channelId: '1795277133.60' })
      .info('call answered and bridged', { extension: '101' });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({
      level: 'info',
      message: 'call answered and bridged',
      callId: 'c-1',
      channelId: '1795277133.60',
      extension: '101',
    });
    expect(Date.parse(String(lines[0]!.timestamp))).to.be.greaterThan(0);
  });

  it('writes the levels it is set to and nothing below them, in child loggers too', () => {
    const stream = new PassThrough();
    const lines: Array<Record<string, unknown>> = [];
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const logger = createLogger({ level: 'info', stream });
    const child = logger.child({ callId: 'c-2' });
    child.debug('leg dialled', { legChannelId: 'op-1' });
    logger.verbose('not this either');
    child.info('call ended', { disposition: 'answered' });
    child.warn('webhook delivery failed, will retry');
    expect(lines.map((l) => [l.level, l.message, l.callId])).to.deep.equal([
      ['info', 'call ended', 'c-2'],
      ['warn', 'webhook delivery failed, will retry', 'c-2'],
    ]);
  });

  it('serialises errors with name, message and stack', () => {
    const { lines, logger } = capture();
    logger.error('hangup failed', { err: new TypeError('boom') });
    const err = lines[0]!.err as Record<string, unknown>;
    expect(err).to.include({ name: 'TypeError', message: 'boom' });
    expect(String(err.stack)).to.include('TypeError: boom');
  });

  it('never writes secrets: password, api key, authorization, secret fields and URL credentials', () => {
    const { lines, logger } = capture();
    logger.info('connecting', {
      password: 'hunter2',
      apiKey: 'k-123456',
      headers: { authorization: 'Bearer abc', accept: 'json' },
      webhookSecret: 'shh-secret',
      url: 'http://asterisk:s3cret@pbx.local:8088/ari',
    });
    const text = JSON.stringify(lines[0]);
    for (const secret of ['hunter2', 'k-123456', 'Bearer abc', 'shh-secret', 's3cret'])
      expect(text).to.not.include(secret);
    expect(lines[0]).to.deep.include({
      password: '***',
      headers: { authorization: '***', accept: 'json' },
    });
    expect(lines[0]!.url).to.equal('http://asterisk:***@pbx.local:8088/ari');
  });

  it('writes binary data as a short preview with its length, in fields and nested in errors, secrets still redacted', () => {
    const { lines, logger } = capture();
    const err = Object.assign(new Error('ARI answered garbage'), {
      data: Buffer.from('{"error":"Allocation failed"}'),
      cause: Object.assign(new Error('socket'), { frame: Buffer.from([0x81, 0x00, 0xff, 0x10]) }),
    });
    logger.error('originate failed', {
      err,
      body: new Uint8Array(1000).fill(0xab),
      chunk: new TextEncoder().encode('GET http://asterisk:s3cret@pbx.local:8088/ari').buffer,
      nested: { packets: [Buffer.from('hi\r\n')] },
      token: Buffer.from('tok-987654'),
    });
    const line = lines[0]!;
    const logged = line.err as Record<string, unknown>;
    expect(logged.data).to.deep.equal({
      type: 'Buffer',
      length: 29,
      encoding: 'utf8',
      preview: '{"error":"Allocation failed"}',
    });
    expect((logged.cause as Record<string, unknown>).frame).to.deep.equal({
      type: 'Buffer',
      length: 4,
      encoding: 'hex',
      preview: '8100ff10',
    });
    expect(line.body).to.deep.equal({
      type: 'Uint8Array',
      length: 1000,
      encoding: 'hex',
      preview: 'ab'.repeat(64),
      truncated: true,
    });
    expect(line.chunk).to.deep.equal({
      type: 'ArrayBuffer',
      length: 45,
      encoding: 'utf8',
      preview: 'GET http://asterisk:***@pbx.local:8088/ari',
    });
    expect(line.nested).to.deep.equal({
      packets: [{ type: 'Buffer', length: 4, encoding: 'utf8', preview: 'hi\r\n' }],
    });
    expect(line.token).to.equal('***');
    const text = JSON.stringify(line);
    for (const leak of ['s3cret', 'tok-987654', '"0":', '"data":['])
      expect(text).to.not.include(leak);
  });

  it('previews only whole utf-8 characters of a long text and hex for text with control bytes', () => {
    const { lines, logger } = capture();
    logger.warn('payloads', {
      cyrillic: Buffer.from('Звонок '.repeat(20)),
      control: Buffer.from('ok\u0000\u0007'),
    });
    const cyrillic = lines[0]!.cyrillic as Record<string, unknown>;
    expect(cyrillic).to.include({ type: 'Buffer', length: 260, encoding: 'utf8', truncated: true });
    expect('Звонок '.repeat(20).startsWith(String(cyrillic.preview))).to.equal(true);
    expect(Buffer.byteLength(String(cyrillic.preview))).to.be.within(61, 64);
    expect(lines[0]!.control).to.deep.equal({
      type: 'Buffer',
      length: 4,
      encoding: 'hex',
      preview: '6f6b0007',
    });
  });
});
