import { expect } from 'chai';
import { loadConfig } from '../../../src/config/load.ts';
import { WorkstationMap } from '../../../src/http/workstations.ts';
import { canonicalIp, IpAllowList } from '../../../src/security/ip.ts';

const allowList = (cidrs: string): IpAllowList =>
  new IpAllowList(loadConfig({ HTTP_ALLOWED_CIDRS: cidrs }).HTTP_ALLOWED_CIDRS);

describe('client addresses', () => {
  it('canonicalises IPv4, IPv4-mapped IPv6, IPv6 and zones', () => {
    expect(canonicalIp('10.0.0.5')).to.equal('10.0.0.5');
    expect(canonicalIp('::ffff:10.0.0.5')).to.equal('10.0.0.5');
    expect(canonicalIp('::FFFF:127.0.0.1')).to.equal('127.0.0.1');
    expect(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001')).to.equal('2001:db8::1');
    expect(canonicalIp('fe80::1%eth0')).to.equal('fe80::1');
    expect(canonicalIp('not-an-ip')).to.equal(undefined);
    expect(canonicalIp(undefined)).to.equal(undefined);
  });

  it('allows addresses inside the CIDRs, IPv4 and IPv6, and nothing else', () => {
    const list = allowList('10.0.0.0/8, 192.168.1.10, 2001:db8::/32');
    expect(list.enabled).to.equal(true);
    expect(list.allows('10.1.2.3')).to.equal(true);
    expect(list.allows('::ffff:10.1.2.3')).to.equal(true);
    expect(list.allows('192.168.1.10')).to.equal(true);
    expect(list.allows('192.168.1.11')).to.equal(false);
    expect(list.allows('2001:db8:1::7')).to.equal(true);
    expect(list.allows('2001:db9::1')).to.equal(false);
    expect(list.allows(undefined)).to.equal(false);
  });

  it('allows everyone when no CIDR is configured', () => {
    const list = new IpAllowList([]);
    expect(list.enabled).to.equal(false);
    expect(list.allows('203.0.113.9')).to.equal(true);
  });

  it('refuses malformed CIDRs in the configuration', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0/8', 'host.local', '::1/129', '10.0.0.1/8/1']) {
      expect(() => loadConfig({ HTTP_ALLOWED_CIDRS: bad }), bad).to.throw(/HTTP_ALLOWED_CIDRS/);
    }
  });

  it('maps workstation addresses to extensions (OPERATOR_IP_MAP)', () => {
    const map = new WorkstationMap(
      loadConfig({ OPERATOR_IP_MAP: '10.0.0.5=101, 2001:db8::5=102, 10.0.0.6=101' })
        .OPERATOR_IP_MAP,
    );
    expect(map.extensionOf('10.0.0.5')).to.equal('101');
    expect(map.extensionOf('::ffff:10.0.0.5')).to.equal('101');
    expect(map.extensionOf('2001:db8:0::5')).to.equal('102');
    expect(map.extensionOf('10.0.0.7')).to.equal(undefined);
    expect(map.extensions()).to.deep.equal(['101', '102']);
    expect(() => loadConfig({ OPERATOR_IP_MAP: '10.0.0.5=1' })).to.throw(/OPERATOR_IP_MAP/);
    expect(() => loadConfig({ OPERATOR_IP_MAP: '10.0.0.5=101,10.0.0.5=102' })).to.throw(
      /mapped twice/,
    );
  });
});
