/**
 * The ARI event WebSocket `/ari/events?app=<names>&api_key=user:pass[&subscribeAll=true]`. While a
 * WebSocket is open its apps are active; when it closes they stay registered only while they still
 * own channels or bridges (fixtures facts 13, 14). Events sent meanwhile are dropped.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'winston';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Pbx } from './pbx.ts';
import { authenticate, type AriCredentials } from './rest/router.ts';

function reject(socket: Duplex, status: number, reason: string, body: string, extra = ''): void {
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}

/** Attach the event WebSocket endpoint to `server`. Returns the WebSocket server (closed on shutdown). */
export function attachEventWebSocket(
  server: Server,
  pbx: Pbx,
  creds: AriCredentials,
  log: Logger | undefined,
): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    if (url.pathname !== '/ari/events') {
      reject(socket, 404, 'Not Found', JSON.stringify({ message: 'Resource not found' }));
      return;
    }
    if (!authenticate(req.headers, url.searchParams, creds)) {
      reject(
        socket,
        401,
        'Unauthorized',
        JSON.stringify({ message: 'Authentication required' }),
        'WWW-Authenticate: Basic realm="Asterisk REST Interface"\r\n',
      );
      return;
    }
    const apps = (url.searchParams.get('app') ?? '')
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean);
    if (apps.length === 0) {
      reject(socket, 400, 'Bad Request', JSON.stringify({ message: "Missing param 'app'" }));
      return;
    }
    const subscribeAll = ['yes', 'true', 'y', 't', '1', 'on'].includes(
      (url.searchParams.get('subscribeAll') ?? '').toLowerCase(),
    );
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      for (const app of apps) pbx.apps.attach(app, ws, subscribeAll, pbx.clock.timestamp(), socket);
      log?.debug('sim app WebSocket connected', { apps, subscribeAll });
      ws.on('close', () => {
        for (const app of pbx.apps.detach(ws)) pbx.forgetAppIfIdle(app);
        log?.debug('sim app WebSocket closed', { apps });
      });
      ws.on('error', () => ws.terminate());
    });
  });
  return wss;
}
