/**
 * A TCP proxy in front of the engine, so a test can cut the browser's connections (its
 * WebSocket included) and refuse new ones for a while, like a network outage, then restore it.
 */
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

/** A running proxy. */
export interface CuttableProxy {
  /** `http://127.0.0.1:<port>`: the engine's HTTP API and stream through the proxy. */
  readonly url: string;
  /** Close every connection now and refuse new ones until {@link restore}. */
  cut(): void;
  /** Let connections through again. */
  restore(): void;
  close(): Promise<void>;
}

/** Start a proxy on 127.0.0.1 (any free port) to `target` (`http://host:port`). */
export async function startProxy(target: string): Promise<CuttableProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let refusing = false;
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: hostname, port: Number(port) });
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut() {
      refusing = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      refusing = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
