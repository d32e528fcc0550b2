/**
 * Which calls are recorded and the recordings
 * settings taken from the configuration. Pure functions. Reference: docs/recordings.md.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';

/** RECORD_CALLS: `none`, `all`, `inbound` (direction `in`) or `outbound` (direction `out`). */
export type RecordMode = 'none' | 'all' | 'inbound' | 'outbound';

/**
 * Whether a bridged call is recorded: the per-call `override` (the CRM route answer's `record`,
 * or the click-to-call request's `record`) when given, else RECORD_CALLS for the call's
 * direction (`in`: a customer called a DID; `out`: an operator or the CRM called a customer).
 */
export function shouldRecord(
  mode: RecordMode,
  direction: 'in' | 'out',
  override?: boolean,
): boolean {
  if (override !== undefined) return override;
  switch (mode) {
    case 'all':
      return true;
    case 'inbound':
      return direction === 'in';
    case 'outbound':
      return direction === 'out';
    case 'none':
      return false;
  }
}

/** The recordings settings of a configuration. */
export interface RecordingSettings {
  mode: RecordMode;
  /** Directory of the local storage: RECORDINGS_DIR, or `<DATA_DIR>/recordings`. */
  directory: string;
  /** RECORDING_LINK_SECRET, or undefined (a random key per run is used then). Never logged. */
  linkSecret: string | undefined;
  linkTtlSec: number;
  /** PUBLIC_URL, or undefined (the HTTP listen address is used). */
  publicUrl: string | undefined;
  deleteFromAsterisk: boolean;
  download: { attempts: number; initialDelayMs: number; maxDelayMs: number };
}

/** Largest delay between download tries, ms. */
export const MAX_RETRY_DELAY_MS = 60_000;

/** Read the recordings settings from a validated configuration. */
export function recordingSettings(
  config: Pick<
    Config,
    | 'RECORD_CALLS'
    | 'RECORDINGS_DIR'
    | 'DATA_DIR'
    | 'RECORDING_LINK_SECRET'
    | 'RECORDING_LINK_TTL_SEC'
    | 'PUBLIC_URL'
    | 'RECORDING_DELETE_FROM_ASTERISK'
    | 'RECORDING_DOWNLOAD_ATTEMPTS'
    | 'RECORDING_RETRY_DELAY_MS'
  >,
): RecordingSettings {
  return {
    mode: config.RECORD_CALLS,
    directory: config.RECORDINGS_DIR ?? join(config.DATA_DIR, 'recordings'),
    linkSecret: config.RECORDING_LINK_SECRET,
    linkTtlSec: config.RECORDING_LINK_TTL_SEC,
    publicUrl: config.PUBLIC_URL,
    deleteFromAsterisk: config.RECORDING_DELETE_FROM_ASTERISK,
    download: {
      attempts: config.RECORDING_DOWNLOAD_ATTEMPTS,
      initialDelayMs: config.RECORDING_RETRY_DELAY_MS,
      maxDelayMs: Math.max(MAX_RETRY_DELAY_MS, config.RECORDING_RETRY_DELAY_MS),
    },
  };
}

/**
 * Configuration problems of the recordings settings, one line each (empty when fine):
 * RECORDING_LINK_SECRET is required in production when calls may be recorded (a random per-run
 * key would break every link a CRM stored at each restart).
 */
export function recordingsConfigCheck(
  config: Pick<Config, 'NODE_ENV' | 'RECORD_CALLS' | 'RECORDING_LINK_SECRET'>,
): string[] {
  if (
    config.NODE_ENV === 'production' &&
    config.RECORD_CALLS !== 'none' &&
    !config.RECORDING_LINK_SECRET
  )
    return [
      'RECORDING_LINK_SECRET: required when NODE_ENV=production and RECORD_CALLS is not none (at least 32 characters, e.g. openssl rand -hex 32)',
    ];
  return [];
}
