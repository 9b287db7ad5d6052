import type Router from '@koa/router';
import { routeTable } from '../http/route-table.js';
import type { AppContext, AppMiddleware, AppState } from '../http/context.js';
import { currentDevice, requireDevice, type AuthenticateDevice } from '../http/device-auth.js';
import { validate, validInput } from '../http/validate.js';
import { authorizeSchema, logoutSchema, preauthorizeSchema, type AuthorizeInput, type LogoutInput, type PreauthorizeInput } from './schema.js';
import { Problem } from '../http/problem.js';
import type { AuthorizeLicensing } from './feature.js';
import { DEGRADATION_SOURCE, type Caller, type EntitlementService } from './service.js';
import { TEMPPASS_IDENTITY_HEADER } from '../pass/index.js';
import { visitorIdentifier } from '../http/visitor-identifier.js';
import { ssoCredentials } from '../http/sso-credentials.js';

const caller = (ctx: AppContext): Caller => ({ device: currentDevice(ctx), client: ctx.state.client });

/** A decision's caller: the device and the viewer's identity header as sent (the service checks it, for a TempPass MVPD only; never logged). */
const decisionCaller = (ctx: AppContext): Caller => {
  const tempPassIdentity = ctx.get(TEMPPASS_IDENTITY_HEADER) || undefined;
  return { ...caller(ctx), ...(tempPassIdentity !== undefined ? { tempPassIdentity } : {}) };
};

/** `degraded: true` tells the app the grant came from a degradation rule, not the viewer's TV provider. */
const degradedFlag = (source: string | undefined) => (source === DEGRADATION_SOURCE ? { degraded: true } : {});

/** POST /v1/preauthorize, /v1/authorize, /v1/logout (SPEC §2): auth → validate(schema) → handler. */
export function entitlementRouter(
  service: EntitlementService,
  authenticate: AuthenticateDevice,
  licensing: () => AuthorizeLicensing | undefined,
): Router<AppState> {
  const router = routeTable();
  const device = requireDevice(authenticate);

  router.post('/v1/preauthorize', device, visitorIdentifier, ssoCredentials, validate(preauthorizeSchema), async (ctx: AppContext) => {
    const { resources, mvpd } = validInput<PreauthorizeInput>(ctx);
    const answer = await service.preauthorize(decisionCaller(ctx), resources, mvpd);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { decisions: answer.decisions.map((d) => ({ ...d, ...degradedFlag(d.source) })), ...(answer.tempPass ? { tempPass: answer.tempPass } : {}) };
  });

  // A license request whose device cannot be checked (store down) is still one audited refusal.
  const authorizeDevice: AppMiddleware = async (ctx, next) => {
    try {
      await device(ctx, async () => undefined);
    } catch (error) {
      const asked = authorizeSchema.safeParse(ctx.request.body);
      const drmLicensing = licensing();
      if (error instanceof Problem && error.code === 'store_unavailable' && asked.success && asked.data.drm && drmLicensing) {
        const { resource, drm } = asked.data;
        drmLicensing.refusedBeforeGate({ via: 'authorize', system: drm.system, resource, contentId: drm.contentId }, error.code);
      }
      throw error;
    }
    await next();
  };

  router.post('/v1/authorize', authorizeDevice, visitorIdentifier, ssoCredentials, validate(authorizeSchema), async (ctx: AppContext) => {
    const { resource, mvpd, drm } = validInput<AuthorizeInput>(ctx);
    const drmLicensing = drm ? licensing() : undefined;
    if (drm && !drmLicensing) throw new Problem('bad_request', 'This passgate issues no DRM licenses (no drm section in its configuration); omit "drm".');
    if (drm && drmLicensing) await drmLicensing.precheck(currentDevice(ctx), resource, drm);
    const result = await service.authorize(decisionCaller(ctx), resource, mvpd).catch((error: unknown) => {
      if (drm && drmLicensing) drmLicensing.refused(currentDevice(ctx), resource, drm, error);
      throw error;
    });
    const license = drm && drmLicensing ? await drmLicensing.issue(currentDevice(ctx), result.permit, drm) : undefined;
    // The media token is one-time use (adobe-pass.md §4.7): nothing may cache this answer.
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      authorized: true,
      ...(result.mediaToken !== undefined ? { mediaToken: result.mediaToken } : {}),
      notAfter: new Date(result.notAfter).toISOString(),
      mvpd: result.permit.mvpd,
      ...(result.permit.source !== 'none' ? { source: result.permit.source } : {}),
      ...degradedFlag(result.permit.source),
      ...(result.tempPass ? { tempPass: result.tempPass } : {}),
      ...(license ? { license } : {}),
    };
  });

  router.post('/v1/logout', device, visitorIdentifier, ssoCredentials, validate(logoutSchema), async (ctx: AppContext) => {
    const { mvpd } = validInput<LogoutInput>(ctx);
    const answer = await service.logout(caller(ctx), mvpd);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = answer;
  });

  return router;
}
