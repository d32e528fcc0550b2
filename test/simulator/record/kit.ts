/**
 * The real Asterisk 22.10.1 kit (`../shared/asterisk/`) for the trace recorder: its own home
 * folder and a conf folder copied from the kit's reference configuration with other ports
 * (ARI/HTTP, the PJSIP transport, the phones' ports, the RTP range), so it runs beside any other
 * Asterisk on the machine; SIPp phones as child processes. Everything started here is stopped by
 * {@link Kit.stop} / {@link Phone.stop}.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** `../shared/asterisk` beside the project. */
export const KIT_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  '..',
  'shared',
  'asterisk',
);

/** Ports of the recorder's Asterisk and phones (the kit's defaults shifted by 30000). */
export interface KitPorts {
  /** ARI/HTTP (kit default 8088). */
  http: number;
  /** PJSIP UDP transport (5060). */
  sip: number;
  /** Operator phones 101, 102, 103 (5071-5073). */
  operators: [number, number, number];
  /** Customer trunk phone (5080). */
  trunk: number;
  /** Inbound callers' source port, matched to endpoint pstn-in (5090). */
  pstn: number;
  /** RTP range of Asterisk (10000-20000). */
  rtp: [number, number];
}

/** Added to every default port: `$RECORD_PORT_SHIFT` (0 when unset), to run two recorders at once. */
export const PORT_SHIFT = Number(process.env.RECORD_PORT_SHIFT ?? 0) || 0;

export const DEFAULT_PORTS: KitPorts = {
  http: 38088 + PORT_SHIFT,
  sip: 35060 + PORT_SHIFT,
  operators: [35071 + PORT_SHIFT, 35072 + PORT_SHIFT, 35073 + PORT_SHIFT],
  trunk: 35080 + PORT_SHIFT,
  pstn: 35090 + PORT_SHIFT,
  rtp: [36000 + PORT_SHIFT, 36999 + PORT_SHIFT],
};

/** The project's shipped Asterisk configuration (`asterisk-conf/`). */
const PROJECT_CONF = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'asterisk-conf',
);

/**
 * The answering-machine detection context of the project's `extensions.conf` (`[crm-amd]`, to
 * the end of the file) and its `amd.conf`: added to the reference configuration, which has
 * neither.
 */
function amdConf(): { dialplan: string; amdConf: string } {
  const text = readFileSync(join(PROJECT_CONF, 'extensions.conf'), 'utf8');
  const start = text.indexOf('[crm-amd]');
  if (start < 0) throw new Error('asterisk-conf/extensions.conf has no [crm-amd] context');
  return {
    dialplan: text.slice(start),
    amdConf: readFileSync(join(PROJECT_CONF, 'amd.conf'), 'utf8'),
  };
}

/** Rewrite the reference configuration's ports. */
function portConf(name: string, text: string, p: KitPorts): string {
  switch (name) {
    case 'http.conf':
      return text.replace(/bindport = 8088/, `bindport = ${p.http}`);
    case 'rtp.conf':
      return text
        .replace(/rtpstart = \d+/, `rtpstart = ${p.rtp[0]}`)
        .replace(/rtpend = \d+/, `rtpend = ${p.rtp[1]}`);
    case 'pjsip.conf':
      return text
        .replace(/127\.0\.0\.1:5060/g, `127.0.0.1:${p.sip}`)
        .replace(/127\.0\.0\.1:5071/g, `127.0.0.1:${p.operators[0]}`)
        .replace(/127\.0\.0\.1:5072/g, `127.0.0.1:${p.operators[1]}`)
        .replace(/127\.0\.0\.1:5073/g, `127.0.0.1:${p.operators[2]}`)
        .replace(/127\.0\.0\.1:5080/g, `127.0.0.1:${p.trunk}`)
        .replace(/127\.0\.0\.1:5090/g, `127.0.0.1:${p.pstn}`);
    default:
      return text;
  }
}

/** A running kit Asterisk. */
export class Kit {
  readonly ariUrl: string;
  readonly username = 'crm';
  readonly password = 'crm-secret';

  constructor(
    readonly home: string,
    readonly ports: KitPorts = DEFAULT_PORTS,
  ) {
    this.ariUrl = `http://127.0.0.1:${ports.http}`;
  }

