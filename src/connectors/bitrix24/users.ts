/**
 * Bitrix24 users ↔ the engine's extensions: the portal's map read for the employee ↔ extension
 * directory (`user.get`, each active user's internal number `UF_PHONE_INNER`; refreshed
 * periodically by ../extensions.ts, BITRIX24_EXTENSIONS overriding it), and the user fields an
 * extension stands for in `telephony.externalcall.*` requests.
 */
import { EXTENSION_PATTERN } from '../../crm/index.ts';
import type { ExtensionDirectory } from '../extensions.ts';
import { dig, scalar } from '../read.ts';
import type { ExtensionEntry } from '../types.ts';
import type { Bitrix24RestClient } from './rest-client.ts';

/**
 * The portal's users with a valid internal number as directory entries: `user.get` with
 * `FILTER[ACTIVE]=1`, page by page (`start` = the previous answer's `next`; 200 pages at most).
 *
 * @throws Error with the request's detail when a page cannot be read
 */
export async function loadExtensions(
  call: Bitrix24RestClient['call'],
  signal: AbortSignal,
): Promise<ExtensionEntry[]> {
  const entries: ExtensionEntry[] = [];
  let start = 0;
  for (let page = 0; page < 200; page++) {
    const answer = await call('user.get', { FILTER: { ACTIVE: true }, start }, signal);
    if (!answer.ok) throw new Error(answer.detail);
    const users = dig(answer.json, ['result']);
    if (Array.isArray(users))
      for (const user of users as unknown[]) {
        const userId = scalar(dig(user, ['ID']));
        const inner = scalar(dig(user, ['UF_PHONE_INNER']));
        if (userId && inner && EXTENSION_PATTERN.test(inner))
          entries.push({ userId, extension: inner });
      }
    const next = Number(dig(answer.json, ['next']));
    if (!Number.isInteger(next) || next <= start) break;
    start = next;
  }
  return entries;
}

/** `USER_ID` of the extension's Bitrix24 user, else `USER_PHONE_INNER` = the extension. */
export function userOf(directory: ExtensionDirectory, extension: string): Record<string, string> {
  const userId = directory.userOf(extension);
  return userId ? { USER_ID: userId } : { USER_PHONE_INNER: extension };
}
