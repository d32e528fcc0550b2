/**
 * The route a connector builds from the CRM's responsible user: that operator first, then the
 * fallback route, as a call script that keeps the fallback's greeting and no-answer path.
 */
import { expect } from 'chai';
import { ringFirst } from '../../src/connectors/route.ts';
import type { Route } from '../../src/crm/types.ts';

const fallback: Route = {
  greeting: { media: ['sound:hello-world'] },
  action: { type: 'dial', strategy: 'sequential', extensions: ['101', '102'], ringTimeoutSec: 15 },
};

describe('connectors: the responsible operator rung first', () => {
  it('plays the greeting, rings the operator, then the rest of the fallback; nobody answering ends as the fallback would', () => {
    const route = ringFirst(fallback, '102', { id: '7', name: 'Ivan' }, 20);
    expect(route.customer).to.deep.equal({ id: '7', name: 'Ivan' });
    expect(route).to.not.have.property('greeting');
    expect(route.action).to.deep.equal({
      type: 'verbs',
      verbs: [
        { verb: 'play', media: ['sound:hello-world'] },
        {
          verb: 'dial',
          extensions: ['102'],
          strategy: 'ringall',
          ringTimeoutSec: 15,
          noAnswer: 'continue',
        },
        {
          verb: 'dial',
          extensions: ['101'],
          strategy: 'sequential',
          ringTimeoutSec: 15,
          noAnswer: 'end',
        },
      ],
    });
  });

  it('the operator alone when the fallback has nobody else; the fallback unchanged without an extension', () => {
    const only: Route = {
      action: { type: 'dial', strategy: 'ringall', extensions: ['101'], ringTimeoutSec: 10 },
    };
    expect(ringFirst(only, '101', undefined, 20).action).to.deep.equal({
      type: 'verbs',
      verbs: [
        {
          verb: 'dial',
          extensions: ['101'],
          strategy: 'ringall',
          ringTimeoutSec: 10,
          noAnswer: 'end',
        },
      ],
    });
    expect(ringFirst(fallback, undefined, undefined, 20)).to.deep.equal(fallback);
    expect(ringFirst(fallback, 'not-an-ext', {}, 20)).to.deep.equal(fallback);
  });
});
