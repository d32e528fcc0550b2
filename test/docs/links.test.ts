/**
 * The user docs link to each other, to images and to the repository's files: every relative link
 * in README.md, docs/ and src/simulator/README.md must point at a file that exists and, when it
 * names an anchor (`operations.md#shutdown`), at a heading of that file as GitHub renders it.
 * Plain-text mentions of a doc (`docs/store.md`) must name a file that exists too. Links inside
 * code (fenced blocks, `code spans`) and absolute URLs are not checked.
 */
import { expect } from 'chai';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
  'src/simulator/README.md',
];

/** The text of `file` without fenced code blocks; `spans` false also drops `code spans`. */
function prose(file: string, spans: boolean): string {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/^([ \t]*)```[\s\S]*?^\1```/gm, '');
  return spans ? text : text.replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`. */
function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map<string, Set<string>>();

/** Every anchor of a Markdown file: its headings (repeats get `-1`, `-2`) and `<a id>` / `name`. */
function anchorsOf(file: string): Set<string> {
  let anchors = anchorCache.get(file);
  if (anchors) return anchors;
  anchors = new Set();
  const text = prose(file, true);
  const seen = new Map<string, number>();
  for (const m of text.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  anchorCache.set(file, anchors);
  return anchors;
}

/** What is wrong with the link `target` written in `file`, or undefined when it resolves. */
function brokenLink(file: string, target: string): string | undefined {
  const [path, anchor] = target.split('#', 2) as [string, string | undefined];
  const resolved = path === '' ? file : relative(ROOT, resolve(ROOT, dirname(file), path));
  if (resolved.startsWith('..')) return 'points outside the repository';
  if (!existsSync(join(ROOT, resolved))) return `no file ${resolved}`;
  if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor))
    return `no heading #${anchor} in ${resolved}`;
  return undefined;
}

describe('documentation links', () => {
  it('reads the README and the docs', () => {
    expect(DOCS).to.include.members(['README.md', 'docs/api.md', 'docs/configuration.md']);
    expect(anchorsOf('docs/operations.md')).to.include('shutdown');
    expect(slug('Operator tokens: `POST /v1/operators/{extension}/tokens`')).to.equal(
      'operator-tokens-post-v1operatorsextensiontokens',
    );
  });

  it('every relative link and image resolves to a file, and every anchor to a heading', () => {
    const broken: string[] = [];
    for (const file of DOCS) {
      for (const m of prose(file, false).matchAll(
        /!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g,
      )) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
        const problem = brokenLink(file, target);
        if (problem) broken.push(`${file}: (${target}): ${problem}`);
      }
    }
    expect(broken).to.deep.equal([]);
  });

  it('every doc named in the text (docs/store.md) exists', () => {
    const missing: string[] = [];
    for (const file of DOCS) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/(?<![\w/.-])docs\/[\w/-]+\.md\b/g)) {
        if (!existsSync(join(ROOT, m[0]))) missing.push(`${file}: ${m[0]}`);
      }
    }
    expect(missing).to.deep.equal([]);
  });
});
