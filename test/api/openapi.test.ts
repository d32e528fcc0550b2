/**
 * `GET /openapi.json` documents exactly the routes the engine serves (issue 3 "a test fails when
 * a route exists that the document lacks, or the reverse"), with request schemas generated from
 * the zod schemas the routes validate with.
 */
import { expect } from 'chai';
import type { Express } from 'express';
import { z } from 'zod';
import { clickToCallBodySchema, transferBodySchema } from '../../src/calls/routes.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';

interface LayerLike {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: LayerLike[] };
  rawPath?: unknown;
}

/** Every `METHOD /path` Express serves, path parameters written `{name}`. */
function expressRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: LayerLike[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods))
          if (on && method !== '_all')
            out.push(
              `${method.toUpperCase()} ${prefix}${layer.route.path}`.replace(/:(\w+)/g, '{$1}'),
            );
      } else if (layer.handle?.stack) {
        const path =
          typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, prefix + path);
      }
    }
  };
  walk((app as unknown as { router: { stack: LayerLike[] } }).router.stack, '');
  return out.sort();
}

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  webhooks: Record<string, unknown>;
  components: { schemas: Record<string, unknown> };
};

describe('OpenAPI document', function () {
  this.timeout(20_000);
  let bed: TestBed;
  let doc: Doc;
  before(async () => {
    bed = await startTestBed({ COMPAT_PATH: '/fcgi-bin/asterisk.fcgi' });
    const res = await apiRequest<Doc>(bed.engine.httpUrl, '/openapi.json', { key: null });
    expect(res.status).to.equal(200);
    doc = res.body;
  });
  after(async () => {
    await bed?.stop();
  });

  it('documents every Express route and no other (the simulator-only /sim aside)', () => {
    const served = expressRoutes(bed.engine.app).filter(
      (r) => !r.split(' ')[1]!.startsWith('/sim'),
    );
    expect(served.length).to.be.greaterThan(8);
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).to.deep.equal(served);
    expect(served).to.include('GET /fcgi-bin/asterisk.fcgi');
  });

  it('is OpenAPI 3.1 with responses on every operation and resolvable references', () => {
    expect(doc.openapi).to.equal('3.1.0');
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops))
        expect(Object.keys(op.responses).length, `${method} ${path}`).to.be.greaterThan(0);
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)];
    expect(refs.length).to.be.greaterThan(10);
    for (const [, id] of refs) expect(doc.components.schemas, id).to.have.property(id!);
  });

  it('generates the request schemas from the zod schemas the routes validate with', () => {
    const strip = (schema: z.ZodType): unknown => {
      const { $schema: _s, ...rest } = z.toJSONSchema(schema, {
        target: 'draft-2020-12',
        io: 'input',
      }) as Record<string, unknown>;
      return rest;
    };
    expect(doc.components.schemas.ClickToCallRequest).to.deep.equal(strip(clickToCallBodySchema));
    expect(doc.components.schemas.TransferRequest).to.deep.equal(strip(transferBodySchema));
  });

  it('describes every webhook payload', () => {
    expect(Object.keys(doc.webhooks)).to.deep.equal([
      'call.started',
      'call.ringing',
      'call.answered',
      'call.transferred',
      'call.transfer_failed',
      'call.recovered',
      'call.ended',
      'recording.ready',
    ]);
    expect(doc.components.schemas).to.include.keys(
      'CallEndedEvent',
      'Error',
      'Call',
      'CurrentCall',
    );
  });
});
