import type Router from '@koa/router';
import type { AppContext, AppMiddleware, AppState } from '../http/context.js';
import { currentDevice } from '../http/device-auth.js';
import { validate, validInput } from '../http/validate.js';
import type { CurrentProfile } from './records.js';
import type { profileView } from './views.js';
import { appleSsoProfileSchema, appleSsoStartSchema, platformSsoSchema, type AppleSsoProfileInput, type AppleSsoStartInput, type PlatformSsoInput } from './schema.js';
import type { SsoSignin } from './sso.js';

/**
 * The /v1 single sign-on routes (README "Single sign-on"). Every answer that is not a profile is the
 * app's next step: hand a SAML request to Apple's framework, or show a code (201, the body of
 * POST /v1/authentication's 201, polled the same way).
 */
export function ssoRoutes(
  router: Router<AppState>,
  sso: SsoSignin,
  guards: AppMiddleware[],
  started: (outcome: { code: string; notAfter: number }) => Record<string, unknown>,
  /** The profile as apps see it (only exposed user metadata, decrypted). */
  view: (profile: CurrentProfile) => ReturnType<typeof profileView>,
): void {
  router.post('/v1/authentication/sso/apple', ...guards, validate(appleSsoStartSchema), async (ctx: AppContext) => {
    const input = validInput<AppleSsoStartInput>(ctx);
    const outcome = await sso.appleStart(currentDevice(ctx), ctx.state.client, input.frameworkStatus);
    ctx.set('Cache-Control', 'no-store');
    switch (outcome.kind) {
      case 'partner':
        ctx.body = { status: 'partner_authentication', ...(outcome.mvpd ? { mvpd: outcome.mvpd } : {}), authenticationRequest: outcome.authenticationRequest };
        return;
      case 'authenticated':
        ctx.body = { status: 'authenticated', reason: outcome.reason, profile: view(outcome.profile) };
        return;
      case 'fallback':
        ctx.status = 201;
        ctx.body = { status: 'fallback', reason: outcome.reason, ...started(outcome) };
        return;
    }
  });

  router.post('/v1/authentication/sso/apple/profile', ...guards, validate(appleSsoProfileSchema), async (ctx: AppContext) => {
    const input = validInput<AppleSsoProfileInput>(ctx);
    const profile = await sso.appleProfile(currentDevice(ctx), ctx.state.client, input.frameworkStatus, input.samlResponse);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'authenticated', profile: view(profile) };
  });

  router.post('/v1/authentication/sso/platform', ...guards, validate(platformSsoSchema), async (ctx: AppContext) => {
    const input = validInput<PlatformSsoInput>(ctx);
    const token =
      input.subjectToken !== undefined
        ? ({ header: 'adobe-subject-token', value: input.subjectToken } as const)
        : input.rokuToken !== undefined
          ? ({ header: 'x-roku-reserved-roku-connect-token', value: input.rokuToken } as const)
          : ({ header: 'ad-service-token', value: input.serviceToken ?? '' } as const);
    const outcome = await sso.platformStart(currentDevice(ctx), ctx.state.client, token, input.mvpd);
    ctx.set('Cache-Control', 'no-store');
    if (outcome.kind === 'authenticated') {
      ctx.body = { status: 'authenticated', profile: view(outcome.profile) };
      return;
    }
    ctx.status = 201;
    ctx.body = started(outcome);
  });
}
