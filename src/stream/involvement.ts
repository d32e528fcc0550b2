/**
 * Which operators an event of the live stream is for. An operator's stream carries its own
 * `operator.state` and the events of the calls that involve its extension: from the first event
 * that names it (its phone rang, it answered, it placed the call, the call was transferred to
 * it) to the call's last event, so a `call.ended` of a call that rang the operator but was
 * answered by a colleague still reaches it (the card goes away).
 *
 * The extensions a call involves are learnt from its events as they pass; a call whose earlier
 * events were not seen (the stream started mid-call, a replay from a cursor in the middle of a
 * call) is looked up once with {@link Involvement.resolve} (the call's legs).
 */

/** The part of an outbox event the stream looks at (a lifecycle event or `operator.state`). */
export interface StreamEvent {
  type: string;
  callId?: string;
  data?: unknown;
}

/** Event types that name an extension themselves (no lookup needed for them). */
const SELF_NAMING = new Set(['call.started', 'call.ringing', 'operator.state']);

/** Most calls remembered; the oldest are forgotten first (ended calls long gone). */
const DEFAULT_MAX_CALLS = 20_000;

/** Tracks the extensions each call involves; one per event sequence read in order. */
export class Involvement {
  private readonly calls = new Map<string, Set<string>>();

  constructor(private readonly maxCalls = DEFAULT_MAX_CALLS) {}

  /** Whether events of `callId` have been seen (or the call was resolved). */
  knows(callId: string): boolean {
    return this.calls.has(callId);
  }

  /** The extensions known for `callId` (empty when none yet). */
  extensionsOf(callId: string): readonly string[] {
    return [...(this.calls.get(callId) ?? [])];
  }

  /** Seed a call's extensions (from a lookup, or from another tracker). */
  seed(callId: string, extensions: Iterable<string>): void {
    const set = this.entry(callId);
    for (const extension of extensions) set.add(extension);
  }

  /**
   * Whether `event` needs {@link seed} first: a call event that does not name its operators
   * itself, of a call not seen before.
   */
  needsLookup(event: StreamEvent): boolean {
    return (
      event.callId !== undefined &&
      (event.type.startsWith('call.') || event.type === 'recording.ready') &&
      !SELF_NAMING.has(event.type) &&
      !this.calls.has(event.callId)
    );
  }

  /**
   * Learn from `event` (in stream order) and answer the extensions it is for. `autocall.*` and
   * events of unknown kinds are for nobody (admin streams get every event anyway).
   */
  recipients(event: StreamEvent): readonly string[] {
    const data = (event.data ?? {}) as Record<string, unknown>;
    const text = (key: string): string | undefined =>
      typeof data[key] === 'string' ? data[key] : undefined;
    if (event.type === 'operator.state') {
      const extension = text('extension');
      return extension === undefined ? [] : [extension];
    }
    const callId = event.callId;
    if (
      callId === undefined ||
      !(event.type.startsWith('call.') || event.type === 'recording.ready')
    )
      return [];
    let named: string | undefined;
    switch (event.type) {
      case 'call.started':
        if (text('direction') === 'out') named = text('from');
        break;
      case 'call.ringing':
      case 'call.answered':
        named = text('extension');
        break;
      case 'call.transferred':
      case 'call.transfer_failed':
        if (text('kind') === 'extension') named = text('to');
        break;
      case 'call.ended':
      case 'call.recovered':
        named = text('answeredBy');
        break;
    }
    // A call's first event opens its entry, named or not: later events need no lookup.
    const set = event.type === 'call.started' ? this.entry(callId) : this.calls.get(callId);
    if (named !== undefined) (set ?? this.entry(callId)).add(named);
    const known = set ?? this.calls.get(callId);
    return known ? [...known] : [];
  }

  private entry(callId: string): Set<string> {
    let set = this.calls.get(callId);
    if (!set) {
      set = new Set();
      this.calls.set(callId, set);
      if (this.calls.size > this.maxCalls) {
        const oldest = this.calls.keys().next().value;
        if (oldest !== undefined) this.calls.delete(oldest);
      }
    }
    return set;
  }
}
