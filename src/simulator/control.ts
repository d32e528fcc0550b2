/**
 * The simulator's control API (JSON), mounted by the engine under `/sim` in simulator mode:
 *
 * - `POST /calls` `{from, to, callerName?, app?, hangupAfterMs?, abandonAfterMs?, dtmf?}` → 201
 *   `{channelId}`, 409 `{code:'app_not_connected'}` when the Stasis app has no WebSocket (fixtures
 *   fact 14); `dtmf` `{digits, afterMs, durationMs?, gapMs?}`: the caller presses digits after the
 *   answer
 * - `POST /operator-calls` `{extension, to, app?, hangupAfterMs?, abandonAfterMs?, dtmf?}` → 201
 *   `{channelId}`: the operator dials a customer from their phone (`Stasis(app,outbound,<to>)`)
 * - `GET /phones` → `[{extension, behaviour, registered, channelIds}]`
 * - `POST /phones/:extension/register` | `…/unregister` → 200 the phone: it registers (endpoint
 *   `online`, device `NOT_INUSE`) or unregisters (`offline`, `UNAVAILABLE`, dialling it fails)
 * - `PUT /phones/:extension` body = PhoneBehaviour → 200 `{extension, behaviour}` (an answering
 *   phone's `dtmf` plan: digits it presses after answering)
 * - `PUT /customers/:number` body = PhoneBehaviour (`*` = default) → 200 `{number, behaviour}`
 * - `GET /channels` → live channels as ARI shows them
 * - `POST /channels/:id/hangup` → 204 (the far end hangs up)
 * - `POST /channels/:id/dtmf` `{digits, afterMs?, durationMs?, gapMs?}` → 204: the phone behind
 *   the channel presses digits (`ChannelDtmfReceived` as each ends)
 * - `POST /channels/:id/speak` `{voice: 'human'|'machine'}` → 204: the phone behind the channel
 *   starts sending audio; an `AMD()` listening to it gives its verdict from what it hears now
 * - `POST /ari/drop` → 204: close the app WebSockets (server side); channels stay (fact 13)
 * - `POST /ari/refuse` `{forMs?}` → 204: ARI outage, every HTTP/WebSocket connection cut and
 *   refused (for `forMs` real milliseconds, or until `POST /ari/accept`); the PBX keeps running
 * - `POST /ari/accept` → 204: end the outage
 *
 * Errors are the public API's `{code, message}` with a 4xx status (src/http/errors.ts): 400
 * `invalid_request` naming the field, 400 `invalid_json`, 413 over 64 KB, 415 for a charset or
 * `Content-Encoding` the parser does not take. Durations are whole ms, at most 24 h.
 */
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { errorHandler, HttpError } from '../http/errors.ts';
import { validate } from '../http/validation.ts';
import { createSilentLogger, type Logger } from '../logging/logger.ts';
import { SimCallRejectedError } from './errors.ts';
import { dtmfPlanSchema, phoneBehaviourSchema, simDurationMsSchema } from './phones.ts';
import type { DtmfPlan, PbxSimulator } from './types.ts';

