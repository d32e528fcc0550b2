/**
 * ARI request parameters, parsed like Asterisk's generated stubs (`res/res_ari_*.c`): query string
 * and form fields, then the JSON body's keys (which override them), converted per the declared
 * `dataType` (`atoi` for int/long, `ast_true` for booleans) and split on commas when
 * `allowMultiple`. The JSON body's `variables` object becomes channel variables.
 */
import { ariError } from '../errors.ts';
import type { ParamDecl } from '../swagger/declarations.ts';

export type ParamValue = string | number | boolean | string[];

/** Parsed parameters of one request. */
export interface RequestParams {
  values: Map<string, ParamValue>;
  /** `variables` of the JSON body as ordered [name, value] pairs. */
  variables: Array<[string, string]>;
  /** The JSON body itself (undefined when the request had none), for `paramType: body` objects. */
  body?: unknown;
}

/** C `atoi`: leading integer, 0 when none. */
function atoi(text: string): number {
  const m = /^\s*([+-]?\d+)/.exec(text);
  return m ? Number.parseInt(m[1] as string, 10) : 0;
}

/** Asterisk `ast_true`. */
function astTrue(text: string): boolean {
  return ['yes', 'true', 'y', 't', '1', 'on'].includes(text.trim().toLowerCase());
}

function fromString(decl: ParamDecl, raw: string): ParamValue {
  if (decl.allowMultiple) return raw.split(',');
  switch (decl.dataType) {
    case 'int':
    case 'long':
      return atoi(raw);
    case 'boolean':
      return astTrue(raw);
    default:
      return raw;
  }
}

function fromJson(decl: ParamDecl, value: unknown): ParamValue | undefined {
  if (decl.allowMultiple) {
    if (Array.isArray(value)) return value.map((v) => String(v));
    if (typeof value === 'string') return value.split(',');
    return undefined;
  }
  switch (decl.dataType) {
    case 'int':
    case 'long':
      return typeof value === 'number' ? Math.trunc(value) : 0;
    case 'boolean':
      return value === true;
    default:
      return typeof value === 'string' ? value : undefined;
  }
}

/**
 * Parse the declared parameters from path variables, query/form fields and a JSON body. Throws
 * 400 "Only string values in the 'variables' object allowed" for non-string variables.
 */
export function parseParams(
  decls: readonly ParamDecl[],
  pathVars: Record<string, string>,
  fields: URLSearchParams,
  jsonBody: unknown,
): RequestParams {
  const values = new Map<string, ParamValue>();
  for (const decl of decls) {
    if (decl.paramType === 'path') {
      const v = pathVars[decl.name];
      if (v !== undefined) values.set(decl.name, v);
    } else if (decl.paramType === 'query') {
      const raw = fields.get(decl.name);
      if (raw !== null) values.set(decl.name, fromString(decl, raw));
    }
  }
  const variables: Array<[string, string]> = [];
  if (jsonBody && typeof jsonBody === 'object' && !Array.isArray(jsonBody)) {
    const body = jsonBody as Record<string, unknown>;
    for (const decl of decls) {
      if (decl.paramType !== 'query' || !(decl.name in body)) continue;
      const v = fromJson(decl, body[decl.name]);
      if (v !== undefined) values.set(decl.name, v);
    }
    const vars = body.variables;
    if (vars !== undefined && vars !== null) {
      if (typeof vars !== 'object' || Array.isArray(vars)) {
        throw ariError(400, "Only string values in the 'variables' object allowed");
      }
      for (const [name, value] of Object.entries(vars as Record<string, unknown>)) {
        if (typeof value === 'string') variables.push([name, value]);
        else if (
          value &&
          typeof value === 'object' &&
          typeof (value as { value?: unknown }).value === 'string'
        ) {
          variables.push([name, (value as { value: string }).value]);
        } else throw ariError(400, "Only string values in the 'variables' object allowed");
      }
    }
  }
  return jsonBody === undefined ? { values, variables } : { values, variables, body: jsonBody };
}

/** Typed accessors over {@link RequestParams}. */
export class Params {
  constructor(private readonly parsed: RequestParams) {}

  get variables(): Array<[string, string]> {
    return this.parsed.variables;
  }

  /** The request's JSON body (undefined when none was sent). */
  get body(): unknown {
    return this.parsed.body;
  }

  has(name: string): boolean {
    return this.parsed.values.has(name);
  }

  /** A string parameter; empty strings count as absent (`ast_strlen_zero`). */
  str(name: string): string | undefined {
    const v = this.parsed.values.get(name);
    if (v === undefined) return undefined;
    const s = Array.isArray(v) ? v.join(',') : String(v);
    return s === '' ? undefined : s;
  }

  int(name: string, fallback: number): number {
    const v = this.parsed.values.get(name);
    return typeof v === 'number' ? v : fallback;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.parsed.values.get(name);
    return typeof v === 'boolean' ? v : fallback;
  }

  /** An allowMultiple parameter, empty items dropped. */
  list(name: string): string[] {
    const v = this.parsed.values.get(name);
    if (v === undefined) return [];
    return (Array.isArray(v) ? v : [String(v)]).map((s) => s.trim()).filter((s) => s !== '');
  }
}
