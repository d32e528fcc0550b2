/**
 * The store's threads yield to the engine's (src/store/thread-priority.js): on Linux the SQLite
 * thread and the checkpointer of a file store run at nice 10, the engine's own thread keeps its
 * priority, and the threads are gone once the store is closed.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSilentLogger } from '../../src/logging/logger.ts';
import { createStore } from '../../src/store/index.ts';
import { until } from '../support/until.ts';

/** Nice value of each thread of this process, by thread id (`/proc/self/task/<tid>/stat`). */
function threadNices(): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state is field 3, nice field 19.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      nices.set(Number(tid), Number(fields[16]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return nices;
}

const niceThreads = (): number[] =>
  [...threadNices()].filter(([, nice]) => nice === 10).map(([tid]) => tid);

describe('store threads yield the CPU to call control', function () {
  before(function () {
    if (!existsSync('/proc/self/task')) this.skip(); // not Linux: priorities are left alone
  });

  it('runs the SQLite thread and the checkpointer at nice 10, not the engine thread, until closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ari-crm-nice-'));
    const before = new Set(niceThreads());
    const store = createStore({
      url: `sqlite:${join(dir, 'store.sqlite')}`,
      logger: createSilentLogger(),
    });
    try {
      await store.migrate();
      await until(
        () => niceThreads().filter((tid) => !before.has(tid)).length >= 2,
        'the SQLite thread and the checkpointer at nice 10',
      );
      expect(threadNices().get(process.pid), 'the engine thread').to.equal(0);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
    await until(
      () => niceThreads().filter((tid) => !before.has(tid)).length === 0,
      'the threads gone with the store',
    );
  });
});
