/**
 * The shipped `asterisk-conf/` on a real Asterisk 22 (the kit): the files as shipped, with only
 * the ports, the passwords and the provider/gateway addresses rewritten (each rewrite must find
 * its line exactly once, so a changed line fails here). It must load without errors of its own,
 * an operator phone must register with the example credentials, an inbound call through
 * `from-pstn` must reach it through the engine's Stasis application, and with the engine stopped
 * the `${STASISSTATUS}` fallback must ring the operator directly.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startEngineProcess } from './support/bed.ts';
import { SHIPPED, operator101, startShippedAsterisk, type Secrets } from './support/shipped.ts';
import { type KitAsterisk, kitAvailable, onProcessExit } from './support/kit.ts';
import { Sipp, stopAllSipp } from './support/sipp.ts';
import { TEST_API_KEY } from '../support/engine.ts';
import type { EngineProcess } from '../support/engine-process.ts';
import { FakeCrm } from '../support/fake-crm.ts';
import { until } from '../support/until.ts';

const DID = '74951234567';

/**
 * ERROR and WARNING lines of the console log that concern the shipped files: lines of the modules
 * that read them (PJSIP and its sorcery objects, the dialplan, ARI, HTTP, RTP, queues, the config
 * parser, a `require`d module that failed), except those that name a configuration file the set
 * does not ship (other modules' optional files). Other modules' complaints about their own
 * missing files are no concern of the set.
 */
function problems(log: string, shipped: string[], required: string[]): string[] {
  const ours =
    /^(res_pjsip|chan_pjsip|pjsip_|res_sorcery|sorcery|pbx_config|pbx\.c|pbx_|res_ari|ari\/|http|res_http|rtp_engine|res_rtp_asterisk|app_queue|config\.c|config_options\.c|app_stasis|res_stasis)/;
  return log
    .split('\n')
    .filter((line) => /\] (ERROR|WARNING)\[/.test(line))
    .filter((line) => {
      const where = line.replace(/^.*?\] (ERROR|WARNING)\[\d+\]: /, '');
      // The module loader: only a module the set requires matters (optional ones may be absent).
      if (where.startsWith('loader.c'))
        return required.some((module) =>
          new RegExp(`\\b${module.replace(/\.so$/, '')}\\b`).test(where),
        );
      return ours.test(where);
    })
    .filter((line) => {
      const named = [...line.matchAll(/([\w-]+\.conf)\b/g)].map((m) => m[1]!);
      return named.length === 0 || named.some((file) => shipped.includes(file));
    });
}

