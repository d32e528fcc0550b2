/**
 * Request validation with zod: a failed parse becomes a 400 `invalid_request` whose message and
 * `field` name the first offending field.
 */
import type { z } from 'zod';
import { HttpError } from './errors.ts';

/** The field an issue is about: its path joined with `.`, or `root` for the whole value. */
export function fieldOfIssue(issue: z.core.$ZodIssue, root: string): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) path.push(String(issue.keys[0]));
  return path.length > 0 ? path.join('.') : root;
}

/**
 * Parse `value` with `schema`.
 *
 * @param root name used when the whole value is at fault, e.g. `body`
 * @throws HttpError 400 `invalid_request` with `field`
 */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  root: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = fieldOfIssue(issue, root);
  const message = issue.code === 'unrecognized_keys' ? 'is not a known field' : issue.message;
  throw new HttpError(400, 'invalid_request', `${field}: ${message}`, { field });
}
