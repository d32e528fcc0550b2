/**
 * ARI `channels` resource of the simulator: list, originate, create, get, hang-up, continue in
 * the dialplan, answer, ring, play, record, channel variables, dial. Status codes and error
 * messages are Asterisk 22's (res/ari/resource_channels.c).
 */
import { HANGUP_REASON_CAUSE } from '../causes.ts';
import { ariError } from '../errors.ts';
import { channelJson, liveRecordingJson, playbackJson, type SimChannel } from '../model.ts';
import type { Pbx } from '../pbx.ts';
import { noContent, type Handler, type HandlerResult } from './handler-result.ts';
import { playMedia, recordOptions, validateRecording } from './media-handlers.ts';
import type { Params } from './params.ts';

/** The channel of `id`: 404 "Channel not found". */
function requireChannel(pbx: Pbx, id: string | undefined): SimChannel {
  const ch = id ? pbx.channels.get(id) : undefined;
  if (!ch) throw ariError(404, 'Channel not found');
  return ch;
}

/** `POST /channels` (and with an id): originate, 200 with the new channel. */
function originate(p: Params, pbx: Pbx, channelId: string | undefined): HandlerResult {
  const opts: Parameters<Pbx['legs']['originate']>[0] = {
    timeoutSec: p.int('timeout', 0),
    variables: p.variables,
  };
  const optional = [
    'endpoint',
    'extension',
    'context',
    'label',
    'app',
    'appArgs',
    'callerId',
    'originator',
    'formats',
  ] as const;
  for (const key of optional) {
    const v = p.str(key);
    if (v !== undefined) opts[key] = v;
  }
  const priority = p.int('priority', 0);
  if (priority) opts.priority = priority;
  if (channelId !== undefined) opts.channelId = channelId;
  const ch = pbx.legs.originate(opts);
  return { status: 200, body: channelJson(ch) };
}

/** `POST /channels/{id}/play` (and with an id): 201 with the playback, started after the answer. */
function playOnChannel(p: Params, pbx: Pbx, playbackId: string | undefined): HandlerResult {
  const ch = pbx.control(p.str('channelId') ?? '');
  pbx.assertValidState(ch);
  const media = playMedia(p);
  const pb = pbx.playbacks.queue({ channel: ch }, media, p.str('lang') ?? ch.language, playbackId);
  return {
    status: 201,
    body: playbackJson(pb),
    location: `/playbacks/${pb.id}`,
    afterResponse: () => pbx.playbacks.kick(pb),
  };
}

