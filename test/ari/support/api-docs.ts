/**
 * Swagger 1.1 declarations (the format Asterisk serves under /ari/api-docs/) for the ARI
 * operations the gateway uses, written for these tests from the operation list of Asterisk 22
 * (paths, nicknames, parameter names and kinds as in its channels/bridges/… resources).
 * `{format}` placeholders and `basePath` are as Asterisk emits them.
 */

type ParamType = 'path' | 'query' | 'body';
interface Op {
  path: string;
  method: 'GET' | 'POST' | 'DELETE' | 'PUT';
  nickname: string;
  responseClass: string;
  params?: Array<[name: string, type: ParamType, required?: boolean]>;
}

const RESOURCES: Record<string, Op[]> = {
  channels: [
    { path: '/channels', method: 'GET', nickname: 'list', responseClass: 'List[Channel]' },
    {
      path: '/channels',
      method: 'POST',
      nickname: 'originate',
      responseClass: 'Channel',
      params: [
        ['endpoint', 'query', true],
        ['extension', 'query'],
        ['context', 'query'],
        ['priority', 'query'],
        ['label', 'query'],
        ['app', 'query'],
        ['appArgs', 'query'],
        ['callerId', 'query'],
        ['timeout', 'query'],
        ['variables', 'body'],
        ['channelId', 'query'],
        ['otherChannelId', 'query'],
        ['originator', 'query'],
        ['formats', 'query'],
      ],
    },
    {
      path: '/channels/create',
      method: 'POST',
      nickname: 'create',
      responseClass: 'Channel',
      params: [
        ['endpoint', 'query', true],
        ['app', 'query', true],
        ['appArgs', 'query'],
        ['channelId', 'query'],
        ['otherChannelId', 'query'],
        ['originator', 'query'],
        ['formats', 'query'],
        ['variables', 'body'],
      ],
    },
    {
      path: '/channels/{channelId}',
      method: 'GET',
      nickname: 'get',
      responseClass: 'Channel',
      params: [['channelId', 'path', true]],
    },
    {
      path: '/channels/{channelId}',
      method: 'DELETE',
      nickname: 'hangup',
      responseClass: 'void',
      params: [
        ['channelId', 'path', true],
        ['reason_code', 'query'],
        ['reason', 'query'],
      ],
    },
    {
      path: '/channels/{channelId}/continue',
      method: 'POST',
      nickname: 'continueInDialplan',
      responseClass: 'void',
      params: [
        ['channelId', 'path', true],
        ['context', 'query'],
        ['extension', 'query'],
        ['priority', 'query'],
        ['label', 'query'],
      ],
    },
    {
      path: '/channels/{channelId}/answer',
      method: 'POST',
      nickname: 'answer',
      responseClass: 'void',
      params: [['channelId', 'path', true]],
    },
    {
      path: '/channels/{channelId}/ring',
      method: 'POST',
      nickname: 'ring',
      responseClass: 'void',
      params: [['channelId', 'path', true]],
    },
    {
      path: '/channels/{channelId}/ring',
      method: 'DELETE',
      nickname: 'ringStop',
      responseClass: 'void',
      params: [['channelId', 'path', true]],
    },
    {
      path: '/channels/{channelId}/play',
      method: 'POST',
      nickname: 'play',
      responseClass: 'Playback',
      params: [
        ['channelId', 'path', true],
        ['media', 'query', true],
        ['lang', 'query'],
        ['offsetms', 'query'],
        ['skipms', 'query'],
        ['playbackId', 'query'],
      ],
    },
    {
      path: '/channels/{channelId}/record',
      method: 'POST',
      nickname: 'record',
      responseClass: 'LiveRecording',
      params: [
        ['channelId', 'path', true],
        ['name', 'query', true],
        ['format', 'query', true],
        ['maxDurationSeconds', 'query'],
        ['maxSilenceSeconds', 'query'],
        ['ifExists', 'query'],
        ['beep', 'query'],
        ['terminateOn', 'query'],
      ],
    },
    {
      path: '/channels/{channelId}/variable',
      method: 'GET',
      nickname: 'getChannelVar',
      responseClass: 'Variable',
      params: [
        ['channelId', 'path', true],
        ['variable', 'query', true],
      ],
    },
    {
      path: '/channels/{channelId}/variable',
      method: 'POST',
      nickname: 'setChannelVar',
      responseClass: 'void',
      params: [
        ['channelId', 'path', true],
        ['variable', 'query', true],
        ['value', 'query'],
      ],
    },
    {
      path: '/channels/{channelId}/dial',
      method: 'POST',
      nickname: 'dial',
      responseClass: 'void',
      params: [
        ['channelId', 'path', true],
        ['caller', 'query'],
        ['timeout', 'query'],
      ],
    },
  ],
  bridges: [
    { path: '/bridges', method: 'GET', nickname: 'list', responseClass: 'List[Bridge]' },
    {
      path: '/bridges/{bridgeId}',
      method: 'POST',
      nickname: 'createWithId',
      responseClass: 'Bridge',
      params: [
        ['type', 'query'],
        ['bridgeId', 'path', true],
        ['name', 'query'],
      ],
    },
    {
      path: '/bridges/{bridgeId}',
      method: 'GET',
      nickname: 'get',
      responseClass: 'Bridge',
      params: [['bridgeId', 'path', true]],
    },
    {
      path: '/bridges/{bridgeId}',
      method: 'DELETE',
      nickname: 'destroy',
      responseClass: 'void',
      params: [['bridgeId', 'path', true]],
    },
    {
      path: '/bridges/{bridgeId}/addChannel',
      method: 'POST',
      nickname: 'addChannel',
      responseClass: 'void',
      params: [
        ['bridgeId', 'path', true],
        ['channel', 'query', true],
        ['role', 'query'],
      ],
    },
    {
      path: '/bridges/{bridgeId}/removeChannel',
      method: 'POST',
      nickname: 'removeChannel',
      responseClass: 'void',
      params: [
        ['bridgeId', 'path', true],
        ['channel', 'query', true],
      ],
    },
    {
      path: '/bridges/{bridgeId}/play',
      method: 'POST',
      nickname: 'play',
      responseClass: 'Playback',
      params: [
        ['bridgeId', 'path', true],
        ['media', 'query', true],
        ['lang', 'query'],
        ['playbackId', 'query'],
      ],
    },
    {
      path: '/bridges/{bridgeId}/record',
      method: 'POST',
      nickname: 'record',
      responseClass: 'LiveRecording',
      params: [
        ['bridgeId', 'path', true],
        ['name', 'query', true],
        ['format', 'query', true],
        ['maxDurationSeconds', 'query'],
        ['ifExists', 'query'],
        ['beep', 'query'],
      ],
    },
  ],
  playbacks: [
    {
      path: '/playbacks/{playbackId}',
      method: 'GET',
      nickname: 'get',
      responseClass: 'Playback',
      params: [['playbackId', 'path', true]],
    },
    {
      path: '/playbacks/{playbackId}',
      method: 'DELETE',
      nickname: 'stop',
      responseClass: 'void',
      params: [['playbackId', 'path', true]],
    },
  ],
  recordings: [
    {
      path: '/recordings/stored/{recordingName}',
      method: 'GET',
      nickname: 'getStored',
      responseClass: 'StoredRecording',
      params: [['recordingName', 'path', true]],
    },
    {
      path: '/recordings/stored/{recordingName}',
      method: 'DELETE',
      nickname: 'deleteStored',
      responseClass: 'void',
      params: [['recordingName', 'path', true]],
    },
    {
      path: '/recordings/stored/{recordingName}/file',
      method: 'GET',
      nickname: 'getStoredFile',
      responseClass: 'binary',
      params: [['recordingName', 'path', true]],
    },
  ],
  endpoints: [
    { path: '/endpoints', method: 'GET', nickname: 'list', responseClass: 'List[Endpoint]' },
    {
      path: '/endpoints/{tech}/{resource}',
      method: 'GET',
      nickname: 'get',
      responseClass: 'Endpoint',
      params: [
        ['tech', 'path', true],
        ['resource', 'path', true],
      ],
    },
  ],
  deviceStates: [
    { path: '/deviceStates', method: 'GET', nickname: 'list', responseClass: 'List[DeviceState]' },
  ],
  applications: [
    { path: '/applications', method: 'GET', nickname: 'list', responseClass: 'List[Application]' },
    {
      path: '/applications/{applicationName}',
      method: 'GET',
      nickname: 'get',
      responseClass: 'Application',
      params: [['applicationName', 'path', true]],
    },
  ],
  events: [],
};

