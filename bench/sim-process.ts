/**
 * The PBX simulator in its own process for benchmarks (a real Asterisk is never in the engine's
 * process). Driven over IPC by bench/run.ts:
 *   parent → child: {type:'inject', from, to, hangupAfterMs} | {type:'close'}
 *   child → parent: {type:'ready', url, username, password} | {type:'ringing', channelId, atMs}
 * `atMs` is an absolute time (performance.timeOrigin + performance.now()), comparable across
 * processes on the same machine.
 */
import { performance } from 'node:perf_hooks';
import { startSimulator, type PhoneBehaviour } from '../src/simulator/index.ts';

type Command =
  { type: 'inject'; from: string; to: string; hangupAfterMs: number } | { type: 'close' };

const extensions = (process.env.BENCH_EXTENSIONS ?? '101').split(',');
const sim = await startSimulator({
  timeScale: Number(process.env.BENCH_TIME_SCALE ?? 0.01),
  extensions,
});
for (const ext of extensions) sim.phones.set(ext, { mode: 'answer', answerAfterMs: 1000 });
// Customers behind the trunk (bench/api.ts: answer and hang up so click-to-calls end).
if (process.env.BENCH_CUSTOMER_BEHAVIOUR)
  sim.customers.set('*', JSON.parse(process.env.BENCH_CUSTOMER_BEHAVIOUR) as PhoneBehaviour);
sim.onEvent((event) => {
  if (event.type === 'Dial' && (event as { dialstatus?: string }).dialstatus === 'RINGING') {
    const peer = (event as { peer?: { id?: string } }).peer;
    if (peer?.id)
      process.send!({
        type: 'ringing',
        channelId: peer.id,
        atMs: performance.timeOrigin + performance.now(),
      });
  }
});
process.on('message', (message: Command) => {
  if (message.type === 'inject') {
    sim
      .injectInboundCall({
        from: message.from,
        to: message.to,
        hangupAfterMs: message.hangupAfterMs,
      })
      .catch(() => undefined);
  } else if (message.type === 'close') {
    void sim.close().then(() => process.exit(0));
  }
});
process.send!({ type: 'ready', url: sim.url, username: sim.username, password: sim.password });
