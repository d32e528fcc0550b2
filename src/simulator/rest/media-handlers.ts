/**
 * ARI `recordings` and `playbacks` resources of the simulator (stored and live recordings, a
 * playback's state and stop), and the checks of the play and record parameters that channels and
 * bridges share. Status codes and error messages are Asterisk 22's (res/ari/resource_*.c).
 */
import { ariError } from '../errors.ts';
import { liveRecordingJson, playbackJson } from '../model.ts';
import type { RecordOptions } from '../recordings.ts';
import { audioFile, contentTypeOf, isKnownFormat } from '../wav.ts';
import { noContent, type Handler } from './handler-result.ts';
import type { Params } from './params.ts';

/**
 * The record options of `name`, `format`, `maxDurationSeconds`, `maxSilenceSeconds`: 400 when a
 * duration is negative.
 */
export function recordOptions(p: Params): RecordOptions {
  const maxDurationSec = p.int('maxDurationSeconds', 0);
  const maxSilenceSec = p.int('maxSilenceSeconds', 0);
  if (maxDurationSec < 0) throw ariError(400, 'max_duration_seconds cannot be negative');
  if (maxSilenceSec < 0) throw ariError(400, 'max_silence_seconds cannot be negative');
  return {
    name: p.str('name') ?? '',
    format: p.str('format') ?? '',
    maxDurationSec,
    ifExists: 'fail',
  };
}

/** Validate terminateOn/ifExists/format in Asterisk's order. */
export function validateRecording(p: Params, opts: RecordOptions): RecordOptions {
  const terminateOn = p.str('terminateOn') ?? 'none';
  if (terminateOn !== 'none' && terminateOn !== 'any' && terminateOn !== '*' && terminateOn !== '#')
    throw ariError(400, 'terminateOn invalid');
  const ifExists = p.str('ifExists') ?? 'fail';
  if (ifExists !== 'fail' && ifExists !== 'overwrite' && ifExists !== 'append')
    throw ariError(400, 'ifExists invalid');
  if (!isKnownFormat(opts.format))
    throw ariError(422, 'specified format is unknown on this system');
  if (!opts.name) throw ariError(500, 'Error parsing request');
  return { ...opts, ifExists, terminateOn };
}

/** The `media` list to play: 400 when missing, or with a negative `skipms` or `offsetms`. */
export function playMedia(p: Params): string[] {
  const media = p.list('media');
  if (media.length === 0) throw ariError(400, 'Missing parameter media');
  if (p.int('skipms', 3000) < 0) throw ariError(400, 'skipms cannot be negative');
  if (p.int('offsetms', 0) < 0) throw ariError(400, 'offsetms cannot be negative');
  return media;
}

/** The `recordings.*` and `playbacks.*` operations. */
export const MEDIA_HANDLERS: Record<string, Handler> = {
  // ---- recordings ----------------------------------------------------------------------------
  'recordings.listStored': (_p, pbx) => ({
    status: 200,
    body: [...pbx.recordings.stored.values()].map((r) => ({ name: r.name, format: r.format })),
  }),
  'recordings.getStored': (p, pbx) => {
    const rec = pbx.recordings.stored.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    return { status: 200, body: { name: rec.name, format: rec.format } };
  },
  'recordings.deleteStored': (p, pbx) => {
    const name = p.str('recordingName') ?? '';
    if (!pbx.recordings.stored.delete(name)) throw ariError(404, 'Recording not found');
    return noContent;
  },
  'recordings.getStoredFile': (p, pbx) => {
    const rec = pbx.recordings.stored.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    return {
      status: 200,
      file: { contentType: contentTypeOf(rec.format), data: audioFile(rec.format, rec.frames) },
    };
  },
  'recordings.getLive': (p, pbx) => {
    const rec = pbx.recordings.live.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    return { status: 200, body: liveRecordingJson(rec) };
  },
  'recordings.cancel': (p, pbx) => {
    const rec = pbx.recordings.live.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    pbx.recordings.finish(rec, 'canceled', true);
    return noContent;
  },
  'recordings.stop': (p, pbx) => {
    const rec = pbx.recordings.live.get(p.str('recordingName') ?? '');
    if (!rec) throw ariError(404, 'Recording not found');
    pbx.recordings.finish(rec, 'done', true);
    return noContent;
  },

  // ---- playbacks -----------------------------------------------------------------------------
  'playbacks.get': (p, pbx) => {
    const pb = pbx.playbacks.get(p.str('playbackId') ?? '');
    if (!pb) throw ariError(404, 'Playback not found');
    return { status: 200, body: playbackJson(pb) };
  },
  'playbacks.stop': (p, pbx) => {
    const pb = pbx.playbacks.get(p.str('playbackId') ?? '');
    if (!pb) throw ariError(404, 'Playback not found');
    pbx.playbacks.stop(pb);
    return noContent;
  },
};
