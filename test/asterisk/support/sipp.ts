/**
 * SIPp processes as phones: operators and customers (UAS scenarios on the ports the Asterisk's
 * pjsip.conf names) and callers (UAC scenarios from the pstn-in address). Each runs in its own
 * temporary folder with `-trace_msg`, so a test reads which SIP messages the phone received (a
 * BYE, a CANCEL) and its exit code (0: every call went as the scenario says). Every SIPp process
 * started is killed when the test's clean-up or the process exit runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KIT_SIPP_DIR, OWN_SIPP_DIR, onProcessExit, type KitPorts } from './kit.ts';

/** One SIP message a SIPp phone sent or received. */
export interface SipMessage {
  direction: 'sent' | 'received';
  /** The request method (INVITE, BYE, CANCEL, …) or the response code as text ("200"). */
  first: string;
}

const live = new Set<Sipp>();
const created = new Set<Sipp>();
onProcessExit(() => {
  for (const sipp of live) sipp.child.kill('SIGKILL');
  for (const sipp of created) rmSync(sipp.cwd, { recursive: true, force: true });
});

let slot = 0;

/** A SIPp process. */
export class Sipp {
  readonly exited: Promise<number | null>;
  stderr = '';
  stdout = '';

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly cwd: string,
  ) {
    live.add(this);
    created.add(this);
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (this.stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.exited = once(child, 'exit').then(([code]) => {
      live.delete(this);
      return code as number | null;
    });
  }

  /**
   * Start SIPp with `scenario` (a file of the kit's `sipp/` or the suite's `test/asterisk/sipp/`)
   * and `args`, bound to 127.0.0.1 with a control and a media port of its own (`ports.sippControl`
   * / `ports.sippMedia` + its slot), echoing RTP, without stdin, tracing messages.
   */
  static start(name: string, scenario: string, ports: KitPorts, args: string[]): Sipp {
    const file = [join(OWN_SIPP_DIR, scenario), join(KIT_SIPP_DIR, scenario)].find((f) => {
      try {
        readFileSync(f);
        return true;
      } catch {
        return false;
      }
    });
    if (!file) throw new Error(`no SIPp scenario ${scenario}`);
    const n = slot++ % 20;
    const cwd = mkdtempSync(join(tmpdir(), `ari-crm-sipp-${name}-`));
    const child = spawn(
      'sipp',
      [
        '-sf',
        file,
        '-nostdin',
        '-i',
        '127.0.0.1',
        '-cp',
        String(ports.sippControl + n),
        '-mp',
        String(ports.sippMedia + 4 * n),
        '-rtp_echo',
        '-trace_msg',
        '-trace_err',
        '-timeout',
        '120s',
        ...args,
      ],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return new Sipp(name, child, cwd);
  }

  /** An operator or customer phone: a UAS scenario listening on `port`, for `calls` calls. */
  static phone(
    name: string,
    scenario: string,
    ports: KitPorts,
    port: number,
    opts: { calls?: number; pauseMs?: number } = {},
  ): Sipp {
    return Sipp.start(name, scenario, ports, [
      '-p',
      String(port),
      '-m',
      String(opts.calls ?? 1),
      ...(opts.pauseMs === undefined ? [] : ['-d', String(opts.pauseMs)]),
    ]);
  }

  /**
   * An inbound caller: `scenario` (uac.xml, uac_cancel.xml, …) from the pstn-in port to the
   * Asterisk's SIP port, dialling `did` as `caller`; `pauseMs` is the talk time (uac.xml) or the
   * ring time before CANCEL (uac_cancel.xml). `extra`: e.g. `-r`, `-m` for load.
   */
  static caller(
    name: string,
    scenario: string,
    ports: KitPorts,
    opts: { did: string; caller: string; pauseMs?: number; extra?: string[] },
  ): Sipp {
    return Sipp.start(name, scenario, ports, [
      `127.0.0.1:${ports.sip}`,
      '-p',
      String(ports.pstn),
      '-s',
      opts.did,
      '-key',
      'caller',
      opts.caller,
      ...(opts.pauseMs === undefined ? [] : ['-d', String(opts.pauseMs)]),
      ...(opts.extra ?? ['-m', '1']),
    ]);
  }

  /**
   * An operator dialling from the desk phone: `scenario` (uac.xml, uac_refused.xml) sent from
   * the operator's phone port with `extension` as the From user (Asterisk identifies endpoint
   * `extension` by it, context from-internal), dialling `number`; `pauseMs` as for
   * {@link Sipp.caller}.
   */
  static deskPhone(
    name: string,
    scenario: string,
    ports: KitPorts,
    opts: { extension: keyof KitPorts['operators']; number: string; pauseMs?: number },
  ): Sipp {
    return Sipp.start(name, scenario, ports, [
      `127.0.0.1:${ports.sip}`,
      '-p',
      String(ports.operators[opts.extension]),
      '-s',
      opts.number,
      '-key',
      'caller',
      opts.extension,
      ...(opts.pauseMs === undefined ? [] : ['-d', String(opts.pauseMs)]),
      '-m',
      '1',
    ]);
  }

  /**
   * Wait for SIPp to exit; resolves with its exit code (0: every call passed the scenario).
   *
   * @throws Error with SIPp's output and the messages it saw after `timeoutMs`
   */
  async waitExit(timeoutMs = 30_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `SIPp ${this.name} still running after ${timeoutMs} ms; messages: ${this.summary()}`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Wait for a clean exit (code 0), else fail with what SIPp saw. */
  async passed(timeoutMs = 30_000): Promise<void> {
    const code = await this.waitExit(timeoutMs);
    if (code !== 0)
      throw new Error(
        `SIPp ${this.name} exited ${code}; messages: ${this.summary()}; errors: ${this.errors()}`,
      );
  }

  /** The SIP messages traced so far, in order. */
  messages(): SipMessage[] {
    const file = readdirSync(this.cwd).find((f) => f.endsWith('_messages.log'));
    if (!file) return [];
    const text = readFileSync(join(this.cwd, file), 'utf8');
    const out: SipMessage[] = [];
    const re = /UDP message (sent|received)[^\n]*\n\s*\n([^\n]+)/g;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const line = m[2]!.trim();
      const response = /^SIP\/2\.0 (\d{3})/.exec(line);
      out.push({
        direction: m[1] as 'sent' | 'received',
        first: response ? response[1]! : line.split(' ')[0]!,
      });
    }
    return out;
  }

  /** Methods of the requests this phone received, in order (e.g. ["INVITE", "ACK", "BYE"]). */
  receivedRequests(): string[] {
    return this.messages()
      .filter((m) => m.direction === 'received' && !/^\d{3}$/.test(m.first))
      .map((m) => m.first);
  }

  /** Methods of the requests this phone sent. */
  sentRequests(): string[] {
    return this.messages()
      .filter((m) => m.direction === 'sent' && !/^\d{3}$/.test(m.first))
      .map((m) => m.first);
  }

  /** Codes of the responses this phone received. */
  receivedResponses(): string[] {
    return this.messages()
      .filter((m) => m.direction === 'received' && /^\d{3}$/.test(m.first))
      .map((m) => m.first);
  }

  private summary(): string {
    return this.messages()
      .map((m) => `${m.direction === 'sent' ? '>' : '<'}${m.first}`)
      .join(' ');
  }

  private errors(): string {
    const file = readdirSync(this.cwd).find((f) => f.endsWith('_errors.log'));
    const text = file ? readFileSync(join(this.cwd, file), 'utf8') : '';
    return `${text.slice(-1500)} ${this.stderr.slice(-500)}`;
  }

  /** Kill it (if still running), wait for the exit and delete its folder. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
    rmSync(this.cwd, { recursive: true, force: true });
  }
}

/** Stop every SIPp process still running (a test's clean-up). */
export async function stopAllSipp(): Promise<void> {
  const all = [...created];
  created.clear();
  await Promise.all(all.map((s) => s.stop()));
}
