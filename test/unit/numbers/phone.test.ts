import { expect } from 'chai';
import {
  customerEndpoint,
  NoTrunkError,
  renderTrunkTemplate,
  TRUNK_PLACEHOLDERS,
  UnroutableNumberError,
} from '../../../src/calls/dialstrings.ts';
import { loadConfig } from '../../../src/config/load.ts';
import {
  InvalidNumberError,
  isSupportedRegion,
  parseCustomerNumber,
} from '../../../src/numbers/phone.ts';

describe('phone numbers', () => {
  describe('parseCustomerNumber', () => {
    it('normalises any human format to E.164 in the default region', () => {
      for (const input of [
        '+7 495 765-43-21',
        '8 (495) 765-43-21',
        '84957654321',
        '74957654321',
        '4957654321',
        ' +7(495)7654321 ',
      ]) {
        expect(parseCustomerNumber(input, 'RU').e164, input).to.equal('+74957654321');
      }
    });

    it('gives every form a trunk may want', () => {
      expect(parseCustomerNumber('8 (495) 765-43-21', 'RU')).to.deep.equal({
        e164: '+74957654321',
        digits: '74957654321',
        national: '4957654321',
        nationalPrefixed: '84957654321',
        country: 'RU',
      });
      expect(parseCustomerNumber('+44 20 7946 0958', 'RU')).to.include({
        e164: '+442079460958',
        national: '2079460958',
        nationalPrefixed: '02079460958',
        country: 'GB',
      });
      expect(parseCustomerNumber('(213) 373-4253', 'US')).to.include({
        e164: '+12133734253',
        nationalPrefixed: '2133734253',
      });
    });

    it('tells Kazakhstan from Russia inside +7', () => {
      expect(parseCustomerNumber('+7 701 123 4567', 'RU').country).to.equal('KZ');
    });

    it('refuses text, too short, too long and invalid numbers with a reason', () => {
      const reasonOf = (input: string): string => {
        try {
          parseCustomerNumber(input, 'RU');
        } catch (err) {
          expect(err).to.be.instanceOf(InvalidNumberError);
          return (err as InvalidNumberError).reason;
        }
        return 'parsed';
      };
      expect(reasonOf('abc')).to.equal('not_a_number');
      expect(reasonOf('')).to.equal('not_a_number');
      expect(reasonOf('123')).to.equal('too_short');
      expect(reasonOf('+7 495 765')).to.equal('too_short');
      expect(reasonOf('8495765432112345')).to.equal('too_long');
      expect(reasonOf('+7 095 765 43 21')).to.equal('invalid');
    });

    it('reads numbers without + only when a region is given', () => {
      expect(() => parseCustomerNumber('84957654321')).to.throw(InvalidNumberError);
      expect(parseCustomerNumber('+74957654321').e164).to.equal('+74957654321');
    });

    it('knows the supported regions', () => {
      expect(isSupportedRegion('RU')).to.equal(true);
      expect(isSupportedRegion('XX')).to.equal(false);
    });
  });

  describe('trunk templates', () => {
    const trunk = (template: string): { prefix: string; template: string; region: 'RU' } => ({
      prefix: '*',
      template,
      region: 'RU',
    });

    it('fills {number}, {e164}, {national} and {national_prefixed}', () => {
      const n = '+74957654321';
      expect(renderTrunkTemplate(trunk('PJSIP/{number}@t'), n)).to.equal('PJSIP/74957654321@t');
      expect(renderTrunkTemplate(trunk('PJSIP/{e164}@t'), n)).to.equal('PJSIP/+74957654321@t');
      expect(renderTrunkTemplate(trunk('PJSIP/{national}@t'), n)).to.equal('PJSIP/4957654321@t');
      expect(renderTrunkTemplate(trunk('PJSIP/{national_prefixed}@t'), n)).to.equal(
        'PJSIP/84957654321@t',
      );
      expect(renderTrunkTemplate(trunk('SIP/t/{national}/{number}'), n)).to.equal(
        'SIP/t/4957654321/74957654321',
      );
    });

    it('keeps {number} as dialled for numbers an operator dialled without +', () => {
      expect(renderTrunkTemplate(trunk('PJSIP/{number}@t'), '84957654321')).to.equal(
        'PJSIP/84957654321@t',
      );
      // …and reads them in the trunk's region for the other forms.
      expect(renderTrunkTemplate(trunk('PJSIP/{e164}@t'), '84957654321')).to.equal(
        'PJSIP/+74957654321@t',
      );
    });

    it('refuses a form it cannot derive from an invalid number', () => {
      expect(() => renderTrunkTemplate(trunk('PJSIP/{national}@t'), '12')).to.throw(
        UnroutableNumberError,
      );
      expect(() =>
        renderTrunkTemplate({ prefix: '*', template: 'PJSIP/{e164}@t' }, '84957654321'),
      ).to.throw(UnroutableNumberError);
      // {number} alone never needs parsing (backward compatible).
      expect(renderTrunkTemplate(trunk('PJSIP/{number}@t'), '12')).to.equal('PJSIP/12@t');
    });

    it('TRUNKS accepts exactly the placeholders the dial strings fill', () => {
      for (const name of TRUNK_PLACEHOLDERS)
        expect(loadConfig({ TRUNKS: `*=PJSIP/{${name}}@t` }).TRUNKS[0]!.template).to.equal(
          `PJSIP/{${name}}@t`,
        );
      expect(() => loadConfig({ TRUNKS: '*=PJSIP/{digits}@t' })).to.throw(/TRUNKS: bad entry/);
    });

    it('chooses the trunk by prefix exactly as before, whatever the placeholders', () => {
      const trunks = [
        { prefix: '*', template: 'PJSIP/{e164}@default', region: 'RU' as const },
        { prefix: '7', template: 'PJSIP/{national_prefixed}@ru', region: 'RU' as const },
        { prefix: '+44', template: 'PJSIP/00{number}@uk', region: 'RU' as const },
      ];
      expect(customerEndpoint('+74957654321', trunks)).to.equal('PJSIP/84957654321@ru');
      expect(customerEndpoint('+442079460958', trunks)).to.equal('PJSIP/00442079460958@uk');
      expect(customerEndpoint('+12133734253', trunks)).to.equal('PJSIP/+12133734253@default');
      expect(() =>
        customerEndpoint('+12133734253', [{ prefix: '7', template: 'PJSIP/{number}@x' }]),
      ).to.throw(NoTrunkError);
    });
  });
});
