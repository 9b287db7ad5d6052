import type Router from '@koa/router';
import { routeTable } from '../http/route-table.js';
import { PassThrough } from 'node:stream';
import QRCode from 'qrcode';
import type { DeviceService } from '../devices/service.js';
import type { AppContext, AppState } from '../http/context.js';
import { currentDevice, requireDevice } from '../http/device-auth.js';
import { Problem } from '../http/problem.js';
import { fieldProblems, validate, validInput } from '../http/validate.js';
import { TEMPPASS_IDENTITY_HEADER } from '../pass/index.js';
import { visitorIdentifier } from '../http/visitor-identifier.js';
import { ssoCredentials } from '../http/sso-credentials.js';
import { codeSchema, startAuthenticationSchema, waitQuerySchema, type StartAuthenticationInput } from './schema.js';
import type { CurrentProfile, SigninService, SigninStatus } from './service.js';
import { profileView, type AttributesView } from './views.js';
import { ssoRoutes } from './sso-routes.js';

/** The `retry:` hint of an event stream ended by a shutdown (ms): soon, the other replicas are up. */
export const RECONNECT_AFTER_SHUTDOWN_MS = 1_000;

function codeParam(ctx: AppContext): string {
  const parsed = codeSchema.safeParse((ctx as unknown as { params: Record<string, string> }).params.code);
  // A malformed code cannot be any session of this device.
  if (!parsed.success) throw new Problem('session_not_found', 'This device has no sign-in session with this code.');
  return parsed.data;
}

function waitParam(ctx: AppContext): number {
  const parsed = waitQuerySchema.safeParse(ctx.query);
  if (!parsed.success) {
    const errors = fieldProblems(parsed.error);
    throw new Problem('invalid_query', `The query is invalid: ${errors.map((e) => e.path).join(', ')}.`, { errors });
  }
  return parsed.data.wait ?? 0;
}

/** Aborts when the app hangs up before the answer is complete. */
function hangUpSignal(ctx: AppContext): AbortSignal {
  const controller = new AbortController();
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) controller.abort();
  });
  return controller.signal;
}

export function signinRouter(
  service: SigninService,
  devices: DeviceService,
  options: { publicUrl: () => string; pollIntervalMs: number; attributes: AttributesView },
): Router<AppState> {
  const router = routeTable();
  const view = (profile: CurrentProfile) => profileView(profile, options.attributes);
  const statusView = (status: SigninStatus) => (status.status === 'authenticated' ? { status: status.status, profile: view(status.profile) } : { status: status.status });
  const device = requireDevice(devices.authenticate);
  const activationUrl = () => `${options.publicUrl()}/activate`;
  const activationUrlComplete = (code: string) => `${activationUrl()}?code=${encodeURIComponent(code)}`;
  /** A code to show: where the viewer enters it, until when, and how often the app may poll. */
  const started = (outcome: { code: string; notAfter: number }) => ({
    code: outcome.code,
    activationUrl: activationUrl(),
    activationUrlComplete: activationUrlComplete(outcome.code),
    expiresAt: new Date(outcome.notAfter).toISOString(),
    pollIntervalMs: options.pollIntervalMs,
  });

  router.get('/v1/mvpds', device, visitorIdentifier, async (ctx: AppContext) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { mvpds: await service.mvpds(currentDevice(ctx), ctx.state.client) };
  });

  router.post('/v1/authentication', device, visitorIdentifier, validate(startAuthenticationSchema), async (ctx: AppContext) => {
    const input = validInput<StartAuthenticationInput>(ctx);
    const outcome = await service.start(currentDevice(ctx), ctx.state.client, input.mvpd, ctx.get(TEMPPASS_IDENTITY_HEADER) || undefined);
    ctx.set('Cache-Control', 'no-store');
    if (outcome.kind === 'authenticated') {
      ctx.status = 200;
      ctx.body = { status: 'authenticated', profile: view(outcome.profile) };
      return;
    }
    ctx.status = 201;
    ctx.body = started(outcome);
  });

  router.get('/v1/authentication/:code', device, async (ctx: AppContext) => {
    const code = codeParam(ctx);
    const wait = waitParam(ctx);
    const status = await service.status(currentDevice(ctx), code, wait, hangUpSignal(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = statusView(status);
  });

  router.get('/v1/authentication/:code/events', device, async (ctx: AppContext) => {
    const code = codeParam(ctx);
    const who = currentDevice(ctx);
    // The owner check (404) happens before the stream starts.
    await service.session(who, code);
    const stream = new PassThrough();
    ctx.req.socket.setTimeout(0);
    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Accel-Buffering', 'no');
    ctx.body = stream;
    const signal = hangUpSignal(ctx);
    const event = (status: SigninStatus) => `event: status\ndata: ${JSON.stringify(statusView(status))}\n\n`;
    const listener = {
      send: (status: SigninStatus) => stream.write(event(status)),
      keepAlive: () => stream.write(': keep-alive\n\n'),
      // Shutdown: the current status, and when to reconnect (EventSource does so, to another replica).
      last: (status: SigninStatus) => stream.write(`retry: ${RECONNECT_AFTER_SHUTDOWN_MS}\n${event(status)}`),
    };
    void service
      .follow(who, code, listener, signal)
      .catch((err: unknown) => ctx.state.log.warn({ err }, 'signin: event stream failed'))
      .finally(() => stream.end());
  });

  router.get('/v1/authentication/:code/qr.svg', device, async (ctx: AppContext) => {
    const code = codeParam(ctx);
    await service.session(currentDevice(ctx), code);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'image/svg+xml';
    ctx.body = await QRCode.toString(activationUrlComplete(code), { type: 'svg', margin: 2 });
  });

  ssoRoutes(router, service.sso, [device, visitorIdentifier], started, view);

  router.get('/v1/profile', device, visitorIdentifier, ssoCredentials, async (ctx: AppContext) => {
    const profiles = await service.profiles(currentDevice(ctx), ctx.state.client);
    ctx.set('Cache-Control', 'no-store');
    // Each profile shaped once: its attributes are decrypted once per request.
    const views = profiles.map(view);
    ctx.body = { profile: views[0] ?? null, profiles: views };
  });

  return router;
}
