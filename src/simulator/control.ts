/**
 * The simulator's control API (JSON), mounted by the engine under `/sim` in simulator mode:
 *
 * - `POST /calls` `{from, to, callerName?, app?, hangupAfterMs?, abandonAfterMs?, dtmf?}` → 201
 *   `{channelId}`, 409 `{code:'app_not_connected'}` when the Stasis app has no WebSocket (fixtures
 *   fact 14); `dtmf` `{digits, afterMs, durationMs?, gapMs?}`: the caller presses digits after the
 *   answer
 * - `POST /operator-calls` `{extension, to, app?, hangupAfterMs?, abandonAfterMs?, dtmf?}` → 201
 *   `{channelId}`: the operator dials a customer from their phone (`Stasis(app,outbound,<to>)`)
 * - `GET /phones` → `[{extension, behaviour, channelIds}]`
 * - `PUT /phones/:extension` body = PhoneBehaviour → 200 `{extension, behaviour}` (an answering
 *   phone's `dtmf` plan: digits it presses after answering)
 * - `PUT /customers/:number` body = PhoneBehaviour (`*` = default) → 200 `{number, behaviour}`
 * - `GET /channels` → live channels as ARI shows them
 * - `POST /channels/:id/hangup` → 204 (the far end hangs up)
 * - `POST /channels/:id/dtmf` `{digits, afterMs?, durationMs?, gapMs?}` → 204: the phone behind
 *   the channel presses digits (`ChannelDtmfReceived` as each ends)
 * - `POST /ari/drop` → 204: close the app WebSockets (server side); channels stay (fact 13)
 * - `POST /ari/refuse` `{forMs?}` → 204: ARI outage, every HTTP/WebSocket connection cut and
 *   refused (for `forMs` real milliseconds, or until `POST /ari/accept`); the PBX keeps running
 * - `POST /ari/accept` → 204: end the outage
 *
 * Errors are `{code, message}` with a 4xx status.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { SimCallRejectedError } from './errors.ts';
import { dtmfPlanSchema, phoneBehaviourSchema } from './phones.ts';
import type { DtmfPlan, PbxSimulator } from './types.ts';

const ms = z.number().finite().nonnegative();
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

/** A parsed DTMF plan without the keys zod leaves undefined (exactOptionalPropertyTypes). */
function dtmfPlan(input: z.infer<typeof dtmfPlanSchema>): DtmfPlan {
  const plan: DtmfPlan = { digits: input.digits, afterMs: input.afterMs };
  if (input.durationMs !== undefined) plan.durationMs = input.durationMs;
  if (input.gapMs !== undefined) plan.gapMs = input.gapMs;
  return plan;
}

function fail(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ code, message });
}

function validation(res: Response, err: z.ZodError): void {
  fail(
    res,
    400,
    'invalid_request',
    err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
  );
}