const ms = simDurationMsSchema;
const number = z
  .string()
  .trim()
  .min(1)
  .max(32)
  .regex(/^\+?[0-9*#]+$/, 'digits only');

const inboundCallSchema = z
  .object({
    from: number,
    to: number,
    callerName: z.string().max(80).optional(),
    app: z.string().min(1).max(80).optional(),
    hangupAfterMs: ms.optional(),
    abandonAfterMs: ms.optional(),
    dtmf: dtmfPlanSchema.optional(),
  })
  .strict();

const refuseSchema = z.object({ forMs: ms.max(3_600_000).optional() }).strict();

const operatorCallSchema = z
  .object({
    extension: z.string().regex(/^\d{2,10}$/, 'an operator extension'),
    to: number,
    app: z.string().min(1).max(80).optional(),
    hangupAfterMs: ms.optional(),
    abandonAfterMs: ms.optional(),
    dtmf: dtmfPlanSchema.optional(),
  })
  .strict();

const dtmfSchema = dtmfPlanSchema.partial({ afterMs: true });

const speakSchema = z.object({ voice: z.enum(['human', 'machine']) }).strict();

/** A parsed DTMF plan without the keys zod leaves undefined (exactOptionalPropertyTypes). */
function dtmfPlan(input: z.infer<typeof dtmfPlanSchema>): DtmfPlan {
  const plan: DtmfPlan = { digits: input.digits, afterMs: input.afterMs };
  if (input.durationMs !== undefined) plan.durationMs = input.durationMs;
  if (input.gapMs !== undefined) plan.gapMs = input.gapMs;
  return plan;
}

/** The simulator refused the call (no app WebSocket, …): 409 with its reason as the code. */
function rejected(err: unknown): unknown {
  return err instanceof SimCallRejectedError ? new HttpError(409, err.reason, err.message) : err;
}

function unknownExtension(extension: string): HttpError {
  return new HttpError(404, 'unknown_extension', `extension ${extension} is not a simulated phone`);
}

/**
 * Build the control router over a running simulator. Bodies are parsed and errors answered as the
 * public API does (src/http/): JSON up to 64 KB, 400 `invalid_request` naming the field, 413, 415,
 * `{code, message}`; `logger` gets the unexpected (500) errors.
 */
export function createControlRouter(sim: PbxSimulator, logger?: Logger): Router {
  const router = express.Router();
  router.use(express.json({ limit: '64kb' }));

  router.post('/calls', async (req: Request, res: Response) => {
    const body = validate(inboundCallSchema, req.body ?? {}, 'body');
    try {
      const call: Parameters<PbxSimulator['injectInboundCall']>[0] = {
        from: body.from,
        to: body.to,
      };
      if (body.callerName !== undefined) call.callerName = body.callerName;
      if (body.app !== undefined) call.app = body.app;
      if (body.hangupAfterMs !== undefined) call.hangupAfterMs = body.hangupAfterMs;
      if (body.abandonAfterMs !== undefined) call.abandonAfterMs = body.abandonAfterMs;
      if (body.dtmf) call.dtmf = dtmfPlan(body.dtmf);
      const { channelId } = await sim.injectInboundCall(call);
      res.status(201).json({ channelId });
    } catch (err) {
      throw rejected(err);
    }
  });

  router.post('/operator-calls', async (req: Request, res: Response) => {
    const body = validate(operatorCallSchema, req.body ?? {}, 'body');
    if (!sim.phones.list().some((p) => p.extension === body.extension))
      throw unknownExtension(body.extension);
    try {
      const call: Parameters<PbxSimulator['injectOperatorCall']>[0] = {
        extension: body.extension,
        to: body.to,
      };
      if (body.app !== undefined) call.app = body.app;
      if (body.hangupAfterMs !== undefined) call.hangupAfterMs = body.hangupAfterMs;
      if (body.abandonAfterMs !== undefined) call.abandonAfterMs = body.abandonAfterMs;
      if (body.dtmf) call.dtmf = dtmfPlan(body.dtmf);
      const { channelId } = await sim.injectOperatorCall(call);
      res.status(201).json({ channelId });
    } catch (err) {
      throw rejected(err);
    }
  });

  router.get('/phones', (_req: Request, res: Response) => {
    res.json(sim.phones.list());
  });

  router.put('/phones/:extension', (req: Request, res: Response) => {
    const extension = String(req.params.extension);
    if (!sim.phones.list().some((p) => p.extension === extension))
      throw unknownExtension(extension);
    sim.phones.set(extension, validate(phoneBehaviourSchema, req.body, 'body'));
    res.json({ extension, behaviour: sim.phones.get(extension) });
  });

  // A phone registers (REGISTER) or unregisters (Expires: 0): endpoint online/offline, device
  // state NOT_INUSE/UNAVAILABLE.
  for (const [action, registered] of [
    ['register', true],
    ['unregister', false],
  ] as const) {
    router.post(`/phones/:extension/${action}`, (req: Request, res: Response) => {
      const extension = String(req.params.extension);
      if (!sim.phones.list().some((p) => p.extension === extension))
        throw unknownExtension(extension);
      sim.phones.setRegistered(extension, registered);
      res.json(sim.phones.list().find((p) => p.extension === extension));
    });
  }

  router.put('/customers/:number', (req: Request, res: Response) => {
    const customer = String(req.params.number);
    if (customer !== '*' && !number.safeParse(customer).success) {
      throw new HttpError(400, 'invalid_request', 'number: digits only, or * for the default', {
        field: 'number',
      });
    }
    const behaviour = validate(phoneBehaviourSchema, req.body, 'body');
    sim.customers.set(customer, behaviour);
    res.json({ number: customer, behaviour });
  });

  router.get('/channels', (_req: Request, res: Response) => {
    res.json(sim.channels());
  });

  router.post('/channels/:id/hangup', (req: Request, res: Response) => {
    const id = String(req.params.id);
    if (!sim.channels().some((c) => c.id === id))
      throw new HttpError(404, 'channel_not_found', `no channel ${id}`);
    sim.hangup(id);
    res.status(204).end();
  });

  router.post('/channels/:id/dtmf', (req: Request, res: Response) => {
    const id = String(req.params.id);
    const body = validate(dtmfSchema, req.body ?? {}, 'body');
    if (!sim.channels().some((c) => c.id === id))
      throw new HttpError(404, 'channel_not_found', `no channel ${id}`);
    sim.pressDigits(id, dtmfPlan({ ...body, afterMs: body.afterMs ?? 0 }));
    res.status(204).end();
  });

  router.post('/channels/:id/speak', (req: Request, res: Response) => {
    const id = String(req.params.id);
    const { voice } = validate(speakSchema, req.body ?? {}, 'body');
    if (!sim.channels().some((c) => c.id === id))
      throw new HttpError(404, 'channel_not_found', `no channel ${id}`);
    sim.speak(id, voice);
    res.status(204).end();
  });

  router.post('/ari/drop', (_req: Request, res: Response) => {
    sim.dropWebSockets();
    res.status(204).end();
  });

  router.post('/ari/refuse', (req: Request, res: Response) => {
    sim.refuseConnections(validate(refuseSchema, req.body ?? {}, 'body').forMs);
    res.status(204).end();
  });

  router.post('/ari/accept', (_req: Request, res: Response) => {
    sim.acceptConnections();
    res.status(204).end();
  });

  router.use(errorHandler(logger ?? createSilentLogger()));

  return router;
}
