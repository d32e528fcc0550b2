/**
 * Lint as part of `npm test`: the whole project passes ESLint with its own eslint.config.js,
 * type-aware rules included (no-floating-promises, no-misused-promises, await-thenable: a promise
 * nobody handles is an async call engine's most common bug), and those rules are really on: a
 * file of deliberate mistakes (unhandled-promises.fixture.ts) gets each one reported.
 *
 * ESLint runs in a child process (eslint-child.ts): the TypeScript program behind the type-aware
 * rules is large and must not stay in the test process. The whole-project lint is the slowest
 * test of the suite (about 45 s of CPU on an idle machine; minutes when the machine is busy).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TSX_LOADER } from '../support/engine-process.ts';
import { FIXTURE, ROOT, type LintReport } from './eslint-child.ts';

const CHILD = fileURLToPath(new URL('./eslint-child.ts', import.meta.url));

/** The rule the line after each `// lint-next-line: <rule>` of the fixture must be reported under. */
function expectedProblems(): Array<{ line: number; ruleId: string }> {
  const lines = readFileSync(join(ROOT, FIXTURE), 'utf8').split('\n');
  return lines.flatMap((text, i) => {
    const marker = /\/\/ lint-next-line: (\S+)$/.exec(text);
    // i is the marker's index; lines count from 1: the next line is i + 2.
    return marker ? [{ line: i + 2, ruleId: marker[1]! }] : [];
  });
}

describe('lint (ESLint with type-aware rules)', function () {
  this.timeout(300_000);
  let report: LintReport;

  before(async function () {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', TSX_LOADER, CHILD],
      {
        cwd: ROOT,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    report = JSON.parse(stdout) as LintReport;
  });

  it('the project has no lint errors (src, test and bench, type-aware rules included)', () => {
    const { files, errorCount, formatted, durationMs } = report.project;
    // Printed so that a slow lint shows in CI's log before it becomes a timeout.
    console.log(`      whole-project lint: ${files.length} files in ${Math.round(durationMs)} ms`);
    for (const dir of ['src/', 'test/', 'bench/'])
      expect(
        files.some((f) => f.startsWith(dir)),
        `files under ${dir} linted`,
      ).to.equal(true);
    expect(errorCount, `ESLint errors:\n${formatted}`).to.equal(0);
  });

  it('reports a floating promise, an async event listener, a non-promise await and an unawaited return in try', () => {
    const expected = expectedProblems();
    expect(expected.map((p) => p.ruleId)).to.include.members([
      '@typescript-eslint/no-floating-promises',
      '@typescript-eslint/no-misused-promises',
    ]);
    const reported = report.fixture.map((m) => `${m.line} ${m.ruleId} (${m.message})`);
    for (const { line, ruleId } of expected) {
      const found = report.fixture.find((m) => m.line === line && m.ruleId === ruleId);
      expect(found, `${ruleId} on line ${line}; reported: ${reported.join('; ')}`).not.to.equal(
        undefined,
      );
      expect(found!.severity, `${ruleId} is an error`).to.equal(2);
    }
  });
});
