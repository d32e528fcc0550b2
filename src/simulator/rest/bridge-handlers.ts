/**
 * ARI `bridges` resource of the simulator: list, create (with or without an id), get, destroy,
 * add and remove channels, play, record. Status codes and error messages are Asterisk 22's
 * (res/ari/resource_bridges.c).
 */
import { ariError } from '../errors.ts';
import {
  bridgeJson,
  liveRecordingJson,
  playbackJson,
  type SimBridge,
  type SimChannel,
} from '../model.ts';
import type { Pbx } from '../pbx.ts';
import { noContent, type Handler, type HandlerResult } from './handler-result.ts';
import { playMedia, recordOptions, validateRecording } from './media-handlers.ts';
import type { Params } from './params.ts';

/** `find_bridge`: 404 "Bridge not found". */
function requireBridge(pbx: Pbx, id: string | undefined): SimBridge {
  const bridge = id ? pbx.bridges.get(id) : undefined;
  if (!bridge) throw ariError(404, 'Bridge not found');
  return bridge;
}

/** `control_list_create` of bridges: 400 "Missing parameter channel" / "Channel not found", 422 not in Stasis. */
function bridgeChannels(pbx: Pbx, ids: string[]): SimChannel[] {
  if (ids.length === 0) throw ariError(400, 'Missing parameter channel');
  return ids.map((id) => {
    const ch = pbx.channels.get(id);
    if (!ch) throw ariError(400, 'Channel not found');
    if (!ch.stasis) throw ariError(422, 'Channel not in Stasis application');
    return ch;
  });
}

/** A new bridge of the request's `type` and `name`. */
function createBridge(p: Params, pbx: Pbx, bridgeId: string | undefined): SimBridge {
  const opts: { bridgeId?: string; type?: string; name?: string } = {};
  if (bridgeId) opts.bridgeId = bridgeId;
  const type = p.str('type');
  if (type) opts.type = type;
  const name = p.str('name');
  if (name) opts.name = name;
  return pbx.bridging.create(opts);
}

/** `POST /bridges/{id}/play` (and with an id): 201 with the playback, started after the answer. */
function playOnBridge(p: Params, pbx: Pbx, playbackId: string | undefined): HandlerResult {
  const bridge = requireBridge(pbx, p.str('bridgeId'));
  const media = playMedia(p);
  const pb = pbx.playbacks.queue({ bridge }, media, p.str('lang') ?? 'en', playbackId);
  return {
    status: 201,
    body: playbackJson(pb),
    location: `/playbacks/${pb.id}`,
    afterResponse: () => pbx.playbacks.kick(pb),
  };
}

/** The `bridges.*` operations. */
export const BRIDGE_HANDLERS: Record<string, Handler> = {
  'bridges.list': (_p, pbx) => ({ status: 200, body: [...pbx.bridges.values()].map(bridgeJson) }),
  'bridges.create': (p, pbx) => {
    const bridgeId = p.str('bridgeId');
    if (bridgeId && pbx.bridges.has(bridgeId))
      throw ariError(409, `Bridge with id '${bridgeId}' already exists`);
    return { status: 200, body: bridgeJson(createBridge(p, pbx, bridgeId)) };
  },
  'bridges.createWithId': (p, pbx) => {
    const bridgeId = p.str('bridgeId') ?? '';
    const existing = pbx.bridges.get(bridgeId);
    if (existing) {
      const name = p.str('name');
      if (name && name !== existing.name)
        throw ariError(500, 'Changing bridge name is not implemented');
      if (p.str('type'))
        throw ariError(500, 'Supplying a bridge type when updating a bridge is not allowed.');
      return { status: 200, body: bridgeJson(existing) };
    }
    return { status: 200, body: bridgeJson(createBridge(p, pbx, bridgeId)) };
  },
  'bridges.get': (p, pbx) => ({
    status: 200,
    body: bridgeJson(requireBridge(pbx, p.str('bridgeId'))),
  }),
  'bridges.destroy': (p, pbx) => {
    pbx.bridging.destroy(requireBridge(pbx, p.str('bridgeId')));
    return noContent;
  },
  'bridges.addChannel': (p, pbx) => {
    const bridge = requireBridge(pbx, p.str('bridgeId'));
    const chans = bridgeChannels(pbx, p.list('channel'));
    pbx.bridging.add(bridge, chans, p.bool('inhibitConnectedLineUpdates', false));
    return noContent;
  },
  'bridges.removeChannel': (p, pbx) => {
    const bridge = requireBridge(pbx, p.str('bridgeId'));
    const chans = bridgeChannels(pbx, p.list('channel'));
    if (chans.some((c) => c.bridgeId !== bridge.id))
      throw ariError(422, 'Channel not in this bridge');
    pbx.bridging.remove(bridge, chans);
    return noContent;
  },
  'bridges.play': (p, pbx) => playOnBridge(p, pbx, p.str('playbackId')),
  'bridges.playWithId': (p, pbx) => playOnBridge(p, pbx, p.str('playbackId')),
  'bridges.record': (p, pbx) => {
    const bridge = requireBridge(pbx, p.str('bridgeId'));
    const opts = validateRecording(p, recordOptions(p));
    const rec = pbx.recordings.start({ bridge }, opts);
    return {
      status: 201,
      body: { ...liveRecordingJson(rec), state: 'queued' },
      location: `/recordings/live/${encodeURIComponent(rec.name)}`,
    };
  },
};
