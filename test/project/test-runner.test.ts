/**
 * How the test suite is run (README "Tests"): `npx mocha FILE` runs that file alone, and
 * `npm test` (what .ci/run runs) still finds every test file under test/.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync } from 'glob';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MOCHA = resolve(ROOT, 'node_modules/mocha/bin/mocha.js');

describe('running the tests', function () {
  this.timeout(60_000);

  it('`npx mocha FILE` runs only that file (the config names no spec of its own)', () => {
    const file = 'test/unit/numbers/phone.test.ts';
    // --dry-run: mocha loads the spec files and lists their tests without running them.
    const run = spawnSync(process.execPath, [MOCHA, '--dry-run', '--reporter', 'json', file], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).to.equal(0);
    const report = JSON.parse(run.stdout) as { tests: Array<{ file: string }> };
    const files = new Set(report.tests.map((t) => relative(ROOT, t.file)));
    expect([...files]).to.deep.equal([file]);
  });

  it('`npm test` runs every *.test.ts file under test/', () => {
    const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const script = pkg.scripts.test ?? '';
    const globs = [...script.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
    expect(script).to.match(/^mocha /);
    const listed = new Set(globs.flatMap((g) => globSync(g, { cwd: ROOT })));
    const all = globSync('test/**/*.test.ts', { cwd: ROOT });
    expect(all.length).to.be.greaterThan(50);
    expect(all.filter((f) => !listed.has(f))).to.deep.equal([]);
  });
});
