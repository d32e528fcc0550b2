/**
 * `redirect {url}`: ask the CRM for new verbs (`POST url`, see `crm.ts` and docs/verbs.md); they
 * replace the rest of the script. When the CRM fails (not configured, timeout, connection,
 * HTTP status, invalid answer) the verb fails with reason `crm_failed` and the script goes on
 * with its own rest.
 */
import { askCrm } from './ask-crm.ts';
import type { RedirectVerb } from './schema.ts';
import type { Verb, VerbContext, VerbResult } from './types.ts';

export class Redirect implements Verb {
  readonly name = 'redirect' as const;

  constructor(private readonly spec: RedirectVerb) {}

  exec(ctx: VerbContext, signal: AbortSignal): Promise<VerbResult> {
    return askCrm(ctx, this.spec.url, { verb: 'redirect' }, signal);
  }
}
