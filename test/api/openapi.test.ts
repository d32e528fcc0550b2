/**
 * `GET /openapi.json` documents exactly the routes the engine serves (a route the document lacks,
 * or the reverse, fails the test), with request schemas generated from the zod schemas the routes
 * validate with, accepts what its schemas say, and passes `redocly lint` (Redocly's recommended
 * rules) without errors.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';
import { z } from 'zod';
import { clickToCallBodySchema, transferBodySchema } from '../../src/calls/routes.ts';
import { apiRequest } from '../support/api.ts';
import { startTestBed, type TestBed } from '../support/engine.ts';

const REDOCLY = fileURLToPath(
  new URL('../../node_modules/@redocly/cli/bin/cli.js', import.meta.url),
);

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

type Operation = {
  operationId?: string;
  tags?: string[];
  parameters?: Array<{ name: string; schema: Record<string, unknown> }>;
  responses: Record<string, { content?: unknown; headers?: unknown }>;
};
type Doc = {
  openapi: string;
  servers?: Array<{ url: string }>;
  tags?: Array<{ name: string }>;
  paths: Record<string, Record<string, Operation>>;
  webhooks: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Record<string, unknown>> };
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
    // Express answers HEAD on every GET route; the document names it where clients use it.
    const heads = documented.filter((r) => r.startsWith('HEAD '));
    for (const head of heads) expect(served).to.include(head.replace(/^HEAD/, 'GET'));
    expect(heads).to.deep.equal([
      'HEAD /v1/calls/{id}/recording',
      'HEAD /v1/calls/{id}/recordings/{name}',
    ]);
    expect(documented.filter((r) => !heads.includes(r))).to.deep.equal(served);
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
      'autocall.attempt',
      'autocall.finished',
      'operator.state',
    ]);
    expect(doc.components.schemas).to.include.keys(
      'CallEndedEvent',
      'Error',
      'Call',
      'CurrentCall',
    );
  });

  it('names every operation (unique operationId) and tags it with a declared tag; servers are set', () => {
    expect(doc.servers).to.be.an('array').with.length.greaterThan(0);
    const declared = (doc.tags ?? []).map((t) => t.name);
    const ids: string[] = [];
    for (const [where, ops] of [...Object.entries(doc.paths), ...Object.entries(doc.webhooks)])
      for (const [method, op] of Object.entries(ops)) {
        expect(op.operationId, `${method} ${where}`).to.be.a('string');
        ids.push(op.operationId!);
        expect(op.tags, `${method} ${where}`).to.be.an('array').with.length.greaterThan(0);
        for (const tag of op.tags!) expect(declared, `${method} ${where}`).to.include(tag);
      }
    expect(new Set(ids).size).to.equal(ids.length);
  });

  it('describes 413 on every operation with a JSON body, and HEAD on the recording', () => {
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops))
        if ('requestBody' in op) expect(op.responses, `${method} ${path}`).to.have.property('413');
    const recording = doc.paths['/v1/calls/{id}/recording']!;
    expect(recording.head).to.not.equal(undefined);
    expect(Object.keys(recording.head!.responses)).to.deep.equal(
      Object.keys(recording.get!.responses),
    );
    for (const response of Object.values(recording.head!.responses))
      expect(response).to.not.have.property('content');
    expect(recording.head!.responses['200']!.headers).to.have.property('Content-Length');
  });

  it('since/until accept exactly what their schema says: an RFC 3339 date-time or a date', async () => {
    const parameters = doc.paths['/v1/calls']!.get!.parameters!;
    for (const name of ['since', 'until'])
      expect(parameters.find((p) => p.name === name)!.schema).to.deep.equal({
        type: 'string',
        anyOf: [{ format: 'date-time' }, { format: 'date' }],
      });
    const accepted = [
      '2025-01-31T09:15:00Z',
      '2025-01-31t09:15:00z',
      '2025-01-31T12:15:00+03:00',
      '2025-01-31T09:15:00.123456789-00:00',
      '2025-01-31',
    ];
    // ISO 8601 spellings that are not RFC 3339 (JSON Schema's date-time), and no zone at all.
    const refused = [
      '2025-01-31T09:15Z',
      '2025-01-31T12:15:00+0300',
      '2025-01-31T12:15:00+03',
      '2025-01-31T09:15:00,5Z',
      '2025-01-31T09:15:00',
      '20250131',
      '2025-02-30',
      '2025-01-31T24:00:00Z',
      '2025-01-31T09:60:00Z',
      '2025-01-31T09:15:00+24:00',
    ];
    for (const time of [...accepted, ...refused]) {
      const res = await apiRequest(
        bed.engine.httpUrl,
        `/v1/calls?since=${encodeURIComponent(time)}`,
      );
      expect(res.status, time).to.equal(accepted.includes(time) ? 200 : 400);
    }
  });

  it("states the transfer's `to` pattern by kind, as the API checks it", () => {
    const schema = doc.components.schemas.TransferRequest as {
      if: unknown;
      then: { properties: { to: { pattern: string } } };
      else: { properties: { to: { pattern: string } } };
    };
    expect(schema.if).to.deep.equal({
      properties: { kind: { const: 'extension' } },
      required: ['kind'],
    });
    const documented = (body: { to: string; kind?: string }): boolean =>
      new RegExp(
        (body.kind === 'extension' ? schema.then : schema.else).properties.to.pattern,
      ).test(body.to);
    const samples = [
      '102',
      '9999',
      '*72#',
      '1',
      '12345678901',
      'abc',
      '10 2',
      '',
      '123456789012345678901',
    ];
    for (const to of samples)
      for (const kind of ['extension', 'service', undefined]) {
        const body = kind ? { to, kind } : { to };
        expect(transferBodySchema.safeParse(body).success, JSON.stringify(body)).to.equal(
          documented(body),
        );
      }
  });

  it('passes `redocly lint` (recommended rules) with no errors', async function () {
    this.timeout(120_000);
    const dir = await mkdtemp(join(tmpdir(), 'ari-crm-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      await writeFile(file, JSON.stringify(doc, null, 2));
      const lint = spawn(process.execPath, [REDOCLY, 'lint', file, '--format=json'], {
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      lint.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      lint.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      await once(lint, 'exit');
      const report = JSON.parse(out.slice(out.indexOf('{'))) as {
        totals: { errors: number };
        problems: Array<{ ruleId: string; severity: string; location: Array<{ pointer: string }> }>;
      };
      const problems = report.problems.map(
        (p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer}`,
      );
      expect(report.totals.errors, `${problems.join('\n')}\n${err}`).to.equal(0);
      // The probes answer 200 or 503 only: they have no 4xx to describe. The live stream's
      // success is 101 Switching Protocols (a WebSocket), never a 2xx.
      expect(problems).to.deep.equal([
        'warn operation-2xx-response #/paths/~1v1~1stream/get/responses',
        'warn operation-4xx-response #/paths/~1healthz/get/responses',
        'warn operation-4xx-response #/paths/~1readyz/get/responses',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
