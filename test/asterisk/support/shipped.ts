/**
 * The shipped `asterisk-conf/` made runnable on the kit: the files as shipped, with only the
 * ports, the passwords and the provider/gateway addresses rewritten (each rewrite must find its
 * line exactly once, so a changed line fails). Operators register with their passwords there.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KIT_PORT_BLOCK,
  KitAsterisk,
  layOutPorts,
  OWN_SIPP_DIR,
  PROJECT_DIR,
  rewrite,
  type KitPorts,
} from './kit.ts';
import { freePortBlock } from './ports.ts';
import { Sipp } from './sipp.ts';

/** The shipped configuration folder. */
export const SHIPPED = join(PROJECT_DIR, 'asterisk-conf');

/** The passwords written into the copy. */
export interface Secrets {
  ari: string;
  operators: Record<'101' | '102' | '103', string>;
}

/**
 * Copy the shipped asterisk-conf/ with ports, passwords and the provider/gateway addresses
 * replaced: the transport on 127.0.0.1:<sip>, ARI on <http>, the RTP range, the trunk's contact
 * and identify on the customers' SIPp port, pstn-in identified by the callers' SIPp address.
 */
export async function writeShippedConf(ports: KitPorts, secrets: Secrets): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ari-crm-asterisk-conf-shipped-'));
  for (const file of await readdir(SHIPPED)) {
    if (!file.endsWith('.conf')) continue;
    let text = await readFile(join(SHIPPED, file), 'utf8');
    const sub = (from: string, to: string): void => {
      text = rewrite(text, from, to, `asterisk-conf/${file}`);
    };
    if (file === 'http.conf') sub('bindport = 8088', `bindport = ${ports.http}`);
    if (file === 'ari.conf')
      sub('password = CHANGE_ME_openssl_rand_hex_32', `password = ${secrets.ari}`);
    if (file === 'rtp.conf') {
      sub('rtpstart = 10000', `rtpstart = ${ports.rtpStart}`);
      sub('rtpend = 20000', `rtpend = ${ports.rtpEnd}`);
    }
    if (file === 'pjsip.conf') {
      sub('bind = 0.0.0.0:5060', `bind = 127.0.0.1:${ports.sip}`);
      for (const [ext, password] of Object.entries(secrets.operators))
        sub(`password = CHANGE_ME_${ext}`, `password = ${password}`);
      sub('contact = sip:sip.provider.example:5060', `contact = sip:127.0.0.1:${ports.trunk}`);
      sub('match = 192.0.2.10', `match = 127.0.0.1:${ports.trunk}`);
      sub('match = 192.0.2.20', `match = 127.0.0.1:${ports.pstn}`);
    }
    await writeFile(join(dir, file), text);
  }
  return dir;
}

/**
 * Start the kit's Asterisk on the shipped configuration: fresh random passwords (ARI user
 * `ari-crm`, operators 101-103), free ports. Stop it with `asterisk.stop()`.
 */
export async function startShippedAsterisk(): Promise<{
  asterisk: KitAsterisk;
  ports: KitPorts;
  secrets: Secrets;
}> {
  const secrets: Secrets = {
    ari: randomBytes(32).toString('hex'),
    operators: {
      '101': randomBytes(16).toString('hex'),
      '102': randomBytes(16).toString('hex'),
      '103': randomBytes(16).toString('hex'),
    },
  };
  const ports = layOutPorts(await freePortBlock(KIT_PORT_BLOCK));
  const conf = await writeShippedConf(ports, secrets);
  const asterisk = await KitAsterisk.start(conf, ports, { user: 'ari-crm', password: secrets.ari });
  return { asterisk, ports, secrets };
}

/**
 * Operator 101's SIPp phone on the shipped configuration: `register.xml` registers it with its
 * password (then it answers calls, out-of-call requests by `operator_ooc.xml`), or
 * `unregister.xml` logs it out (REGISTER with Expires: 0).
 */
export function operator101(
  name: string,
  scenario: 'register.xml' | 'unregister.xml',
  asterisk: KitAsterisk,
  secrets: Secrets,
): Sipp {
  const { ports } = asterisk;
  return Sipp.start(name, scenario, ports, [
    `127.0.0.1:${ports.sip}`,
    '-p',
    String(ports.operators['101']),
    '-s',
    '101',
    '-au',
    '101',
    '-ap',
    secrets.operators['101'],
    ...(scenario === 'register.xml' ? ['-oocsf', join(OWN_SIPP_DIR, 'operator_ooc.xml')] : []),
    '-m',
    '1',
  ]);
}
