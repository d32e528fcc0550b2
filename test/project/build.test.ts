/**
 * The production build: `npm run build` compiles src/ with tsc (tsconfig.build.json) and the
 * compiled engine runs on plain Node.js, without tsx (docker/Dockerfile runs it the same way:
 * `node dist/main.js`). The build goes into a temporary folder inside the repository, so that
 * the compiled code finds node_modules and package.json where dist/ would.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiRequest } from '../support/api.ts';
import { EngineProcess } from '../support/engine-process.ts';
import { TEST_API_KEY } from '../support/engine.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('the production build', function () {
  this.timeout(240_000);
  let outDir: string | undefined;
  let dataDir: string | undefined;
  let engine: EngineProcess | undefined;

  after(async () => {
    const child = engine?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    if (outDir) await rm(outDir, { recursive: true, force: true });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('`npm run build` compiles the engine, which then serves on plain node (no tsx)', async () => {
    outDir = await mkdtemp(join(ROOT, '.build-test-'));
    const build = spawn('npm', ['run', 'build', '--', '--outDir', outDir], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    build.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    build.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    const [code] = (await once(build, 'exit')) as [number | null];
    expect(code, output).to.equal(0);

    // JavaScript only (the SQLite worker threads' own .js files included), no tests.
    const files = readdirSync(outDir, { recursive: true, encoding: 'utf8' });
    expect(files).to.include.members([
      'main.js',
      join('store', 'sqlite-thread.js'),
      join('store', 'sqlite-checkpointer.js'),
      // The operator console's browser code, compiled by its own TypeScript program (DOM types).
      join('console', 'web', 'console.js'),
      join('console', 'web', 'stream.js'),
    ]);
    expect(files.filter((f) => /\.ts$|\.test\.js$/.test(f) && !f.endsWith('.d.ts'))).to.deep.equal(
      [],
    );

    dataDir = await mkdtemp(join(tmpdir(), 'ari-crm-build-'));
    const child = spawn(process.execPath, [join(outDir, 'main.js')], {
      // No --import tsx: a relative import the compiler left as `.ts` would fail here.
      cwd: dataDir,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
        SIM_ARI_PORT: '0',
        API_KEYS: `test:${TEST_API_KEY}`,
        DATA_DIR: dataDir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    engine = new EngineProcess(child);
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const started = await engine.waitForLine((l) => l.message === 'ari-crm started', 60_000);
    const httpUrl = String(started.httpUrl);

    expect((await apiRequest(httpUrl, '/healthz', { key: null })).status).to.equal(200);
    // The API listens before ARI connects (to the built-in simulator here): ready once it has.
    await engine.waitForLine((l) => l.message === 'ARI connected', 30_000);
    expect((await apiRequest(httpUrl, '/readyz', { key: null })).status).to.equal(200);
    // The OpenAPI document reads package.json at run time (its version).
    const openapi = await apiRequest<{ info: { version: string } }>(httpUrl, '/openapi.json', {
      key: null,
    });
    expect(openapi.status).to.equal(200);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(openapi.body.info.version).to.equal(pkg.version);
    // The operator console: its page and the browser modules compiled by the build (no tsx or
    // TypeScript compiler at run time), which import each other as .js.
    const page = await apiRequest(httpUrl, '/console', { key: null });
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-security-policy')).to.include("default-src 'self'");
    const script = await apiRequest(httpUrl, '/console/assets/console.js', { key: null });
    expect(script.status).to.equal(200);
    expect(script.headers.get('content-type')).to.match(/^text\/javascript/);
    expect(script.text).to.match(/from ['"]\.\/stream\.js['"]/);
    // The store (SQLite in its worker thread) answers through the API.
    expect((await apiRequest(httpUrl, '/v1/calls')).status).to.equal(200);

    child.kill('SIGTERM');
    const [exitCode, signal] = await exited;
    expect({ exitCode, signal, stderr: engine.stderr }).to.deep.equal({
      exitCode: 0,
      signal: null,
      stderr: '',
    });
    expect(engine.lines.filter((l) => l.level === 'error')).to.deep.equal([]);
  });

  it('docker/Dockerfile builds with tsc and runs the compiled engine on a supported LTS', () => {
    const dockerfile = readFileSync(join(ROOT, 'docker/Dockerfile'), 'utf8');
    const nodeVersion = Number(/^ARG NODE_VERSION=(\d+)/m.exec(dockerfile)?.[1]);
    expect(nodeVersion, 'Node.js 22 or 24 LTS').to.be.oneOf([22, 24]);
    const stages = dockerfile.split(/^FROM /m).slice(1);
    const runtime = stages.at(-1)!;
    expect(stages.some((s) => /^RUN npm run build$/m.test(s))).to.equal(true);
    expect(runtime).to.match(/^CMD \["node", "--enable-source-maps", "dist\/main\.js"\]$/m);
    expect(runtime).to.not.match(/tsx|esbuild|COPY src/);
    // The files the build stage copies are what `npm run build` reads.
    for (const file of ['tsconfig.json', 'tsconfig.build.json', 'src/build.mjs'])
      expect(existsSync(join(ROOT, file)) && dockerfile.includes(file), file).to.equal(true);
  });
});
