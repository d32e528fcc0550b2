/**
 * Loading the configuration from the environment (and a `.env` file in the working directory if
 * present; real environment variables win). Validation errors become one {@link ConfigError}
 * whose message names each bad variable and what is expected.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

/** Thrown when the configuration is invalid; `message` is one line for the operator. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
  }
}

/** Extra checks that span several variables or need parsing beyond the schema. */
export type ConfigCheck = (config: Config) => string[];

/**
 * Parse and validate `env` (defaults to `process.env` merged over `.env`).
 * Empty strings count as unset. Throws {@link ConfigError}.
 */
export function loadConfig(
  env: Record<string, string | undefined> = readEnvironment(),
  checks: ConfigCheck[] = [],
): Config {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') cleaned[key] = value;
  }
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error));
  const config = parsed.data;
  const problems: string[] = [];
  if (config.NODE_ENV === 'production' && !config.ARI_URL) {
    problems.push(
      'ARI_URL: required when NODE_ENV=production (the PBX simulator is for development only)',
    );
  }
  if (config.CRM_WEBHOOK_URL && !config.WEBHOOK_SECRET) {
    problems.push('WEBHOOK_SECRET: required when CRM_WEBHOOK_URL is set (at least 16 characters)');
  }
  if (config.DATABASE_SCHEMA && !/^postgres(ql)?:\/\//i.test(config.DATABASE_URL ?? '')) {
    problems.push('DATABASE_SCHEMA: only for a PostgreSQL DATABASE_URL (postgres://…)');
  }
  if (config.NODE_ENV === 'production' && config.ARI_PASSWORD === 'asterisk') {
    problems.push('ARI_PASSWORD: the default password is not allowed in production');
  }
  if (
    config.STREAM_ADMIN_RESERVE !== undefined &&
    config.STREAM_ADMIN_RESERVE >= config.STREAM_MAX_SOCKETS
  ) {
    problems.push(
      `STREAM_ADMIN_RESERVE: must be below STREAM_MAX_SOCKETS (${config.STREAM_ADMIN_RESERVE} >= ${config.STREAM_MAX_SOCKETS}), or operators would have no place on the live stream; lower it (0 keeps no places for admin streams) or raise STREAM_MAX_SOCKETS`,
    );
  }
  for (const check of checks) problems.push(...check(config));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** `process.env` over the variables of `./.env` (if the file exists). */
export function readEnvironment(path = '.env'): Record<string, string | undefined> {
  const fromFile = existsSync(path) ? parseDotenv(readFileSync(path)) : {};
  return { ...fromFile, ...process.env };
}

function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const key = issue.path.join('.') || '(root)';
    return `${key}: ${issue.message}`;
  });
}
