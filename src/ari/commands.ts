/**
 * The gateway's REST command surface: the {@link AriGateway} method tables (`channels`,
 * `bridges`, `playbacks`, `recordings`, `endpoints`, `deviceStates`, `applications`) over one
 * {@link AriCommands.command} runner.
 *
 * Every method runs the ARI operation named by Asterisk's Swagger nickname, with the parameter
 * names of the API docs, through the executor of `rest.ts`, and answers plain JSON. The runner
 * adds what every command shares: the `commandTimeoutMs` timeout (AriConnectionError), typed
 * errors ({@link classifyAriError}), the retry of a 409 "Channel not in Stasis application"
 * (common right after StasisStart, fixtures fact 2: a few tries with a doubling delay, only while
 * the gateway runs; nothing else is retried), the metrics, and the seal: once the engine has
 * stopped ({@link CommandConnection.isSealed}) nothing more is sent to Asterisk.
 *
 * A create with the engine's own id (channels, bridges) answered 409 "already exists" answers
 * the existing object: an earlier try of the very request took effect and only its answer was
 * lost.
 */
import type { Logger } from '../logging/logger.ts';
import { notInStasisRetryDelay } from './backoff.ts';
import { classifyAriError } from './classify.ts';
import { AriConflictError, AriConnectionError, AriError } from './errors.ts';
import { sealedError } from './helpers.ts';
import type { AriMetrics } from './metrics.ts';
import type { AriRestClient, AriRestOperation } from './rest.ts';
import type {
  AriApplication,
  AriBridge,
  AriChannel,
  AriDeviceState,
  AriEndpoint,
  AriGateway,
  AriLiveRecording,
  AriPlayback,
  AriStoredRecording,
  ContinueParams,
  CreateBridgeParams,
  CreateChannelParams,
  DialParams,
  HangupParams,
  OriginateParams,
  PlayParams,
  RecordParams,
} from './types.ts';

/** What the commands need of the gateway's connection (`connection.ts`). */
export interface CommandConnection {
  /** The ARI operations by `<resource>.<nickname>`; undefined until the API docs are loaded. */
  loadedOperations(): ReadonlyMap<string, AriRestOperation> | undefined;
  /** Between start() and stop(): the not-in-Stasis retry goes on only while running. */
  isRunning(): boolean;
  /** After seal(): no command reaches Asterisk any more. */
  isSealed(): boolean;
  /** Wait `ms`; stop() cuts the wait short (resolves at once when not running). */
  sleep(ms: number): Promise<void>;
}

/** What {@link AriCommands} needs. Durations in milliseconds. */
export interface AriCommandsOptions {
  /** The Stasis application: the `app` of channels created or originated, and of its filter. */
  app: string;
  log: Logger;
  metrics: AriMetrics;
  /** The executor the operations run on. */
  rest: AriRestClient;
  connection: CommandConnection;
  /** "Channel not in Stasis application" retry: tries in all (at least 1), delay before the 2nd. */
  retry: { attempts: number; delayMs: number };
  /** A command without an answer after this long fails with AriConnectionError. */
  commandTimeoutMs: number;
}

/** The REST side of the gateway: its method tables and the runner under them. */
export class AriCommands {
  private readonly app: string;
  private readonly log: Logger;
  private readonly metrics: AriMetrics;
  private readonly rest: AriRestClient;
  private readonly connection: CommandConnection;
  private readonly retryOpts: { attempts: number; delayMs: number };
  private readonly commandTimeoutMs: number;

  constructor(options: AriCommandsOptions) {
    this.app = options.app;
    this.log = options.log;
    this.metrics = options.metrics;
    this.rest = options.rest;
    this.connection = options.connection;
    this.retryOpts = options.retry;
    this.commandTimeoutMs = options.commandTimeoutMs;
  }

