/**
 * docker/compose.yaml with docker/env.example gives the engine container a configuration it
 * starts with. The engine's environment is computed as Compose computes it (the image's `ENV`,
 * then `env_file: .env`, then `environment:` with `${...}` taken from `.env`), `.env` being
 * env.example after the "Quick start" of docs/docker.md; then the engine's own start-up checks
 * run over it. There is no Docker engine in the test: this is what keeps the shipped files from
 * drifting apart (compose sets NODE_ENV=production, which requires API_KEYS, ...).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseDotenv } from 'dotenv';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../src/config/load.ts';
import { loadEngineConfig } from '../../src/main.ts';

const read = (path: string): string =>
  readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');

type Env = Record<string, string>;

/**
 * Compose's interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
 * `${VAR?error}`, `${VAR:+other}`, `$VAR` and `$$` in one value, from `vars`.
 *
 * @throws Error with Compose's message when a `?` variable is missing
 */
function interpolate(value: string, vars: Env): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (whole === '$$') return '$';
      const name = (braced ?? bare)!;
      const value = vars[name];
      const set = value !== undefined;
      const nonEmpty = set && value !== '';
      switch (op) {
        case ':-':
          return nonEmpty ? value : (arg ?? '');
        case '-':
          return set ? value : (arg ?? '');
        case ':?':
        case '?':
          if (op === ':?' ? !nonEmpty : !set)
            throw new Error(`required variable ${name} is missing a value: ${arg ?? ''}`);
          return value!;
        case ':+':
          return nonEmpty ? (arg ?? '') : '';
        case '+':
          return set ? (arg ?? '') : '';
        default:
          return value ?? '';
      }
    },
  );
}

/** The `ENV` of the Dockerfile's last stage (the image the engine runs in). */
function dockerfileEnv(dockerfile: string): Env {
  const stages = dockerfile.replace(/\\\n/g, ' ').split(/^FROM /m);
  const last = stages[stages.length - 1]!;
  const env: Env = {};
  for (const line of last.split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g))
      env[pair[1]!] = pair[2]!.replace(/^"(.*)"$/, '$1');
  }
  return env;
}

interface ComposeService {
  env_file?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
}

/** The environment Compose gives the engine container, `dotEnv` being docker/.env's text. */
function engineEnvironment(dotEnv: string, options: { strict: boolean }): Env {
  const compose = parseYaml(read('docker/compose.yaml')) as {
    services: Record<string, ComposeService>;
  };
  const engine = compose.services.engine;
  expect(engine, 'compose.yaml has an engine service').to.not.equal(undefined);
  const vars = parseDotenv(dotEnv);
  const env: Env = { ...dockerfileEnv(read('docker/Dockerfile')) };
  const envFiles = [engine!.env_file ?? []].flat();
  expect(envFiles).to.deep.equal(['.env']);
  Object.assign(env, vars);
  const environment = engine!.environment ?? {};
  const entries: Array<[string, string]> = Array.isArray(environment)
    ? environment.map((e) => [e.split('=')[0]!, e.slice(e.indexOf('=') + 1)])
    : Object.entries(environment).map(([k, v]) => [k, v === null ? '' : String(v)]);
  for (const [key, raw] of entries) {
    try {
      env[key] = interpolate(raw, vars);
    } catch (err) {
      if (options.strict) throw err;
      env[key] = '';
    }
  }
  return env;
}

/** docker/env.example after the `sed -i "s/^X=.*\/X=…/" .env` lines of docs/docker.md's Quick start. */
function quickStartDotEnv(): { text: string; filled: string[] } {
  const doc = read('docs/docker.md');
  const quickStart = /## Quick start\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
  let text = read('docker/env.example');
  const filled: string[] = [];
  for (const line of quickStart.split('\n')) {
    const m = /^sed -i "s\/\^([A-Z0-9_]+)=\.\*\/\1=(.*)\/" \.env$/.exec(line.trim());
    if (!m) continue;
    const value = m[2]!.replace(/\$\(openssl rand -hex (\d+)\)/g, (_, n: string) =>
      randomBytes(Number(n)).toString('hex'),
    );
    const pattern = new RegExp(`^${m[1]}=.*$`, 'm');
    expect(text, `env.example has the ${m[1]} line the quick start edits`).to.match(pattern);
    text = text.replace(pattern, () => `${m[1]}=${value}`);
    filled.push(m[1]!);
  }
  return { text, filled };
}

describe('docker/compose.yaml with docker/env.example', () => {
  it('starts the engine in production after the quick start of docs/docker.md', () => {
    const { text, filled } = quickStartDotEnv();
    expect(filled).to.include.members(['ARI_PASSWORD', 'API_KEYS']);
    const env = engineEnvironment(text, { strict: true });
    expect(env.NODE_ENV).to.equal('production');
    const config = loadEngineConfig(env);
    expect(config.ARI_URL).to.equal('http://asterisk:8088');
    expect(config.HTTP_HOST).to.equal('0.0.0.0');
    expect(config.API_KEYS.map((k) => k.name)).to.deep.equal(['crm']);
  });

  it('still starts when recording and webhooks are switched on in .env, with PUBLIC_URL', () => {
    const { text } = quickStartDotEnv();
    const edited = text
      .replace(/^RECORD_CALLS=.*$/m, 'RECORD_CALLS=all')
      .replace(/^CRM_WEBHOOK_URL=.*$/m, 'CRM_WEBHOOK_URL=https://crm.example.com/hooks')
      .replace(/^PUBLIC_URL=.*$/m, 'PUBLIC_URL=https://pbx-engine.example.com');
    const config = loadEngineConfig(engineEnvironment(edited, { strict: true }));
    expect(config.RECORD_CALLS).to.equal('all');
    expect(config.PUBLIC_URL).to.equal('https://pbx-engine.example.com');
  });

  it('refuses to record without PUBLIC_URL: links would name http://0.0.0.0:3000', () => {
    const { text } = quickStartDotEnv();
    const edited = text.replace(/^RECORD_CALLS=.*$/m, 'RECORD_CALLS=all');
    expect(() => loadEngineConfig(engineEnvironment(edited, { strict: true })))
      .to.throw(ConfigError, /PUBLIC_URL: required when NODE_ENV=production/)
      .with.property('problems')
      .that.has.length(1);
  });

  it('lists, with a comment, every variable production refuses to start without', () => {
    // env.example as shipped (nothing filled in), every optional feature on: each variable the
    // engine then asks for must be a line of env.example with a comment above it.
    const shipped = read('docker/env.example');
    const allOn = shipped
      .replace(/^RECORD_CALLS=.*$/m, 'RECORD_CALLS=all')
      .replace(/^CRM_WEBHOOK_URL=.*$/m, 'CRM_WEBHOOK_URL=https://crm.example.com/hooks');
    let problems: string[] = [];
    try {
      loadEngineConfig(engineEnvironment(allOn, { strict: false }));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    const asked = problems.map((p) => p.split(':')[0]!);
    expect(asked).to.include.members(['API_KEYS', 'PUBLIC_URL']);
    const lines = shipped.split('\n');
    for (const name of asked) {
      const at = lines.findIndex((l) => l.startsWith(`${name}=`));
      expect(at, `${name} is a line of docker/env.example`).to.be.greaterThan(0);
      // The comment may describe a group of lines (CRM_WEBHOOK_URL= and WEBHOOK_SECRET=).
      let above = at - 1;
      while (above > 0 && /^[A-Z0-9_]+=/.test(lines[above]!)) above--;
      expect(lines[above], `a comment above ${name} in docker/env.example`).to.match(/^#/);
    }
  });
});