/** Build the control router over a running simulator. */
export function createControlRouter(sim: PbxSimulator): Router {
  const router = express.Router();
  router.use(express.json({ limit: '64kb' }));

  router.post('/calls', async (req: Request, res: Response) => {
    const parsed = inboundCallSchema.safeParse(req.body ?? {});
    if (!parsed.success) return validation(res, parsed.error);
    try {
      const call: Parameters<PbxSimulator['injectInboundCall']>[0] = {
        from: parsed.data.from,
        to: parsed.data.to,
      };
      if (parsed.data.callerName !== undefined) call.callerName = parsed.data.callerName;
      if (parsed.data.app !== undefined) call.app = parsed.data.app;
      if (parsed.data.hangupAfterMs !== undefined) call.hangupAfterMs = parsed.data.hangupAfterMs;
      if (parsed.data.abandonAfterMs !== undefined)
        call.abandonAfterMs = parsed.data.abandonAfterMs;
      if (parsed.data.dtmf) call.dtmf = dtmfPlan(parsed.data.dtmf);
      const { channelId } = await sim.injectInboundCall(call);
      res.status(201).json({ channelId });
    } catch (err) {
      if (err instanceof SimCallRejectedError) return fail(res, 409, err.reason, err.message);
      throw err;
    }
  });

  router.post('/operator-calls', async (req: Request, res: Response) => {
    const parsed = operatorCallSchema.safeParse(req.body ?? {});
    if (!parsed.success) return validation(res, parsed.error);
    if (!sim.phones.list().some((p) => p.extension === parsed.data.extension)) {
      return fail(
        res,
        404,
        'unknown_extension',
        `extension ${parsed.data.extension} is not a simulated phone`,
      );
    }
    try {
      const call: Parameters<PbxSimulator['injectOperatorCall']>[0] = {
        extension: parsed.data.extension,
        to: parsed.data.to,
      };
      if (parsed.data.app !== undefined) call.app = parsed.data.app;
      if (parsed.data.hangupAfterMs !== undefined) call.hangupAfterMs = parsed.data.hangupAfterMs;
      if (parsed.data.abandonAfterMs !== undefined)
        call.abandonAfterMs = parsed.data.abandonAfterMs;
      if (parsed.data.dtmf) call.dtmf = dtmfPlan(parsed.data.dtmf);
      const { channelId } = await sim.injectOperatorCall(call);
      res.status(201).json({ channelId });
    } catch (err) {
      if (err instanceof SimCallRejectedError) return fail(res, 409, err.reason, err.message);
      throw err;
    }
  });

  router.get('/phones', (_req: Request, res: Response) => {
    res.json(sim.phones.list());
  });

  router.put('/phones/:extension', (req: Request, res: Response) => {
    const extension = String(req.params.extension);
    if (!sim.phones.list().some((p) => p.extension === extension)) {
      return fail(res, 404, 'unknown_extension', `extension ${extension} is not a simulated phone`);
    }
    const parsed = phoneBehaviourSchema.safeParse(req.body);
    if (!parsed.success) return validation(res, parsed.error);
    sim.phones.set(extension, parsed.data);
    res.json({ extension, behaviour: sim.phones.get(extension) });
  });

  router.put('/customers/:number', (req: Request, res: Response) => {
    const customer = String(req.params.number);
    if (customer !== '*' && !number.safeParse(customer).success) {
      return fail(res, 400, 'invalid_request', 'number: digits only, or * for the default');
    }
    const parsed = phoneBehaviourSchema.safeParse(req.body);
    if (!parsed.success) return validation(res, parsed.error);
    sim.customers.set(customer, parsed.data);
    res.json({ number: customer, behaviour: parsed.data });
  });

  router.get('/channels', (_req: Request, res: Response) => {
    res.json(sim.channels());
  });

  router.post('/channels/:id/hangup', (req: Request, res: Response) => {
    const id = String(req.params.id);
    if (!sim.channels().some((c) => c.id === id))
      return fail(res, 404, 'channel_not_found', `no channel ${id}`);
    sim.hangup(id);
    res.status(204).end();
  });

  router.post('/channels/:id/dtmf', (req: Request, res: Response) => {
    const id = String(req.params.id);
    const parsed = dtmfSchema.safeParse(req.body ?? {});
    if (!parsed.success) return validation(res, parsed.error);
    if (!sim.channels().some((c) => c.id === id))
      return fail(res, 404, 'channel_not_found', `no channel ${id}`);
    sim.pressDigits(id, dtmfPlan({ ...parsed.data, afterMs: parsed.data.afterMs ?? 0 }));
    res.status(204).end();
  });

  router.post('/ari/drop', (_req: Request, res: Response) => {
    sim.dropWebSockets();
    res.status(204).end();
  });

  router.post('/ari/refuse', (req: Request, res: Response) => {
    const parsed = refuseSchema.safeParse(req.body ?? {});
    if (!parsed.success) return validation(res, parsed.error);
    sim.refuseConnections(parsed.data.forMs);
    res.status(204).end();
  });

  router.post('/ari/accept', (_req: Request, res: Response) => {
    sim.acceptConnections();
    res.status(204).end();
  });

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (
      err &&
      typeof err === 'object' &&
      'type' in err &&
      (err as { type?: unknown }).type === 'entity.parse.failed'
    ) {
      return fail(res, 400, 'invalid_json', 'request body is not valid JSON');
    }
    fail(res, 500, 'internal_error', err instanceof Error ? err.message : 'internal error');
  });

  return router;
}
