/**
 * Reading a finished call the way the engine keeps it: once the call service has let go of it
 * (its channels gone, its last change committed by the call journal), only the store knows it.
 */
import { expect } from 'chai';
import type { CallRecord } from '../../src/store/index.ts';
import type { TestBed } from './engine.ts';

/** Resolves once the call service no longer holds `callId` (at once if it does not). */
export function callReleased(bed: TestBed, callId: string): Promise<void> {
  const calls = bed.engine.calls;
  if (calls.getCall(callId) === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const onReleased = (id: string): void => {
      if (id !== callId) return;
      calls.off('released', onReleased);
      resolve();
    };
    calls.on('released', onReleased);
  });
}

/** The stored call once the engine let go of it: its final state, legs with their ends. */
export async function releasedCall(bed: TestBed, callId: string): Promise<CallRecord> {
  await callReleased(bed, callId);
  const record = await bed.engine.store.calls.getCall(callId);
  expect(record, `call ${callId} in the store`).to.not.equal(undefined);
  return record!;
}
