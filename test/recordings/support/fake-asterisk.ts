/**
 * A small in-memory Asterisk for the recordings service's unit tests: its live and stored
 * recordings and bridges as ARI shows them, reachable or not, with the gateway the service talks
 * to; and a bridged call to record.
 */
import { AriConflictError, AriConnectionError, AriNotFoundError } from '../../../src/ari/errors.ts';
import type { AriLiveRecording } from '../../../src/ari/types.ts';
import type { Call } from '../../../src/calls/model.ts';
import { audioFile } from '../../../src/simulator/wav.ts';

export type RecordOutcome = 'ok' | 'gone' | 'lost' | 'dropped' | 'cut';

/** Asterisk's recordings as ARI shows them; `reachable: false` = connection refused. */
export class FakeAsterisk {
  readonly live = new Set<string>();
  readonly stored = new Map<string, Buffer>();
  readonly requests: string[] = [];
  reachable = true;
  /**
   * What `POST /bridges/{id}/record` does besides starting the recording: `gone` = 404 (the
   * bridge went away, nothing recorded); `lost` = Asterisk starts it but the answer never comes
   * (a connection error reaches the engine); `dropped` = the connection is cut before the request
   * reaches Asterisk (a connection error, nothing recorded); `cut` = as `dropped`, and ARI stays
   * unreachable (the WebSocket dropped with it). `recordOutcomes` are used first, one a request.
   */
  recordOutcome: RecordOutcome = 'ok';
  recordOutcomes: RecordOutcome[] = [];
  /** Asterisk's bridges and the channels in each (`GET /bridges/{id}`). */
  readonly bridges = new Map<string, string[]>([['br-1', ['caller-1', 'operator-1']]]);
  /** Query strings of the `POST /bridges/{id}/record` requests that reached the fake. */
  readonly recordParams: Array<{ name: string; ifExists?: string }> = [];
  /** Delivers RecordingFinished to the service (set by the test). */
  onFinished: (recording: AriLiveRecording) => void = () => undefined;

  /** The bridge empties: a live recording of `seconds` is stored (its event may be lost). */
  finish(name: string, seconds: number, deliver: boolean): void {
    this.live.delete(name);
    this.stored.set(name, audioFile('wav', seconds * 50));
    const recording = {
      name,
      format: 'wav',
      state: 'done',
      target_uri: 'bridge:br-1',
      duration: seconds,
    };
    if (deliver) this.onFinished(recording);
  }

  private ask(what: string): void {
    this.requests.push(what);
    if (!this.reachable) throw new AriConnectionError(what, 'connect ECONNREFUSED');
  }

  private has<T>(found: T | undefined, what: string): T {
    if (found === undefined) throw new AriNotFoundError(what, 'Recording not found');
    return found;
  }

  readonly gateway = {
    isConnected: () => this.reachable,
    bridges: {
      get: (bridgeId: string) => {
        this.ask(`GET /bridges/${bridgeId}`);
        const channels = this.has(this.bridges.get(bridgeId), 'bridges.get');
        return Promise.resolve({ id: bridgeId, channels });
      },
      record: (bridgeId: string, params: { name: string; ifExists?: string }) => {
        this.ask(`POST /bridges/${bridgeId}/record`);
        const outcome = this.recordOutcomes.shift() ?? this.recordOutcome;
        if (outcome === 'dropped' || outcome === 'cut') {
          if (outcome === 'cut') this.reachable = false;
          throw new AriConnectionError('bridges.record', 'socket hang up (ECONNRESET)');
        }
        this.recordParams.push(params);
        if (outcome === 'gone' || !this.bridges.has(bridgeId))
          throw new AriNotFoundError('bridges.record', 'Bridge not found');
        const exists = this.live.has(params.name) || this.stored.has(params.name);
        if (exists && (params.ifExists === 'fail' || this.live.has(params.name)))
          throw new AriConflictError(
            'bridges.record',
            'A recording with the same name already exists on the system',
          );
        this.live.add(params.name);
        if (outcome === 'lost')
          throw new AriConnectionError('bridges.record', 'no answer from Asterisk within 10000 ms');
        return Promise.resolve({} as AriLiveRecording);
      },
    },
    recordings: {
      listStored: () => {
        this.ask('GET stored');
        return Promise.resolve([...this.stored.keys()].map((name) => ({ name, format: 'wav' })));
      },
      getLive: (name: string) => {
        this.ask(`GET live/${name}`);
        this.has(this.live.has(name) ? true : undefined, 'recordings.getLive');
        return Promise.resolve({} as AriLiveRecording);
      },
      stopLive: (name: string) => {
        this.ask(`POST live/${name}/stop`);
        this.has(this.live.has(name) ? true : undefined, 'recordings.stopLive');
        this.finish(name, 3, true);
        return Promise.resolve();
      },
      getStored: (name: string) => {
        this.ask(`GET stored/${name}`);
        this.has(this.stored.get(name), 'recordings.getStored');
        return Promise.resolve({ name, format: 'wav' });
      },
      getStoredFile: (name: string) => {
        this.ask(`GET stored/${name}/file`);
        return Promise.resolve(this.has(this.stored.get(name), 'recordings.getStoredFile'));
      },
      deleteStored: (name: string) => {
        this.ask(`DELETE stored/${name}`);
        this.has(this.stored.get(name), 'recordings.deleteStored');
        this.stored.delete(name);
        return Promise.resolve();
      },
    },
  };
}

let counter = 0;

/** A new bridged inbound call (a fresh id each time). */
export function liveCall(): Call {
  counter++;
  return {
    id: `00000000-0000-4000-8000-${counter.toString(16).padStart(12, '0')}`,
    direction: 'in',
    from: '79161234567',
    to: '74951234567',
    phase: 'bridged',
    legs: new Map(),
    callerChannelId: `in-${counter}`,
    startedAt: Date.parse('2025-01-31T09:15:00.000Z'),
    answeredAt: Date.parse('2025-01-31T09:15:05.000Z'),
    nextSequence: 4,
  };
}
