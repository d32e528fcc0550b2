/**
 * Bridges of the simulated Asterisk (`POST /bridges`, `addChannel`, `removeChannel`,
 * `DELETE /bridges/{id}`): their bridging technology as Asterisk re-evaluates it (simple_bridge,
 * native_rtp, softmix, holding_bridge), the BRIDGEPEER / BRIDGEPVTCALLID variables and connected
 * lines of their channels, and what ends with them (recordings, playbacks). Asterisk never
 * destroys a bridge by itself (fact 9): neither does this.
 */
import { ariError } from './errors.ts';
import {
  bridgeJson,
  channelJson,
  EMPTY_CALLER_ID,
  type SimBridge,
  type SimChannel,
} from './model.ts';
import type { Pbx } from './pbx.ts';

/** The bridge operations of a {@link Pbx}; the bridges themselves are in `pbx.bridges`. */
export class Bridging {
  constructor(private readonly pbx: Pbx) {}

  /** `POST /bridges`: type is a comma list (mixing, holding, dtmf_events, proxy_media, video_sfu, video_single, sdp_label). */
  create(opts: { bridgeId?: string; type?: string; name?: string }): SimBridge {
    const features = new Set(
      (opts.type ?? '')
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    );
    const known = [
      'mixing',
      'holding',
      'dtmf_events',
      'proxy_media',
      'video_sfu',
      'video_single',
      'sdp_label',
    ];
    for (const f of features)
      if (!known.includes(f)) throw ariError(500, 'Unable to create bridge');
    const holding = features.has('holding');
    const bridge: SimBridge = {
      id: opts.bridgeId ?? this.pbx.ids.uuid(),
      technology: holding ? 'holding_bridge' : 'simple_bridge',
      bridgeType: holding ? 'holding' : 'mixing',
      features,
      name: opts.name ?? '',
      channels: [],
      internal: [],
      creationtime: this.pbx.clock.timestamp(),
      videoMode: holding
        ? 'none'
        : features.has('video_sfu')
          ? 'sfu'
          : features.has('video_single')
            ? 'single'
            : 'talker',
      subscribers: new Set(),
      vars: new Map(),
    };
    if (features.has('video_sfu')) bridge.technology = 'softmix';
    this.pbx.bridges.set(bridge.id, bridge);
    this.pbx.emit('BridgeCreated', { bridge: bridgeJson(bridge) }, { bridge });
    return bridge;
  }

  /** Re-evaluate the bridging technology (after participants changed). */
  refreshTechnology(bridge: SimBridge): void {
    bridge.technology = this.technologyOf(bridge);
  }

  technologyOf(bridge: SimBridge): string {
    if (bridge.bridgeType === 'holding') return 'holding_bridge';
    if (bridge.features.has('video_sfu')) return 'softmix';
    const n = bridge.channels.length + bridge.internal.length;
    if (n >= 3) return 'softmix';
    if (
      n === 2 &&
      bridge.internal.length === 0 &&
      !bridge.features.has('dtmf_events') &&
      !bridge.features.has('proxy_media')
    ) {
      return 'native_rtp';
    }
    return 'simple_bridge';
  }

  /** `addChannel`: channels (leaving any other bridge first) enter in order, then the bridge settles. */
  add(bridge: SimBridge, chans: SimChannel[], inhibitConnectedLine: boolean): void {
    for (const ch of chans) {
      if (ch.bridgeId === bridge.id) continue;
      const previous = ch.bridgeId ? this.pbx.bridges.get(ch.bridgeId) : undefined;
      if (previous) {
        this.leave(previous, ch);
        this.settle(previous);
      }
      bridge.channels.push(ch.id);
      ch.bridgeId = bridge.id;
      if (inhibitConnectedLine) ch.vars.set('__SIM_INHIBIT_CONNECTED_LINE', bridge.id);
      if (ch.stasis) bridge.subscribers.add(ch.stasis.app);
      this.pbx.emit(
        'ChannelEnteredBridge',
        { bridge: bridgeJson(bridge), channel: channelJson(ch) },
        { channels: [ch], bridge },
      );
    }
    this.settle(bridge);
  }

  /** `removeChannel` (channels stay in Stasis). */
  remove(bridge: SimBridge, chans: SimChannel[]): void {
    for (const ch of chans) this.leave(bridge, ch);
    this.settle(bridge);
  }

  /** A channel leaves: BRIDGEPEER/BRIDGEPVTCALLID cleared, ChannelLeftBridge (technology as it was, channels as they are now). */
  leave(bridge: SimBridge, ch: SimChannel): void {
    if (ch.bridgeId !== bridge.id) return;
    // Cleared when set, also for the last one out (click-to-call-answered trace).
    if (ch.vars.get('BRIDGEPEER')) this.pbx.setVar(ch, 'BRIDGEPEER', '');
    if (ch.vars.get('BRIDGEPVTCALLID')) this.pbx.setVar(ch, 'BRIDGEPVTCALLID', '');
    bridge.channels = bridge.channels.filter((id) => id !== ch.id);
    ch.bridgeId = null;
    ch.vars.delete('__SIM_INHIBIT_CONNECTED_LINE');
    this.pbx.emit(
      'ChannelLeftBridge',
      { bridge: bridgeJson(bridge), channel: channelJson(ch) },
      { channels: [ch], bridge },
    );
  }

