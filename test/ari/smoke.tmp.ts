import { Registry } from 'prom-client';
import { createLogger } from '../../src/logging/logger.ts';
import { createAriGateway } from '../../src/ari/gateway.ts';
import { FakeAri } from './support/fake-ari.ts';

const fake = await FakeAri.start();
fake.handler = (req) => {
  if (req.path === '/ari/channels/x') return { status: 404, body: { message: 'Channel not found' } };
  if (req.path === '/ari/channels') return { status: 200, body: [{ id: 'a', name: 'n' }] };
  if (req.path === '/ari/channels/create') return { status: 500, body: { error: 'Allocation failed' } };
  if (req.path === '/ari/recordings/stored/r/file') return { status: 200, raw: Buffer.from([0,1,2,255,254]), contentType: 'audio/wav' };
  return { status: 204 };
};
const logger = createLogger({ level: 'debug' });
const gw = createAriGateway({ url: fake.url, username: fake.username, password: fake.password, app: 'crm-app', logger, registry: new Registry() });
gw.onConnectionChange((s) => console.error('STATE', s));
await gw.start();
console.error('connected', gw.isConnected(), fake.wsConnections);
console.error(await gw.channels.list());
try { await gw.channels.get('x'); } catch (e) { console.error('ERR', (e as Error).name, (e as any).status, (e as Error).message); }
try { await gw.channels.create({ endpoint: 'Bogus/1', channelId: 'c1', appArgs: ['a','b'], variables: { 'CALLERID(name)': 'X' } }); } catch (e) { console.error('ERR', (e as Error).name, (e as any).status, (e as Error).message); }
console.error(await gw.recordings.getStoredFile('r'));
console.error(fake.restRequests.map(r => [r.method, r.path, r.query, r.body]));
await gw.stop();
await fake.close();
