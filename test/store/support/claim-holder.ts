/**
 * A separate engine process, as far as the store is concerned (test/store/ownership.test.ts):
 * claims the SQLite store named by argv[2], tells its parent `claimed` and waits to be killed.
 */
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { claimStore } from '../../../src/store/ownership.ts';

const filename = process.argv[2];
if (!filename || !process.send) throw new Error('usage: fork(claim-holder.ts, [<sqlite file>])');
await claimStore({ dialect: 'sqlite', filename }, undefined, createSilentLogger());
process.send('claimed');
setInterval(() => undefined, 60_000);