  /**
   * After membership changed: BRIDGEPEER of a two-party bridge, technology re-evaluated
   * (simple_bridge → native_rtp for two RTP channels → softmix for three participants incl. a
   * recorder), connected line of each channel set to its only peer's caller ID, and recorders or
   * announcers left alone in the bridge leave it (they are "lonely" participants).
   */
  settle(bridge: SimBridge): void {
    const members = bridge.channels
      .map((id) => this.pbx.channels.get(id))
      .filter((c): c is SimChannel => c !== undefined);
    bridge.technology = this.technologyOf(bridge);
    this.announcePeers(bridge, members);
    if (members.length + bridge.internal.length === 2) {
      for (const ch of members) {
        if (ch.vars.get('__SIM_INHIBIT_CONNECTED_LINE') === bridge.id) continue;
        const peer = members.find((m) => m !== ch);
        const id = peer ? { ...peer.caller } : { ...EMPTY_CALLER_ID };
        if (id.name !== ch.connected.name || id.number !== ch.connected.number) {
          ch.connected = id;
          this.pbx.emitChannel('ChannelConnectedLine', ch);
        }
      }
    }
    if (members.length === 0 && bridge.internal.length > 0) {
      this.pbx.recordings.finishFor(`bridge:${bridge.id}`);
      this.pbx.playbacks.endForBridge(bridge);
      this.refreshTechnology(bridge);
    }
  }

  /**
   * BRIDGEPEER / BRIDGEPVTCALLID after the participants of a bridge changed, as Asterisk's bridge
   * core sets them (and publishes a ChannelVarset each time) on every re-evaluation of the bridge:
   * a two-channel bridge gives each channel its peer's name and SIP Call-ID, three times over for
   * native_rtp (join, technology change, native start), once for simple_bridge; with a recorder or
   * announcer or 3+ channels, BRIDGEPEER lists the others (internal participants first, e.g.
   * `Recorder/ARI-00000003;2,PJSIP/101-…`) and BRIDGEPVTCALLID is emptied; after someone left,
   * each channel that still has company is told once. A channel left alone gets nothing.
   */
  private announcePeers(bridge: SimBridge, members: SimChannel[]): void {
    const key = [...members.map((m) => m.id), ...bridge.internal.map((p) => p.name)];
    const previous = bridge.peerKey ?? [];
    if (key.length === previous.length && key.every((k, i) => k === previous[i])) return;
    bridge.peerKey = key;
    if (key.length < 2) return;
    const grew = key.some((k) => !previous.includes(k));
    if (members.length === 2 && bridge.internal.length === 0) {
      const rounds = grew && bridge.technology === 'native_rtp' ? 3 : 1;
      const [a, b] = members as [SimChannel, SimChannel];
      for (let i = 0; i < rounds; i++) {
        for (const [ch, peer] of [
          [b, a],
          [a, b],
        ] as const) {
          this.pbx.setVar(ch, 'BRIDGEPEER', peer.name);
          this.pbx.setVar(ch, 'BRIDGEPVTCALLID', peer.protocolId);
        }
      }
      return;
    }
    const rounds = grew ? 3 : 1;
    for (let i = 0; i < rounds; i++) {
      for (const ch of members) {
        const others = [
          ...bridge.internal.map((p) => `${p.name};2`),
          ...members.filter((m) => m !== ch).map((m) => m.name),
        ];
        this.pbx.setVar(ch, 'BRIDGEPEER', others.join(','));
        if (i === 0 && ch.vars.get('BRIDGEPVTCALLID')) this.pbx.setVar(ch, 'BRIDGEPVTCALLID', '');
      }
    }
  }

  /** `DELETE /bridges/{id}`: channels leave (staying in Stasis), recordings end, BridgeDestroyed. */
  destroy(bridge: SimBridge): void {
    for (const id of [...bridge.channels]) {
      const ch = this.pbx.channels.get(id);
      if (ch) this.leave(bridge, ch);
    }
    this.pbx.recordings.finishFor(`bridge:${bridge.id}`);
    this.pbx.playbacks.endForBridge(bridge);
    this.refreshTechnology(bridge);
    this.pbx.emit('BridgeDestroyed', { bridge: bridgeJson(bridge) }, { bridge });
    this.pbx.bridges.delete(bridge.id);
    for (const app of bridge.subscribers) this.pbx.forgetAppIfIdle(app);
  }
}
