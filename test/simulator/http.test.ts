/**
 * The simulator's HTTP and WebSocket surface: authentication (also for api-docs, fact 12), the
 * Swagger documents (basePath from the Host header, a model for every event type it can send,
 * the same operations as Asterisk 22's own api-docs when those are available), res_ari.c's
 * routing errors, and parameters as query string, form or JSON body.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import WebSocket from 'ws';
import { ARI_EVENT_TYPES } from '../../src/ari/types.ts';
import { startSimulator, type PbxSimulator } from '../../src/simulator/index.ts';
import { DECLARED_EVENT_TYPES, RESOURCES } from '../../src/simulator/swagger/declarations.ts';
import { ari, AppSocket } from './support/driver.ts';
import type { Json } from './support/trace.ts';

/** Asterisk 22's own api-docs (reference data outside the project), when present. */
const REFERENCE_DIR =
  process.env.ARI_REFERENCE_API_DOCS ??
  join(
    dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    '..',
    'shared',
    'fixtures',
    'ari',
    'api-docs',
  );

/** GET with node:http (fetch cannot set a Host header). */
function get(
  sim: PbxSimulator,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${sim.url}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          body: text ? (JSON.parse(text) as Json) : {},
          headers: res.headers,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const basic = (user: string, pass: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`,
});

describe('simulator HTTP and WebSocket surface', function () {
  this.timeout(10_000);
  let sim: PbxSimulator;

  beforeEach(async () => {
    sim = await startSimulator({ timeScale: 0.05, username: 'ari', password: 's3cret' });
  });

  afterEach(async () => {
    await sim?.close();
  });

  describe('authentication', () => {
    it('answers 401 {"message":"Authentication required"} with a Basic challenge, also for api-docs (fact 12)', async () => {
      for (const headers of [{}, basic('ari', 'wrong'), basic('nobody', 's3cret')]) {
        const res = await get(sim, '/ari/api-docs/resources.json', headers);
        expect(res.status).to.equal(401);
        expect(res.body).to.deep.equal({ message: 'Authentication required' });
        expect(res.headers['www-authenticate']).to.equal('Basic realm="Asterisk REST Interface"');
      }
      expect((await get(sim, '/ari/channels?api_key=ari:wrong')).status).to.equal(401);
    });

    it('accepts basic auth and api_key=user:pass', async () => {
      expect((await get(sim, '/ari/channels', basic('ari', 's3cret'))).status).to.equal(200);
      expect((await get(sim, '/ari/channels?api_key=ari:s3cret')).status).to.equal(200);
    });

    it('refuses the event WebSocket with wrong credentials (401) or without an app (400)', async () => {
      const statusOf = (query: string): Promise<number> =>
        new Promise((resolve) => {
          const ws = new WebSocket(`${sim.url.replace('http', 'ws')}/ari/events?${query}`);
          ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.on('open', () => {
            ws.close();
            resolve(101);
          });
          ws.on('error', () => undefined);
        });
      expect(await statusOf('app=crm-app&api_key=ari:nope')).to.equal(401);
      expect(await statusOf('api_key=ari:s3cret')).to.equal(400);
      expect(await statusOf('app=crm-app&api_key=ari:s3cret')).to.equal(101);
    });
  });

  describe('api-docs', () => {
    it('serves resources.json and every declaration with basePath http://<Host>/ari', async () => {
      const auth = basic('ari', 's3cret');
      const listing = await get(sim, '/ari/api-docs/resources.json', {
        ...auth,
        host: 'pbx.example:8088',
      });
      expect(listing.status).to.equal(200);
      expect(listing.body).to.include({
        swaggerVersion: '1.1',
        basePath: 'http://pbx.example:8088/ari',
      });
      const apis = listing.body.apis as Array<{ path: string }>;
      expect(apis.map((a) => a.path)).to.deep.equal(
        RESOURCES.map((r) => `/api-docs/${r.name}.{format}`),
      );
      for (const resource of RESOURCES) {
        const doc = await get(sim, `/ari/api-docs/${resource.name}.json`, {
          ...auth,
          host: 'pbx.example:8088',
        });
        expect(doc.status, resource.name).to.equal(200);
        expect(doc.body).to.include({
          basePath: 'http://pbx.example:8088/ari',
          resourcePath: `/api-docs/${resource.name}.{format}`,
        });
      }
      expect((await get(sim, '/ari/api-docs/sounds.json', auth)).body).to.deep.equal({
        message: 'Resource not found',
      });
    });

    it("declares a model, typed like Asterisk's, for every event type the engine understands", async () => {
      const events = (await get(sim, '/ari/api-docs/events.json', basic('ari', 's3cret'))).body;
      const models = events.models as Record<
        string,
        { properties: Record<string, { type: string }> }
      >;
      for (const type of [...ARI_EVENT_TYPES, ...DECLARED_EVENT_TYPES])
        expect(models, type).to.have.property(type);
      expect(models.StasisStart!.properties.channel!.type).to.equal('Channel');
      expect(models.ChannelEnteredBridge!.properties.bridge!.type).to.equal('Bridge');
      expect(models.PlaybackFinished!.properties.playback!.type).to.equal('Playback');
      expect(models.RecordingFinished!.properties.recording!.type).to.equal('LiveRecording');
      expect(models.Dial!.properties.peer!.type).to.equal('Channel');
    });

    it("matches Asterisk 22's api-docs: nicknames, paths, parameter names, types, required, allowMultiple", function () {
      if (!existsSync(join(REFERENCE_DIR, 'channels.json'))) this.skip();
      for (const resource of RESOURCES) {
        const reference = JSON.parse(
          readFileSync(join(REFERENCE_DIR, `${resource.name}.json`), 'utf8'),
        ) as {
          apis: Array<{
            path: string;
            operations: Array<{
              httpMethod: string;
              nickname: string;
              responseClass: string;
              parameters?: Array<Json>;
            }>;
          }>;
          models: Record<string, { properties: Record<string, { type: string }> }>;
        };
        for (const api of resource.apis) {
          const refApi = reference.apis.find((a) => a.path === api.path);
          expect(refApi, `${resource.name} ${api.path}`).to.not.equal(undefined);
          for (const operation of api.operations) {
            const refOp = refApi!.operations.find((o) => o.httpMethod === operation.httpMethod);
            const what = `${operation.httpMethod} ${api.path}`;
            expect(refOp, what).to.not.equal(undefined);
            expect(operation.nickname, what).to.equal(refOp!.nickname);
            expect(operation.responseClass, what).to.equal(refOp!.responseClass);
            const pick = (p: Json): Json => ({
              name: p.name,
              paramType: p.paramType,
              dataType: p.dataType,
              required: p.required === true,
              allowMultiple: p.allowMultiple === true,
            });
            expect(
              operation.parameters.map((p) => pick(p as unknown as Json)),
              what,
            ).to.deep.equal((refOp!.parameters ?? []).map(pick));
          }
        }
        for (const model of resource.models) {
          const refModel = reference.models[model.id];
          if (!refModel) continue;
          for (const [name, prop] of Object.entries(model.properties)) {
            expect(prop.type, `${model.id}.${name}`).to.equal(refModel.properties[name]?.type);
          }
        }
      }
    });
  });

  describe('routing and parameters (res_ari.c)', () => {
    it('answers 404 "Resource not found", 405 "Invalid method" and the trailing-slash hint', async () => {
      const auth = basic('ari', 's3cret');
      expect((await get(sim, '/ari/nothing', auth)).body).to.deep.equal({
        message: 'Resource not found',
      });
      const wrongMethod = await ari(
        Object.assign(Object.create(sim) as PbxSimulator, { username: 'ari', password: 's3cret' }),
        'GET',
        '/channels/create',
      );
      expect(wrongMethod.status).to.equal(405);
      expect(wrongMethod.body).to.deep.equal({ message: 'Invalid method' });
      expect((await get(sim, '/ari/channels/', auth)).body).to.deep.equal({
        message: 'ARI URLs do not end with a slash. Try /ari/channels',
      });
    });

    it('takes parameters from the query string, a form body or a JSON body (JSON wins), and variables from JSON', async () => {
      const creds = Object.assign(Object.create(sim) as PbxSimulator, {
        username: 'ari',
        password: 's3cret',
      });
      const socket = await AppSocket.open(creds);
      try {
        const viaJson = await ari(
          creds,
          'POST',
          '/channels/create',
          { endpoint: 'PJSIP/999' },
          {
            endpoint: 'PJSIP/101',
            app: 'crm-app',
            channelId: 'json-1',
            variables: { 'CALLERID(name)': 'Alice', CRM_DEAL: '42' },
          },
        );
        expect(viaJson.status).to.equal(200);
        expect(viaJson.body).to.deep.include({
          id: 'json-1',
          caller: { name: 'Alice', number: '101' },
        });
        expect(
          await ari(creds, 'GET', '/channels/json-1/variable', { variable: 'CRM_DEAL' }),
        ).to.deep.include({ status: 200, body: { value: '42' } });

        const res = await fetch(`${sim.url}/ari/channels/create`, {
          method: 'POST',
          headers: {
            ...basic('ari', 's3cret'),
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: 'endpoint=PJSIP/102&app=crm-app&channelId=form-1',
        });
        expect(res.status).to.equal(200);
        expect(((await res.json()) as Json).id).to.equal('form-1');

        const badVars = await ari(
          creds,
          'POST',
          '/channels/create',
          { endpoint: 'PJSIP/101', app: 'crm-app' },
          { variables: { X: 1 } },
        );
        expect(badVars).to.deep.include({
          status: 400,
          body: { message: "Only string values in the 'variables' object allowed" },
        });
        const badJson = await fetch(`${sim.url}/ari/channels`, {
          method: 'POST',
          headers: { ...basic('ari', 's3cret'), 'content-type': 'application/json' },
          body: '{',
        });
        expect(badJson.status).to.equal(400);
        expect(await badJson.json()).to.deep.equal({ message: 'Error parsing request body' });
        expect(sim.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).to.include.members([
          'POST /channels/create 200',
          'GET /channels/json-1/variable 200',
          'POST /channels 400',
        ]);
        const recorded = sim.requests.find((r) => r.path === '/channels/create');
        expect(recorded).to.deep.include({
          query: { endpoint: 'PJSIP/999' },
          body: {
            endpoint: 'PJSIP/101',
            app: 'crm-app',
            channelId: 'json-1',
            variables: { 'CALLERID(name)': 'Alice', CRM_DEAL: '42' },
          },
        });
      } finally {
        await socket.close();
      }
    });
  });
});
