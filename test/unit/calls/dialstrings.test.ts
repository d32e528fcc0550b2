import { expect } from 'chai';
import {
  customerEndpoint,
  extensionOfChannel,
  NoTrunkError,
  operatorEndpoint,
} from '../../../src/calls/dialstrings.ts';

describe('dial strings', () => {
  const trunks = [
    { prefix: '*', template: 'PJSIP/{number}@client-trunk' },
    { prefix: '7', template: 'PJSIP/{number}@ru-trunk' },
    { prefix: '7495', template: 'PJSIP/{number}@moscow-trunk' },
  ];
  it('chooses the trunk with the longest matching prefix', () => {
    expect(customerEndpoint('74951234567', trunks)).to.equal('PJSIP/74951234567@moscow-trunk');
    expect(customerEndpoint('79161234567', trunks)).to.equal('PJSIP/79161234567@ru-trunk');
    expect(customerEndpoint('4930123456', trunks)).to.equal('PJSIP/4930123456@client-trunk');
  });
  it('matches digit prefixes on E.164 numbers written with +; {number} has no +', () => {
    expect(customerEndpoint('+79161234567', trunks)).to.equal('PJSIP/79161234567@ru-trunk');
  });
  it('refuses numbers no trunk serves', () => {
    expect(() =>
      customerEndpoint('4930123456', [{ prefix: '7', template: 'PJSIP/{number}@x' }]),
    ).to.throw(NoTrunkError);
  });
  it('builds operator endpoints from the template', () => {
    expect(operatorEndpoint('101', 'PJSIP/{extension}')).to.equal('PJSIP/101');
  });
  it('finds the extension of an operator channel from its caller ID or its name', () => {
    expect(extensionOfChannel({ name: 'PJSIP/101-00000037', caller: { number: '101' } })).to.equal(
      '101',
    );
    expect(
      extensionOfChannel({ name: 'PJSIP/102-0000003a', caller: { number: 'anonymous' } }),
    ).to.equal('102');
  });
});