  static available(): boolean {
    return existsSync(join(KIT_DIR, 'run.sh'));
  }

  /** Write the conf folder (`<home>-conf`) and start Asterisk; resolves once ARI answers. */
  async start(): Promise<void> {
    const conf = `${this.home}-conf`;
    mkdirSync(conf, { recursive: true });
    for (const name of readdirSync(join(KIT_DIR, 'conf'))) {
      if (!name.endsWith('.conf')) continue;
      const text = readFileSync(join(KIT_DIR, 'conf', name), 'utf8');
      const extra = name === 'extensions.conf' ? `\n${amdConf().dialplan}` : '';
      writeFileSync(join(conf, name), portConf(name, text, this.ports) + extra);
    }
    writeFileSync(join(conf, 'amd.conf'), amdConf().amdConf);
    await run(join(KIT_DIR, 'run.sh'), ['start', '--conf', conf, '--home', this.home, '--sipp']);
    // run.sh's asterisk.conf sets no astcachedir: Asterisk then uses the compiled-in
    // /var/cache/asterisk, which does not exist on this machine kind, and every `sound:http://…`
    // playback fails at once ("Failed to create temporary storage" in res_http_media_cache).
    // Point it into the home and restart (asterisk.conf is only read at start-up).
    const astConf = join(this.home, 'etc', 'asterisk.conf');
    const text = readFileSync(astConf, 'utf8');
    if (!text.includes('astcachedir')) {
      mkdirSync(join(this.home, 'cache'), { recursive: true });
      writeFileSync(
        astConf,
        text.replace('[directories]\n', `[directories]\nastcachedir => ${this.home}/cache\n`),
      );
      const before = await this.startupTime();
      await this.cli('core restart now').catch(() => undefined);
      for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 200));
        const now = await this.startupTime().catch(() => undefined);
        if (now && now !== before) return;
      }
      throw new Error('the kit Asterisk did not come back after its restart');
    }
  }

  /** `GET /ari/asterisk/info` status.startup_time. */
  private async startupTime(): Promise<string> {
    const res = await fetch(`${this.ariUrl}/ari/asterisk/info`, {
      headers: {
        authorization: `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`,
      },
    });
    const info = (await res.json()) as { status: { startup_time: string } };
    return info.status.startup_time;
  }

  async stop(): Promise<void> {
    await run(join(KIT_DIR, 'run.sh'), ['stop', '--home', this.home]).catch(() => undefined);
  }

  async cli(command: string): Promise<string> {
    const { stdout } = await run(join(KIT_DIR, 'run.sh'), ['cli', '--home', this.home, command]);
    return stdout;
  }
}

/** SIPp media (`-mp`, which also takes the next ports) and control (`-cp`) ports. */
let nextSippPort = 37100 + PORT_SHIFT;

/** One SIPp process (a phone). */
export class Phone {
  private readonly child: ChildProcess;
  readonly done: Promise<number>;
  output = '';

  /**
   * @param scenario file in the kit's `sipp/` folder (`uas_answer.xml`, `uac.xml`…)
   * @param args extra SIPp arguments (`-p PORT`, `-d MS`, remote host…)
   * @param echo `-rtp_echo` (the phone sends back the RTP it receives, DTMF included)
   */
  constructor(scenario: string, args: string[], cwd: string, echo = true) {
    const mp = nextSippPort;
    const cp = nextSippPort + 5;
    nextSippPort += 10;
    mkdirSync(cwd, { recursive: true });
    this.child = spawn(
      '/usr/bin/sipp',
      [
        '-sf',
        join(KIT_DIR, 'sipp', scenario),
        ...args,
        '-nostdin',
        '-i',
        '127.0.0.1',
        '-mp',
        String(mp),
        '-cp',
        String(cp),
        ...(echo ? ['-rtp_echo'] : []),
      ],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.done = new Promise((resolvePromise) =>
      this.child.once('exit', (code) => resolvePromise(code ?? -1)),
    );
  }

  /** Stop the process (by its pid) if it still runs. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await Promise.race([this.done, new Promise((r) => setTimeout(r, 2000))]);
      if (this.child.exitCode === null && this.child.signalCode === null)
        this.child.kill('SIGKILL');
    }
  }
}
