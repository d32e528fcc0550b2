/**
 * Child process of test/lint/lint.test.ts (`node --import tsx test/lint/eslint-child.ts`): lints
 * the whole project with its eslint.config.js through ESLint's Node API, then the file
 * {@link FIXTURE} (which that config ignores) on its own, and writes one JSON {@link LintReport}
 * to stdout. A process of its own because the type-aware rules build the TypeScript program of
 * tsconfig.json (about 500 MB of heap, kept by typescript-eslint after the lint) that must not
 * stay in the test process for the rest of the suite.
 */
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

/** The repository's root (eslint.config.js, tsconfig.json). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Deliberately wrong code, relative to {@link ROOT}. */
export const FIXTURE = 'test/lint/unhandled-promises.fixture.ts';

/** One problem ESLint reported. */
export interface LintMessage {
  ruleId: string | null;
  line: number;
  severity: number;
  message: string;
}

/** What the child writes to stdout. */
export interface LintReport {
  project: {
    /** Files linted, relative to {@link ROOT}. */
    files: string[];
    errorCount: number;
    warningCount: number;
    /** ESLint's `stylish` output of every problem ('' when there is none). */
    formatted: string;
    /** Wall time of the whole-project lint, ms. */
    durationMs: number;
  };
  /** What ESLint reported for {@link FIXTURE}. */
  fixture: LintMessage[];
}

async function lintAll(): Promise<LintReport> {
  const startedAt = performance.now();
  const eslint = new ESLint({ cwd: ROOT });
  const results = await eslint.lintFiles(['.']);
  const durationMs = performance.now() - startedAt;
  const formatter = await eslint.loadFormatter('stylish');
  // With the config's ignores off, so that the fixture is linted like any file of the project.
  const [fixture] = await new ESLint({ cwd: ROOT, ignore: false }).lintFiles([FIXTURE]);
  return {
    project: {
      files: results.map((r) => r.filePath.slice(ROOT.length)),
      errorCount: results.reduce((n, r) => n + r.errorCount, 0),
      warningCount: results.reduce((n, r) => n + r.warningCount, 0),
      formatted: await formatter.format(results),
      durationMs,
    },
    fixture: (fixture?.messages ?? []).map((m) => ({
      ruleId: m.ruleId,
      line: m.line,
      severity: m.severity,
      message: m.message,
    })),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  lintAll().then(
    (report) => process.stdout.write(JSON.stringify(report)),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
