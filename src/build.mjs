#!/usr/bin/env node
/**
 * `npm run build [-- --outDir DIR]`: compiles the engine (tsconfig.build.json, Node.js) into DIR
 * (default dist/), then the operator console's browser code (src/console/web/tsconfig.json, DOM
 * types, ES modules) into DIR/console/web, where the compiled engine serves it from. Two
 * TypeScript programs because the browser code is checked against the DOM and the engine is not.
 * Exits with tsc's status when either fails.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const at = args.indexOf('--outDir');
const outDir = resolve(root, at >= 0 && args[at + 1] ? args[at + 1] : 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

const run = (project, out) => {
  const result = spawnSync(process.execPath, [tsc, '-p', project, '--outDir', out], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

run('tsconfig.build.json', outDir);
run(join('src', 'console', 'web', 'tsconfig.json'), join(outDir, 'console', 'web'));
