/** Which class runs which verb. */
import { Gather } from './gather.ts';
import { Hangup } from './hangup.ts';
import { Dial, Transfer } from './host-verbs.ts';
import { Pause } from './pause.ts';
import { Play } from './play.ts';
import { Record } from './record.ts';
import { Redirect } from './redirect.ts';
import type { ScriptVerb } from './schema.ts';
import type { Verb } from './types.ts';

/** The {@link Verb} that runs `spec` (a validated verb). */
export function createVerb(spec: ScriptVerb): Verb {
  switch (spec.verb) {
    case 'play':
      return new Play(spec);
    case 'pause':
      return new Pause(spec);
    case 'gather':
      return new Gather(spec);
    case 'record':
      return new Record(spec);
    case 'dial':
      return new Dial(spec);
    case 'transfer':
      return new Transfer(spec);
    case 'redirect':
      return new Redirect(spec);
    case 'hangup':
      return new Hangup();
  }
}