  /**
   * Run one ARI operation: the seal, timeout, typed errors, the not-in-Stasis retry, metrics.
   * `operation` is `<resource>.<gateway method>` (metrics label and error field).
   */
  private async command(
    operation: string,
    resource: string,
    nickname: string,
    params: Record<string, unknown> | undefined,
  ): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      // Sealed (the engine stopped): nothing goes out, not even the retry of a command sent before.
      if (this.connection.isSealed()) throw sealedError(operation);
      try {
        const op = this.operation(operation, resource, nickname);
        return await this.rest.execute(op, params, {
          timeoutMs: this.commandTimeoutMs,
          operation,
        });
      } catch (err) {
        const error = classifyAriError(operation, err);
        if (
          error.kind === 'not_in_stasis' &&
          attempt < this.retryOpts.attempts &&
          this.connection.isRunning()
        ) {
          this.metrics.commandRetries.inc({ operation });
          const delayMs = notInStasisRetryDelay(attempt, this.retryOpts);
          this.log.debug('ARI command retried: channel not in Stasis yet', {
            operation,
            attempt,
            delayMs,
          });
          await this.connection.sleep(delayMs);
          continue;
        }
        this.metrics.commandErrors.inc({ operation, kind: error.kind });
        this.log.debug('ARI command failed', {
          operation,
          kind: error.kind,
          status: error.status,
          error: error.asteriskMessage,
        });
        throw error;
      }
    }
  }

  private operation(operation: string, resource: string, nickname: string): AriRestOperation {
    const operations = this.connection.loadedOperations();
    if (!operations)
      throw new AriConnectionError(operation, 'ARI API not loaded (start() has not connected yet)');
    const op = operations.get(`${resource}.${nickname}`);
    if (!op) {
      throw new AriError(
        'unknown',
        undefined,
        operation,
        `this Asterisk has no ARI operation ${resource}.${nickname}`,
      );
    }
    return op;
  }

  private async json<T>(
    operation: string,
    resource: string,
    nickname: string,
    params?: Record<string, unknown>,
  ): Promise<T> {
    // The executor parses the JSON body itself: already plain data.
    return (await this.command(operation, resource, nickname, params)) as T;
  }

  private async void(
    operation: string,
    resource: string,
    nickname: string,
    params?: Record<string, unknown>,
  ): Promise<void> {
    await this.command(operation, resource, nickname, params);
  }

  /**
   * The answer of a create or originate with the engine's own `channelId` (a fresh UUID). A 409
   * "Channel with given unique ID already exists" means an earlier try of this very request
   * reached Asterisk and only its answer was lost (the connection was cut, and the HTTP client
   * sent the request again on a new one): the channel is ours, answered with
   * `GET /channels/{id}` instead of an error (like `bridges.create`).
   */
  private async ownChannel(
    channelId: string | undefined,
    request: Promise<AriChannel>,
  ): Promise<AriChannel> {
    try {
      return await request;
    } catch (err) {
      if (channelId && err instanceof AriConflictError && /already exists/i.test(err.message))
        return this.channels.get(channelId);
      throw err;
    }
  }

  readonly channels: AriGateway['channels'] = {
    list: () => this.json<AriChannel[]>('channels.list', 'channels', 'list'),
    get: (channelId) => this.json<AriChannel>('channels.get', 'channels', 'get', { channelId }),
    create: (p: CreateChannelParams) =>
      this.ownChannel(
        p.channelId,
        this.json<AriChannel>('channels.create', 'channels', 'create', {
          endpoint: p.endpoint,
          app: this.app,
          appArgs: p.appArgs.join(','),
          channelId: p.channelId,
          originator: p.originator,
          variables: p.variables,
        }),
      ),
    originate: (p: OriginateParams) =>
      this.ownChannel(
        p.channelId,
        this.json<AriChannel>('channels.originate', 'channels', 'originate', {
          endpoint: p.endpoint,
          app: this.app,
          appArgs: p.appArgs.join(','),
          channelId: p.channelId,
          callerId: p.callerId,
          timeout: p.timeoutSec,
          originator: p.originator,
          variables: p.variables,
        }),
      ),
    dial: (channelId, p?: DialParams) =>
      this.void('channels.dial', 'channels', 'dial', {
        channelId,
        caller: p?.caller,
        timeout: p?.timeoutSec,
      }),
    answer: (channelId) => this.void('channels.answer', 'channels', 'answer', { channelId }),
    ring: (channelId) => this.void('channels.ring', 'channels', 'ring', { channelId }),
    ringStop: (channelId) => this.void('channels.ringStop', 'channels', 'ringStop', { channelId }),
    hangup: (channelId, p?: HangupParams) =>
      this.void('channels.hangup', 'channels', 'hangup', { channelId, reason: p?.reason }),
    continueInDialplan: (channelId, p: ContinueParams) =>
      this.void('channels.continueInDialplan', 'channels', 'continueInDialplan', {
        channelId,
        context: p.context,
        extension: p.extension,
        priority: p.priority,
        label: p.label,
      }),
    play: (channelId, p: PlayParams) =>
      this.json<AriPlayback>('channels.play', 'channels', 'play', {
        channelId,
        media: p.media.join(','),
        lang: p.lang,
        playbackId: p.playbackId,
      }),
    record: (channelId, p: RecordParams) =>
      this.json<AriLiveRecording>('channels.record', 'channels', 'record', {
        channelId,
        ...recordParams(p),
      }),
    setVariable: (channelId, variable, value) =>
      this.void('channels.setVariable', 'channels', 'setChannelVar', {
        channelId,
        variable,
        value,
      }),
    getVariable: async (channelId, variable) => {
      const result = await this.json<{ value?: unknown }>(
        'channels.getVariable',
        'channels',
        'getChannelVar',
        {
          channelId,
          variable,
        },
      );
      return typeof result?.value === 'string' ? result.value : '';
    },
  };

  readonly bridges: AriGateway['bridges'] = {
    list: () => this.json<AriBridge[]>('bridges.list', 'bridges', 'list'),
    get: (bridgeId) => this.json<AriBridge>('bridges.get', 'bridges', 'get', { bridgeId }),
    create: async (p: CreateBridgeParams) => {
      try {
        return await this.json<AriBridge>('bridges.create', 'bridges', 'createWithId', {
          bridgeId: p.bridgeId,
          type: p.type?.join(','),
          name: p.name,
        });
      } catch (err) {
        // The id is the engine's own (a fresh UUID): "already exists" means an earlier try of
        // this very create reached Asterisk and only its answer was lost (a connection cut); the
        // request is retried after a reconnect. The bridge is ours: answer it.
        if (p.bridgeId && err instanceof AriConflictError && /already exists/i.test(err.message))
          return this.bridges.get(p.bridgeId);
        throw err;
      }
    },
    destroy: (bridgeId) => this.void('bridges.destroy', 'bridges', 'destroy', { bridgeId }),
    addChannel: (bridgeId, channelIds) =>
      this.void('bridges.addChannel', 'bridges', 'addChannel', {
        bridgeId,
        channel: channelIds.join(','),
      }),
    removeChannel: (bridgeId, channelIds) =>
      this.void('bridges.removeChannel', 'bridges', 'removeChannel', {
        bridgeId,
        channel: channelIds.join(','),
      }),
    record: (bridgeId, p: RecordParams) =>
      this.json<AriLiveRecording>('bridges.record', 'bridges', 'record', {
        bridgeId,
        ...recordParams(p),
      }),
    play: (bridgeId, p: PlayParams) =>
      this.json<AriPlayback>('bridges.play', 'bridges', 'play', {
        bridgeId,
        media: p.media.join(','),
        lang: p.lang,
        playbackId: p.playbackId,
      }),
  };

  readonly playbacks: AriGateway['playbacks'] = {
    get: (playbackId) =>
      this.json<AriPlayback>('playbacks.get', 'playbacks', 'get', { playbackId }),
    stop: (playbackId) => this.void('playbacks.stop', 'playbacks', 'stop', { playbackId }),
  };

  readonly recordings: AriGateway['recordings'] = {
    listStored: () =>
      this.json<AriStoredRecording[]>('recordings.listStored', 'recordings', 'listStored'),
    getStored: (name) =>
      this.json<AriStoredRecording>('recordings.getStored', 'recordings', 'getStored', {
        recordingName: name,
      }),
    getStoredFile: async (name) => {
      const raw = await this.command('recordings.getStoredFile', 'recordings', 'getStoredFile', {
        recordingName: name,
      });
      if (Buffer.isBuffer(raw)) return raw;
      if (raw instanceof Uint8Array) return Buffer.from(raw);
      if (typeof raw === 'string') return Buffer.from(raw, 'binary');
      throw new AriError(
        'unknown',
        200,
        'recordings.getStoredFile',
        'the recording file was not returned as bytes',
      );
    },
    deleteStored: (name) =>
      this.void('recordings.deleteStored', 'recordings', 'deleteStored', { recordingName: name }),
    getLive: (name) =>
      this.json<AriLiveRecording>('recordings.getLive', 'recordings', 'getLive', {
        recordingName: name,
      }),
    stopLive: (name) =>
      this.void('recordings.stopLive', 'recordings', 'stop', { recordingName: name }),
  };

  readonly endpoints: AriGateway['endpoints'] = {
    list: () => this.json<AriEndpoint[]>('endpoints.list', 'endpoints', 'list'),
    get: (technology, resource) =>
      this.json<AriEndpoint>('endpoints.get', 'endpoints', 'get', { tech: technology, resource }),
  };

  readonly deviceStates: AriGateway['deviceStates'] = {
    list: () => this.json<AriDeviceState[]>('deviceStates.list', 'deviceStates', 'list'),
    get: (deviceName) =>
      this.json<AriDeviceState>('deviceStates.get', 'deviceStates', 'get', { deviceName }),
  };

  readonly applications: AriGateway['applications'] = {
    list: () => this.json<AriApplication[]>('applications.list', 'applications', 'list'),
    get: (name) =>
      this.json<AriApplication>('applications.get', 'applications', 'get', {
        applicationName: name,
      }),
    setEventFilter: (filter) =>
      this.json<AriApplication>('applications.setEventFilter', 'applications', 'filter', {
        applicationName: this.app,
        filter: {
          ...(filter.allowed ? { allowed: filter.allowed.map((type) => ({ type })) } : {}),
          ...(filter.disallowed ? { disallowed: filter.disallowed.map((type) => ({ type })) } : {}),
        },
      }),
    subscribe: (eventSources) =>
      this.json<AriApplication>('applications.subscribe', 'applications', 'subscribe', {
        applicationName: this.app,
        eventSource: eventSources.join(','),
      }),
  };
}

/** The parameters of `channels.record` and `bridges.record` shared by both. */
function recordParams(p: RecordParams): Record<string, unknown> {
  return {
    name: p.name,
    format: p.format,
    maxDurationSeconds: p.maxDurationSec,
    maxSilenceSeconds: p.maxSilenceSec,
    ifExists: p.ifExists,
    beep: p.beep,
    terminateOn: p.terminateOn,
  };
}
