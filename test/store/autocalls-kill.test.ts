/**
 * kill -9 of an engine process holding notification-call leases: after a restart (a new store on
 * the same database) the jobs are not claimable while the leases hold, are reclaimed once they
 * expire (the attempt recorded `lost`), and each reaches exactly one final status.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { expect } from 'chai';
import { sql } from 'kysely';
import { AutocallStore } from '../../src/autocalls/store.ts';
import { createStore, type Store } from '../../src/store/index.ts';
import { logger, PG_URL, tempDir } from './helpers.ts';

const targets: Array<{ name: string; url: () => string; schema?: string }> = [];
let sqliteDir: { dir: string; cleanup: () => void } | undefined;
targets.push({
  name: 'sqlite file',
  url: () => `sqlite:${join(sqliteDir!.dir, 'ari-crm.sqlite')}`,
});
if (PG_URL)
  targets.push({
    name: 'postgres',
    url: () => PG_URL!,
    schema: `t_${process.pid}_${randomBytes(4).toString('hex')}`,
  });

for (const target of targets) {
  describe(`store: notification calls after kill -9 of the engine holding them [${target.name}]`, function () {
    this.timeout(30_000);
    let store: Store;
    before(() => {
      sqliteDir = tempDir();
    });
    after(async () => {
      if (target.schema)
        await sql`drop schema if exists ${sql.id(target.schema)} cascade`.execute(store.db);
      await store?.close();
      sqliteDir?.cleanup();
    });

    it('reclaims the killed engine’s jobs once their leases expire; each ends once', async () => {
      const open = (): Store =>
        createStore({
          url: target.url(),
          logger,
          ...(target.schema ? { schema: target.schema } : {}),
        });
      store = open();
      await store.migrate();
      const created = await new AutocallStore(store).createJobs(
        ['+74950000001', '+74950000002', '+74950000003'].map((to) => ({
          to,
          endpoint: `PJSIP/${to.slice(1)}@trunk`,
          script: { files: ['hello-world'] },
          tries: 2,
          triesPeriodSec: 1,
        })),
        Date.now() - 1000,
      );
      await store.close();

      const holder = fork(
        new URL('./support/autocall-holder.ts', import.meta.url),
        [target.url(), target.schema ?? '-'],
        {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        },
      );
      let claimed: number[];
      try {
        [claimed] = (await once(holder, 'message')) as [number[]];
      } finally {
        holder.kill('SIGKILL');
        await once(holder, 'exit');
      }
      expect(claimed).to.have.members(created.map((j) => j.id));

      // The restarted engine.
      store = open();
      await store.migrate();
      const ac = new AutocallStore(store);
      const now = Date.now();
      const claim = (at: number) =>
        ac.claim({ owner: 'restarted', now: at, leaseMs: 60_000, limit: 100, campaignId: null });
      expect(await claim(now)).to.deep.equal([]); // the leases still hold
      expect((await ac.reclaimExpired(now)).attempts).to.deep.equal([]);
      const reclaimed = await ac.reclaimExpired(now + 61_000);
      expect(reclaimed.attempts).to.deep.equal(['lost', 'lost', 'lost']);
      const again = await claim(now + 63_000);
      expect(again.map((c) => [c.job.id, c.attemptNo]).sort()).to.deep.equal(
        created.map((j) => [j.id, 2]).sort(),
      );
      for (const c of again)
        await ac.finishAttempt(
          'restarted',
          c.job.id,
          2,
          {
            dialStatus: 'ANSWER',
            digits: '',
            playedSec: 5,
            outcome: 'delivered',
          },
          now + 70_000,
        );
      for (const j of created) {
        const job = await ac.getJob(j.id);
        expect(job!.status).to.equal('delivered');
        expect(job!.attempts!.map((a) => a.outcome)).to.deep.equal(['lost', 'delivered']);
      }
      const finished = (await store.events.feed({ limit: 100 })).items.filter(
        (i) => i.event.type === 'autocall.finished',
      );
      expect(finished.map((i) => i.event.callId).sort()).to.deep.equal(
        created.map((j) => `autocall-${j.id}`).sort(),
      );
    });
  });
}
