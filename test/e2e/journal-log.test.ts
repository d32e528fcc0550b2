/**
 * The journal log (src/store/journal-log.ts) across a crash, end to end: a real engine process on
 * the simulator accepts a click-to-call (`202`) and sends its webhooks while another connection
 * holds SQLite's write lock, so nothing is committed; the process is killed (SIGKILL); a new
 * engine on the same DATA_DIR replays the log at start-up and owns the call as if the commits had
 * landed: it is in the store, adopted (`call.recovered`), and can be hung up with a full record.
 */
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { apiRequest } from '../support/api.ts';
import { CrashBed } from '../support/crash-bed.ts';
import { until } from '../support/until.ts';

describe('journal log (e2e): a click-to-call accepted before its commit survives a crash', function () {
  this.timeout(60_000);
  let bed: CrashBed | undefined;

  afterEach(async () => {
    await bed?.close();
    bed = undefined;
  });

  it('a killed engine loses nothing it answered 202 for: the next start replays the log and adopts the call', async () => {
    // Real time: the operator's phone rings for the whole test (click-to-call ring timeout 20 s).
    bed = await CrashBed.start({ timeScale: 1 });
    const { sim, crm, dataDir } = bed;
    sim.phones.set('101', { mode: 'ring' });
    const { engine: child, httpUrl } = await bed.startProcess();

    // Another connection holds the write lock: the engine cannot commit anything from now on.
    const dbFile = join(dataDir, 'ari-crm.sqlite');
    const other = new Database(dbFile);
    let callId: string;
    try {
      other.exec('BEGIN IMMEDIATE');
      const accepted = await apiRequest<{ id: string }>(httpUrl, '/v1/calls', {
        body: { operator: '101', to: '+74957654321', variables: { dealId: 'D-42' } },
      });
      expect(accepted.status).to.equal(202);
      callId = accepted.body.id;
      // The operator's phone rings: the screen pop went out without a commit either.
      await crm.waitForWebhook((w) => w.body.callId === callId && w.body.type === 'call.ringing');
      expect(other.prepare('SELECT id FROM calls WHERE id = ?').get(callId)).to.equal(undefined);

      await child.kill();
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    const log = join(dataDir, 'ari-crm.sqlite.journal-log');
    expect(statSync(log).size).to.be.greaterThan(0);
    const delivered = crm.eventsOf(callId).map((w) => w.body.id);

    // The next start, on the same DATA_DIR and the same Asterisk (the operator's phone still rings).
    const restarted = await bed.restart();
    const replay = bed.logs.find(
      (l) => l.message === 'replayed journal log entries the store had not committed',
    );
    expect(replay).to.include({ calls: 1 });
    expect(replay?.replayed).to.be.at.least(1);
    expect(statSync(log).size).to.equal(0);

    const recovered = await crm.waitForWebhook(
      (w) => w.body.callId === callId && w.body.type === 'call.recovered',
    );
    expect(recovered.body.data).to.include({ reason: 'engine_restart', state: 'operator_ringing' });
    const live = await apiRequest<Record<string, unknown>>(
      restarted.httpUrl,
      `/v1/calls/${callId}`,
    );
    expect(live.body).to.include({ state: 'operator_ringing', direction: 'out' });
    expect(live.body.variables).to.deep.equal({ dealId: 'D-42' });

    const hangup = await apiRequest(restarted.httpUrl, `/v1/calls/${callId}/hangup`, {
      method: 'POST',
    });
    expect(hangup.status).to.be.within(200, 299);
    const ended = await crm.waitForEnded(callId);
    expect(ended.body.data).to.include({ direction: 'out' });
    expect(ended.body.data.disposition).to.be.a('string');
    await until(async () => {
      const stored = await restarted.store.calls.getCall(callId);
      return stored?.state === 'ended';
    }, 'the ended call stored');

    // Webhooks: at least once. What the killed engine delivered may come again after the restart
    // (its delivery marks were never committed), with the same event ids; nothing is missing.
    const events = crm.eventsOf(callId);
    const firstOfEach = [...new Map(events.map((w) => [w.body.id, w.body])).values()];
    expect(firstOfEach.map((e) => e.type)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.recovered',
      'call.ended',
    ]);
    expect(firstOfEach.map((e) => e.sequence)).to.deep.equal([1, 2, 3, 4]);
    for (const id of delivered) expect(firstOfEach.map((e) => e.id)).to.include(id);
  });
});
