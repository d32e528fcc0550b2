/**
 * OpenAPI paths of the recordings routes (src/recordings/routes.ts): a call's recording and the
 * recordings a call script's `record` verb made, each with GET (Range, ETag, signed links) and
 * HEAD.
 */
import {
  acceptOperatorToken,
  authErrors,
  callIdParameter,
  errorResponse,
  headOf,
  json,
  TAG,
  type JsonObject,
} from './common.ts';

/** The path items of the recordings routes, placed by the caller in the document's order. */
export interface RecordingPaths {
  /** `/v1/calls/{id}/recording`. */
  recording: JsonObject;
  /** `/v1/calls/{id}/recordings/{name}`. */
  scriptRecording: JsonObject;
}

/**
 * The recordings path items. Both GETs accept an operator token (the HEADs keep the schemes
 * GET has without it).
 */
export function recordingPaths(): RecordingPaths {
  const recording: JsonObject = {
    get: {
      operationId: 'getCallRecording',
      tags: [TAG.recordings],
      summary: "A call's recording (audio)",
      description:
        'The recorded conversation as `audio/wav` (RIFF PCM 8 kHz 16-bit mono), with HTTP Range (`Accept-Ranges: bytes`: one range per request, 206 + Content-Range). Authorised by an API key, or by a signed link as `call.ended` / `recording.ready` carry it (`?expires=<unix seconds>&sig=<hex HMAC-SHA256>`), so a CRM audio player can fetch it without a key. HEAD answers the headers only. See docs/recordings.md.',
      security: [{ bearerAuth: [] }, {}],
      parameters: [
        callIdParameter,
        {
          name: 'expires',
          in: 'query',
          required: false,
          description: 'Signed link: expiry, unix seconds.',
          schema: { type: 'string', pattern: '^[0-9]+$' },
        },
        {
          name: 'sig',
          in: 'query',
          required: false,
          description:
            'Signed link: hex HMAC-SHA256(RECORDING_LINK_SECRET, "recording:<id>:<expires>"). With it no API key is needed.',
          schema: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        },
        {
          name: 'Range',
          in: 'header',
          required: false,
          description: 'One byte range: `bytes=0-1023`, `bytes=1024-`, `bytes=-500`.',
          schema: { type: 'string' },
        },
        {
          name: 'If-None-Match',
          in: 'header',
          required: false,
          description:
            'ETags of copies the client holds (weak comparison), or `*`: 304 when the recording still matches.',
          schema: { type: 'string' },
        },
        {
          name: 'If-Modified-Since',
          in: 'header',
          required: false,
          description:
            'HTTP date (ignored with If-None-Match): 304 when the file has not changed since.',
          schema: { type: 'string' },
        },
        {
          name: 'If-Range',
          in: 'header',
          required: false,
          description:
            'With Range: the ETag or Last-Modified of the copy being resumed; when it no longer matches the whole file is sent (200).',
          schema: { type: 'string' },
        },
      ],
      responses: {
        '200': {
          description: 'The whole file.',
          headers: {
            'Accept-Ranges': { schema: { const: 'bytes' } },
            'Content-Length': { schema: { type: 'integer' } },
          },
          content: { 'audio/wav': { schema: { type: 'string', contentMediaType: 'audio/wav' } } },
        },
        '206': {
          description: 'The requested byte range.',
          headers: {
            'Content-Range': {
              description: '`bytes <first>-<last>/<size>`',
              schema: { type: 'string' },
            },
            'Content-Length': { schema: { type: 'integer' } },
          },
          content: { 'audio/wav': { schema: { type: 'string', contentMediaType: 'audio/wav' } } },
        },
        '304': {
          description:
            'Not modified: If-None-Match matched the current ETag (or was `*`), or If-Modified-Since is not older than the file. No body.',
          headers: {
            ETag: { schema: { type: 'string' } },
            'Last-Modified': { schema: { type: 'string' } },
          },
        },
        ...authErrors,
        '403': errorResponse(
          '`link_expired`, `link_invalid` (altered id, expiry or signature); `forbidden`, `ip_not_allowed`.',
        ),
        '404': errorResponse(
          '`call_not_found`, `recording_not_found` (the call was not recorded), `recording_failed` (it could not be stored), `recording_file_missing`.',
        ),
        '409': errorResponse(
          '`recording_not_ready`: recorded, not stored yet (wait for `recording.ready`).',
        ),
        '416': {
          description: '`range_not_satisfiable`, with `Content-Range: bytes */<size>`.',
          content: json('Error'),
        },
      },
    },
  };

  // HEAD of the recording (a player learns the size before fetching ranges): GET's answers
  // without their bodies.
  recording.head = headOf(recording.get as JsonObject, {
    operationId: 'headCallRecording',
    summary: "A call's recording: headers only",
    description:
      'The headers GET answers (`Content-Length`, `Accept-Ranges`, `ETag`, `Last-Modified`; `Content-Range` for a range) without the body. Same authorisation, parameters and statuses as GET.',
  });

  // A call script recording (record verb): served like the call's recording, by name.
  const callRecordingGet = recording.get as JsonObject;
  const scriptRecordingGet: JsonObject = {
    ...callRecordingGet,
    operationId: 'getCallScriptRecording',
    summary: "A call script's recording of the caller (audio)",
    description:
      'A recording the `record` verb of a call script made (`vrec-<uuid>`), taken from Asterisk and stored by the engine: `audio/wav` with HTTP Range, ETag and 304 exactly like the call recording. Authorised by an API key, or by the signed link the verb result carries (`record.url`, also sent to the CRM as `recording.url` with the next gather actionUrl or redirect request). Served after the call ended and after an engine restart. See docs/recordings.md.',
    parameters: (callRecordingGet.parameters as JsonObject[]).flatMap((parameter) => {
      if (parameter.name === 'id')
        return [
          parameter,
          {
            name: 'name',
            in: 'path',
            required: true,
            description: 'The recording name the verb result gives (`vrec-<uuid>`).',
            schema: { type: 'string' },
          },
        ];
      if (parameter.name === 'sig')
        return [
          {
            ...parameter,
            description:
              'Signed link: hex HMAC-SHA256(RECORDING_LINK_SECRET, "recording:<id>/<name>:<expires>"). With it no API key is needed.',
          },
        ];
      return [parameter];
    }),
    responses: {
      ...(callRecordingGet.responses as JsonObject),
      '403': errorResponse(
        '`link_expired`, `link_invalid` (altered id, name, expiry or signature); `forbidden`, `ip_not_allowed`.',
      ),
      '404': errorResponse(
        '`call_not_found` (not a call id), `recording_not_found` (the call has no stored recording of that name).',
      ),
    },
  };
  delete (scriptRecordingGet.responses as JsonObject)['409'];
  const scriptRecording: JsonObject = {
    get: scriptRecordingGet,
    head: headOf(scriptRecordingGet, {
      operationId: 'headCallScriptRecording',
      summary: "A call script's recording: headers only",
      description:
        'The headers GET answers without the body. Same authorisation, parameters and statuses as GET.',
    }),
  };
  acceptOperatorToken(callRecordingGet);
  acceptOperatorToken(scriptRecordingGet);
  return { recording, scriptRecording };
}
