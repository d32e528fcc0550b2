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
});
