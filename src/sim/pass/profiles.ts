import Router from '@koa/router';
import type { Context } from 'koa';
import { CODE_PATTERN, profileKey, type SimProfile, type SimState } from '../state.js';
import { saveDegradedProfile } from './session-outcome.js';
import { PassError } from './errors.js';
import { requestIdentity, requireIdentity, syncTemporaryProfile, trialErrorCode, trialState } from './temppass.js';
import type { SimMvpd, SimRules } from '../rules.js';
import { attributesFor } from './user-metadata.js';
import { passState, requireHeaders } from './headers.js';
import { requireMvpd, requireServiceProvider } from './lookup.js';
import { shareSsoProfiles } from './sso.js';

/**
 * One profile as the upstream serialises it (§4.6); timestamps are numbers (§12.3). `enc`
 * attributes are encrypted for the programmer's certificate in `userMetadata` (user-metadata.ts).
 */
export function profileBody(profile: SimProfile, userMetadata?: SimRules['userMetadata']) {
  return {
    notBefore: profile.notBefore,
    notAfter: profile.notAfter,
    issuer: profile.issuer,
    type: profile.type,
    attributes: attributesFor(profile.attributes, userMetadata),
  };
}

/** `{profiles: {<mvpd>: Profile}}` — a map of valid profiles "which may be empty" (§4.6). */
const profilesAnswer = (profiles: SimProfile[], userMetadata: SimRules['userMetadata']) => ({
  profiles: Object.fromEntries(profiles.map((p) => [p.mvpd, profileBody(p, userMetadata)])),
});

const params = (ctx: Context) => ctx.params as Record<string, string | undefined>;

/**
 * A TempPass MVPD's profile (profiles API samples 4, 5): absent before the trial started, the temporary
 * profile with its figures while it runs, the documented 403 once its duration or resources are used up.
 */
function temporaryProfiles(state: SimState, mvpd: SimMvpd, owner: { clientId: string; deviceId: string; serviceProvider: string; identity?: string | undefined }): SimProfile[] {
  if (mvpd.tempPassMisconfigured) throw new PassError('invalid_configuration_temporary_access');
  const trial = state.tempPass.find(mvpd, { serviceProvider: owner.serviceProvider, deviceId: owner.deviceId, ...(owner.identity !== undefined ? { identity: owner.identity } : {}) });
  if (!trial) return [];
  const profile = syncTemporaryProfile(state, owner.clientId, owner.deviceId, mvpd, trial);
  const code = trialErrorCode(trialState(trial, mvpd, state.now()));
  if (code) throw new PassError(code);
  return profile ? [profile] : [];
}

/** adobe-pass.md §4.6: GET profiles, profiles/{mvpd}, profiles/code/{code}. */
export function profileRoutes(state: SimState): Router {
  const router = new Router({ prefix: '/api/v2' });
  const profileMap = (profiles: SimProfile[]) => profilesAnswer(profiles, state.rules.userMetadata);
  const deviceHeaders = requireHeaders(state, { authorization: true, deviceIdentifier: true, deviceInfo: true });

  router.get('profiles.all', '/:serviceProvider/profiles', deviceHeaders, (ctx: Context) => {
    const { client, deviceId } = passState(ctx);
    const serviceProvider = requireServiceProvider(state, params(ctx).serviceProvider);
    shareSsoProfiles(state, ctx, { clientId: client.clientId, deviceId: deviceId as string, serviceProvider });
    // Missing and expired profiles are simply absent: never an error here (§4.6).
    ctx.body = profileMap(state.validProfiles(client.clientId, deviceId as string, serviceProvider));
  });

  router.get('profiles.mvpd', '/:serviceProvider/profiles/:mvpd', deviceHeaders, (ctx: Context) => {
    const { client, deviceId } = passState(ctx);
    const serviceProvider = requireServiceProvider(state, params(ctx).serviceProvider);
    const mvpd = requireMvpd(state, params(ctx).mvpd);
    if (mvpd.isTempPass) {
      ctx.body = profileMap(temporaryProfiles(state, mvpd, { clientId: client.clientId, deviceId: deviceId as string, serviceProvider, identity: requireIdentity(mvpd, ctx) }));
      return;
    }
    shareSsoProfiles(state, ctx, { clientId: client.clientId, deviceId: deviceId as string, serviceProvider }, mvpd.id);
    const key = profileKey(client.clientId, deviceId as string, serviceProvider, mvpd.id);
    const status = state.profileStatus(key);
    if (status.state === 'valid') {
      ctx.body = profileMap([status.profile]);
      return;
    }
    // rest-api-v2-access-degraded-flows.md "Retrieve profile while degradation is applied": under
    // AuthNAll the answer is the degraded profile, without any sign-in.
    if (mvpd.degradation === 'AuthNAll') {
      ctx.body = profileMap([saveDegradedProfile(state, { clientId: client.clientId, deviceId: deviceId as string, serviceProvider }, mvpd)]);
      return;
    }
    ctx.body = profileMap([]);
  });

  // §12.8: the API page lists Authorization only; AP-Device-Identifier is not required on this polling call.
  router.get(
    'profiles.code',
    '/:serviceProvider/profiles/code/:code',
    requireHeaders(state, { authorization: true, deviceIdentifier: false, deviceInfo: false }),
    (ctx: Context) => {
      const serviceProvider = requireServiceProvider(state, params(ctx).serviceProvider);
      const code = params(ctx).code ?? '';
      if (!CODE_PATTERN.test(code)) throw new PassError('invalid_parameter_code');
      const session = state.liveSession(code, serviceProvider);
      // The code is the key, not the caller: rest-api-v2-basic-profiles-secondary-application-flow.md
      // has the secondary application (its own registration and token) read the profile by code.
      if (!session) throw new PassError('invalid_authentication_session');
      // Sample 3 sends AP-TempPass-Identity here (optional in the request table); a malformed one is its 400.
      const identity = requestIdentity(ctx);
      const mvpd = session.params.mvpd === undefined ? undefined : state.mvpd(session.params.mvpd);
      // Sample 4: while AuthNAll is applied, the code's MVPD answers the degraded profile.
      if (mvpd?.degradation === 'AuthNAll') {
        ctx.body = profileMap([saveDegradedProfile(state, session, mvpd)]);
        return;
      }
      if (!session.profileKey) {
        ctx.body = profileMap([]);
        return;
      }
      if (mvpd?.isTempPass) {
        // The identity's trial when the header is sent, else the device's (temp-pass-feature.md, user identification).
        ctx.body = profileMap(temporaryProfiles(state, mvpd, { ...session, ...(identity !== undefined ? { identity } : {}) }));
        return;
      }
      const status = state.profileStatus(session.profileKey);
      ctx.body = profileMap(status.state === 'valid' ? [status.profile] : []);
    },
  );

  return router;
}
