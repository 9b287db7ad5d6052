import Router from '@koa/router';
import type { AppContext, AppState } from '../http/context.js';
import { currentDevice, requireDevice, type AuthenticateDevice } from '../http/device-auth.js';
import { validate, validInput } from '../http/validate.js';
import { authorizeSchema, logoutSchema, preauthorizeSchema, type AuthorizeInput, type LogoutInput, type PreauthorizeInput } from './schema.js';
import type { Caller, EntitlementService } from './service.js';

const caller = (ctx: AppContext): Caller => ({ device: currentDevice(ctx), client: ctx.state.client });

/** POST /v1/preauthorize, /v1/authorize, /v1/logout (SPEC §2): auth → validate(schema) → handler. */
export function entitlementRouter(service: EntitlementService, authenticate: AuthenticateDevice): Router<AppState> {
  const router = new Router<AppState>();
  const device = requireDevice(authenticate);

  router.post('/v1/preauthorize', device, validate(preauthorizeSchema), async (ctx: AppContext) => {
    const { resources } = validInput<PreauthorizeInput>(ctx);
    const decisions = await service.preauthorize(caller(ctx), resources);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { decisions };
  });

  router.post('/v1/authorize', device, validate(authorizeSchema), async (ctx: AppContext) => {
    const { resource } = validInput<AuthorizeInput>(ctx);
    const result = await service.authorize(caller(ctx), resource);
    // The media token is one-time use (adobe-pass.md §4.7): nothing may cache this answer.
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      authorized: true,
      ...(result.mediaToken !== undefined ? { mediaToken: result.mediaToken } : {}),
      notAfter: new Date(result.notAfter).toISOString(),
    };
  });

  router.post('/v1/logout', device, validate(logoutSchema), async (ctx: AppContext) => {
    const { mvpd } = validInput<LogoutInput>(ctx);
    const answer = await service.logout(caller(ctx), mvpd);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = answer;
  });

  return router;
}
