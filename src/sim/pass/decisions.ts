import Router from '@koa/router';
import type { Context } from 'koa';
import type { SimMvpd } from '../rules.js';
import { profileKey, type SimProfile, type SimState } from '../state.js';
import { matchEntitlement, resourceId } from './entitlement.js';
import { PassError, enhancedError, type EnhancedCode, type EnhancedError } from './errors.js';
import { passState, requireHeaders } from './headers.js';
import { requireMvpd, requireServiceProvider } from './lookup.js';
import { MediaTokenIssuer, type MediaToken } from './media-token.js';
import { shareSsoProfiles } from './sso.js';
import { admitResource, requireIdentity, syncTemporaryProfile } from './temppass.js';

export type DecisionKind = 'authorize' | 'preauthorize';
type Source = 'mvpd' | 'degradation' | 'temppass' | 'dummy';

/** adobe-pass.md §4.7 decision item (`resource`, never `resourceId`, §12.1). */
export interface Decision {
  resource: string;
  serviceProvider: string;
  mvpd: string;
  source: Source;
  authorized: boolean;
  token?: MediaToken;
  notBefore?: number;
  notAfter?: number;
  error?: EnhancedError;
}

/** `{resources: string[]}`, non-empty strings; anything else is invalid_parameter_resources. */
function readResources(body: unknown): { resource: string; id: string }[] {
  const resources = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>).resources : undefined;
  if (!Array.isArray(resources) || resources.length === 0) throw new PassError('invalid_parameter_resources');
  return resources.map((resource: unknown) => {
    const id = typeof resource === 'string' && resource.trim() !== '' ? resourceId(resource) : undefined;
    if (id === undefined) throw new PassError('invalid_parameter_resources');
    return { resource: resource as string, id };
  });
}

/** §4.8: an MVPD deny on preauthorize is reported as preauthorization_denied_by_mvpd. */
const denyCode = (kind: DecisionKind, code: EnhancedCode): EnhancedCode =>
  kind === 'preauthorize' && code === 'authorization_denied_by_mvpd' ? 'preauthorization_denied_by_mvpd' : code;

interface DecisionContext {
  kind: DecisionKind;
  serviceProvider: string;
  mvpd: SimMvpd;
  now: number;
}

