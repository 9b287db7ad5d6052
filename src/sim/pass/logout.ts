import Router from '@koa/router';
import type { Context } from 'koa';
import { profileKey, type SimState } from '../state.js';
import { PassError } from './errors.js';
import { passState, requireHeaders } from './headers.js';
import { requireMvpd, requireServiceProvider } from './lookup.js';
import { ssoLinkedOwners } from './sso.js';

/** §4.9: `logout/interactive` opens `url`; `complete` and `invalid` carry no url. */
type LogoutAction =
  | { actionName: 'logout'; actionType: 'interactive'; mvpd: string; url: string }
  | { actionName: 'complete' | 'invalid'; actionType: 'none'; mvpd: string }
  | { actionName: 'partner_logout'; actionType: 'partner_interactive'; mvpd: string };

/** An absolute http(s) URL, given once. */
function readRedirectUrl(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new PassError('invalid_parameter_redirect_url');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PassError('invalid_parameter_redirect_url');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PassError('invalid_parameter_redirect_url');
  return value;
}

/** adobe-pass.md §4.9: GET /{sp}/logout/{mvpd}. */
export function logoutRoutes(state: SimState): Router {
  const router = new Router({ prefix: '/api/v2' });

  router.get(
    'logout',
    '/:serviceProvider/logout/:mvpd',
    requireHeaders(state, { authorization: true, deviceIdentifier: true, deviceInfo: true }),
    (ctx: Context) => {
      const { client, deviceId } = passState(ctx);
      const params = ctx.params as Record<string, string | undefined>;
      const serviceProvider = requireServiceProvider(state, params.serviceProvider);
      const mvpd = requireMvpd(state, params.mvpd);
      // §12.7: required by the markdown (optional in the OpenAPI); the simulator follows the markdown.
      const redirectUrl = readRedirectUrl(ctx.query.redirectUrl);

      const owner = { clientId: client.clientId, deviceId: deviceId as string, serviceProvider };
      // Single logout (rest-api-v2-single-sign-on-logout-flow.md): with a platform identity or service
      // token, the MVPD's profiles of every application linked to it, regular and SSO, go too; the
      // caller's own profile first decides the action, else the first linked one found.
      const keys = [owner, ...ssoLinkedOwners(state, ctx, owner)].map((o) => profileKey(o.clientId, o.deviceId, o.serviceProvider, mvpd.id));
      const found = keys.map((key) => state.profileStatus(key));
      const status = found.find((s) => s.state === 'valid') ?? { state: 'missing' as const };
      // The profiles are deleted server-side before the response, whatever the action (§4.9).
      for (const key of keys) state.deleteProfile(key);

      let action: LogoutAction;
      // "log out during degraded access" is `complete` (logout API): under AuthNAll the device holds
      // the degraded profile whether or not it was read yet.
      if (mvpd.degradation === 'AuthNAll') {
        action = { actionName: 'complete', actionType: 'none', mvpd: mvpd.id };
      } else if (status.state !== 'valid') {
        action = { actionName: 'invalid', actionType: 'none', mvpd: mvpd.id };
      } else if (status.profile.type === 'appleSSO') {
        // apple-sso-cookbook-rest-api-v2.md, logout phase: the viewer signs out in the OS settings; no url.
        action = { actionName: 'partner_logout', actionType: 'partner_interactive', mvpd: mvpd.id };
      } else if (status.profile.type === 'degraded' || status.profile.type === 'temporary' || !mvpd.hasLogoutEndpoint) {
        // Degraded or temporary access, or a dummy logout: nothing to do at the MVPD (§4.9, §10).
        action = { actionName: 'complete', actionType: 'none', mvpd: mvpd.id };
      } else {
        // A regular, platformSSO or serviceTokenSSO profile logs out at the MVPD too (logout API samples 1, 3, 4).
        // The simulator's own base, as the caller reached it (Koa 3's ctx.origin is the Origin header).
        const url = `${ctx.protocol}://${ctx.host}/sim/mvpd/${encodeURIComponent(mvpd.id)}/logout?redirect_url=${encodeURIComponent(redirectUrl)}`;
        action = { actionName: 'logout', actionType: 'interactive', mvpd: mvpd.id, url };
      }
      ctx.body = { logouts: { [mvpd.id]: action } };
    },
  );

  return router;
}