/** Names of the declared resources (`GET /ari/api-docs/<name>.json`). */
export const API_RESOURCES = Object.keys(RESOURCES);

/** `resources.json`: the resource listing. */
export function resourceListing(basePath: string): unknown {
  return {
    apiVersion: '10.0.0',
    swaggerVersion: '1.1',
    basePath,
    apis: API_RESOURCES.map((name) => ({
      path: `/api-docs/${name}.{format}`,
      description: `${name} resources`,
    })),
  };
}

/** The API declaration of one resource, or undefined. */
export function apiDeclaration(name: string, basePath: string): unknown {
  const ops = RESOURCES[name];
  if (!ops) return undefined;
  const byPath = new Map<string, Op[]>();
  for (const op of ops) byPath.set(op.path, [...(byPath.get(op.path) ?? []), op]);
  return {
    apiVersion: '2.0.0',
    swaggerVersion: '1.1',
    basePath,
    resourcePath: `/api-docs/${name}.{format}`,
    apis: [...byPath].map(([path, list]) => ({
      path,
      operations: list.map((op) => ({
        httpMethod: op.method,
        nickname: op.nickname,
        responseClass: op.responseClass,
        parameters: (op.params ?? []).map(([pname, paramType, required]) => ({
          name: pname,
          paramType,
          required: required ?? false,
          allowMultiple: false,
          dataType: paramType === 'body' ? 'containers' : 'string',
        })),
      })),
    })),
    models: {},
  };
}
