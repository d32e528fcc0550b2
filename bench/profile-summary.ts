/**
 * Summary of a V8 CPU profile (`.cpuprofile`, as written by `node --cpu-prof` or by
 * `npm run bench -- --profile DIR`): self time by area (a package under node_modules, a folder of
 * src/, Node.js internals, garbage collection, idle) and the functions with the most self time.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=30]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a function lives: `pkg:<name>`, `src/<folder>`, `bench`, `node:<internal>` or a V8 pseudo-frame. */
export function areaOf(url: string, functionName: string): string {
  if (!url) return `(${functionName.replace(/[()]/g, '') || 'native'})`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return `pkg:${rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return 'node:internals';
  const src = url.indexOf('/src/');
  if (src >= 0) return `src/${url.slice(src + 5).split('/')[0]}`;
  if (url.includes('/bench/')) return 'bench';
  return url;
}

/** Render the summary of the profile at `path` (top `top` functions). */
export function summariseProfile(path: string, title: string, top = 30): string {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    // timeDeltas[i] is the time before sample i; attribute the next delta to this sample.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const file = url ? url.replace(/^.*\/(node_modules|src|bench)\//, '$1/') : '';
    const key = `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  // Inclusive time: each sample counts once for every function (and area) on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  const inclusiveAreas = new Map<string, number>();
  const owners = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    const seenAreas = new Set<string>();
    let owner: string | undefined;
    let firstPackage: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame || !frame.url) continue;
      const area = areaOf(frame.url, frame.functionName);
      if (firstPackage === undefined && area.startsWith('pkg:')) firstPackage = area;
      if (owner === undefined && (area.startsWith('src/') || area === 'bench')) {
        const file = frame.url.replace(/^.*\/src\//, 'src/');
        owner = area === 'src/ari' || area === 'src/calls' ? file : area;
      }
      const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${frame.lineNumber + 1}`;
      seen.add(key);
      seenAreas.add(areaOf(frame.url, frame.functionName));
    }
    const leaf = byId.get(id)?.callFrame;
    owner ??= firstPackage ?? (leaf ? areaOf(leaf.url, leaf.functionName) : '(unknown)');
    owners.set(owner, (owners.get(owner) ?? 0) + us);
    for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    for (const key of seenAreas) inclusiveAreas.set(key, (inclusiveAreas.get(key) ?? 0) + us);
  }
  const busyUs = totalUs - (areas.get('(idle)') ?? 0);
  const pct = (us: number): string => `${((us / totalUs) * 100).toFixed(1).padStart(5)} %`;
  const lines = [
    `  ${title}: ${(totalUs / 1e6).toFixed(2)} s profiled, ${((busyUs / totalUs) * 100).toFixed(0)} % busy`,
    '    self time by area:',
  ];
  for (const [area, us] of [...areas].sort((a, b) => b[1] - a[1]).slice(0, 15))
    lines.push(`      ${pct(us)}  ${area}`);
  lines.push('    self time by the innermost project code on the stack (who caused it):');
  for (const [owner, us] of [...owners].sort((a, b) => b[1] - a[1]).slice(0, 20))
    lines.push(`      ${pct(us)}  ${owner}`);
  lines.push('    time with an area on the stack (inclusive):');
  for (const [area, us] of [...inclusiveAreas].sort((a, b) => b[1] - a[1]).slice(0, 15))
    lines.push(`      ${pct(us)}  ${area}`);
  lines.push('    functions with the most self time:');
  for (const [fn, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`      ${pct(us)}  ${fn}`);
  lines.push('    functions with the most inclusive time:');
  for (const [fn, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`      ${pct(us)}  ${fn}`);
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write(
      'usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top]\n',
    );
    process.exit(2);
  }
  process.stdout.write(`${summariseProfile(file, file, Number(top ?? 30))}\n`);
}
