/**
 * What users read speaks to them: the public docs, the config templates, the served
 * `/openapi.json` and the text the engine's code answers with (error messages, config
 * descriptions) never point at the project's internal planning ("BRIEF F6", "seed 003",
 * "issue 5", "fixtures fact 14"), which a user does not have.
 */
import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiRequest } from '../support/api.ts';
import { startTestBed } from '../support/engine.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A reference to a planning document: the brief and its feature numbers, seeds, issues, facts. */
const INTERNAL_REFERENCE =
  /\bBRIEF\b|\bseeds?\b|\bseed-?\d|\bissues? ?#?\d+|\bissue's\b|\bfacts? \d+|\bfacts? (?:1[0-5]|[1-9]) and|(?<![\w.-])F\d{1,2}\b/i;

/** The same in code, where `seed` alone may be a word of the code (a random generator's seed). */
const INTERNAL_REFERENCE_IN_CODE =
  /\bBRIEF\b|\bseed[- ]?\d{3}\b|\bseed's\b|\bthe seeds\b|\bissues? ?#?\d+|\bissue's\b|\bfacts? \d+|(?<![\w.-])F\d{1,2}\b/i;

/** Each `file:line: text` of `text` that holds an internal reference. */
function findReferences(
  file: string,
  text: string,
  skipLine = (_: string) => false,
  pattern = INTERNAL_REFERENCE,
): string[] {
  return text
    .split('\n')
    .map((line, i) => ({ line, at: i + 1 }))
    .filter(({ line }) => !skipLine(line) && pattern.test(line))
    .map(({ line, at }) => `${file}:${at}: ${line.trim()}`);
}

const filesUnder = (dir: string, ext: string): string[] =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(ext))
    .map((f) => join(dir, f));

describe('public text', function () {
  this.timeout(30_000);

  it('the docs and config templates have no internal references', () => {
    const files = [
      'README.md',
      ...filesUnder('docs', '.md'),
      'src/simulator/README.md',
      '.env.example',
      'docker/env.example',
      'docker/compose.yaml',
      'docker/Dockerfile',
      ...filesUnder('asterisk-conf', '.conf'),
    ];
    expect(files.length).to.be.greaterThan(15);
    const found = files.flatMap((f) => findReferences(f, readFileSync(join(ROOT, f), 'utf8')));
    expect(found).to.deep.equal([]);
  });

  it('the text in the code (messages, descriptions) has none; comments are not scanned', () => {
    // A line that is a comment (or ends in one) is for developers; any other line with a
    // reference puts it in a string a user may see.
    const comment = (line: string): boolean => /^\s*(\*|\/\/|\/\*)/.test(line);
    const found = [...filesUnder('src', '.ts'), ...filesUnder('src', '.js')].flatMap((f) =>
      findReferences(
        relative(ROOT, join(ROOT, f)),
        readFileSync(join(ROOT, f), 'utf8').replace(/\s\/\/[^'"`\n]*$/gm, ''),
        comment,
        INTERNAL_REFERENCE_IN_CODE,
      ),
    );
    expect(found).to.deep.equal([]);
  });

  it('the served /openapi.json has none', async () => {
    const bed = await startTestBed();
    try {
      const res = await apiRequest(bed.engine.httpUrl, '/openapi.json', { key: null });
      expect(res.status).to.equal(200);
      expect(findReferences('/openapi.json', JSON.stringify(res.body, null, 1))).to.deep.equal([]);
    } finally {
      await bed.stop();
    }
  });
});
