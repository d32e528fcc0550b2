/**
 * Simulated phones: operator extensions (`PJSIP/<ext>`) and customers behind the trunk
 * (`PJSIP/<number>@<trunk>`), each with a {@link PhoneBehaviour} that decides what happens when it
 * is dialled. Defaults: customers answer after 1000 ms; the n-th operator extension (0-based)
 * after 1000 + n × `answerStaggerMs` ms (0 by default: all after 1000 ms), see
 * {@link operatorDefaultBehaviour}.
 */
import { z } from 'zod';
import type { PhoneBehaviour } from './types.ts';

/** How long a phone rings before it answers by default, simulated ms. */
export const DEFAULT_ANSWER_AFTER_MS = 1000;

/** Default behaviour of every customer (and, without a stagger, every operator): answer after 1000 simulated ms. */
export const DEFAULT_BEHAVIOUR: PhoneBehaviour = {
  mode: 'answer',
  answerAfterMs: DEFAULT_ANSWER_AFTER_MS,
};

/** Largest {@link PhoneBook} answer stagger accepted, simulated ms. */
export const MAX_ANSWER_STAGGER_MS = 60_000;

/**
 * The default behaviour of the operator extension at `index` (0-based, in the simulator's
 * `extensions` order): answer after 1000 + `index` × `answerStaggerMs` simulated ms. With a
 * stagger, the phones of a ring-all call answer one after the other, as people do, instead of
 * all at the same instant.
 */
export function operatorDefaultBehaviour(index: number, answerStaggerMs: number): PhoneBehaviour {
  return { mode: 'answer', answerAfterMs: DEFAULT_ANSWER_AFTER_MS + index * answerStaggerMs };
}

/** The longest simulated duration the control API accepts: 24 h, in ms. */
export const MAX_SIM_DURATION_MS = 86_400_000;

/**
 * A simulated duration in whole milliseconds, 0 to {@link MAX_SIM_DURATION_MS}: every duration
 * field of the control API. Unbounded, a huge value (`1e308`) would overflow Node's timer, which
 * then fires after 1 ms.
 */
export const simDurationMsSchema = z
  .number()
  .min(0, 'must not be negative')
  .max(MAX_SIM_DURATION_MS, `must be at most ${MAX_SIM_DURATION_MS} ms (24 h)`)
  .int('must be whole milliseconds');

const ms = simDurationMsSchema;

/** zod schema of `DtmfPlan` (control API input). */
export const dtmfPlanSchema = z
  .object({
    digits: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[0-9*#A-D]+$/, 'DTMF digits: 0-9, *, #, A-D'),
    afterMs: ms,
    durationMs: ms.min(40).max(10_000).optional(),
    gapMs: ms.max(60_000).optional(),
  })
  .strict();

/** zod schema of {@link PhoneBehaviour} (control API input). */
export const phoneBehaviourSchema = z.discriminatedUnion('mode', [
  z
    .object({
      mode: z.literal('answer'),
      answerAfterMs: ms,
      hangupAfterMs: ms.optional(),
      hangupSpreadMs: ms.optional(),
      dtmf: dtmfPlanSchema.optional(),
      voice: z.enum(['none', 'human', 'machine']).optional(),
    })
    .strict()
    .refine((b) => b.hangupSpreadMs === undefined || b.hangupAfterMs !== undefined, {
      message: 'hangupSpreadMs needs hangupAfterMs',
      path: ['hangupSpreadMs'],
    }),
  z.object({ mode: z.literal('busy'), afterMs: ms.optional() }).strict(),
  z.object({ mode: z.literal('ring') }).strict(),
  z.object({ mode: z.literal('unavailable') }).strict(),
  z.object({ mode: z.literal('congestion'), afterMs: ms.optional() }).strict(),
]);

function copy(behaviour: PhoneBehaviour): PhoneBehaviour {
  const out = { ...behaviour };
  if (out.mode === 'answer' && out.dtmf) out.dtmf = { ...out.dtmf };
  return out;
}

export class PhoneBook {
  private readonly operators = new Map<string, PhoneBehaviour>();
  private readonly customers = new Map<string, PhoneBehaviour>();
  /** Operator extensions whose phone is not registered (no contact): every one is at start. */
  private readonly unregistered = new Set<string>();

  /**
   * @param extensions the operator extensions, in order
   * @param answerStaggerMs how much later each operator phone answers by default than the one
   *   before it, simulated ms (see {@link operatorDefaultBehaviour})
   */
  constructor(
    readonly extensions: readonly string[],
    private readonly answerStaggerMs = 0,
  ) {
    this.resetOperators();
  }

  isExtension(extension: string): boolean {
    return this.operators.has(extension);
  }

  /** Behaviour of an operator extension; throws RangeError for an unknown one. */
  operator(extension: string): PhoneBehaviour {
    const behaviour = this.operators.get(extension);
    if (!behaviour) throw new RangeError(`unknown extension ${extension}`);
    return copy(behaviour);
  }

  setOperator(extension: string, behaviour: PhoneBehaviour): void {
    if (!this.operators.has(extension)) throw new RangeError(`unknown extension ${extension}`);
    this.operators.set(extension, copy(phoneBehaviourSchema.parse(behaviour)));
  }

  /**
   * Whether the operator's phone is registered and reachable: registered, and not in mode
   * `unavailable` (both mean the PJSIP endpoint has no contact).
   */
  isReachable(extension: string): boolean {
    return !this.unregistered.has(extension) && this.operator(extension).mode !== 'unavailable';
  }

  /** Whether the operator's phone is registered (see {@link setRegistered}). */
  isRegistered(extension: string): boolean {
    if (!this.operators.has(extension)) throw new RangeError(`unknown extension ${extension}`);
    return !this.unregistered.has(extension);
  }

  /** Register or unregister an operator's phone; throws RangeError for an unknown extension. */
  setRegistered(extension: string, registered: boolean): void {
    if (!this.operators.has(extension)) throw new RangeError(`unknown extension ${extension}`);
    if (registered) this.unregistered.delete(extension);
    else this.unregistered.add(extension);
  }

  /** Every operator phone back to its default behaviour, registered. */
  resetOperators(): void {
    this.unregistered.clear();
    this.operators.clear();
    this.extensions.forEach((ext, index) =>
      this.operators.set(ext, operatorDefaultBehaviour(index, this.answerStaggerMs)),
    );
  }

  /** Behaviour of a customer number: its own, else the `*` default, else answer after 1000 ms. */
  customer(number: string): PhoneBehaviour {
    return copy(this.customers.get(number) ?? this.customers.get('*') ?? DEFAULT_BEHAVIOUR);
  }

  setCustomer(numberOrDefault: string, behaviour: PhoneBehaviour): void {
    if (numberOrDefault === '') throw new RangeError('customer number must not be empty');
    this.customers.set(numberOrDefault, copy(phoneBehaviourSchema.parse(behaviour)));
  }

  resetCustomers(): void {
    this.customers.clear();
  }
}
