/**
 * The Bitrix24 route lookup: `crm.duplicate.findbycomm` (`type` PHONE, `values` = the caller's
 * number with and without `+`) → the first entity found, in BITRIX24_ENTITY_TYPES order →
 * `crm.<entity>.get` → its `ASSIGNED_BY_ID`'s extension is rung first, then the fallback route;
 * the entity's name and card link (`<portal>/crm/<type>/details/<id>/`) go into the call
 * (`customer`). No entity found: the fallback route alone.
 */
import { MAX_CUSTOMER_NAME_LENGTH } from '../../crm/index.ts';
import type { Route, RouteLookupRequest } from '../../crm/types.ts';
import type { ExtensionDirectory } from '../extensions.ts';
import { dig, scalar } from '../read.ts';
import { ringFirst } from '../route.ts';
import type { Connector } from '../types.ts';
import type { Bitrix24RestClient } from './rest-client.ts';

/** CRM entity types a caller is looked up in. */
export type Bitrix24EntityType = 'CONTACT' | 'COMPANY' | 'LEAD';

/** Options of {@link createRouteLookup}. */
export interface RouteLookupOptions {
  /** Calls a REST method (./rest-client.ts). */
  call: Bitrix24RestClient['call'];
  /** The manager's extension. */
  directory: ExtensionDirectory;
  /** The portal's origin, `https://<portal>` (card links). */
  portal: string;
  /** BITRIX24_ENTITY_TYPES, in order of preference. */
  entityTypes: readonly Bitrix24EntityType[];
  /** RING_TIMEOUT_SEC: ring time of the manager's extension when the fallback has none. */
  defaultRingTimeoutSec: number;
}

/** The connector's `lookupRoute` (see the module comment). */
export function createRouteLookup(options: RouteLookupOptions): Connector['lookupRoute'] {
  const { call, directory, portal } = options;
  return async function lookupRoute(
    request: RouteLookupRequest,
    fallback: Route,
    signal: AbortSignal,
  ): ReturnType<Connector['lookupRoute']> {
    const digits = request.from.replace(/^\+/, '');
    const found = await call(
      'crm.duplicate.findbycomm',
      {
        type: 'PHONE',
        values: digits === request.from ? [digits, `+${digits}`] : [request.from, digits],
      },
      signal,
    );
    if (!found.ok) return { ok: false, reason: 'http_status', detail: found.detail };
    const result = dig(found.json, ['result']);
    if (result === undefined) return { ok: false, reason: 'invalid_body', detail: 'no result' };
    let entity: { type: Bitrix24EntityType; id: string } | undefined;
    for (const type of options.entityTypes) {
      const ids = dig(result, [type]);
      const first = Array.isArray(ids) ? scalar((ids as unknown[])[0]) : undefined;
      if (first) {
        entity = { type, id: first };
        break;
      }
    }
    if (!entity)
      return {
        ok: true,
        route: ringFirst(fallback, undefined, undefined, options.defaultRingTimeoutSec),
      };
    const got = await call(`crm.${entity.type.toLowerCase()}.get`, { id: entity.id }, signal);
    if (!got.ok) return { ok: false, reason: 'http_status', detail: got.detail };
    const item = dig(got.json, ['result']);
    if (typeof item !== 'object' || item === null)
      return { ok: false, reason: 'invalid_body', detail: 'no result' };
    const manager = scalar(dig(item, ['ASSIGNED_BY_ID']));
    const extension = manager === undefined ? undefined : directory.extensionOf(manager);
    const customer: NonNullable<Route['customer']> = {
      id: entity.id,
      link: `${portal}/crm/${entity.type.toLowerCase()}/details/${entity.id}/`,
    };
    const name = nameOf(item, entity.type);
    if (name) customer.name = name;
    return {
      ok: true,
      route: ringFirst(fallback, extension, customer, options.defaultRingTimeoutSec),
    };
  };
}

/** The display name of a CRM entity: a person's name, or a company's / lead's title. */
function nameOf(item: object, type: Bitrix24EntityType): string | undefined {
  const person = [scalar(dig(item, ['NAME'])), scalar(dig(item, ['LAST_NAME']))]
    .filter((n): n is string => Boolean(n))
    .join(' ');
  const name =
    type === 'COMPANY' ? scalar(dig(item, ['TITLE'])) : person || scalar(dig(item, ['TITLE']));
  if (!name) return undefined;
  const clean = name
    .replace(/\p{Cc}+/gu, ' ')
    .trim()
    .slice(0, MAX_CUSTOMER_NAME_LENGTH);
  return clean || undefined;
}