export function decisionRoutes(state: SimState): Router {
  const router = new Router({ prefix: '/api/v2' });
  const tokens = new MediaTokenIssuer();

  const item = (c: DecisionContext, resource: string, source: Source) => ({ resource, serviceProvider: c.serviceProvider, mvpd: c.mvpd.id, source });
  // Decision validity = the MVPD's authZ TTL; preauthorize items carry no timestamps (§4.8).
  const validity = (c: DecisionContext) => (c.kind === 'authorize' ? { notBefore: c.now, notAfter: c.now + c.mvpd.authzTtlMs } : {});

  function permit(c: DecisionContext, resource: string, id: string, source: Source, timestamps: boolean): Decision {
    if (c.kind === 'preauthorize') return { ...item(c, resource, source), authorized: true };
    const token = tokens.issue({ serviceProvider: c.serviceProvider, mvpd: c.mvpd.id, resource: id, now: c.now, ttlMs: state.rules.mediaTokenTtlMs });
    return { ...item(c, resource, source), authorized: true, token, ...(timestamps ? validity(c) : {}) };
  }

  const refused = (c: DecisionContext, resource: string, source: Source, error: EnhancedError, timestamps = false): Decision => ({
    ...item(c, resource, source),
    authorized: false,
    error,
    ...(timestamps ? validity(c) : {}),
  });

  /**
   * The degradation rule's decision, checked before any profile (rest-api-v2-access-degraded-flows.md:
   * "does not have a valid profile"), or undefined when no rule applies. Decisions API samples 3:
   * AuthNAll permits with decision timestamps, AuthZAll without, AuthZNone denies with source degradation.
   */
  function degraded(c: DecisionContext, resource: string, id: string): Decision | undefined {
    switch (c.mvpd.degradation) {
      case 'AuthNAll':
        return permit(c, resource, id, 'degradation', true);
      case 'AuthZAll':
        return permit(c, resource, id, 'degradation', false);
      case 'AuthZNone':
        return refused(c, resource, 'degradation', enhancedError('authorization_denied_by_degradation_rule'));
      case 'none':
        return undefined;
    }
  }

  function decide(c: DecisionContext, resource: string, id: string, profile: SimProfile): Decision {
    const source: Source = 'mvpd';
    const rule = matchEntitlement(state, c.mvpd.id, id, profile.userId);
    switch (rule?.decision ?? state.rules.defaultDecision) {
      case 'permit':
        return permit(c, resource, id, source, true);
      case 'deny':
        // The deny sample carries the decision timestamps (§4.7).
        return refused(c, resource, source, enhancedError(denyCode(c.kind, rule?.error ?? 'authorization_denied_by_mvpd'), rule?.details), true);
      case 'error':
        return refused(c, resource, source, enhancedError(rule?.error ?? 'network_received_error', rule?.details));
    }
  }

  /**
   * TempPass (rest-api-v2-access-temporary-flows.md; decisions API samples 4, 5; temp-pass-feature.md):
   * no sign-in; the TTL runs "from the initial authorization request time", so only an authorize
   * starts the device's trial. Any resource is granted while the trial runs ("will authorize any
   * resource given the TempPass is valid"); a promotional authorize uses up one resource per new title
   * and needs AP-TempPass-Identity. Preauthorize "will return the entire list of resources … as
   * successfully preauthorized" as long as the time (and resource) limits hold: it starts nothing and
   * uses nothing up, and as its page lists no AP-TempPass-Identity, it finds the trial by the device.
   * Errors are items on HTTP 200, as in the samples.
   */
  function tempPass(c: DecisionContext, ctx: Context, resources: { resource: string; id: string }[], owner: { clientId: string; deviceId: string }): Decision[] {
    // Decisions samples 4 and 5, "Invalid Configuration": every item, no trial started.
    if (c.mvpd.tempPassMisconfigured) return resources.map(({ resource }) => refused(c, resource, 'temppass', enhancedError('invalid_configuration_temporary_access')));
    const authorize = c.kind === 'authorize';
    let identity: string | undefined;
    try {
      identity = authorize ? requireIdentity(c.mvpd, ctx) : undefined;
    } catch (error) {
      if (!(error instanceof PassError)) throw error;
      return resources.map(({ resource }) => refused(c, resource, 'temppass', enhancedError(error.code)));
    }
    const trialOwner = { serviceProvider: c.serviceProvider, deviceId: owner.deviceId, ...(identity !== undefined ? { identity } : {}) };
    const trial = authorize ? state.tempPass.findOrStart(c.mvpd, trialOwner, c.now) : state.tempPass.find(c.mvpd, trialOwner);
    if (!trial) return resources.map(({ resource, id }) => permit(c, resource, id, 'temppass', false));
    const answers = resources.map(({ resource, id }) => {
      const code = admitResource(trial, c.mvpd, id, authorize, c.now);
      return code ? refused(c, resource, 'temppass', enhancedError(code)) : permit(c, resource, id, 'temppass', true);
    });
    syncTemporaryProfile(state, owner.clientId, owner.deviceId, c.mvpd, trial);
    return answers;
  }

  const handler = (kind: DecisionKind) => (ctx: Context) => {
    const { client, deviceId } = passState(ctx);
    const params = ctx.params as Record<string, string | undefined>;
    const serviceProvider = requireServiceProvider(state, params.serviceProvider);
    const mvpd = requireMvpd(state, params.mvpd);
    const resources = readResources(ctx.request.body);
    if (resources.length > state.rules.maxResources[kind]) throw new PassError('too_many_resources');
    const c: DecisionContext = { kind, serviceProvider, mvpd, now: state.now() };
    if (mvpd.degradation !== 'none') {
      ctx.body = { decisions: resources.map(({ resource, id }) => degraded(c, resource, id)) };
      return;
    }
    if (mvpd.isTempPass) {
      ctx.body = { decisions: tempPass(c, ctx, resources, { clientId: client.clientId, deviceId: deviceId as string }) };
      return;
    }
    // SSO flows: "Find single sign-on profile" for the token this call carries.
    shareSsoProfiles(state, ctx, { clientId: client.clientId, deviceId: deviceId as string, serviceProvider }, mvpd.id);
    const key = profileKey(client.clientId, deviceId as string, serviceProvider, mvpd.id);
    const status = state.profileStatus(key);
    if (status.state !== 'valid') {
      const code = status.state === 'expired' ? 'authenticated_profile_expired' : 'authenticated_profile_missing';
      // §12.11: undocumented whether "no profile" is top-level or per item; the rules pick.
      if (state.rules.noProfileMode === 'top-level') throw new PassError(code);
      ctx.body = { decisions: resources.map(({ resource }) => refused(c, resource, 'mvpd', enhancedError(code))) };
      return;
    }
    ctx.body = { decisions: resources.map(({ resource, id }) => decide(c, resource, id, status.profile)) };
  };

  const headers = requireHeaders(state, { authorization: true, deviceIdentifier: true, deviceInfo: true, contentType: 'json' });
  router.post('decisions.authorize', '/:serviceProvider/decisions/authorize/:mvpd', headers, handler('authorize'));
  router.post('decisions.preauthorize', '/:serviceProvider/decisions/preauthorize/:mvpd', headers, handler('preauthorize'));
  return router;
}
