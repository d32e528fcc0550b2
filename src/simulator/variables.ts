/**
 * Channel variables as ARI reads and writes them (`GET/POST /channels/{id}/variable`, the
 * `variables` of create and originate), with the dialplan functions `CALLERID()` and
 * `CONNECTEDLINE()` changing the channel's caller ID and connected line; and
 * `ast_callerid_parse`.
 */
import type { AriCallerId } from '../ari/types.ts';
import type { SimChannel } from './model.ts';
import type { Pbx } from './pbx.ts';

/** The variables of a {@link Pbx}'s channels. */
export class Variables {
  constructor(private readonly pbx: Pbx) {}

  /** Apply channel variables (create/originate body); CALLERID() functions change the caller ID. */
  apply(ch: SimChannel, variables: Array<[string, string]>, emitEvents: boolean): void {
    for (const [name, value] of variables) this.write(ch, name, value, emitEvents);
  }

  /**
   * Set a variable or dialplan function. `CALLERID(name|num|number|all)` and
   * `CONNECTEDLINE(name|num|number)` change the IDs (ChannelCallerId / ChannelConnectedLine);
   * other functions fail (false).
   */
  write(ch: SimChannel, name: string, value: string, emitEvents = true): boolean {
    const fn = /^([A-Z_]+)\(([^)]*)\)$/i.exec(name);
    if (!fn) {
      this.pbx.setVar(ch, name, value, emitEvents);
      return true;
    }
    const func = (fn[1] ?? '').toUpperCase();
    const arg = (fn[2] ?? '').toLowerCase();
    if (func === 'CALLERID') {
      if (arg === 'name') ch.caller.name = value;
      else if (arg === 'num' || arg === 'number') ch.caller.number = value;
      else if (arg === 'all') ch.caller = parseCallerId(value);
      else return false;
      if (emitEvents) {
        this.pbx.emitChannel('ChannelCallerId', ch, {
          caller_presentation: 0,
          caller_presentation_txt: 'Presentation Allowed, Not Screened',
        });
      }
      return true;
    }
    if (func === 'CONNECTEDLINE') {
      if (arg === 'name') ch.connected.name = value;
      else if (arg === 'num' || arg === 'number') ch.connected.number = value;
      else if (arg === 'all') ch.connected = parseCallerId(value);
      else return false;
      if (emitEvents) this.pbx.emitChannel('ChannelConnectedLine', ch);
      return true;
    }
    return false;
  }

  /** Read a variable or `CALLERID()`/`CONNECTEDLINE()`; undefined when not set, null for an unknown function. */
  read(ch: SimChannel, name: string): string | undefined | null {
    const fn = /^([A-Z_]+)\(([^)]*)\)$/i.exec(name);
    if (!fn) return ch.vars.get(name);
    const func = (fn[1] ?? '').toUpperCase();
    const arg = (fn[2] ?? '').toLowerCase();
    const id =
      func === 'CALLERID' ? ch.caller : func === 'CONNECTEDLINE' ? ch.connected : undefined;
    if (!id) return null;
    if (arg === 'name') return id.name;
    if (arg === 'num' || arg === 'number') return id.number;
    if (arg === 'all') return id.name ? `"${id.name}" <${id.number}>` : id.number;
    return null;
  }
}

/** `ast_callerid_parse`: `"Name" <num>`, `Name <num>`, `<num>` or a bare number/name. */
export function parseCallerId(text: string): AriCallerId {
  const angle = /^\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>\s*$/.exec(text);
  if (angle) return { name: (angle[1] ?? angle[2] ?? '').trim(), number: (angle[3] ?? '').trim() };
  const trimmed = text.trim().replace(/^"(.*)"$/, '$1');
  if (/^[+\d*#-]+$/.test(trimmed)) return { name: '', number: trimmed.replace(/-/g, '') };
  return { name: trimmed, number: '' };
}
