/**
 * The engine as a child process (`node --import tsx src/main.ts`), for tests of what only a real
 * process shows: signals, exit codes, a crash (SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The engine's entry point. */
export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
/** The tsx loader, for `node --import`. */
export const TSX_LOADER = import.meta.resolve('tsx');

export type LogLine = Record<string, unknown> & { level: string; message: string };

/**
 * How long a child engine may take to log `ari-crm started`: tsx compiles the engine's sources
 * as the process starts, which takes tens of seconds on a loaded machine.
 */
export const START_TIMEOUT_MS = 60_000;

/** The engine as a child process, its JSON log lines as they arrive. */
export class EngineProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  private readonly waiters = new Set<() => void>();
  private partial = '';

  /** Set once the process exited and its output is read to the end. */
  private closed: string | undefined;

  /**
   * Start `node --import tsx src/main.ts` in `env.DATA_DIR` (so no .env is read) with `env` as
   * its whole environment, plus PATH, NODE_ENV=development and LOG_LEVEL=info unless `env` sets
   * them.
   */
  static spawn(env: Record<string, string>): EngineProcess {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN], {
      cwd: env.DATA_DIR,
      env: { PATH: process.env.PATH, NODE_ENV: 'development', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new EngineProcess(child);
  }

  constructor(readonly child: ChildProcess) {
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      this.closed = signal ? `killed by ${signal}` : `exited with code ${code}`;
      for (const waiter of [...this.waiters]) waiter();
    });
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const text = this.partial + chunk;
      const complete = text.split('\n');
      this.partial = complete.pop() ?? '';
      for (const line of complete) if (line.trim()) this.lines.push(JSON.parse(line) as LogLine);
      for (const waiter of [...this.waiters]) waiter();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
  }

  /**
   * The first log line (past or future) matching `predicate`.
   *
   * @throws Error when the process ends without writing it, or after `timeoutMs`
   */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        const got = this.lines.map((l) => l.message).join(' | ');
        reject(new Error(`no such log line: ${why}; stderr: ${this.stderr}; got: ${got}`));
      };
      const check = (): void => {
        const found = this.lines.find(predicate);
        if (!found) {
          if (this.closed !== undefined) fail(`the process ${this.closed}`);
          return;
        }
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => fail(`not within ${timeoutMs} ms`), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** The `ari-crm started` line (with `httpUrl`), waited for up to {@link START_TIMEOUT_MS}. */
  started(): Promise<LogLine> {
    return this.waitForLine((l) => l.message === 'ari-crm started', START_TIMEOUT_MS);
  }

  /** Kill the process with SIGKILL (a crash) and wait until it has exited; nothing if it has. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}
