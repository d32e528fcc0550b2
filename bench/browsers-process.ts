/**
 * The operators' browsers for the live stream benchmark (`npm run bench -- --stream`), in a
 * process of their own: a browser runs on the operator's computer, neither in the engine's
 * process nor in the PBX's, so the time its socket waits to be read is not the simulator's
 * (bench/sim-process.ts) nor the engine's. Driven over IPC by bench/run.ts.
 *
 * parent → child:
 * - `{type:'open', id, url, tokens}`: open one live stream socket (`GET /v1/stream?token=`) per
 *   operator token, in batches of 50 as a call centre's browsers would arrive; answered with
 *   `{type:'opened', id, opened, failed}` once every socket got its `stream.synced`.
 * - `{type:'ringing', id}`: answered with `{type:'ringing', id, at}`: for each caller number
 *   (`data.from`), when its first `call.ringing` message arrived on a socket (absolute ms on the
 *   shared clock, `performance.timeOrigin + performance.now()`), since the last such request.
 * - `{type:'close', id}`: close every socket; answered with `{type:'closed', id, messages}`, the
 *   messages received since the sockets were synced.
 *
 * child → parent: `{type:'ready'}` first.
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

/** A command from bench/run.ts. */
export type BrowsersCommand =
  | { type: 'open'; id: number; url: string; tokens: string[] }
  | { type: 'ringing'; id: number }
  | { type: 'close'; id: number };

const absNow = (): number => performance.timeOrigin + performance.now();

const sockets: WebSocket[] = [];
let messages = 0;
/** Caller number → first `call.ringing` arrival, absolute ms. */
let ringingAt = new Map<string, number>();

function onMessage(data: Buffer): void {
  messages++;
  // Only ringing messages are parsed (stamped first): the others are counted.
  if (!data.includes('"type":"call.ringing"')) return;
  const now = absNow();
  const message = JSON.parse(data.toString('utf8')) as { data?: { from?: string } };
  const from = message.data?.from;
  if (from !== undefined && !ringingAt.has(from)) ringingAt.set(from, now);
}

async function open(url: string, tokens: string[]): Promise<{ opened: number; failed: number }> {
  let failed = 0;
  for (let i = 0; i < tokens.length; i += 50) {
    await Promise.all(
      tokens.slice(i, i + 50).map(
        (token) =>
          new Promise<void>((resolve) => {
            const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
            ws.on('message', (data: Buffer) => {
              if (data.includes('"type":"stream.synced"')) {
                sockets.push(ws);
                resolve();
              } else onMessage(data);
            });
            ws.once('error', () => {
              failed++;
              resolve();
            });
            ws.once('close', () => resolve());
          }),
      ),
    );
  }
  messages = 0;
  ringingAt = new Map();
  return { opened: sockets.length, failed };
}

async function close(): Promise<number> {
  const all = sockets.splice(0);
  await Promise.all(
    all.map((ws) => {
      const closed = once(ws, 'close');
      ws.close();
      return closed;
    }),
  );
  return messages;
}

process.on('message', (command: BrowsersCommand) => {
  switch (command.type) {
    case 'open':
      void open(command.url, command.tokens).then((result) =>
        process.send!({ type: 'opened', id: command.id, ...result }),
      );
      break;
    case 'ringing': {
      const at = [...ringingAt];
      ringingAt = new Map();
      process.send!({ type: 'ringing', id: command.id, at });
      break;
    }
    case 'close':
      void close().then((count) => {
        process.send!({ type: 'closed', id: command.id, messages: count });
        process.exit(0);
      });
      break;
  }
});
process.send!({ type: 'ready' });
