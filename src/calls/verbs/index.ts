/**
 * Call scripts (verbs): schema, one class per verb, the runner. Reference: docs/verbs.md.
 */
export { createVerb } from './create.ts';
export { gatewayVerbChannel } from './channel.ts';
export { createVerbCrm, type VerbCrmOptions } from './crm.ts';
export { runScript, type RunScriptOptions, type ScriptRun, type VerbReport } from './runner.ts';
export * from './schema.ts';
export type * from './types.ts';
