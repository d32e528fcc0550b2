/**
 * The real Asterisk 22 kit (`../shared/asterisk/`, beside the project's folder): whether this
 * machine can run it, a conf folder written from templates with ports the suite chose, start and
 * stop through the kit's `run.sh`, ARI requests, and a clean-up that runs on process exit and on
 * SIGINT/SIGTERM so that no Asterisk outlives the run (also when a test fails).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The project's root folder. */
export const PROJECT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The kit: `../shared/asterisk` beside the project's folder, or `ASTERISK_KIT_DIR`. */
export const KIT_DIR = resolve(
  process.env.ASTERISK_KIT_DIR ?? resolve(PROJECT_DIR, '../shared/asterisk'),
);
/** The kit's start/stop script. */
export const RUN_SH = join(KIT_DIR, 'run.sh');
/** The kit's SIPp scenarios. */
export const KIT_SIPP_DIR = join(KIT_DIR, 'sipp');
/** The suite's own SIPp scenarios. */
export const OWN_SIPP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../sipp');

function onPath(command: string): boolean {
  return (process.env.PATH ?? '')
    .split(':')
    .some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/**
 * Why the real-Asterisk suite cannot run here, or undefined when it can: the kit is missing (a
 * fresh clone has no `../shared`), the machine is not the kit's kind (Linux x86_64 with dpkg), or
 * SIPp is missing and cannot be installed (not root). `ASTERISK_TESTS=skip` skips on purpose.
 */
export function kitSkipReason(): string | undefined {
  if (process.env.ASTERISK_TESTS === 'skip') return 'ASTERISK_TESTS=skip';
  if (!existsSync(RUN_SH))
    return `${RUN_SH} not found (the Asterisk test kit belongs in ../shared/asterisk beside the project, or set ASTERISK_KIT_DIR)`;
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return `the kit runs on Linux x86_64, this is ${process.platform} ${process.arch}`;
  if (!onPath('dpkg')) return 'the kit needs a Debian system (dpkg not found)';
  if (!onPath('curl')) return 'the kit needs curl';
  if (!onPath('sipp') && process.getuid?.() !== 0)
    return 'SIPp (Debian sip-tester) is not installed and this user cannot install it';
  return undefined;
}

let announced = false;
/**
 * Decide whether to define the real-Asterisk tests: true when the kit can run. Otherwise prints
 * the reason on one line (once per run) and returns false; with `ASTERISK_TESTS=require`
 * (`npm run test:asterisk`, CI with the kit) it defines one failing test giving the reason
 * instead, so that a machine that should run the suite cannot pass it by skipping.
 */
export function kitAvailable(): boolean {
  const reason = kitSkipReason();
  if (reason === undefined) return true;
  if (announced) return false;
  announced = true;
  if (process.env.ASTERISK_TESTS === 'require')
    describe('real Asterisk', () => {
      it('can run on this machine (ASTERISK_TESTS=require)', () => {
        throw new Error(`real-Asterisk tests required but they cannot run: ${reason}`);
      });
    });
  else console.log(`  real-Asterisk acceptance tests skipped: ${reason}`);
  return false;
}

/** Replace `from` by `to` in `text`, which must contain `from` exactly `times` times. */
export function rewrite(text: string, from: string, to: string, file: string, times = 1): string {
  const found = text.split(from).length - 1;
  if (found !== times)
    throw new Error(
      `${file}: expected "${from}" ${times} time(s), found ${found}: template changed?`,
    );
  return text.split(from).join(to);
}

/** Ports of one Asterisk and its phones. */
export interface KitPorts {
  /** http.conf bindport: ARI. */
  http: number;
  /** The PJSIP UDP transport. */
  sip: number;
  /** SIP ports of the operator phones, by extension. */
  operators: Record<'101' | '102' | '103', number>;
  /** SIP port of the customers' phone behind `client-trunk`. */
  trunk: number;
  /** SIP port inbound callers send from (`pstn-in` is matched by address and port). */
  pstn: number;
  /** rtp.conf rtpstart..rtpend. */
  rtpStart: number;
  rtpEnd: number;
  /** First of 20 SIPp control ports. */
  sippControl: number;
  /** First of 20 SIPp media ports, 4 apart. */
  sippMedia: number;
}

/** Lay the ports of one Asterisk out over a free block of {@link KIT_PORT_BLOCK} ports. */
export function layOutPorts(base: number): KitPorts {
  return {
    http: base,
    sip: base + 2,
    operators: { '101': base + 10, '102': base + 11, '103': base + 12 },
    trunk: base + 13,
    pstn: base + 14,
    sippControl: base + 20,
    sippMedia: base + 40,
    rtpStart: base + 120,
    rtpEnd: base + KIT_PORT_BLOCK - 1,
  };
}
/** Ports one Asterisk, its phones and its RTP range take (400 RTP ports: 100 channels). */
export const KIT_PORT_BLOCK = 520;

/** Every Asterisk home started by this process and not stopped yet, with its conf folder. */
const liveHomes = new Map<string, string>();
/** Clean-ups to run synchronously when the process exits (SIPp, engine processes). */
const exitCleanups = new Set<() => void>();
let exitHooked = false;

/** Run `cleanup` when the process exits (normally, by mocha's --exit, or on SIGINT/SIGTERM). */
export function onProcessExit(cleanup: () => void): () => void {
  hookExit();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const cleanup of exitCleanups) {
      try {
        cleanup();
      } catch {
        // best effort on the way out
      }
    }
    for (const [home, confDir] of liveHomes) {
      try {
        execFileSync(RUN_SH, ['stop', '--home', home], { stdio: 'ignore', timeout: 15_000 });
        rmSync(home, { recursive: true, force: true });
        rmSync(confDir, { recursive: true, force: true });
      } catch {
        // best effort on the way out
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
}

/** A running Asterisk from the kit, in its own home with its own conf folder and ports. */
export class KitAsterisk {
  private constructor(
    readonly home: string,
    readonly confDir: string,
    readonly ports: KitPorts,
    readonly ariUser: string,
    readonly ariPassword: string,
  ) {}

  /** `http://127.0.0.1:<port>`: ARI_URL for the engine. */
  get ariUrl(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  /**
   * Start Asterisk with the .conf files in `confDir` (written by the caller) in a new home under
   * the OS temp folder: `run.sh start --conf confDir --home <home> --sipp`.
   *
   * @throws Error with run.sh's output when it does not start
   */
  static async start(
    confDir: string,
    ports: KitPorts,
    ari: { user: string; password: string },
  ): Promise<KitAsterisk> {
    hookExit();
    const home = await mkdtemp(join(tmpdir(), 'ari-crm-asterisk-'));
    liveHomes.set(home, confDir);
    // Where bridge and channel recordings go (an installed Asterisk has it; run.sh does not make
    // it, and ARI `record` then fails with 500 "No such file or directory").
    await mkdir(join(home, 'spool', 'recording'), { recursive: true });
    try {
      await execFileAsync(RUN_SH, ['start', '--conf', confDir, '--home', home, '--sipp'], {
        timeout: 120_000,
      });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      await KitAsterisk.stopHome(home);
      await rm(home, { recursive: true, force: true });
      await rm(confDir, { recursive: true, force: true });
      throw new Error(`run.sh start failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    return new KitAsterisk(home, confDir, ports, ari.user, ari.password);
  }

  private static async stopHome(home: string): Promise<void> {
    try {
      await execFileAsync(RUN_SH, ['stop', '--home', home], { timeout: 30_000 });
    } finally {
      liveHomes.delete(home);
    }
  }

  /** Stop Asterisk (`run.sh stop`) and delete its home and conf folder. */
  async stop(): Promise<void> {
    if (!liveHomes.has(this.home)) return;
    await KitAsterisk.stopHome(this.home);
    await rm(this.home, { recursive: true, force: true });
    await rm(this.confDir, { recursive: true, force: true });
  }

  /** Output of an Asterisk CLI command (`run.sh cli`). */
  async cli(command: string): Promise<string> {
    const { stdout } = await execFileAsync(RUN_SH, ['cli', '--home', this.home, command], {
      timeout: 20_000,
    });
    return stdout;
  }

  /** The console log so far. */
  consoleLog(): Promise<string> {
    return readFile(join(this.home, 'log', 'console.log'), 'utf8');
  }

  /** One ARI request (`/ari` + `path`), its status and parsed JSON body. */
  async ari<T = unknown>(path: string, method = 'GET'): Promise<{ status: number; body: T }> {
    const auth = Buffer.from(`${this.ariUser}:${this.ariPassword}`).toString('base64');
    const response = await fetch(`${this.ariUrl}/ari${path}`, {
      method,
      headers: { authorization: `Basic ${auth}` },
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /**
   * Wait until Asterisk has no channel and no bridge left (GET /channels, /bridges), checking
   * every 100 ms.
   *
   * @throws Error listing what is left after `timeoutMs`
   */
  async waitIdle(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const channels =
        await this.ari<Array<{ id: string; name: string; state: string }>>('/channels');
      const bridges = await this.ari<Array<{ id: string; channels: string[] }>>('/bridges');
      if (channels.body.length === 0 && bridges.body.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `Asterisk still has channels ${JSON.stringify(channels.body.map((c) => `${c.name} ${c.state}`))} and bridges ${JSON.stringify(bridges.body)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The project's shipped Asterisk configuration (`asterisk-conf/`). */
const PROJECT_CONF = join(PROJECT_DIR, 'asterisk-conf');

/**
 * Write the kit's reference configuration (`../shared/asterisk/conf`: operators 101-103 without
 * authentication, the customer trunk, the pstn-in callers) into a new folder, with `ports`
 * instead of the defaults. Each rewrite must find its line, so a changed template fails loudly.
 * The project's answering-machine detection context (`[crm-amd]` of asterisk-conf/extensions.conf,
 * with its amd.conf) is added: the reference configuration has none.
 */
export async function writeReferenceConf(ports: KitPorts): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ari-crm-asterisk-conf-'));
  try {
    await writeReferenceFiles(dir, ports);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return dir;
}

async function writeReferenceFiles(dir: string, ports: KitPorts): Promise<void> {
  const source = join(KIT_DIR, 'conf');
  for (const file of await readdir(source)) {
    if (!file.endsWith('.conf')) continue;
    let text = await readFile(join(source, file), 'utf8');
    if (file === 'http.conf')
      text = rewrite(text, 'bindport = 8088', `bindport = ${ports.http}`, file);
    if (file === 'rtp.conf')
      text = rewrite(
        rewrite(text, 'rtpstart = 10000', `rtpstart = ${ports.rtpStart}`, file),
        'rtpend = 20000',
        `rtpend = ${ports.rtpEnd}`,
        file,
      );
    if (file === 'pjsip.conf') {
      text = rewrite(text, 'bind = 127.0.0.1:5060', `bind = 127.0.0.1:${ports.sip}`, file);
      for (const [ext, port] of Object.entries(ports.operators))
        text = rewrite(
          text,
          `contact = sip:${ext}@127.0.0.1:${Number(ext) + 4970}`,
          `contact = sip:${ext}@127.0.0.1:${port}`,
          file,
        );
      text = rewrite(
        text,
        'contact = sip:127.0.0.1:5080',
        `contact = sip:127.0.0.1:${ports.trunk}`,
        file,
      );
      text = rewrite(
        text,
        'contact = sip:127.0.0.1:5090',
        `contact = sip:127.0.0.1:${ports.pstn}`,
        file,
      );
      text = rewrite(text, 'match = 127.0.0.1:5090', `match = 127.0.0.1:${ports.pstn}`, file);
    }
    if (file === 'extensions.conf') text += `\n${await projectAmdContext()}`;
    await writeFile(join(dir, file), text);
  }
  await writeFile(join(dir, 'amd.conf'), await readFile(join(PROJECT_CONF, 'amd.conf'), 'utf8'));
}

/** `[crm-amd]` to the end of the project's extensions.conf. */
async function projectAmdContext(): Promise<string> {
  const text = await readFile(join(PROJECT_CONF, 'extensions.conf'), 'utf8');
  const start = text.indexOf('[crm-amd]');
  if (start < 0) throw new Error('asterisk-conf/extensions.conf has no [crm-amd] context');
  return text.slice(start);
}