if (kitAvailable())
  describe('real Asterisk: the shipped asterisk-conf/', function () {
    this.timeout(90_000);
    let asterisk: KitAsterisk;
    let crm: FakeCrm;
    let dataDir: string;
    let engine: EngineProcess | undefined;
    let secrets: Secrets;
    let env: Record<string, string>;
    /** Operator 101's phone, registered by the second test, answering until the end. */
    let phone: Sipp | undefined;

    before(async function () {
      this.timeout(180_000);
      ({ asterisk, secrets } = await startShippedAsterisk());
      crm = await FakeCrm.start();
      dataDir = await mkdtemp(join(tmpdir(), 'ari-crm-accept-conf-data-'));
      const ownDataDir = dataDir;
      onProcessExit(() => rmSync(ownDataDir, { recursive: true, force: true }));
      env = {
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
        ARI_URL: asterisk.ariUrl,
        ARI_USERNAME: 'ari-crm',
        ARI_PASSWORD: secrets.ari,
        DATA_DIR: dataDir,
        API_KEYS: `test:${TEST_API_KEY}`,
        CRM_ROUTE_URL: crm.routeUrl,
        CRM_WEBHOOK_URL: crm.webhookUrl,
        WEBHOOK_SECRET: crm.secret,
        CRM_ROUTE_CACHE_TTL_MS: '0',
      };
      crm.onRoute(() => ({
        body: { action: 'dial', strategy: 'ringall', extensions: ['101'], ringTimeoutSec: 20 },
      }));
    });
    after(async () => {
      await stopAllSipp();
      engine?.child.kill('SIGKILL');
      await crm?.close();
      await asterisk?.stop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('loads on Asterisk 22 without errors of its own: endpoints, dialplan, ARI user', async () => {
      const shipped = (await readdir(SHIPPED)).filter((f) => f.endsWith('.conf'));
      const required = [
        ...(await readFile(join(SHIPPED, 'modules.conf'), 'utf8')).matchAll(
          /^require\s*=\s*(\S+)/gm,
        ),
      ].map((m) => m[1]!);
      expect(required).to.include.members(['res_ari.so', 'res_stasis.so', 'chan_pjsip.so']);
      expect(problems(await asterisk.consoleLog(), shipped, required)).to.deep.equal([]);
      const endpoints = await asterisk.cli('pjsip show endpoints');
      for (const name of ['101', '102', '103', 'client-trunk', 'pstn-in'])
        expect(endpoints).to.match(new RegExp(`Endpoint:\\s+${name}[\\s/]`));
      const dialplan = await asterisk.cli('dialplan show from-pstn');
      expect(dialplan).to.match(/2\. Stasis\(crm-app,inbound,\$\{EXTEN\}\)/);
      expect(await asterisk.cli('dialplan show from-internal')).to.include(
        'Stasis(crm-app,outbound,${EXTEN})',
      );
      expect(await asterisk.cli('dialplan show 9999@service')).to.include('Playback(hello-world)');
      expect((await asterisk.ari('/asterisk/info')).status).to.equal(200);
      const modules = await asterisk.cli('module show like stasis');
      expect(modules).to.include('app_stasis.so').and.to.include('res_stasis.so');
      // Answering-machine detection of notification calls: the context and app_amd (which
      // loads only with amd.conf).
      const amd = await asterisk.cli('dialplan show s@crm-amd');
      expect(amd).to.include('AMD(${CRM_AMD_INITIAL_SILENCE_MS}');
      expect(amd).to.include('Stasis(crm-app,amd,${AMDSTATUS},${AMDCAUSE})');
      expect(await asterisk.cli('module show like app_amd')).to.include('app_amd.so');
    });

    it('operator 101 registers with its password; a DID call reaches it through Stasis', async () => {
      const ports = asterisk.ports;
      const registered = operator101('op101-registered', 'register.xml', asterisk, secrets);
      phone = registered;
      await until(
        () => registered.receivedResponses().includes('200'),
        'the REGISTER of 101 to be accepted',
        15_000,
      );
      expect(registered.receivedResponses()).to.deep.equal(['401', '200']);
      expect(await asterisk.cli('pjsip show contacts')).to.match(/101\/sip:101@127\.0\.0\.1/);

      ({ engine } = await startEngineProcess(asterisk, env));
      const caller = Sipp.caller('caller', 'uac.xml', ports, {
        did: DID,
        caller: '79161234567',
        pauseMs: 1500,
      });
      const started = await crm.waitForWebhook((w) => w.body.type === 'call.started', 20_000);
      const ended = await crm.waitForEnded(started.body.callId, 20_000);
      await caller.passed();
      expect(ended.body.data).to.include({ did: DID, answeredBy: '101', disposition: 'answered' });
      expect(crm.eventsOf(started.body.callId).every((w) => w.signatureValid)).to.equal(true);
      await until(() => phone!.receivedRequests().includes('BYE'), 'the BYE to 101', 10_000);
      expect(phone.receivedRequests().filter((m) => m !== 'OPTIONS')).to.deep.equal([
        'INVITE',
        'ACK',
        'BYE',
      ]);
      await asterisk.waitIdle();
    });

    it('with the engine stopped, the STASISSTATUS fallback rings 101 directly', async () => {
      const ports = asterisk.ports;
      expect(phone, 'the registered phone of the previous test').to.not.equal(undefined);
      const child = engine!.child;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      // Asterisk unregisters the application when its WebSocket closes (GET answers 404). One
      // still holding a subscription stays registered but deactivated, which Stasis() refuses
      // all the same ("not active"): then it must hold no channel and no bridge.
      let app = await asterisk.ari<{ channel_ids: string[]; bridge_ids: string[] }>(
        '/applications/crm-app',
      );
      await until(
        async () => (app = await asterisk.ari('/applications/crm-app')).status === 404,
        'crm-app to be unregistered',
        10_000,
      ).catch(() => undefined);
      if (app.status !== 404) {
        const held = { channels: app.body.channel_ids, bridges: app.body.bridge_ids };
        expect(held, `crm-app still registered: ${JSON.stringify(app.body)}`).to.deep.equal({
          channels: [],
          bridges: [],
        });
      }
      const webhooksBefore = crm.webhooks.length;
      const invitesBefore = phone!.receivedRequests().filter((m) => m === 'INVITE').length;
      const caller = Sipp.caller('caller-fallback', 'uac.xml', ports, {
        did: DID,
        caller: '79161234567',
        pauseMs: 1500,
      });
      // While it rings and talks, the caller's channel runs the fallback Dial of from-pstn.
      let dial: { context: string; app_data: string } | undefined;
      await until(
        async () => {
          const channels =
            await asterisk.ari<
              Array<{ dialplan: { context: string; app_name: string; app_data: string } }>
            >('/channels');
          dial = channels.body.find((c) => c.dialplan.app_name === 'Dial')?.dialplan;
          return dial !== undefined;
        },
        'the caller to run Dial() in from-pstn',
        10_000,
      );
      expect(dial).to.deep.include({
        context: 'from-pstn',
        app_data: 'PJSIP/101&PJSIP/102&PJSIP/103,30',
      });
      await caller.passed();
      await until(
        () => phone!.receivedRequests().filter((m) => m === 'BYE').length === 2,
        'the BYE of the fallback call to 101',
        10_000,
      );
      const requests = phone!.receivedRequests().filter((m) => m !== 'OPTIONS');
      expect(requests.filter((m) => m === 'INVITE').length).to.equal(invitesBefore + 1);
      expect(crm.webhooks.length).to.equal(webhooksBefore);
      await asterisk.waitIdle();
    });
  });
