/**
 * Statements compiled once (throughput: Kysely's builder and compiler were ~30 % of the
 * engine's CPU on the per-call writes). A statement's shape is still written once, with Kysely;
 * its SQL text is compiled on first use per dialect instance and later runs bind new values to
 * that text with `executeQuery(CompiledQuery.raw(sql, parameters))`. There is no second SQL
 * source.
 *
 * Binding order is derived, not assumed: the shape is compiled with a unique sentinel string per
 * named value, and each compiled parameter is mapped back to its name (parameters that are not
 * sentinels are constants of the shape, e.g. `'pending'` in a `where`). The first run with real
 * values also compiles the shape with those values and checks that SQL text and parameters are
 * exactly what the cache produces. Any mismatch (a value transformed or inlined by the builder, a
 * shape that depends on the values, a Kysely change) throws {@link CompiledStatementError} at
 * first use instead of binding a value to the wrong column.
 */
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';
import type { Database } from './schema.ts';

/** The cached shape of a statement could not be trusted, or values did not fit it. */
export class CompiledStatementError extends Error {
  override readonly name = 'CompiledStatementError';
}

/** One slot of the compiled parameter list: a named value, or a constant of the shape. */
type Slot = { key: string } | { value: unknown };

interface CachedShape {
  sql: string;
  slots: readonly Slot[];
  /** Keys of the values the shape was compiled for, in the order they were given. */
  keys: readonly string[];
  /** The first run with real values has been checked against a fresh compile. */
  verified: boolean;
}

/** A statement of fixed shape whose SQL is compiled once per dialect instance. */
export interface CompiledStatement<P extends Record<string, unknown>> {
  /**
   * Run the statement on `db` (a Kysely instance or a transaction of it) with `params`. `params`
   * must have the same keys on every run (the shape is fixed) and no `undefined` value (use
   * `null`).
   *
   * @throws CompiledStatementError when the shape cannot be cached safely or `params` do not fit
   *   it; the driver's error when the statement fails
   */
  run(db: Kysely<Database>, params: P): Promise<QueryResult<unknown>>;
}

const SENTINEL_PREFIX = '\u0000kysely-compiled-param:';

/** What a statement of a collected transaction resolves to: nothing is known until the commit. */
const COLLECTED: QueryResult<unknown> = Object.freeze({ rows: Object.freeze([]) as [] });

/** Kysely transactions whose statements are collected, not run: their collector. */
const collectors = new WeakMap<object, (sql: string, parameters: readonly unknown[]) => void>();

/**
 * Have compiled statements run on `trx` handed to `collect` directly (SQL text and bound
 * parameters), skipping Kysely's executor: its connection provider, plugin pass and promise chain
 * per statement were ~8 % of the engine's allocations at capacity (bench `--profile`). For the
 * write batches of src/store/write-batch.ts, whose driver only collects; `collect` must check
 * what the driver would (no reads) and throw as it would. A statement then resolves to
 * `{rows: []}` (no `numAffectedRows`), as from that driver.
 */
export function collectCompiledStatements(
  trx: Kysely<Database>,
  collect: (sql: string, parameters: readonly unknown[]) => void,
): void {
  collectors.set(trx, collect);
}

/**
 * Define a statement of fixed shape. `build` must pass each value of `params` to Kysely as it is
 * (no conversion, no `sql.lit`, no branch on the values): conversions belong to the caller.
 * Variants of a statement (a column set from `excluded` or kept) are separate statements.
 *
 * @param name names the statement in errors
 */
export function compiledStatement<P extends Record<string, unknown>>(
  name: string,
  build: (db: Kysely<Database>, params: P) => Compilable<unknown>,
): CompiledStatement<P> {
  // Keyed by the dialect adapter: shared by a Kysely instance and all its transactions, distinct
  // per instance (so per dialect).
  const shapes = new WeakMap<object, CachedShape>();

  function compileShape(db: Kysely<Database>, params: P): CachedShape {
    const keys = Object.keys(params);
    const sentinels: Record<string, string> = {};
    const byValue = new Map<string, string>();
    for (const key of keys) {
      const sentinel = `${SENTINEL_PREFIX}${name}:${key}`;
      sentinels[key] = sentinel;
      byValue.set(sentinel, key);
    }
    const compiled = build(db, sentinels as unknown as P).compile();
    if (compiled.sql.includes(SENTINEL_PREFIX)) {
      throw new CompiledStatementError(
        `${name}: a value was inlined into the SQL text instead of bound as a parameter`,
      );
    }
    const seen = new Set<string>();
    const slots = compiled.parameters.map((parameter): Slot => {
      if (typeof parameter === 'string' && parameter.includes(SENTINEL_PREFIX)) {
        const key = byValue.get(parameter);
        if (key === undefined) {
          throw new CompiledStatementError(
            `${name}: a value was changed by the builder before binding (${JSON.stringify(parameter)})`,
          );
        }
        seen.add(key);
        return { key };
      }
      return { value: parameter };
    });
    const unbound = keys.filter((key) => !seen.has(key));
    if (unbound.length > 0) {
      throw new CompiledStatementError(
        `${name}: the compiled statement does not bind ${unbound.join(', ')}`,
      );
    }
    return { sql: compiled.sql, slots, keys, verified: false };
  }

  function bindParams(shape: CachedShape, params: P): unknown[] {
    const out = new Array<unknown>(shape.slots.length);
    for (let i = 0; i < shape.slots.length; i++) {
      const slot = shape.slots[i]!;
      if ('key' in slot) {
        const value = params[slot.key];
        if (value === undefined) {
          throw new CompiledStatementError(`${name}: no value for ${slot.key}`);
        }
        out[i] = value;
      } else {
        out[i] = slot.value;
      }
    }
    return out;
  }

  function verify(db: Kysely<Database>, shape: CachedShape, params: P, bound: unknown[]): void {
    const keys = Object.keys(params);
    const compiled = build(db, params).compile();
    const sameKeys =
      keys.length === shape.keys.length && keys.every((key, i) => key === shape.keys[i]);
    const sameParams =
      compiled.parameters.length === bound.length &&
      compiled.parameters.every((value, i) => Object.is(value, bound[i]));
    if (!sameKeys || compiled.sql !== shape.sql || !sameParams) {
      throw new CompiledStatementError(
        `${name}: the cached statement does not match a fresh compile with the same values ` +
          '(its shape depends on the values, or the builder transforms them)',
      );
    }
    shape.verified = true;
  }

  return {
    async run(db, params) {
      const adapter = db.getExecutor().adapter;
      let shape = shapes.get(adapter);
      if (!shape) {
        shape = compileShape(db, params);
        shapes.set(adapter, shape);
      }
      const bound = bindParams(shape, params);
      if (!shape.verified) verify(db, shape, params, bound);
      const collect = collectors.get(db);
      if (collect) {
        collect(shape.sql, bound);
        return COLLECTED;
      }
      return db.executeQuery(CompiledQuery.raw(shape.sql, bound));
    },
  };
}

/** Rows changed by an insert/update/delete result (0 when the driver does not say). */
export function affectedRows(result: QueryResult<unknown>): number {
  return Number(result.numAffectedRows ?? 0n);
}