/** The `channels.*` operations. */
export const CHANNEL_HANDLERS: Record<string, Handler> = {
  'channels.list': (_p, pbx) => ({
    status: 200,
    body: [...pbx.channels.values()].reverse().map(channelJson),
  }),
  'channels.originate': (p, pbx) => originate(p, pbx, p.str('channelId')),
  'channels.originateWithId': (p, pbx) => originate(p, pbx, p.str('channelId')),
  'channels.create': (p, pbx) => {
    const app = p.str('app');
    const appArgs = p.str('appArgs');
    const opts: Parameters<Pbx['legs']['create']>[0] = { variables: p.variables };
    for (const key of [
      'endpoint',
      'app',
      'appArgs',
      'channelId',
      'originator',
      'formats',
    ] as const) {
      const v = p.str(key);
      if (v !== undefined) opts[key] = v;
    }
    const { result: body, deliveries } = pbx.collect(() => {
      const ch = pbx.legs.create(opts);
      const snapshot = channelJson(ch);
      pbx.legs.startCreated(ch, app ?? '', appArgs);
      return snapshot;
    });
    if (pbx.races.stasisStartBeforeCreateResponse) {
      // The events are written to the WebSocket (and a turn of the event loop passes) before the answer.
      return {
        status: 200,
        body,
        beforeResponse: async () => {
          await pbx.flush(deliveries);
          await new Promise((resolve) => setImmediate(resolve));
        },
      };
    }
    return { status: 200, body, afterResponse: () => void pbx.flush(deliveries) };
  },
  'channels.get': (p, pbx) => ({
    status: 200,
    body: channelJson(requireChannel(pbx, p.str('channelId'))),
  }),
  'channels.hangup': (p, pbx) => {
    const ch = requireChannel(pbx, p.str('channelId'));
    const reason = p.str('reason');
    const reasonCode = p.str('reason_code');
    if (reason && reasonCode)
      throw ariError(400, "The reason and reason_code can't both be specified");
    let cause = 16;
    if (reasonCode) cause = Number.parseInt(reasonCode, 10) || 0;
    else if (reason) {
      const mapped = HANGUP_REASON_CAUSE[reason];
      if (mapped === undefined) throw ariError(400, 'Invalid reason for hangup provided');
      cause = mapped;
    }
    pbx.hangups.appHangup(ch, cause);
    return noContent;
  },
  'channels.continueInDialplan': (p, pbx) => {
    const ch = pbx.control(p.str('channelId') ?? '');
    pbx.assertValidState(ch);
    const contextArg = p.str('context');
    const extensionArg = p.str('extension');
    const context = contextArg ?? ch.dialplan.context;
    const exten = contextArg ? (extensionArg ?? 's') : (extensionArg ?? ch.dialplan.exten);
    const label = p.str('label');
    let priority: number;
    if (label) {
      if (!/^[+-]?\d+$/.test(label)) throw ariError(404, 'Requested label can not be found');
      priority = Number.parseInt(label, 10);
      if (priority === 0) throw ariError(400, 'Requested priority is illegal');
    } else if (p.int('priority', 0)) {
      priority = p.int('priority', 0);
    } else if (!contextArg && !extensionArg) {
      priority = ch.dialplan.priority + 1;
    } else {
      priority = 1;
    }
    pbx.dialplan.continueInDialplan(ch, context, exten, priority);
    return noContent;
  },
  'channels.answer': (p, pbx) => {
    const ch = pbx.control(p.str('channelId') ?? '');
    pbx.assertValidState(ch);
    pbx.dialplan.answer(ch);
    return noContent;
  },
  'channels.ring': (p, pbx) => {
    pbx.assertValidState(pbx.control(p.str('channelId') ?? ''));
    return noContent;
  },
  'channels.ringStop': (p, pbx) => {
    pbx.assertValidState(pbx.control(p.str('channelId') ?? ''));
    return noContent;
  },
  'channels.play': (p, pbx) => playOnChannel(p, pbx, p.str('playbackId')),
  'channels.playWithId': (p, pbx) => playOnChannel(p, pbx, p.str('playbackId')),
  'channels.record': (p, pbx) => {
    const base = recordOptions(p);
    const ch = pbx.control(p.str('channelId') ?? '');
    const opts = validateRecording(p, base);
    const rec = pbx.recordings.start({ channel: ch }, opts);
    return {
      status: 201,
      body: { ...liveRecordingJson(rec), state: 'queued' },
      location: `/recordings/live/${encodeURIComponent(rec.name)}`,
    };
  },
  'channels.getChannelVar': (p, pbx) => {
    const variable = p.str('variable');
    if (!variable) throw ariError(400, 'Variable name is required');
    const ch = pbx.channels.get(p.str('channelId') ?? '');
    if (!ch) throw ariError(404, 'Provided channel was not found');
    const value = pbx.variables.read(ch, variable);
    if (value === null) throw ariError(500, 'Unable to read provided function');
    if (value === undefined) throw ariError(404, 'Provided variable was not found');
    return { status: 200, body: { value } };
  },
  'channels.setChannelVar': (p, pbx) => {
    const variable = p.str('variable');
    if (!variable) throw ariError(400, 'Variable name is required');
    const ch = pbx.control(p.str('channelId') ?? '');
    if (!pbx.variables.write(ch, variable, p.str('value') ?? ''))
      throw ariError(400, 'Failed to execute function');
    return noContent;
  },
  'channels.dial': (p, pbx) => {
    const ch = pbx.control(p.str('channelId') ?? '');
    pbx.legs.dial(ch, p.str('caller'), p.int('timeout', 0));
    return noContent;
  },
};
