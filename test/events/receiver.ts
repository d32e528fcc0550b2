/**
 * A real webhook receiver for dispatcher tests: node:http on 127.0.0.1, answers as the test
 * scripts, can go down and come back on the same port, and lets tests await requests (no sleeps).
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { LifecycleEvent } from '../../src/events/types.ts';

export interface ReceivedRequest {
  headers: IncomingMessage['headers'];
  raw: string;
  event: LifecycleEvent;
  /** Order of arrival over the receiver's life, from 0. */
  index: number;
}

export type ReceiverHandler = (req: ReceivedRequest, res: ServerResponse) => void;

export class Receiver extends EventEmitter {
  readonly requests: ReceivedRequest[] = [];
  /** Requests answered with a 2xx, in order. */
  readonly delivered: ReceivedRequest[] = [];
  private server: Server | undefined;
  private handler: ReceiverHandler = (_req, res) => {
    res.writeHead(204).end();
  };

  private constructor(readonly port: number) {
    super();
  }

  static async start(handler?: ReceiverHandler): Promise<Receiver> {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const receiver = new Receiver(port);
    if (handler) receiver.handle(handler);
    await receiver.open();
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  handle(handler: ReceiverHandler): void {
    this.handler = handler;
  }

  /** Listen (again) on the same port. */
  async open(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const received: ReceivedRequest = {
          headers: req.headers,
          raw,
          event: JSON.parse(raw) as LifecycleEvent,
          index: this.requests.length,
        };
        this.requests.push(received);
        res.on('finish', () => {
          if (res.statusCode >= 200 && res.statusCode <= 299) {
            this.delivered.push(received);
            this.emit('delivered', received);
          }
        });
        this.emit('request', received);
        this.handler(received, res);
      });
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
  }

  /** Stop listening: new connections are refused from now on (existing ones may finish). */
  stopListening(): void {
    this.server?.close();
  }

  /** Resolve once `count` requests have been answered with a 2xx. */
  waitForDelivered(count: number, timeoutMs = 5000): Promise<ReceivedRequest[]> {
    return this.waitFor(
      'delivered',
      () => this.delivered.length >= count,
      () => this.delivered,
      timeoutMs,
    );
  }

  /** Resolve once `count` requests (any answer) have arrived. */
  waitForRequests(count: number, timeoutMs = 5000): Promise<ReceivedRequest[]> {
    return this.waitFor(
      'request',
      () => this.requests.length >= count,
      () => this.requests,
      timeoutMs,
    );
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private waitFor<T>(
    eventName: string,
    done: () => boolean,
    value: () => T,
    timeoutMs: number,
  ): Promise<T> {
    if (done()) return Promise.resolve(value());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(eventName, check);
        reject(
          new Error(
            `receiver: condition not met within ${timeoutMs} ms (${this.requests.length} requests)`,
          ),
        );
      }, timeoutMs);
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.off(eventName, check);
        resolve(value());
      };
      this.on(eventName, check);
    });
  }
}

/** Value of a counter/gauge sample with exactly these labels (0 when absent). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const data = await metric.get();
  const wanted = Object.entries(labels);
  const sample = data.values.find(
    (v) =>
      Object.keys(v.labels).length === wanted.length &&
      wanted.every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
  );
  return sample?.value ?? 0;
}
