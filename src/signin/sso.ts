import type { Config } from '../config/schema.js';
import type { AuthenticatedDevice } from '../devices/service.js';
import type { ClientAddress } from '../http/client-address.js';
import { Problem, type ProblemCode } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import { encodeFrameworkStatus, UpstreamProblem, type DeviceContext, type FrameworkStatus, type PassServices, type SessionAction, type SsoToken } from '../pass/index.js';
import type { Logger } from '../infra/logger.js';
import { ssoFallbacks, type SigninMetrics } from './metrics.js';
import type { CurrentProfile } from './records.js';
import { asUnknownMvpd, validProfiles } from './upstream-answers.js';

/**
 * Single sign-on for the /v1 API (rest-api-v2-single-sign-on-*-flows.md):
 * - Apple partner SSO (apple-sso-cookbook-rest-api-v2.md): the app hands passgate what Apple's
 *   framework says (its status, later its SAML response); passgate sends it as
 *   AP-Partner-Framework-Status to sessions/sso/Apple and profiles/sso/Apple and tells the app the
 *   next step: hand the SAML request to the framework, or the profile, or — on every documented
 *   fallback — a second-screen code exactly like POST /v1/authentication's;
 * - platform identity (Adobe-Subject-Token) and service token (AD-Service-Token): the profiles
 *   are read with the token (another app's sign-in may give an SSO profile); without one, a
 *   sign-in starts with the token on the session, so the profile it makes serves the token's other apps.
 */

/** The path's partner name (the REST API's `partner`, e.g. Apple). */
export const APPLE_PARTNER = 'Apple';

export type AppleStartOutcome =
  | { kind: 'partner'; mvpd?: string; authenticationRequest: { type: string; request: string; attributesNames: string[] } }
  | { kind: 'authenticated'; reason: string; profile: CurrentProfile }
  | { kind: 'fallback'; reason: string; code: string; notAfter: number };

type CodeOutcome = { kind: 'code'; code: string; notAfter: number };
type StartOutcome = CodeOutcome | { kind: 'authenticated'; profile: CurrentProfile };

export interface SsoSigninDeps {
  pass: PassServices;
  metrics: Pick<SigninMetrics, 'sso'>;
  logger: Logger;
  clock: Clock;
  settings: Config['signin'];
  publicUrl: () => string;
  contextOf: (device: AuthenticatedDevice, client: ClientAddress) => DeviceContext;
  requireOffered: (device: AuthenticatedDevice, client: ClientAddress, mvpd: string) => Promise<void>;
  /** Keeps an upstream session's code as the device's sign-in (polled like POST /v1/authentication's). */
  issueCode: (device: AuthenticatedDevice, client: ClientAddress, action: SessionAction, mvpd: string | undefined) => Promise<CodeOutcome | undefined>;
  /** A profile was obtained for `mvpd`: drop the cached profiles, remember the MVPD. */
  adopt: (device: AuthenticatedDevice, mvpd: string) => Promise<void>;
  /** POST /v1/authentication's flow, with the token on its session and profile calls. */
  start: (device: AuthenticatedDevice, client: ClientAddress, mvpd: string | undefined, ssoToken: SsoToken) => Promise<StartOutcome>;
}


/**
 * The partner endpoints' documented refusals (…-retrieve-profile-using-partner-authentication-response.md):
 * the header's checks, and the SAML response. Both are the app's to fix: its own problem codes.
 */
function asPartnerRefusal(err: unknown): unknown {
  if (!(err instanceof UpstreamProblem)) return err;
  const upstream = { code: err.info.code, action: err.info.action, ...(err.info.message ? { message: err.info.message } : {}) };
  const refusal = (code: ProblemCode, detail: string) => new Problem(code, detail, { upstream });
  if (err.info.code.startsWith('invalid_header_pfs_')) {
    return refusal('partner_status_rejected', `The Pass service refused the partner framework status (${err.info.code}): refresh it from the framework, or sign in with a code (POST /v1/authentication).`);
  }
  if (err.info.code === 'invalid_parameter_saml_response') {
    return refusal('partner_response_rejected', 'The Pass service refused the SAML response: start Apple sign-in again, or sign in with a code (POST /v1/authentication).');
  }
  return asUnknownMvpd(err);
}

type SsoMethod = 'apple' | 'apple_profile' | 'platform' | 'service';

