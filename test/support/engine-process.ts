/**
 * The engine as a child process (`node --import tsx src/main.ts`), for tests of what only a real
 * process shows: signals, exit codes, a crash (SIGKILL).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The engine's entry point. */
export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
/** The tsx loader, for `node --import`. */
export const TSX_LOADER = import.meta.resolve('tsx');

export type LogLine = Record<string, unknown> & { level: string; message: string };

/** The engine as a child process, its JSON log lines as they arrive. */
export class EngineProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  private readonly waiters = new Set<() => void>();
  private partial = '';

  constructor(readonly child: ChildProcess) {
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

  /** The first log line (past or future) matching `predicate`. */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(predicate);
        if (!found) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `no such log line within ${timeoutMs} ms; stderr: ${this.stderr}; got: ${this.lines
              .map((l) => l.message)
              .join(' | ')}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Kill the process with SIGKILL (a crash) and wait until it has exited; nothing if it has. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}
