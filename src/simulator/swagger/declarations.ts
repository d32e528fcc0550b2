/**
 * Swagger 1.1 declarations of the ARI subset the simulator implements. Operation nicknames, paths,
 * parameter names, `paramType`, `dataType`, `required` and `allowMultiple` are the same as Asterisk
 * 22's own api-docs, so ari-client builds identical methods (`client.channels.originate`, …). The
 * REST router dispatches on this table too, so the docs and the behaviour cannot drift apart.
 * Descriptions are the simulator's own wording.
 */

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type ParamType = 'path' | 'query' | 'body';
export type DataType = 'string' | 'int' | 'long' | 'boolean' | 'containers' | 'object';

/** One operation parameter, as Swagger 1.1 declares it. */
export interface ParamDecl {
  name: string;
  description: string;
  paramType: ParamType;
  required: boolean;
  allowMultiple: boolean;
  dataType: DataType;
  defaultValue?: string | number | boolean;
  allowableValues?: { valueType: 'LIST'; values: string[] };
}

/** One operation (HTTP method on a path). */
export interface OperationDecl {
  httpMethod: HttpMethod;
  nickname: string;
  summary: string;
  /** Swagger response class: `void`, `binary`, a model id or `List[Model]`. */
  responseClass: string;
  parameters: ParamDecl[];
  errorResponses?: Array<{ code: number; reason: string }>;
  upgrade?: 'websocket';
  websocketProtocol?: 'ari';
}

/** One path and its operations. */
export interface ApiDecl {
  path: string;
  description: string;
  operations: OperationDecl[];
}

/** One model property. `type` is a primitive, a model id or `List[...]`. */
export interface PropertyDecl {
  type: string;
  required?: boolean;
  description?: string;
  allowableValues?: { valueType: 'LIST'; values: string[] };
}

/** One model. */
export interface ModelDecl {
  id: string;
  description: string;
  properties: Record<string, PropertyDecl>;
  discriminator?: string;
  subTypes?: string[];
}

/** The resources the simulator serves, in the order `resources.json` lists them. */
export type ResourceName =
  | 'asterisk'
  | 'endpoints'
  | 'channels'
  | 'bridges'
  | 'recordings'
  | 'playbacks'
  | 'deviceStates'
  | 'events'
  | 'applications';

