/**
 * `npm run bench:asterisk`: the screen pop on a real Asterisk 22, as an operator feels it. Needs
 * the team's Asterisk kit (`../shared/asterisk`, see docs/asterisk.md "Acceptance tests on a real
 * Asterisk"); without it the script says so and exits 0. Prints figures; asserts nothing.
 *
 * Asterisk runs the kit's reference configuration on free ports, the engine runs as its own
 * process (as in production) with a fake CRM that routes every call to operator 101. SIPp is the
 * phones: `--calls` inbound calls (200) at `--rate` calls/s (5) from the PSTN side, operator 101
 * rings 300 ms, answers, the caller talks 500 ms and hangs up. `--sockets` live stream sockets
 * (1000) are open: one is operator 101's console, the others other operators' consoles that see
 * nothing of these calls (the engine still keeps and checks them).
 *
 * Latency: Asterisk's own `ChannelStateChange` Ringing of the channel to 101 (the event's
 * `timestamp`, Asterisk's clock with milliseconds, read by an observer ARI application subscribed
 * to the endpoint `PJSIP/101`) → the `call.ringing` message arriving on 101's socket, and → the
 * `call.ringing` webhook arriving at the CRM. Both clocks are this machine's. A message is paired
 * with its ringing through the call: the call's record (`GET /v1/calls/{id}`) names the channel
 * of its leg to 101, whose Ringing the observer saw.
 *
 *   npm run bench:asterisk -- [--calls N] [--rate N] [--sockets N]
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { OperatorTokens } from '../src/security/operator-tokens.ts';
import { AcceptanceBed, KIT_ARI } from '../test/asterisk/support/bed.ts';
import { KIT_DIR } from '../test/asterisk/support/kit.ts';
import { Sipp, stopAllSipp } from '../test/asterisk/support/sipp.ts';
import { CALLER, DID, routeTo } from '../test/asterisk/support/suite.ts';

const OBSERVER_APP = 'bench-observer';

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const figures = (values: readonly number[]): string =>
  values.length === 0
    ? 'no calls measured'
    : `p50 ${percentile(values, 50).toFixed(0)} / p99 ${percentile(values, 99).toFixed(0)} / max ${Math.max(...values).toFixed(0)} ms (${values.length} calls)`;

/** An ARI event timestamp (`2026-12-06T16:36:52.400+0000`) as epoch ms. */
function ariTime(timestamp: string): number {
  return Date.parse(timestamp.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
}

/**
 * Latency of each arrival (call id → epoch ms) from the Asterisk ringing of its call's channel to
 * 101 (`channelOf`: call id → channel id; `ringings`: channel id → epoch ms). Calls without both
 * ends are counted as unpaired.
 */
function latencies(
  arrivals: ReadonlyMap<string, number>,
  channelOf: ReadonlyMap<string, string>,
  ringings: ReadonlyMap<string, number>,
): { values: number[]; unpaired: number } {
  const values: number[] = [];
  let unpaired = 0;
  for (const [callId, at] of arrivals) {
    const channelId = channelOf.get(callId);
    const rang = channelId === undefined ? undefined : ringings.get(channelId);
    if (rang === undefined) unpaired++;
    else values.push(at - rang);
  }
  return { values, unpaired };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '200' },
      rate: { type: 'string', default: '5' },
      sockets: { type: 'string', default: '1000' },
    },
  });
  const calls = Number(values.calls);
  const rate = Number(values.rate);
  const sockets = Math.max(1, Number(values.sockets));
  if (!existsSync(KIT_DIR)) {
    console.log(`no Asterisk kit at ${KIT_DIR}: nothing measured`);
    return;
  }
  console.log(
    `Screen pop on a real Asterisk 22: ${calls} inbound calls at ${rate} calls/s to operator 101, ${sockets} live stream sockets open`,
  );
  const bed = await AcceptanceBed.start();
  const secret = randomBytes(32).toString('hex');
  const open: WebSocket[] = [];
  let observer: WebSocket | undefined;
  try {
    await bed.startEngine({
      OPERATOR_TOKEN_SECRET: secret,
      STREAM_MAX_SOCKETS: String(sockets + 20),
      HTTP_MAX_CONNECTIONS: String(sockets + 1024),
    });
    routeTo(bed, ['101']);

    // Asterisk's own view: every state change of 101's channels, with its timestamp.
    const ringings = new Map<string, number>();
    const ariUrl = `ws://127.0.0.1:${bed.ports.http}/ari/events?app=${OBSERVER_APP}&subscribeAll=false&api_key=${KIT_ARI.user}:${KIT_ARI.password}`;
    observer = new WebSocket(ariUrl);
    await new Promise((resolve, reject) => observer!.once('open', resolve).once('error', reject));
    observer.on('message', (data: Buffer) => {
      const event = JSON.parse(data.toString('utf8')) as {
        type: string;
        timestamp: string;
        channel?: { id: string; state?: string };
      };
      if (event.type === 'ChannelStateChange' && event.channel?.state === 'Ringing')
        ringings.set(event.channel.id, ariTime(event.timestamp));
    });
    const subscribed = await bed.asterisk.ari(
      `/applications/${OBSERVER_APP}/subscription?eventSource=endpoint:PJSIP/101`,
      'POST',
    );
    if (subscribed.status !== 200) throw new Error(`observer subscription: ${subscribed.status}`);

    // The consoles: 101's and the others'.
    const tokens = new OperatorTokens({ secrets: [secret] });
    const streamUrl = `${bed.httpUrl.replace(/^http/, 'ws')}/v1/stream`;
    /** Call id → the first `call.ringing` message on 101's socket. */
    const messages = new Map<string, number>();
    for (let i = 0; i < sockets; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, sockets - i) }, (_, j) => {
          const extension = i + j === 0 ? '101' : String(2000 + i + j);
          const token = tokens.mint(extension, 3600, 'bench').token;
          const ws = new WebSocket(`${streamUrl}?token=${encodeURIComponent(token)}`);
          open.push(ws);
          return new Promise<void>((resolve, reject) => {
            ws.on('message', (data: Buffer) => {
              if (data.includes('"type":"stream.synced"')) resolve();
              else if (extension === '101' && data.includes('"type":"call.ringing"')) {
                const at = Date.now();
                const { callId } = JSON.parse(data.toString('utf8')) as { callId: string };
                if (!messages.has(callId)) messages.set(callId, at);
              }
            });
            ws.once('error', reject);
          });
        }),
      );
    }

    const { ports } = bed;
    const operator = Sipp.phone('op101-bench', 'uas_answer.xml', ports, ports.operators['101'], {
      calls,
      pauseMs: 300,
    });
    const callers = Sipp.caller('callers-bench', 'uac.xml', ports, {
      did: DID,
      caller: CALLER,
      pauseMs: 500,
      extra: ['-m', String(calls), '-r', String(rate), '-rp', '1000', '-l', String(calls)],
    });
    const started = Date.now();
    const deadline = started + (calls / rate) * 1000 + 60_000;
    /** Call id → the first `call.ringing` webhook at the CRM. */
    const ringingWebhooks = (): Map<string, number> => {
      const out = new Map<string, number>();
      for (const w of bed.crm.webhooks)
        if (w.body.type === 'call.ringing' && !out.has(w.body.callId))
          out.set(w.body.callId, w.receivedAt);
      return out;
    };
    while ((messages.size < calls || ringingWebhooks().size < calls) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 200));
    // A machine too busy for the rate fails some SIPp calls: say so, and measure the others.
    const phones = await Promise.all([callers.passed(60_000), operator.passed(60_000)]).then(
      () => 'every call completed',
      (err: unknown) => `not every call completed (${String(err).split('\n')[0]!.slice(0, 200)})`,
    );

    // Each call's leg to 101, from its record.
    const channelOf = new Map<string, string>();
    for (const callId of new Set([...messages.keys(), ...ringingWebhooks().keys()])) {
      const record = await bed.api<{ legs?: Array<{ channelId: string; extension?: string }> }>(
        `/v1/calls/${callId}`,
      );
      const leg = record.body.legs?.find((l) => l.extension === '101');
      if (leg) channelOf.set(callId, leg.channelId);
    }
    const stream = latencies(messages, channelOf, ringings);
    const webhook = latencies(ringingWebhooks(), channelOf, ringings);
    console.log(`  Asterisk ringing → stream message:  ${figures(stream.values)}`);
    console.log(`  Asterisk ringing → webhook:         ${figures(webhook.values)}`);
    console.log(
      `  ringings seen ${ringings.size}, stream messages ${messages.size}, webhooks ${ringingWebhooks().size}; unpaired: stream ${stream.unpaired}, webhook ${webhook.unpaired}; SIPp: ${phones}`,
    );
  } finally {
    observer?.close();
    for (const ws of open) ws.terminate();
    await stopAllSipp();
    await bed.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
