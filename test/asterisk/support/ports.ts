/**
 * Free ports for the acceptance suite: one contiguous block of ports that are free for both TCP
 * and UDP on 127.0.0.1 right now, so that an Asterisk, its phones and its RTP range can run beside
 * any other Asterisk on the machine (never the default 5060/8088/10000-20000).
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** Whether `port` can be bound on 127.0.0.1 for TCP. */
function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Whether `port` can be bound on 127.0.0.1 for UDP. */
function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/**
 * The first port of `size` consecutive ports, each free for TCP and UDP on 127.0.0.1, picked at
 * random between 20000 and 60000 (the OS's ephemeral range starts at 32768 on Linux, but ports
 * found free are free whichever range they are in). Tries up to 50 random blocks.
 *
 * @throws Error when no free block was found
 */
export async function freePortBlock(size: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 2 * Math.floor(Math.random() * ((40_000 - size) / 2));
    let free = true;
    for (let port = base; port < base + size && free; port++)
      free = (await udpFree(port)) && (await tcpFree(port));
    if (free) return base;
  }
  throw new Error(`no block of ${size} free ports found on 127.0.0.1`);
}
