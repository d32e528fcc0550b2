/**
 * A scripted {@link CallControl} for route tests: remembers every request, answers from maps the
 * test fills, throws the contract's errors for unknown or ended calls.
 */
import {
  CallNotFoundError,
  CallStateError,
  type CallControl,
  type ClickToCallRequest,
  type CurrentCall,
  type TransferRequest,
} from '../../../src/calls/control.ts';
import type { CallSnapshot } from '../../../src/calls/model.ts';

/** A snapshot of a new click-to-call, as the service would return it. */
export function newCallSnapshot(id: string, request: ClickToCallRequest): CallSnapshot {
  return {
    id,
    direction: 'out',
    state: 'dialing_operator',
    from: request.operator,
    to: request.to,
    variables: request.variables,
    startedAt: '2025-01-31T09:15:00.000Z',
    waitSec: 0,
    talkSec: 0,
    legs: [],
  };
}

export class FakeCallControl implements CallControl {
  readonly started: ClickToCallRequest[] = [];
  readonly transfers: Array<{ callId: string; request: TransferRequest }> = [];
  readonly hangups: string[] = [];
  readonly calls = new Map<string, CallSnapshot>();
  readonly current = new Map<string, CurrentCall>();
  /** Error the next transfer throws. */
  transferError: Error | undefined;
  live = 0;
  /** What {@link storeFailing} answers. */
  storeDown = false;
  /** What {@link ariConnected} answers. */
  ariUp = true;
  /** While set, {@link whenStored} waits for it (a slow commit); resolves with its value. */
  storeCommit: Promise<boolean> | undefined;
  /** Call ids {@link whenStored} was asked about, in order. */
  readonly storedWaits: string[] = [];
  /** The `timeoutMs` of each {@link whenStored} call. */
  readonly storedWaitTimeoutsMs: number[] = [];
  private nextId = 1;
  private readonly watchers = new Map<string, Set<(call: CallSnapshot) => void>>();

  /** Change a call as the service would, and tell its watchers. */
  update(callId: string, change: Partial<CallSnapshot>): void {
    const call = this.calls.get(callId);
    if (!call) return;
    const next = { ...call, ...change };
    this.calls.set(callId, next);
    for (const listener of [...(this.watchers.get(callId) ?? [])]) listener(next);
  }

  findCallByChannel(channelId: string): CallSnapshot | undefined {
    for (const current of this.current.values()) {
      if (current.customerChannelId === channelId) return this.calls.get(current.callId);
    }
    return undefined;
  }

  watchCall(callId: string, listener: (call: CallSnapshot) => void): () => void {
    let set = this.watchers.get(callId);
    if (!set) this.watchers.set(callId, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  startClickToCall(request: ClickToCallRequest): CallSnapshot {
    this.started.push(request);
    const id = `call-${this.nextId++}`;
    const call = newCallSnapshot(id, request);
    this.calls.set(id, call);
    this.live++;
    return call;
  }

  whenStored(callId: string, timeoutMs: number): Promise<boolean> {
    this.storedWaits.push(callId);
    this.storedWaitTimeoutsMs.push(timeoutMs);
    const commit = this.storeCommit;
    if (!commit) return Promise.resolve(true);
    // As the service does: give up after timeoutMs.
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      void commit.then((stored) => {
        clearTimeout(timer);
        resolve(stored);
      });
    });
  }

  storeFailing(): boolean {
    return this.storeDown;
  }

  ariConnected(): boolean {
    return this.ariUp;
  }

  getCall(callId: string): CallSnapshot | undefined {
    return this.calls.get(callId);
  }

  async hangupCall(callId: string): Promise<CallSnapshot> {
    const call = this.calls.get(callId);
    if (!call) throw new CallNotFoundError(callId);
    if (call.state === 'ended') throw new CallStateError('call_ended', `call ${callId} has ended`);
    this.hangups.push(callId);
    const ended: CallSnapshot = {
      ...call,
      state: 'ended',
      disposition: 'canceled',
      hangupBy: 'system',
      endedAt: '2025-01-31T09:15:05.000Z',
    };
    this.calls.set(callId, ended);
    return ended;
  }

  async transferCall(callId: string, request: TransferRequest): Promise<CallSnapshot> {
    const call = this.calls.get(callId);
    if (!call) throw new CallNotFoundError(callId);
    if (this.transferError) throw this.transferError;
    this.transfers.push({ callId, request });
    return call;
  }

  currentCallOf(extension: string): CurrentCall | undefined {
    return this.current.get(extension);
  }

  liveOriginatedCalls(): number {
    return this.live;
  }
}
