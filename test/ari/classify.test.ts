import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { classifyAriError, inferStatus, parseFailure } from '../../src/ari/classify.ts';
import {
  AriBadRequestError,
  AriConflictError,
  AriConnectionError,
  AriError,
  AriNotFoundError,
  AriNotInStasisError,
  AriServerError,
} from '../../src/ari/errors.ts';

/** What ari-client rejects with for an error answer with a body: `new Error(rawBody)`. */
const ariClientError = (body: unknown): Error => new Error(JSON.stringify(body));

/**
 * Every error answer recorded from Asterisk 22 (shared/fixtures/ari/traces/errors.jsonl and the
 * hang-ups of already-gone channels in the other traces), with the gateway operation that makes
 * that request.
 */
const RECORDED: Array<{
  operation: string;
  request: string;
  status: number;
  body: Record<string, string>;
}> = [
  {
    operation: 'channels.get',
    request: 'GET /channels/does-not-exist',
    status: 404,
    body: { message: 'Channel not found' },
  },
  {
    operation: 'channels.hangup',
    request: 'DELETE /channels/does-not-exist',
    status: 404,
    body: { message: 'Channel not found' },
  },
  {
    operation: 'channels.play',
    request: 'POST /channels/does-not-exist/play',
    status: 404,
    body: { message: 'Channel not found' },
  },
  {
    operation: 'bridges.addChannel',
    request: 'POST /bridges/does-not-exist/addChannel',
    status: 404,
    body: { message: 'Bridge not found' },
  },
  {
    operation: 'channels.originate',
    request: 'POST /channels (unknown endpoint)',
    status: 500,
    body: { error: 'Allocation failed' },
  },
  {
    operation: 'channels.originate',
    request: 'POST /channels (no endpoint)',
    status: 400,
    body: { message: 'Endpoint must be specified' },
  },
  {
    operation: 'channels.create',
    request: 'POST /channels/create (Bogus/1)',
    status: 500,
    body: { error: 'Allocation failed' },
  },
  {
    operation: 'recordings.getStoredFile',
    request: 'GET /recordings/stored/none-such/file',
    status: 404,
    body: { message: 'Recording not found' },
  },
  // fixtures fact 2: the race right after StasisStart
  {
    operation: 'channels.dial',
    request: 'POST /channels/{id}/dial',
    status: 409,
    body: { message: 'Channel not in Stasis application' },
  },
];

const EXPECTED_CLASS: Record<number, new (...args: never[]) => AriError> = {
  400: AriBadRequestError,
  404: AriNotFoundError,
  409: AriNotInStasisError,
  500: AriServerError,
};
const EXPECTED_KIND: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  409: 'not_in_stasis',
  500: 'server_error',
};