export function createSsoSignin(deps: SsoSigninDeps) {
  const { pass, clock, settings, publicUrl } = deps;

  /** Counts and logs one SSO answer (never the token, status or SAML response), and passes it on. */
  function outcome<T>(method: SsoMethod, label: string, answer: T, mvpd?: string): T {
    deps.metrics.sso.inc({ method, outcome: label });
    deps.logger.info({ method, outcome: label, ...(mvpd ? { mvpd } : {}) }, 'signin: single sign-on');
    return answer;
  }
  const refused = (method: SsoMethod) => (err: unknown): never => {
    if (err instanceof Problem && err.status < 500) outcome(method, 'refused', undefined);
    throw err;
  };
  const fallbackLabel = (reason: string) => ((ssoFallbacks as readonly string[]).includes(reason) ? reason : 'other_fallback');
  const partnerContext = (device: AuthenticatedDevice, client: ClientAddress, status: FrameworkStatus): DeviceContext => ({
    ...deps.contextOf(device, client),
    partnerFrameworkStatus: encodeFrameworkStatus(status),
  });

  /** The profile for `mvpd` the upstream has now (read with the same SSO credentials), adopted. */
  async function profileFor(device: AuthenticatedDevice, ctx: DeviceContext, mvpd: string): Promise<CurrentProfile> {
    const profiles = validProfiles(await pass.pass.profileForMvpd(ctx, mvpd), clock.now());
    const profile = profiles.find((p) => p.mvpd === mvpd) ?? profiles[0];
    if (!profile) throw new Problem('authentication_required', 'The Pass service has no valid profile for this MVPD; start again.');
    await deps.adopt(device, profile.mvpd);
    return profile;
  }

  return {
    /** POST /v1/authentication/sso/apple: the Sessions Partner call and what it leads to. */
    async appleStart(device: AuthenticatedDevice, client: ClientAddress, status: FrameworkStatus): Promise<AppleStartOutcome> {
      const ctx = partnerContext(device, client, status);
      const params = { domainName: settings.domainName, redirectUrl: `${publicUrl()}/activate/done` };
      const action = await pass.pass
        .partnerSession(ctx, APPLE_PARTNER, params)
        .catch((err: unknown) => {
          throw asPartnerRefusal(err);
        })
        .catch(refused('apple'));
      const reason = action.reasonType ?? 'none';
      if (action.actionName === 'partner_profile' && action.authenticationRequest) {
        const { type, request, attributesNames } = action.authenticationRequest;
        return outcome('apple', 'partner_authentication', { kind: 'partner', ...(action.mvpd ? { mvpd: action.mvpd } : {}), authenticationRequest: { type, request, attributesNames } }, action.mvpd);
      }
      if (action.actionName === 'authorize') {
        if (!action.mvpd) throw new Problem('upstream_rejected', 'The Pass service answered authorize without naming the MVPD.');
        return outcome('apple', 'authenticated', { kind: 'authenticated', reason, profile: await profileFor(device, ctx, action.mvpd) }, action.mvpd);
      }
      // Every fallback (pfs_, configuration_, missing_parameters_fallback) is the basic flow's session: a code.
      const issued = await deps.issueCode(device, client, action, action.mvpd);
      if (issued) return outcome('apple', fallbackLabel(reason), { kind: 'fallback', reason, code: issued.code, notAfter: issued.notAfter }, action.mvpd);
      throw new Problem('upstream_rejected', `The Pass service answered the partner session with an unexpected action (${action.actionName}).`);
    },

    /** POST /v1/authentication/sso/apple/profile: the Profiles Partner call; the appleSSO profile (or a degraded one). */
    async appleProfile(device: AuthenticatedDevice, client: ClientAddress, status: FrameworkStatus, samlResponse: string): Promise<CurrentProfile> {
      const answer = await pass.pass
        .partnerProfile(partnerContext(device, client, status), APPLE_PARTNER, samlResponse)
        .catch((err: unknown) => {
          throw asPartnerRefusal(err);
        })
        .catch(refused('apple_profile'));
      const [profile] = validProfiles(answer, clock.now());
      // "a map of valid profiles, which may be empty": partner SSO fell back to the basic profile retrieval.
      if (!profile) throw new Problem('authentication_required', 'The Pass service made no profile from this sign-in: sign in with a code (POST /v1/authentication).');
      await deps.adopt(device, profile.mvpd);
      return outcome('apple_profile', 'authenticated', profile, profile.mvpd);
    },

    /**
     * POST /v1/authentication/sso/platform: an (SSO) profile the token already gives, else
     * POST /v1/authentication's flow with the token on the session.
     */
    async platformStart(device: AuthenticatedDevice, client: ClientAddress, token: SsoToken, mvpd: string | undefined): Promise<StartOutcome> {
      if (mvpd !== undefined) await deps.requireOffered(device, client, mvpd);
      const ctx: DeviceContext = { ...deps.contextOf(device, client), ssoToken: token };
      const answer = mvpd === undefined ? await pass.pass.profiles(ctx) : await pass.pass.profileForMvpd(ctx, mvpd);
      const profile = validProfiles(answer, clock.now()).find((p) => mvpd === undefined || p.mvpd === mvpd);
      const method = token.header === 'ad-service-token' ? 'service' : 'platform';
      if (profile) {
        await deps.adopt(device, profile.mvpd);
        return outcome(method, 'authenticated', { kind: 'authenticated', profile }, profile.mvpd);
      }
      const started = await deps.start(device, client, mvpd, token);
      return outcome(method, started.kind === 'code' ? 'code' : 'authenticated', started, mvpd);
    },
  };
}

export type SsoSignin = ReturnType<typeof createSsoSignin>;
