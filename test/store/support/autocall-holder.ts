/**
 * An engine process that claims notification-call jobs and is then killed (kill -9) by the test
 * (test/store/autocalls-kill.test.ts): opens the store at argv[2] (PostgreSQL schema argv[3], or
 * `-`), claims every due job of no campaign as owner `killed` with a 60 s lease, tells its parent
 * the claimed ids and waits.
 */
import { AutocallStore } from '../../../src/autocalls/store.ts';
import { createSilentLogger } from '../../../src/logging/logger.ts';
import { createStore } from '../../../src/store/index.ts';

const [url, schema] = process.argv.slice(2);
if (!url || !process.send) throw new Error('usage: fork(autocall-holder.ts, [<url>, <schema|->])');
const store = createStore({
  url,
  logger: createSilentLogger(),
  ...(schema && schema !== '-' ? { schema } : {}),
});
const claimed = await new AutocallStore(store).claim({
  owner: 'killed',
  now: Date.now(),
  leaseMs: 60_000,
  limit: 100,
  campaignId: null,
});
process.send(claimed.map((c) => c.job.id));
setInterval(() => undefined, 60_000);
