/**
 * The simulated dialplan (extensions.conf) of the recorded Asterisk:
 *
 * ```
 * [from-pstn]
 * exten => _X.,1,NoOp()
 *  same => n,Stasis(crm-app,inbound,${EXTEN})     ; priority 2, as in the traces
 * [from-internal]                                 ; operators' phones
 * exten => _XXXX.,1,NoOp()                       ; 5 digits or more
 *  same => n,Stasis(crm-app,outbound,${EXTEN})    ; as in asterisk-conf/extensions.conf
 * [service]
 * exten => 9999,1,Answer()
 *  same => n,Playback(hello-world)
 *  same => n,Hangup()
 * [crm-amd]                                       ; as in asterisk-conf/extensions.conf
 * exten => s,1,NoOp(Answering-machine detection on ${CHANNEL})
 *  same => n,AMD(${CRM_AMD_INITIAL_SILENCE_MS},…,${CRM_AMD_MAX_WORD_MS})
 *  same => n,Set(CRM_AMD_RETURN_TRIES=0)
 *  same => n(back),Stasis(crm-app,amd,${AMDSTATUS},${AMDCAUSE})   ; priority 4
 *  same => n,GotoIf($["${STASISSTATUS}" != "FAILED"]?done)
 *  same => n,Set(CRM_AMD_RETURN_TRIES=$[${CRM_AMD_RETURN_TRIES} + 1])
 *  same => n,GotoIf($[${CRM_AMD_RETURN_TRIES} >= 20]?done)
 *  same => n,Wait(0.5)
 *  same => n,Goto(back)
 *  same => n(done),Hangup()                                       ; priority 10
 * ```
 *
 * The Stasis app of `from-pstn` is the one the inbound call was injected for (default `crm-app`).
 * Anything else is an invalid extension: the channel is hung up, as Asterisk's PBX does when there
 * is no such extension and no `i` extension.
 */

/** One priority of an extension. `data` may depend on the channel (EXTEN, injected app). */
export interface DialplanStep {
  app:
    | 'NoOp'
    | 'Answer'
    | 'Playback'
    | 'Hangup'
    | 'Stasis'
    | 'AMD'
    | 'Set'
    | 'GotoIf'
    | 'Goto'
    | 'Wait';
  /**
   * The application's data, variables and expressions substituted (`vars`: the channel's, `''`
   * when unset): `Set` gives `NAME=value`, `Wait` the seconds.
   */
  data: (ctx: DialplanContext) => string;
  /** `GotoIf`, `Goto`: the priority to go to; undefined: the next one. */
  jump?: (ctx: DialplanContext) => number | undefined;
}

/** What a step's data may depend on. */
export interface DialplanContext {
  exten: string;
  app: string;
  channel: string;
  vars: (name: string) => string;
}

/** `[crm-amd]`: the priority of `Stasis()` (label `back`) and of the final `Hangup()` (`done`). */
const AMD_BACK = 4;
const AMD_DONE = 10;
/** `[crm-amd]`: how many times a failed `Stasis()` is tried again, 0.5 s apart. */
export const AMD_RETURN_TRIES = 20;

/** The AMD() arguments of the `[crm-amd]` context, in AMD's order (channel variables). */
export const AMD_ARG_VARIABLES = [
  'CRM_AMD_INITIAL_SILENCE_MS',
  'CRM_AMD_GREETING_MS',
  'CRM_AMD_AFTER_GREETING_SILENCE_MS',
  'CRM_AMD_TOTAL_ANALYSIS_MS',
  'CRM_AMD_MIN_WORD_MS',
  'CRM_AMD_BETWEEN_WORDS_SILENCE_MS',
  'CRM_AMD_MAX_WORDS',
  'CRM_AMD_SILENCE_THRESHOLD',
  'CRM_AMD_MAX_WORD_MS',
] as const;

interface Extension {
  pattern: string;
  steps: DialplanStep[];
}

const CONTEXTS: Record<string, Extension[]> = {
  'from-pstn': [
    {
      pattern: '_X.',
      steps: [
        { app: 'NoOp', data: () => '' },
        { app: 'Stasis', data: ({ exten, app }) => `${app},inbound,${exten}` },
      ],
    },
  ],
  'from-internal': [
    {
      pattern: '_XXXX.',
      steps: [
        { app: 'NoOp', data: () => '' },
        { app: 'Stasis', data: ({ exten, app }) => `${app},outbound,${exten}` },
      ],
    },
  ],
  'crm-amd': [
    {
      pattern: 's',
      steps: [
        { app: 'NoOp', data: ({ channel }) => `Answering-machine detection on ${channel}` },
        { app: 'AMD', data: ({ vars }) => AMD_ARG_VARIABLES.map(vars).join(',') },
        { app: 'Set', data: () => 'CRM_AMD_RETURN_TRIES=0' },
        {
          app: 'Stasis',
          data: ({ app, vars }) => `${app},amd,${vars('AMDSTATUS')},${vars('AMDCAUSE')}`,
        },
        {
          app: 'GotoIf',
          data: ({ vars }) => `${vars('STASISSTATUS') !== 'FAILED' ? 1 : 0}?done`,
          jump: ({ vars }) => (vars('STASISSTATUS') !== 'FAILED' ? AMD_DONE : undefined),
        },
        {
          app: 'Set',
          data: ({ vars }) => `CRM_AMD_RETURN_TRIES=${Number(vars('CRM_AMD_RETURN_TRIES')) + 1}`,
        },
        {
          app: 'GotoIf',
          data: ({ vars }) =>
            `${Number(vars('CRM_AMD_RETURN_TRIES')) >= AMD_RETURN_TRIES ? 1 : 0}?done`,
          jump: ({ vars }) =>
            Number(vars('CRM_AMD_RETURN_TRIES')) >= AMD_RETURN_TRIES ? AMD_DONE : undefined,
        },
        { app: 'Wait', data: () => '0.5' },
        { app: 'Goto', data: () => 'back', jump: () => AMD_BACK },
        { app: 'Hangup', data: () => '' },
      ],
    },
  ],
  service: [
    {
      pattern: '9999',
      steps: [
        { app: 'Answer', data: () => '' },
        { app: 'Playback', data: () => 'hello-world' },
        { app: 'Hangup', data: () => '' },
      ],
    },
  ],
};

/** Compiled extension patterns (the dialplan's patterns are fixed). */
const compiled = new Map<string, RegExp>();

/** {@link patternToRegExp}, compiled once per pattern. */
function patternRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) compiled.set(pattern, (re = patternToRegExp(pattern)));
  return re;
}

/** Asterisk extension pattern (`_X.`, `_NXX`, `_[1-5]!`) or literal → RegExp. */
function patternToRegExp(pattern: string): RegExp {
  if (!pattern.startsWith('_'))
    return new RegExp(`^${pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  let out = '';
  const body = pattern.slice(1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === 'X') out += '[0-9]';
    else if (c === 'Z') out += '[1-9]';
    else if (c === 'N') out += '[2-9]';
    else if (c === '.') out += '.+';
    else if (c === '!') out += '.*';
    else if (c === '[') {
      const end = body.indexOf(']', i);
      out += body.slice(i, end + 1);
      i = end;
    } else out += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** The steps of `exten` in `context`, or undefined when there is no such extension. */
export function findExtension(context: string, exten: string): DialplanStep[] | undefined {
  const extensions = CONTEXTS[context];
  if (!extensions) return undefined;
  return extensions.find((e) => patternRegExp(e.pattern).test(exten))?.steps;
}