describe('ARI error classification', () => {
  for (const rec of RECORDED) {
    const message = rec.body.message ?? rec.body.error;
    it(`${rec.request} → ${rec.status} ${message} (status recovered by the gateway)`, () => {
      const err = classifyAriError(rec.operation, ariClientError(rec.body), rec.status);
      expect(err).to.be.instanceOf(EXPECTED_CLASS[rec.status]);
      expect(err.kind).to.equal(EXPECTED_KIND[rec.status]);
      expect(err.status).to.equal(rec.status);
      expect(err.operation).to.equal(rec.operation);
      expect(err.asteriskMessage).to.equal(message);
      expect(err.message).to.include(rec.operation).and.include(message);
    });
    it(`${rec.request} → ${rec.status} ${message} (status inferred from the body alone)`, () => {
      const err = classifyAriError(rec.operation, ariClientError(rec.body));
      expect(err).to.be.instanceOf(EXPECTED_CLASS[rec.status]);
      expect(err.kind).to.equal(EXPECTED_KIND[rec.status]);
      expect(err.status).to.equal(rec.status);
      expect(err.asteriskMessage).to.equal(message);
    });
  }

  it('keeps the original rejection as the cause', () => {
    const original = ariClientError({ message: 'Channel not found' });
    const err = classifyAriError('channels.get', original);
    expect(err.cause).to.equal(original);
  });

  it('classifies the messages of res/ari/resource_*.c per operation when no status is known', () => {
    const cases: Array<
      [operation: string, message: string, cls: new (...a: never[]) => AriError, status: number]
    > = [
      // bridges.addChannel answers differently from channel operations for the same text
      ['bridges.addChannel', 'Channel not found', AriBadRequestError, 400],
      ['bridges.addChannel', 'Channel not in Stasis application', AriNotInStasisError, 422],
      ['bridges.removeChannel', 'Channel not in this bridge', AriBadRequestError, 422],
      ['bridges.addChannel', 'Bridge not in Stasis application', AriConflictError, 409],
      ['channels.answer', 'Channel in invalid state', AriConflictError, 412],
      ['channels.create', 'Channel with given unique ID already exists', AriConflictError, 409],
      ['channels.dial', "Channel is not in the 'Down' state", AriConflictError, 409],
      ['channels.dial', 'Dialing a channel not created by ARI', AriConflictError, 409],
      ['channels.dial', 'Callee not found', AriNotFoundError, 404],
      ['channels.originate', 'Provided originator channel was not found', AriBadRequestError, 400],
      ['channels.originate', 'Application or extension must be specified', AriBadRequestError, 400],
      ['channels.hangup', 'Invalid reason for hangup provided', AriBadRequestError, 400],
      ['channels.getVariable', 'Provided variable was not found', AriNotFoundError, 404],
      ['channels.record', 'specified format is unknown on this system', AriBadRequestError, 422],
      [
        'bridges.record',
        "Recording 'x' already exists and can not be overwritten",
        AriConflictError,
        409,
      ],
      ['playbacks.get', 'The playback cannot be found', AriNotFoundError, 404],
      ['playbacks.stop', 'Playback not found', AriNotFoundError, 404],
      ['applications.get', 'Application does not exist.', AriNotFoundError, 404],
      ['recordings.getStoredFile', 'The recording file could not be opened', AriServerError, 403],
      ['channels.answer', 'Failed to answer channel', AriServerError, 500],
    ];
    for (const [operation, message, cls, status] of cases) {
      const err = classifyAriError(operation, ariClientError({ message }));
      expect(err, `${operation}: ${message}`).to.be.instanceOf(cls);
      expect(err.status, `${operation}: ${message}`).to.equal(status);
    }
  });

  it('lets a recovered status win over the text', () => {
    const err = classifyAriError('channels.get', ariClientError({ message: 'something new' }), 404);
    expect(err).to.be.instanceOf(AriNotFoundError);
    const conflict = classifyAriError(
      'channels.play',
      ariClientError({ message: 'Channel not found' }),
      409,
    );
    expect(conflict).to.be.instanceOf(AriConflictError);
    expect(conflict.kind).to.equal('conflict');
  });

  it('only "Channel not in Stasis application" is not_in_stasis; other 409s are conflicts', () => {
    expect(
      classifyAriError(
        'bridges.play',
        ariClientError({ message: 'Bridge not in Stasis application' }),
        409,
      ).kind,
    ).to.equal('conflict');
    expect(
      classifyAriError(
        'channels.ring',
        ariClientError({ message: 'Channel not in Stasis application' }),
        409,
      ).kind,
    ).to.equal('not_in_stasis');
    expect(
      classifyAriError(
        'channels.ring',
        ariClientError({ message: 'Channel not in a Stasis application' }),
        409,
      ).kind,
    ).to.equal('not_in_stasis');
  });

  it('maps 422 to unprocessable and other 5xx to server errors', () => {
    const unprocessable = classifyAriError(
      'channels.continueInDialplan',
      ariClientError({ message: 'x' }),
      422,
    );
    expect(unprocessable).to.be.instanceOf(AriBadRequestError);
    expect(unprocessable.kind).to.equal('unprocessable');
    expect(unprocessable.status).to.equal(422);
    const unavailable = classifyAriError('channels.list', ariClientError({ message: 'x' }), 503);
    expect(unavailable).to.be.instanceOf(AriServerError);
    expect(unavailable.status).to.equal(503);
  });

  it('reads the status of the swagger response object ari-client rejects with when the body is empty', () => {
    const err = classifyAriError('channels.get', {
      status: 404,
      data: '',
      headers: {},
      url: 'http://x/ari/channels/1',
    });
    expect(err).to.be.instanceOf(AriNotFoundError);
    expect(err.status).to.equal(404);
  });

  it('turns socket errors into AriConnectionError without a status', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']) {
      const sockErr = Object.assign(new Error(`connect ${code} 127.0.0.1:8088`), { code });
      const err = classifyAriError('channels.list', sockErr);
      expect(err, code).to.be.instanceOf(AriConnectionError);
      expect(err.kind).to.equal('connection');
      expect(err.status).to.equal(undefined);
      expect(err.asteriskMessage).to.include(code);
    }
  });

  it("turns swagger-client's thrown string for an empty path id into a bad request", () => {
    const err = classifyAriError('channels.get', 'channelId is a required path param.');
    expect(err).to.be.instanceOf(AriBadRequestError);
    expect(err.asteriskMessage).to.equal('channelId is a required path param.');
  });

  it('keeps a non-JSON body as the message and an unknown text as kind unknown', () => {
    const html = classifyAriError('channels.list', new Error('<html>Bad Gateway</html>'), 502);
    expect(html).to.be.instanceOf(AriServerError);
    expect(html.asteriskMessage).to.equal('<html>Bad Gateway</html>');
    const unknown = classifyAriError(
      'channels.list',
      new Error('{"message":"something Asterisk never says"}'),
    );
    expect(unknown).to.be.instanceOf(AriError);
    expect(unknown.kind).to.equal('unknown');
    expect(unknown.status).to.equal(undefined);
  });

  it('passes AriErrors through unchanged', () => {
    const original = new AriNotFoundError('channels.get', 'Channel not found');
    expect(classifyAriError('channels.get', original)).to.equal(original);
  });

  it('parseFailure extracts message/error keys', () => {
    expect(parseFailure(new Error('{"error":"Allocation failed"}'))).to.deep.include({
      message: 'Allocation failed',
      errorKey: true,
      status: undefined,
    });
    expect(
      parseFailure({
        status: 409,
        data: Buffer.from('{"message":"Channel not in Stasis application"}'),
      }),
    ).to.deep.include({
      message: 'Channel not in Stasis application',
      status: 409,
    });
    expect(inferStatus('channels.get', 'Allocation failed', true)).to.equal(500);
  });

  describe('against the recorded traces', function () {
    const dir = new URL('../../../shared/fixtures/ari/traces/', import.meta.url);
    it('infers the recorded status of every error answer in the traces from its body', function () {
      if (!existsSync(dir)) this.skip(); // the traces live beside the repository, not in it
      const opOf = (method: string, path: string): string => {
        if (path.includes('/addChannel')) return 'bridges.addChannel';
        if (path.startsWith('/recordings/')) return 'recordings.getStoredFile';
        if (path === '/channels/create') return 'channels.create';
        if (path === '/channels') return 'channels.originate';
        if (path.endsWith('/play')) return 'channels.play';
        return method === 'DELETE' ? 'channels.hangup' : 'channels.get';
      };
      let checked = 0;
      for (const file of readdirSync(dir)) {
        for (const line of readFileSync(new URL(file, dir), 'utf8').split('\n')) {
          if (!line.trim()) continue;
          const rec = JSON.parse(line) as {
            kind: string;
            method: string;
            path: string;
            status: number;
            response: unknown;
          };
          if (rec.kind !== 'rest' || rec.status < 400) continue;
          const err = classifyAriError(
            opOf(rec.method, rec.path),
            new Error(JSON.stringify(rec.response)),
          );
          expect(err.status, `${rec.method} ${rec.path}`).to.equal(rec.status);
          checked += 1;
        }
      }
      expect(checked).to.be.greaterThan(5);
    });
  });
});