/** One resource (`/api-docs/<name>.json`). */
export interface ResourceDecl {
  name: ResourceName;
  description: string;
  /** `swaggerVersion` of the declaration (Asterisk serves events.json as 1.2, the others as 1.1). */
  swaggerVersion: '1.1' | '1.2';
  apis: ApiDecl[];
  models: ModelDecl[];
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

type ParamOpts = Partial<
  Pick<ParamDecl, 'required' | 'allowMultiple' | 'defaultValue' | 'allowableValues'>
> & {
  dataType?: DataType;
};

function path(name: string, description: string): ParamDecl {
  return {
    name,
    description,
    paramType: 'path',
    required: true,
    allowMultiple: false,
    dataType: 'string',
  };
}

function query(name: string, description: string, opts: ParamOpts = {}): ParamDecl {
  const decl: ParamDecl = {
    name,
    description,
    paramType: 'query',
    required: opts.required ?? false,
    allowMultiple: opts.allowMultiple ?? false,
    dataType: opts.dataType ?? 'string',
  };
  if (opts.defaultValue !== undefined) decl.defaultValue = opts.defaultValue;
  if (opts.allowableValues) decl.allowableValues = opts.allowableValues;
  return decl;
}

function variablesBody(description: string, required = false): ParamDecl {
  return {
    name: 'variables',
    description,
    paramType: 'body',
    required,
    allowMultiple: false,
    dataType: 'containers',
  };
}

function list(values: string[]): { valueType: 'LIST'; values: string[] } {
  return { valueType: 'LIST', values };
}

function op(
  httpMethod: HttpMethod,
  nickname: string,
  summary: string,
  responseClass: string,
  parameters: ParamDecl[] = [],
  errorResponses: Array<[number, string]> = [],
): OperationDecl {
  const decl: OperationDecl = { httpMethod, nickname, summary, responseClass, parameters };
  if (errorResponses.length > 0)
    decl.errorResponses = errorResponses.map(([code, reason]) => ({ code, reason }));
  return decl;
}

function model(
  id: string,
  description: string,
  properties: Record<string, PropertyDecl>,
): ModelDecl {
  return { id, description, properties };
}

const req = (type: string, description?: string): PropertyDecl =>
  description === undefined ? { type, required: true } : { type, required: true, description };
const opt = (type: string, description?: string): PropertyDecl =>
  description === undefined ? { type, required: false } : { type, required: false, description };

// ---------------------------------------------------------------------------------------------
// Shared parameters
// ---------------------------------------------------------------------------------------------

const channelIdPath = path('channelId', "Channel's id");
const bridgeIdPath = path('bridgeId', "Bridge's id");
const VARIABLES_DOC =
  'The "variables" key of the JSON body holds channel variables to set at creation, e.g. ' +
  '{"variables": {"CALLERID(name)": "Alice"}}. Other keys of the body are read as query parameters.';

function originateParams(withChannelIdQuery: boolean): ParamDecl[] {
  const params: ParamDecl[] = [
    query('endpoint', 'Endpoint to call, e.g. PJSIP/101.', { required: true }),
    query('extension', 'Extension to run after the endpoint answers (instead of app).'),
    query(
      'context',
      "Context to run after the endpoint answers; 'default' when omitted (instead of app).",
    ),
    query(
      'priority',
      'Priority to run after the endpoint answers; 1 when omitted (instead of app).',
      { dataType: 'long' },
    ),
    query('label', 'Label to run after the endpoint answers; wins over priority (instead of app).'),
    query('app', 'Stasis application the channel enters when the endpoint answers.'),
    query('appArgs', 'Comma-separated arguments of the Stasis application.'),
    query('callerId', 'Caller ID of the call, e.g. "Name" <number>.'),
    query('timeout', 'Seconds to ring before giving up, -1 for no timeout.', {
      dataType: 'int',
      defaultValue: 30,
    }),
    variablesBody(VARIABLES_DOC),
  ];
  if (withChannelIdQuery) params.push(query('channelId', 'Unique id to give the new channel.'));
  params.push(
    query('otherChannelId', 'Unique id of the second channel of a Local channel pair.'),
    query('originator', 'Unique id of the channel this call is made on behalf of.'),
    query('formats', 'Format capabilities when no originator is given, e.g. "ulaw,slin16".'),
  );
  return params;
}

function playParams(withPlaybackIdQuery: boolean, bridge: boolean): ParamDecl[] {
  const params: ParamDecl[] = [
    query(
      'media',
      'Media URIs to play, in order (sound:, recording:, number:, digits:, characters:, tone:).',
      {
        required: true,
        allowMultiple: true,
      },
    ),
  ];
  if (bridge) params.push(query('announcer_format', 'Format of the announcer channel.'));
  params.push(
    query('lang', 'Language of the sounds.'),
    query(
      'offsetms',
      'Milliseconds to skip at the start of the media.',
      bridge ? { dataType: 'int', defaultValue: 0 } : { dataType: 'int' },
    ),
    query('skipms', 'Milliseconds to skip for forward/reverse.', {
      dataType: 'int',
      defaultValue: 3000,
    }),
  );
  if (withPlaybackIdQuery) params.push(query('playbackId', 'Unique id to give the playback.'));
  return params;
}

function recordParams(bridge: boolean): ParamDecl[] {
  const params: ParamDecl[] = [
    query('name', 'Recording name (file name without extension).', { required: true }),
    query('format', 'File format, e.g. wav.', { required: true }),
  ];
  if (bridge) params.push(query('recorder_format', 'Format of the recorder channel.'));
  params.push(
    query('maxDurationSeconds', 'Maximum duration in seconds, 0 for none.', {
      dataType: 'int',
      defaultValue: 0,
    }),
    query('maxSilenceSeconds', 'Maximum silence in seconds, 0 for none.', {
      dataType: 'int',
      defaultValue: 0,
    }),
    query('ifExists', 'What to do when the recording exists: fail, overwrite or append.', {
      defaultValue: 'fail',
      allowableValues: list(['fail', 'overwrite', 'append']),
    }),
    query('beep', 'Play a beep before recording.', { dataType: 'boolean', defaultValue: false }),
    query('terminateOn', 'DTMF that ends the recording: none, any, * or #.', {
      defaultValue: 'none',
      allowableValues: list(['none', 'any', '*', '#']),
    }),
  );
  return params;
}

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

const CHANNEL_STATES = [
  'Down',
  'Rsrved',
  'OffHook',
  'Dialing',
  'Ring',
  'Ringing',
  'Up',
  'Busy',
  'Dialing Offhook',
  'Pre-ring',
  'Unknown',
];

const channelModels: ModelDecl[] = [
  model('CallerID', 'Caller identification', { name: req('string'), number: req('string') }),
  model('DialplanCEP', 'Dialplan location (context/extension/priority)', {
    context: req('string', 'Context in the dialplan'),
    exten: req('string', 'Extension in the dialplan'),
    priority: req('long', 'Priority in the dialplan'),
    app_name: req('string', 'Name of the dialplan application running'),
    app_data: req('string', 'Arguments of the dialplan application running'),
  }),
  model('Channel', 'A connection between Asterisk and an endpoint.', {
    id: req('string', 'Unique id of the channel (AMI Uniqueid).'),
    protocol_id: req('string', 'Protocol id of the channel driver (SIP Call-ID for PJSIP).'),
    name: req('string', 'Channel name, e.g. PJSIP/101-00000037.'),
    state: { type: 'string', required: true, allowableValues: list(CHANNEL_STATES) },
    caller: req('CallerID'),
    connected: req('CallerID'),
    accountcode: req('string'),
    dialplan: req('DialplanCEP', 'Where the channel is in the dialplan'),
    creationtime: req('Date', 'When the channel was created'),
    language: req('string', 'Default language of the channel'),
    channelvars: opt('object', 'Channel variables'),
  }),
  model('Variable', 'The value of a channel variable', { value: req('string', 'The value') }),
];

const bridgeModel = model('Bridge', 'Mixes the media of the channels in it.', {
  id: req('string', 'Unique id of the bridge'),
  technology: req(
    'string',
    'Bridging technology in use (simple_bridge, native_rtp, softmix, holding_bridge)',
  ),
  bridge_type: {
    type: 'string',
    required: true,
    description: 'Bridge type',
    allowableValues: list(['mixing', 'holding']),
  },
  bridge_class: req('string', 'Bridge class'),
  creator: req('string', 'Who created the bridge'),
  name: req('string', 'Name given by the creator'),
  channels: req('List[string]', 'Ids of the channels in the bridge'),
  video_mode: opt('string', 'Video mode: none, talker, sfu or single'),
  video_source_id: opt('string', 'Channel that is the video source'),
  creationtime: req('Date', 'When the bridge was created'),
});

const playbackModel = model('Playback', 'Playback of media to a channel or bridge', {
  id: req('string', 'Playback id'),
  media_uri: req('string', 'Media being played'),
  next_media_uri: opt('string', 'Next media of the list, if any'),
  target_uri: req('string', 'channel:<id> or bridge:<id>'),
  language: { type: 'string', description: 'Language of the sounds' },
  state: {
    type: 'string',
    required: true,
    description: 'Playback state',
    allowableValues: list(['queued', 'playing', 'continuing', 'done', 'failed']),
  },
});

const liveRecordingModel = model('LiveRecording', 'A recording in progress', {
  name: req('string', 'Recording name'),
  format: req('string', 'Recording format'),
  target_uri: req('string', 'channel:<id> or bridge:<id>'),
  state: {
    type: 'string',
    required: true,
    allowableValues: list(['queued', 'recording', 'paused', 'done', 'failed', 'canceled']),
  },
  duration: opt('int', 'Duration in seconds'),
  talking_duration: opt('int', 'Talking time in seconds (with maxSilenceSeconds)'),
  silence_duration: opt('int', 'Silence time in seconds (with maxSilenceSeconds)'),
  cause: opt('string', 'Why the recording failed'),
});

const storedRecordingModel = model('StoredRecording', 'A finished recording', {
  name: req('string'),
  format: req('string'),
});

const endpointModel = model(
  'Endpoint',
  'A device that places or receives calls, identified by technology/resource.',
  {
    technology: req('string', 'Technology, e.g. PJSIP'),
    resource: req('string', 'Resource, e.g. 101'),
    state: {
      type: 'string',
      required: false,
      description: 'Endpoint state',
      allowableValues: list(['unknown', 'offline', 'online']),
    },
    channel_ids: req('List[string]', 'Channels of the endpoint'),
  },
);

const deviceStateModel = model('DeviceState', 'The state of a device.', {
  name: req('string', 'Device name'),
  state: {
    type: 'string',
    required: true,
    description: 'Device state',
    allowableValues: list([
      'UNKNOWN',
      'NOT_INUSE',
      'INUSE',
      'BUSY',
      'INVALID',
      'UNAVAILABLE',
      'RINGING',
      'RINGINUSE',
      'ONHOLD',
    ]),
  },
});

const applicationModel = model('Application', 'A Stasis application', {
  name: req('string', 'Application name'),
  channel_ids: req('List[string]', 'Channels subscribed to'),
  bridge_ids: req('List[string]', 'Bridges subscribed to'),
  endpoint_ids: req('List[string]', 'Endpoints subscribed to ({tech}/{resource})'),
  device_names: req('List[string]', 'Devices subscribed to'),
  events_allowed: req('List[object]', 'Event types sent to the application'),
  events_disallowed: req('List[object]', 'Event types not sent to the application'),
});

const asteriskModels: ModelDecl[] = [
  model('BuildInfo', 'How Asterisk was built', {
    os: req('string'),
    kernel: req('string'),
    options: req('string'),
    machine: req('string'),
    date: req('string'),
    user: req('string'),
  }),
  model('SystemInfo', 'The Asterisk system', { version: req('string'), entity_id: req('string') }),
  model('SetId', 'Effective user/group id', { user: req('string'), group: req('string') }),
  model('ConfigInfo', 'Asterisk configuration', {
    name: req('string'),
    default_language: req('string'),
    max_channels: opt('int'),
    max_open_files: opt('int'),
    max_load: opt('double'),
    setid: req('SetId'),
  }),
  model('StatusInfo', 'Asterisk status', {
    startup_time: req('Date'),
    last_reload_time: req('Date'),
  }),
  model('AsteriskInfo', 'Asterisk system information', {
    build: opt('BuildInfo'),
    system: opt('SystemInfo'),
    config: opt('ConfigInfo'),
    status: opt('StatusInfo'),
  }),
  model('AsteriskPing', 'Answer to a ping', {
    asterisk_id: req('string'),
    ping: req('string'),
    timestamp: req('string'),
  }),
];

/** Event models: every event type the simulator can send (ari-client needs a model per type). */
const EVENT_MODELS: Array<[string, string, Record<string, PropertyDecl>]> = [
  [
    'StasisStart',
    'A channel entered a Stasis application.',
    {
      args: req('List[string]', 'Application arguments'),
      channel: req('Channel'),
      replace_channel: opt('Channel'),
    },
  ],
  ['StasisEnd', 'A channel left a Stasis application.', { channel: req('Channel') }],
  ['ChannelCreated', 'A channel was created.', { channel: req('Channel') }],
  [
    'ChannelDestroyed',
    'A channel was destroyed.',
    {
      cause: req('int', 'Q.850 cause'),
      cause_txt: req('string', 'Text of the cause'),
      tech_cause: { type: 'int', description: 'Technology-specific cause (SIP status)' },
      channel: req('Channel'),
    },
  ],
  ['ChannelStateChange', 'The state of a channel changed.', { channel: req('Channel') }],
  [
    'ChannelHangupRequest',
    'A hang-up was requested.',
    {
      cause: { type: 'int', description: 'Q.850 cause' },
      tech_cause: { type: 'int', description: 'Technology-specific cause' },
      soft: { type: 'boolean', description: 'Whether it was a soft hang-up' },
      channel: req('Channel'),
    },
  ],
  [
    'ChannelVarset',
    'A channel variable changed.',
    { variable: req('string'), value: req('string'), channel: opt('Channel') },
  ],
  [
    'ChannelCallerId',
    'The caller ID of a channel changed.',
    {
      caller_presentation: req('int'),
      caller_presentation_txt: req('string'),
      channel: req('Channel'),
    },
  ],
  ['ChannelConnectedLine', 'The connected line of a channel changed.', { channel: req('Channel') }],
  [
    'ChannelDialplan',
    'A channel moved in the dialplan.',
    { channel: req('Channel'), dialplan_app: req('string'), dialplan_app_data: req('string') },
  ],
  [
    'ChannelDtmfReceived',
    'DTMF was received on a channel.',
    { digit: req('string'), duration_ms: req('int'), channel: req('Channel') },
  ],
  [
    'ChannelEnteredBridge',
    'A channel entered a bridge.',
    { bridge: req('Bridge'), channel: opt('Channel') },
  ],
  [
    'ChannelLeftBridge',
    'A channel left a bridge.',
    { bridge: req('Bridge'), channel: req('Channel') },
  ],
  ['BridgeCreated', 'A bridge was created.', { bridge: req('Bridge') }],
  ['BridgeDestroyed', 'A bridge was destroyed.', { bridge: req('Bridge') }],
  [
    'Dial',
    'Dialing state changed.',
    {
      caller: opt('Channel', 'The calling channel'),
      peer: req('Channel', 'The dialled channel'),
      forward: opt('string'),
      forwarded: opt('Channel'),
      dialstring: opt('string'),
      dialstatus: req('string'),
    },
  ],
  ['PlaybackStarted', 'A playback started.', { playback: req('Playback') }],
  ['PlaybackContinuing', 'A playback moved to its next media.', { playback: req('Playback') }],
  ['PlaybackFinished', 'A playback finished.', { playback: req('Playback') }],
  ['RecordingStarted', 'A recording started.', { recording: req('LiveRecording') }],
  ['RecordingFinished', 'A recording finished.', { recording: req('LiveRecording') }],
  ['RecordingFailed', 'A recording failed.', { recording: req('LiveRecording') }],
  ['DeviceStateChanged', 'A device state changed.', { device_state: req('DeviceState') }],
  ['EndpointStateChange', 'An endpoint changed.', { endpoint: req('Endpoint') }],
  ['ApplicationReplaced', 'Another WebSocket took over the application.', {}],
];

const eventModels: ModelDecl[] = [
  {
    id: 'Message',
    description: 'Base type of errors and events',
    discriminator: 'type',
    properties: {
      type: req('string', 'Type of the message'),
      asterisk_id: opt('string', 'Id of the Asterisk instance'),
    },
    subTypes: ['Event'],
  },
  {
    id: 'Event',
    description: 'Base type of asynchronous events',
    properties: {
      application: req('string', 'Application receiving the event'),
      timestamp: req('Date', 'When the event was created'),
    },
    subTypes: EVENT_MODELS.map(([id]) => id),
  },
  ...EVENT_MODELS.map(([id, description, properties]) => model(id, description, properties)),
];

/** Names of the event types the simulator declares (for tests and `emitRawEvent` checks). */
export const DECLARED_EVENT_TYPES: readonly string[] = EVENT_MODELS.map(([id]) => id);

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

export const RESOURCES: readonly ResourceDecl[] = [
  {
    name: 'asterisk',
    description: 'Asterisk resources',
    swaggerVersion: '1.1',
    apis: [
      {
        path: '/asterisk/info',
        description: 'Asterisk system information',
        operations: [
          op('GET', 'getInfo', 'Gets Asterisk system information.', 'AsteriskInfo', [
            query('only', 'Filter: build, system, config, status.', {
              allowMultiple: true,
              allowableValues: list(['build', 'system', 'config', 'status']),
            }),
          ]),
        ],
      },
      {
        path: '/asterisk/ping',
        description: 'Asterisk ping',
        operations: [op('GET', 'ping', 'Response pong message.', 'AsteriskPing')],
      },
    ],
    models: asteriskModels,
  },
  {
    name: 'endpoints',
    description: 'Endpoint resources',
    swaggerVersion: '1.1',
    apis: [
      {
        path: '/endpoints',
        description: 'Asterisk endpoints',
        operations: [op('GET', 'list', 'List all endpoints.', 'List[Endpoint]')],
      },
      {
        path: '/endpoints/{tech}',
        description: 'Asterisk endpoints of one technology',
        operations: [
          op(
            'GET',
            'listByTech',
            'List the endpoints of a technology.',
            'List[Endpoint]',
            [{ ...path('tech', 'Technology, e.g. PJSIP'), required: false }],
            [[404, 'Endpoints not found']],
          ),
        ],
      },
      {
        path: '/endpoints/{tech}/{resource}',
        description: 'Single endpoint',
        operations: [
          op(
            'GET',
            'get',
            'Details of an endpoint.',
            'Endpoint',
            [
              { ...path('tech', 'Technology, e.g. PJSIP'), required: false },
              { ...path('resource', 'Resource, e.g. 101'), required: false },
            ],
            [
              [400, 'Invalid parameters'],
              [404, 'Endpoints not found'],
            ],
          ),
        ],
      },
    ],
    models: [endpointModel],
  },
  {
    name: 'channels',
    description: 'Channel resources',
    swaggerVersion: '1.1',
    apis: [
      {
        path: '/channels',
        description: 'Active channels',
        operations: [
          op('GET', 'list', 'List all active channels.', 'List[Channel]'),
          op(
            'POST',
            'originate',
            'Create a new channel (originate).',
            'Channel',
            originateParams(true),
            [
              [400, 'Invalid parameters for originating a channel.'],
              [409, 'Channel with given unique ID already exists.'],
            ],
          ),
        ],
      },
      {
        path: '/channels/create',
        description: 'Create a channel in a Stasis application without dialling it.',
        operations: [
          op(
            'POST',
            'create',
            'Create channel.',
            'Channel',
            [
              query('endpoint', 'Endpoint of the channel, e.g. PJSIP/101.', { required: true }),
              query('app', 'Stasis application the channel enters.', { required: true }),
              query('appArgs', 'Comma-separated arguments of the Stasis application.'),
              query('channelId', 'Unique id to give the new channel.'),
              query('otherChannelId', 'Unique id of the second channel of a Local channel pair.'),
              query('originator', 'Unique id of the calling channel.'),
              query('formats', 'Format capabilities when no originator is given.'),
              variablesBody(VARIABLES_DOC),
            ],
            [[409, 'Channel with given unique ID already exists.']],
          ),
        ],
      },
      {
        path: '/channels/{channelId}',
        description: 'Active channel',
        operations: [
          op(
            'GET',
            'get',
            'Channel details.',
            'Channel',
            [channelIdPath],
            [[404, 'Channel not found']],
          ),
          op(
            'POST',
            'originateWithId',
            'Create a new channel (originate with id).',
            'Channel',
            [
              { ...channelIdPath, description: 'Unique id to give the new channel.' },
              ...originateParams(false),
            ],
            [
              [400, 'Invalid parameters for originating a channel.'],
              [409, 'Channel with given unique ID already exists.'],
            ],
          ),
          op(
            'DELETE',
            'hangup',
            'Delete (i.e. hangup) a channel.',
            'void',
            [
              channelIdPath,
              query('reason_code', 'Q.850 cause of the hang-up.'),
              query(
                'reason',
                'Reason of the hang-up: normal, busy, congestion, no_answer, answered_elsewhere.',
                {
                  allowableValues: list([
                    'normal',
                    'busy',
                    'congestion',
                    'no_answer',
                    'timeout',
                    'rejected',
                    'unallocated',
                    'normal_unspecified',
                    'number_incomplete',
                    'codec_mismatch',
                    'interworking',
                    'failure',
                    'answered_elsewhere',
                  ]),
                },
              ),
            ],
            [
              [400, 'Invalid reason for hangup provided'],
              [404, 'Channel not found'],
            ],
          ),
        ],
      },
      {
        path: '/channels/{channelId}/continue',
        description: 'Exit application; continue execution in the dialplan',
        operations: [
          op(
            'POST',
            'continueInDialplan',
            'Exit application; continue execution in the dialplan.',
            'void',
            [
              channelIdPath,
              query('context', 'Context to continue to.'),
              query('extension', 'Extension to continue to.'),
              query('priority', 'Priority to continue to.', { dataType: 'int' }),
              query('label', 'Label to continue to; wins over priority.'),
            ],
            [
              [404, 'Channel not found'],
              [409, 'Channel not in a Stasis application'],
              [412, 'Channel in invalid state'],
            ],
          ),
        ],
      },
      {
        path: '/channels/{channelId}/answer',
        description: 'Answer a channel',
        operations: [
          op(
            'POST',
            'answer',
            'Answer a channel.',
            'void',
            [channelIdPath],
            [
              [404, 'Channel not found'],
              [409, 'Channel not in a Stasis application'],
              [412, 'Channel in invalid state'],
            ],
          ),
        ],
      },
      {
        path: '/channels/{channelId}/ring',
        description: 'Send a ringing indication to a channel',
        operations: [
          op(
            'POST',
            'ring',
            'Indicate ringing to a channel.',
            'void',
            [channelIdPath],
            [
              [404, 'Channel not found'],
              [409, 'Channel not in a Stasis application'],
              [412, 'Channel in invalid state'],
            ],
          ),
          op(
            'DELETE',
            'ringStop',
            'Stop ringing indication on a channel if locally generated.',
            'void',
            [channelIdPath],
            [
              [404, 'Channel not found'],
              [409, 'Channel not in a Stasis application'],
              [412, 'Channel in invalid state'],
            ],
          ),
        ],
      },
      {
        path: '/channels/{channelId}/play',
        description: 'Play media to a channel',
        operations: [
          op(
            'POST',
            'play',
            'Start playback of media.',
            'Playback',
            [channelIdPath, ...playParams(true, false)],
            [
              [404, 'Channel not found'],
              [409, 'Channel not in a Stasis application'],
              [412, 'Channel in invalid state'],
            ],
          ),
        ],
      },
      {
        path: '/channels/{channelId}/play/{playbackId}',
        description: 'Play media to a channel',
        operations: [
          op(
            'POST',
            'playWithId',
            'Start playback of media and specify the playbackId.',
            'Playback',
            [channelIdPath, path('playbackId', 'Playback id.'), ...playParams(false, false)],
            [
              [404, 'Channel not found'],
              [409, 'Channel not in a Stasis application'],
              [412, 'Channel in invalid state'],
            ],
          ),
        ],
      },
      {
        path: '/channels/{channelId}/record',
        description: 'Record audio from a channel',
        operations: [
          op(
            'POST',
            'record',
            'Start a recording.',
            'LiveRecording',
            [channelIdPath, ...recordParams(false)],
            [
              [400, 'Invalid parameters'],
              [404, 'Channel not found'],
              [
                409,
                'Channel is not in a Stasis application; the channel is currently bridged with other hcannels; A recording with the same name already exists on the system and can not be overwritten because it is in progress or ifExists=fail',
              ],
              [422, 'The format specified is unknown on this system'],
            ],
          ),
        ],
      },
      {
        path: '/channels/{channelId}/variable',
        description: 'Variables on a channel',
        operations: [
          op(
            'GET',
            'getChannelVar',
            'Get the value of a channel variable or function.',
            'Variable',
            [
              channelIdPath,
              query('variable', 'The variable or function to get', { required: true }),
            ],
            [
              [400, 'Missing variable parameter.'],
              [404, 'Channel or variable not found'],
              [409, 'Channel not in a Stasis application'],
            ],
          ),
          op(
            'POST',
            'setChannelVar',
            'Set the value of a channel variable or function.',
            'void',
            [
              channelIdPath,
              query('variable', 'The variable or function to set', { required: true }),
              query('value', 'The value to set the variable to'),
              query('report_events', 'Report ChannelVarset events for this variable.', {
                dataType: 'boolean',
                defaultValue: false,
              }),
            ],
            [
              [400, 'Missing variable parameter.'],
              [404, 'Channel not found'],
              [409, 'Channel not in a Stasis application'],
            ],
          ),
        ],
      },
      {
        path: '/channels/{channelId}/dial',
        description: 'Dial a channel',
        operations: [
          op(
            'POST',
            'dial',
            'Dial a created channel.',
            'void',
            [
              channelIdPath,
              query('caller', 'Channel the dial is made on behalf of.'),
              query('timeout', 'Seconds to ring before giving up, 0 for ever.', {
                dataType: 'int',
                defaultValue: 0,
              }),
            ],
            [
              [404, 'Channel cannot be found.'],
              [409, 'Channel cannot be dialed.'],
            ],
          ),
        ],
      },
    ],
    models: channelModels,
  },
  {
    name: 'bridges',
    description: 'Bridge resources',
    swaggerVersion: '1.1',
    apis: [
      {
        path: '/bridges',
        description: 'Active bridges',
        operations: [
          op('GET', 'list', 'List all active bridges in Asterisk.', 'List[Bridge]'),
          op('POST', 'create', 'Create a new bridge.', 'Bridge', [
            query(
              'type',
              'Comma-separated bridge features: mixing, holding, dtmf_events, proxy_media, video_sfu, video_single, sdp_label.',
            ),
            query('bridgeId', 'Unique id to give the bridge.'),
            query('name', 'Name to give the bridge.'),
            variablesBody('The "variables" key of the JSON body holds bridge variables to set.'),
          ]),
        ],
      },
      {
        path: '/bridges/{bridgeId}',
        description: 'Individual bridge',
        operations: [
          op(
            'POST',
            'createWithId',
            'Create a new bridge with a given id, or update it.',
            'Bridge',
            [
              query(
                'type',
                'Comma-separated bridge features: mixing, holding, dtmf_events, proxy_media, video_sfu, video_single, sdp_label.',
              ),
              { ...bridgeIdPath, description: 'Unique id to give the bridge.' },
              query('name', 'Name to give the bridge.'),
              variablesBody('The "variables" key of the JSON body holds bridge variables to set.'),
            ],
          ),
          op(
            'GET',
            'get',
            'Get bridge details.',
            'Bridge',
            [bridgeIdPath],
            [[404, 'Bridge not found']],
          ),
          op(
            'DELETE',
            'destroy',
            'Shut down a bridge.',
            'void',
            [bridgeIdPath],
            [[404, 'Bridge not found']],
          ),
        ],
      },
      {
        path: '/bridges/{bridgeId}/addChannel',
        description: 'Add a channel to a bridge',
        operations: [
          op(
            'POST',
            'addChannel',
            'Add a channel to a bridge.',
            'void',
            [
              bridgeIdPath,
              query('channel', 'Ids of the channels to add.', {
                required: true,
                allowMultiple: true,
              }),
              query('role', 'Role of the channels in the bridge.'),
              query('absorbDTMF', 'Absorb DTMF coming from these channels.', {
                dataType: 'boolean',
                defaultValue: false,
              }),
              query('mute', 'Mute audio from these channels.', {
                dataType: 'boolean',
                defaultValue: false,
              }),
              query(
                'inhibitConnectedLineUpdates',
                'Do not update the connected line of these channels.',
                { dataType: 'boolean', defaultValue: false },
              ),
            ],
            [
              [400, 'Channel not found'],
              [404, 'Bridge not found'],
              [409, 'Bridge not in Stasis application; Channel currently recording'],
              [422, 'Channel not in Stasis application'],
            ],
          ),
        ],
      },
      {
        path: '/bridges/{bridgeId}/removeChannel',
        description: 'Remove a channel from a bridge',
        operations: [
          op(
            'POST',
            'removeChannel',
            'Remove a channel from a bridge.',
            'void',
            [
              bridgeIdPath,
              query('channel', 'Ids of the channels to remove.', {
                required: true,
                allowMultiple: true,
              }),
            ],
            [
              [400, 'Channel not found'],
              [404, 'Bridge not found'],
              [409, 'Bridge not in Stasis application'],
              [422, 'Channel not in this bridge'],
            ],
          ),
        ],
      },
      {
        path: '/bridges/{bridgeId}/play',
        description: 'Play media to the participants of a bridge',
        operations: [
          op(
            'POST',
            'play',
            'Start playback of media on a bridge.',
            'Playback',
            [bridgeIdPath, ...playParams(true, true)],
            [
              [404, 'Bridge not found'],
              [409, 'Bridge not in a Stasis application'],
            ],
          ),
        ],
      },
      {
        path: '/bridges/{bridgeId}/play/{playbackId}',
        description: 'Play media to the participants of a bridge',
        operations: [
          op(
            'POST',
            'playWithId',
            'Start playback of media on a bridge and specify the playbackId.',
            'Playback',
            [bridgeIdPath, path('playbackId', 'Playback id.'), ...playParams(false, true)],
            [
              [404, 'Bridge not found'],
              [409, 'Bridge not in a Stasis application'],
            ],
          ),
        ],
      },
      {
        path: '/bridges/{bridgeId}/record',
        description: 'Record audio on a bridge',
        operations: [
          op(
            'POST',
            'record',
            'Start a recording.',
            'LiveRecording',
            [bridgeIdPath, ...recordParams(true)],
            [
              [400, 'Invalid parameters'],
              [404, 'Bridge not found'],
              [
                409,
                'Bridge is not in a Stasis application; A recording with the same name already exists on the system and can not be overwritten because it is in progress or ifExists=fail',
              ],
              [422, 'The format specified is unknown on this system'],
            ],
          ),
        ],
      },
    ],
    models: [bridgeModel],
  },
  {
    name: 'recordings',
    description: 'Recording resources',
    swaggerVersion: '1.1',
    apis: [
      {
        path: '/recordings/stored',
        description: 'Recordings',
        operations: [
          op('GET', 'listStored', 'List recordings that are complete.', 'List[StoredRecording]'),
        ],
      },
      {
        path: '/recordings/stored/{recordingName}',
        description: 'Individual recording',
        operations: [
          op(
            'GET',
            'getStored',
            "Get a stored recording's details.",
            'StoredRecording',
            [path('recordingName', 'The name of the recording')],
            [[404, 'Recording not found']],
          ),
          op(
            'DELETE',
            'deleteStored',
            'Delete a stored recording.',
            'void',
            [path('recordingName', 'The name of the recording')],
            [[404, 'Recording not found']],
          ),
        ],
      },
      {
        path: '/recordings/stored/{recordingName}/file',
        description: 'The actual file associated with the stored recording',
        operations: [
          op(
            'GET',
            'getStoredFile',
            'Get the file associated with the stored recording.',
            'binary',
            [path('recordingName', 'The name of the recording')],
            [
              [403, 'The recording file could not be opened'],
              [404, 'Recording not found'],
            ],
          ),
        ],
      },
      {
        path: '/recordings/live/{recordingName}',
        description: 'A recording that is in progress',
        operations: [
          op(
            'GET',
            'getLive',
            'List live recordings.',
            'LiveRecording',
            [path('recordingName', 'The name of the recording')],
            [[404, 'Recording not found']],
          ),
          op(
            'DELETE',
            'cancel',
            'Stop a live recording and discard it.',
            'void',
            [path('recordingName', 'The name of the recording')],
            [[404, 'Recording not found']],
          ),
        ],
      },
      {
        path: '/recordings/live/{recordingName}/stop',
        description: 'Stop a live recording',
        operations: [
          op(
            'POST',
            'stop',
            'Stop a live recording and store it.',
            'void',
            [path('recordingName', 'The name of the recording')],
            [[404, 'Recording not found']],
          ),
        ],
      },
    ],
    models: [storedRecordingModel, liveRecordingModel],
  },
  {
    name: 'playbacks',
    description: 'Playback control resources',
    swaggerVersion: '1.1',
    apis: [
      {
        path: '/playbacks/{playbackId}',
        description: 'Control object for a playback operation.',
        operations: [
          op(
            'GET',
            'get',
            "Get a playback's details.",
            'Playback',
            [path('playbackId', "Playback's id")],
            [[404, 'The playback cannot be found']],
          ),
          op(
            'DELETE',
            'stop',
            'Stop a playback.',
            'void',
            [path('playbackId', "Playback's id")],
            [[404, 'The playback cannot be found']],
          ),
        ],
      },
    ],
    models: [playbackModel],
  },
  {
    name: 'deviceStates',
    description: 'Device state resources',
    swaggerVersion: '1.1',
    apis: [
      {
        path: '/deviceStates',
        description: 'Device states',
        operations: [
          op('GET', 'list', 'List all ARI controlled device states.', 'List[DeviceState]'),
        ],
      },
      {
        path: '/deviceStates/{deviceName}',
        description: 'Device state',
        operations: [
          op('GET', 'get', 'Retrieve the current state of a device.', 'DeviceState', [
            path('deviceName', 'Name of the device'),
          ]),
          op(
            'PUT',
            'update',
            'Change the state of a device controlled by ARI.',
            'void',
            [
              path('deviceName', 'Name of the device'),
              query('deviceState', 'Device state value', {
                required: true,
                allowableValues: list([
                  'NOT_INUSE',
                  'INUSE',
                  'BUSY',
                  'INVALID',
                  'UNAVAILABLE',
                  'RINGING',
                  'RINGINUSE',
                  'ONHOLD',
                ]),
              }),
            ],
            [
              [404, 'Device name is missing'],
              [409, 'Uncontrolled device specified'],
            ],
          ),
          op(
            'DELETE',
            'delete',
            'Destroy a device-state controlled by ARI.',
            'void',
            [path('deviceName', 'Name of the device')],
            [
              [404, 'Device name is missing'],
              [409, 'Uncontrolled device specified'],
            ],
          ),
        ],
      },
    ],
    models: [deviceStateModel],
  },
  {
    name: 'events',
    description: 'WebSocket resource',
    swaggerVersion: '1.2',
    apis: [
      {
        path: '/events',
        description: 'Events from Asterisk to applications',
        operations: [
          {
            ...op('GET', 'eventWebsocket', 'WebSocket connection for events.', 'Message', [
              query('app', 'Applications to subscribe to.', {
                required: true,
                allowMultiple: true,
              }),
              query(
                'subscribeAll',
                'Subscribe to every event of Asterisk, not only those of the application.',
                { dataType: 'boolean' },
              ),
            ]),
            upgrade: 'websocket',
            websocketProtocol: 'ari',
          },
        ],
      },
    ],
    models: eventModels,
  },
  {
    name: 'applications',
    description: 'Stasis application resources',
    swaggerVersion: '1.1',
    apis: [
      {
        path: '/applications',
        description: 'Stasis applications',
        operations: [op('GET', 'list', 'List all applications.', 'List[Application]')],
      },
      {
        path: '/applications/{applicationName}',
        description: 'Stasis application',
        operations: [
          op(
            'GET',
            'get',
            'Get details of an application.',
            'Application',
            [path('applicationName', "Application's name")],
            [[404, 'Application does not exist.']],
          ),
        ],
      },
      {
        path: '/applications/{applicationName}/subscription',
        description: 'Stasis application',
        operations: [
          op(
            'POST',
            'subscribe',
            'Subscribe an application to an event source.',
            'Application',
            [
              path('applicationName', "Application's name"),
              query(
                'eventSource',
                'URI of the event source: channel:{id}, bridge:{id}, endpoint:{tech}[/{resource}], deviceState:{name}',
                { required: true, allowMultiple: true },
              ),
            ],
            [
              [400, 'Missing parameter.'],
              [404, 'Application does not exist.'],
              [422, 'Event source does not exist.'],
            ],
          ),
          op(
            'DELETE',
            'unsubscribe',
            'Unsubscribe an application from an event source.',
            'Application',
            [
              path('applicationName', "Application's name"),
              query('eventSource', 'URI of the event source', {
                required: true,
                allowMultiple: true,
              }),
            ],
            [
              [400, 'Missing parameter; event source scheme not recognized.'],
              [404, 'Application does not exist.'],
              [409, 'Application not subscribed to event source.'],
              [422, 'Event source does not exist.'],
            ],
          ),
        ],
      },
      {
        path: '/applications/{applicationName}/eventFilter',
        description: 'Stasis application',
        operations: [
          op(
            'PUT',
            'filter',
            'Filter application events types.',
            'Application',
            [
              path('applicationName', "Application's name"),
              {
                name: 'filter',
                description: 'Specify which event types to allow/disallow',
                paramType: 'body',
                required: false,
                allowMultiple: false,
                dataType: 'object',
              },
            ],
            [
              [400, 'Bad request.'],
              [404, 'Application does not exist.'],
            ],
          ),
        ],
      },
    ],
    models: [applicationModel],
  },
];

/** A declared operation with the resource and path it belongs to. */
export interface DeclaredOperation {
  resource: ResourceName;
  path: string;
  operation: OperationDecl;
}

/** Every declared operation (flattened), for routing. */
export function declaredOperations(): DeclaredOperation[] {
  const out: DeclaredOperation[] = [];
  for (const resource of RESOURCES) {
    for (const api of resource.apis) {
      for (const operation of api.operations)
        out.push({ resource: resource.name, path: api.path, operation });
    }
  }
  return out;
}
