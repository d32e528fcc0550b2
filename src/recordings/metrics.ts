/**
 * The Prometheus counters of the recordings service (bridge recordings of calls; the call script
 * recordings of verb-recordings.ts count their own). Registered on the engine's registry, once
 * per registry (`counter` of src/metrics/registry.ts). Reference: docs/recordings.md.
 */
import type { Counter, Registry } from 'prom-client';
import { counter } from '../metrics/registry.ts';

/** The recordings service's counters. */
export interface RecordingMetrics {
  /** `aricrm_recordings_started_total`. */
  started: Counter;
  /** `aricrm_recordings_stored_total`. */
  stored: Counter;
  /** `aricrm_recordings_resumed_total`. */
  resumed: Counter;
  /** `aricrm_recording_failures_total{stage}` (stages: `RecordingFailureStage`). */
  failures: Counter<'stage'>;
  /** `aricrm_recording_download_retries_total{stage}`. */
  retries: Counter<'stage'>;
  /** `aricrm_recording_cleanup_failures_total`. */
  cleanupFailures: Counter;
}

/** The counters of the recordings service on `registry` (created on first use). */
export function createRecordingMetrics(registry: Registry): RecordingMetrics {
  return {
    started: counter(registry, {
      name: 'aricrm_recordings_started_total',
      help: 'Bridge recordings started (POST /bridges/{id}/record accepted).',
    }),
    stored: counter(registry, {
      name: 'aricrm_recordings_stored_total',
      help: 'Recordings downloaded from Asterisk, verified and stored by the engine.',
    }),
    resumed: counter(registry, {
      name: 'aricrm_recordings_resumed_total',
      help: 'Recordings an earlier run left unsettled (recording or downloading), taken up again at start-up.',
    }),
    failures: counter(registry, {
      name: 'aricrm_recording_failures_total',
      help: 'Recordings that ended failed, by stage (start, asterisk, missing, download, verify, storage).',
      labelNames: ['stage'] as const,
    }),
    retries: counter(registry, {
      name: 'aricrm_recording_download_retries_total',
      help: 'Download tries of a finished recording that failed and were retried, by stage.',
      labelNames: ['stage'] as const,
    }),
    cleanupFailures: counter(registry, {
      name: 'aricrm_recording_cleanup_failures_total',
      help: 'Stored recordings that could not be deleted from Asterisk afterwards.',
    }),
  };
}
