/**
 * The configuration reference, generated from {@link configSchema}: `.env.example` and
 * `docs/configuration.md`. `npm run config:docs` rewrites both; a test fails when they drift.
 */
import { configSchema } from './schema.ts';

/** What an installation beside a real Asterisk sets, at the top of both files. */
const PRODUCTION_CHECKLIST = [
  'Beside a real Asterisk, set at least NODE_ENV=production, ARI_URL, ARI_USERNAME and',
  'ARI_PASSWORD (as in ari.conf) and API_KEYS: production refuses to start without ARI_URL',
  'or API_KEYS, or with the default ARI password. Then, as you use them: CRM_ROUTE_URL,',
  'CRM_WEBHOOK_URL with WEBHOOK_SECRET, PUBLIC_URL (recording links, CRM connectors; required',
  'for them when HTTP_HOST is 0.0.0.0, :: or a loopback address, as in a Docker container),',
  'RECORDING_LINK_SECRET (required when RECORD_CALLS is not none) and OPERATOR_TOKEN_SECRET',
  '(the operator console and live stream).',
];

/** One variable of the reference. */
export interface ConfigEntry {
  key: string;
  description: string;
  /** Default as it would be written in the environment; undefined when there is none. */
  defaultValue: string | undefined;
}

interface ZodLike {
  description?: string;
  _zod: { def: { type: string; defaultValue?: unknown; innerType?: ZodLike } };
}

function formatDefault(value: unknown): string {
  if (Array.isArray(value)) {
    return value
      .map((item: unknown) =>
        typeof item === 'object' && item !== null && 'prefix' in item && 'template' in item
          ? `${String(item.prefix)}=${String(item.template)}`
          : String(item),
      )
      .join(',');
  }
  return String(value);
}

/** Every variable with its description and default, in schema order. */
export function configEntries(): ConfigEntry[] {
  return Object.entries(configSchema.shape).map(([key, schema]) => {
    const node = schema as unknown as ZodLike;
    const def = node._zod.def;
    const defaultValue = def.type === 'default' ? formatDefault(def.defaultValue) : undefined;
    return { key, description: node.description ?? '', defaultValue };
  });
}

/** The text of `.env.example`: every variable, commented out at its default. */
export function renderEnvExample(): string {
  const lines = [
    '# ari-crm configuration. Every variable, with its default; uncomment to change.',
    '# Generated from src/config/schema.ts by `npm run config:docs`.',
    '#',
    ...PRODUCTION_CHECKLIST.map((line) => `# ${line}`),
    '',
  ];
  for (const entry of configEntries()) {
    lines.push(`# ${entry.description}`);
    lines.push(`# ${entry.key}=${entry.defaultValue ?? ''}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** The text of `docs/configuration.md`. */
export function renderConfigDoc(): string {
  // `|` would end the table cell; `<path>` or `<user id>` would be read as an HTML tag (and
  // dropped by the renderer), so both are escaped.
  const escape = (s: string): string => s.replace(/\|/g, '\\|').replace(/</g, '\\<');
  const lines = [
    '# Configuration reference',
    '',
    'Generated from `src/config/schema.ts` (`npm run config:docs`); do not edit by hand.',
    'Variables come from the environment, or a `.env` file in the working directory (the',
    'environment wins). An invalid value stops the engine with one line naming the variable.',
    '',
    ...PRODUCTION_CHECKLIST,
    '',
    '| variable | default | meaning |',
    '| --- | --- | --- |',
  ];
  for (const entry of configEntries()) {
    const def =
      entry.defaultValue === undefined
        ? '(unset)'
        : entry.defaultValue === ''
          ? '(empty)'
          : `\`${entry.defaultValue.replace(/\|/g, '\\|')}\``;
    lines.push(`| \`${entry.key}\` | ${def} | ${escape(entry.description)} |`);
  }
  lines.push('');
  return lines.join('\n');
}
