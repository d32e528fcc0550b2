/**
 * A scripted NotificationDialer for tests: each attempt answers what the script says for the job's
 * number and attempt number, at once, or is held up (a call in progress) until the test releases
 * it or the scheduler aborts it.
 */
import type { DialJob, NotificationDialer } from '../../src/autocalls/dialer.ts';
import type { AttemptOutcome } from '../../src/autocalls/model.ts';

/** What an attempt does: answer this outcome at once, or `hold` until released or aborted. */
export type ScriptedAttempt = AttemptOutcome | 'hold';

/** Common outcomes. */
export const OUTCOMES = {
  delivered: {
    dialStatus: 'ANSWER',
    answeredAt: 0,
    digits: '1',
    playedSec: 7,
    outcome: 'delivered',
  },
  busy: {
    dialStatus: 'BUSY',
    cause: 17,
    causeText: 'User busy',
    digits: '',
    playedSec: 0,
    outcome: 'busy',
  },
  noAnswer: {
    dialStatus: 'NOANSWER',
    cause: 19,
    causeText: 'No user responding',
    digits: '',
    playedSec: 0,
    outcome: 'no_answer',
  },
  notConfirmed: {
    dialStatus: 'ANSWER',
    answeredAt: 0,
    digits: '5',
    playedSec: 0,
    outcome: 'not_confirmed',
  },
  rejected: {
    dialStatus: 'CHANUNAVAIL',
    cause: 1,
    causeText: 'Unallocated (unassigned) number',
    digits: '',
    playedSec: 0,
    outcome: 'rejected',
  },
} satisfies Record<string, AttemptOutcome>;

interface Held {
  job: DialJob;
  attemptNo: number;
  resolve: (outcome: AttemptOutcome) => void;
}

export class ScriptedDialer implements NotificationDialer {
  /** Every dial, in order. */
  readonly dials: Array<{ jobId: number; to: string; attemptNo: number; at: number }> = [];
  /** Most attempts in progress at once. */
  maxConcurrent = 0;
  private live = 0;
  private readonly held = new Map<number, Held>();

  constructor(
    private readonly script: (job: DialJob, attemptNo: number) => ScriptedAttempt,
    private readonly now: () => number = Date.now,
  ) {}

  dial(job: DialJob, attemptNo: number, signal: AbortSignal): Promise<AttemptOutcome> {
    this.dials.push({ jobId: job.id, to: job.to, attemptNo, at: this.now() });
    const step = this.script(job, attemptNo);
    if (step !== 'hold') return Promise.resolve(step);
    this.live++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.live);
    return new Promise<AttemptOutcome>((resolve) => {
      const finish = (outcome: AttemptOutcome): void => {
        if (!this.held.delete(job.id)) return;
        this.live--;
        resolve(outcome);
      };
      this.held.set(job.id, { job, attemptNo, resolve: finish });
      signal.addEventListener('abort', () =>
        finish({ dialStatus: 'CANCEL', digits: '', playedSec: 0, outcome: 'canceled' }),
      );
    });
  }

  /** Attempts held up now. */
  holding(): number {
    return this.held.size;
  }

  /** End every held attempt (or those of `jobIds`) with `outcome`. */
  release(outcome: AttemptOutcome, jobIds?: readonly number[]): void {
    for (const [id, held] of [...this.held])
      if (!jobIds || jobIds.includes(id)) held.resolve(outcome);
  }
}
