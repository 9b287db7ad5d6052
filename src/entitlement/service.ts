import type { Config } from '../config/schema.js';
import type { AuthenticatedDevice } from '../devices/service.js';
import type { ClientAddress } from '../http/client-address.js';
import { Problem, type ProblemCode, type UpstreamErrorInfo } from '../http/problem.js';
import { logStoreFailure, storeUnavailable } from '../http/store-call.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { Singleflight } from '../infra/singleflight.js';
import { UpstreamProblem, type DeviceContext, type PassClient, type PassErrorInfo } from '../pass/index.js';
import type { DecisionError, PassDecision } from '../pass/schema.js';
import type { SigninService } from '../signin/feature.js';
import { sourceLabel, type EntitlementMetrics } from './metrics.js';
import type { Permit, PermitLookup, PermitStore } from './permits.js';
import type { PreauthorizeCache } from './preauthorize-cache.js';
import { TEMPPASS_SOURCE, tempPassDetail, tempPassFigures, tempPassProblems, type TempPassFigures } from './temppass.js';

/** adobe-pass.md §7.2 / checklist: `retry` items are resent alone, at most this many times. */
export const MAX_RETRIES = 2;

export interface Caller {
  device: AuthenticatedDevice;
  client: ClientAddress;
  /**
   * AP-TempPass-Identity as the app sent it, unchecked: `forMvpd` checks it and keeps it only when the
   * MVPD in play is a TempPass MVPD (then it is forwarded upstream); never logged.
   */
  tempPassIdentity?: string;
}

export interface PreauthorizeItem {
  resource: string;
  authorized: boolean;
  /** The decision's source as the upstream named it (mvpd, degradation, temppass, dummy). */
  source?: string;
  error?: UpstreamErrorInfo;
}

export interface AuthorizeResult {
  authorized: true;
  /** The media token (serializedToken): handed out once, never cached. */
  mediaToken?: string;
  notAfter: number;
  permit: Permit;
  /** A TempPass Permit: the trial's end and what is left of it. */
  tempPass?: TempPassFigures;
}

export interface PreauthorizeAnswer {
  decisions: PreauthorizeItem[];
  /** When TempPass granted: the trial's end and what is left of it. */
  tempPass?: TempPassFigures;
}

/** The decision source of degraded access (adobe-pass.md §4.7). */
export const DEGRADATION_SOURCE = 'degradation';

export interface LogoutAnswer {
  actionName: string;
  actionType?: string;
  mvpd?: string;
  url?: string;
  message?: string;
  /** Every MVPD logged out, when there were several. */
  logouts: { mvpd: string; actionName: string; actionType?: string; url?: string }[];
}

export interface EntitlementDeps {
  config: Pick<Config, 'entitlement'>;
  pass: PassClient;
  signin: SigninService;
  permits: PermitStore;
  cache: PreauthorizeCache;
  clock: Clock;
  logger: Logger;
  metrics: EntitlementMetrics;
  publicUrl: () => string;
  /** Where the MVPD's logout page sends the browser back to (default: /activate/done). */
  logoutReturnUrl?: (mvpd: string) => string;
}

/** checklist "logout": an Apple SSO profile is signed out in the OS, not by a URL. */
export const APPLE_SSO_LOGOUT_MESSAGE =
  'This TV provider sign-in comes from Apple single sign-on: sign out in Settings → TV Provider (iOS) or Settings → Accounts → TV Provider (tvOS).';

const upstreamOf = (info: PassErrorInfo): UpstreamErrorInfo => ({
  code: info.code,
  action: info.action,
  ...(info.message !== undefined ? { message: info.message } : {}),
  ...(info.details !== undefined ? { details: info.details } : {}),
});

const missingDecision = (resource: string): DecisionError => ({
  code: 'decision_missing',
  action: 'none',
  status: 502,
  message: `The Pass service answered without a decision for ${resource}.`,
  remedy: 'none',
});

/** The decision for `resource` in an answer: by its `resource` field, else by position. */
function decisionFor(decisions: PassDecision[], resource: string, index: number): PassDecision | undefined {
  return decisions.find((d) => d.resource === resource) ?? (decisions.length > index ? decisions[index] : undefined);
}

const chunked = <T>(items: T[], size: number): T[][] => {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
};

/** Preauthorize, authorize (Permit records) and logout (SPEC §2, §4, §6). No Koa types here. */
export class EntitlementService {
  private readonly authorizations = new Singleflight<AuthorizeResult>();

  constructor(private readonly deps: EntitlementDeps) {}

  /** SPEC §4: what the DRM gate reads. Store errors propagate (fail closed). */
  livePermit(appId: string, binding: string, resource: string): Promise<Permit | undefined> {
    return this.deps.permits.live(appId, binding, resource);
  }

  /** The Permit's state with the reason when it is not live. Store errors propagate (fail closed). */
  permitLookup(appId: string, binding: string, resource: string): Promise<PermitLookup & { cached: boolean }> {
    return this.deps.permits.lookup(appId, binding, resource);
  }

  /**
   * The MVPD a decision is asked for: the device's profile's (the named one, when it has several);
   * without a profile, the app's selected or cached `mvpd` from the picker list, so that a degradation
   * rule can grant without a sign-in (rest-api-v2-access-degraded-flows.md); else the viewer signs in.
   * Naming an MVPD other than the one the device is signed in with is a 409, never a silent switch.
   */
  private async mvpdOf(caller: Caller, asked: string | undefined): Promise<string> {
    const profiles = await this.deps.signin.profiles(caller.device, caller.client);
    const current = profiles[0];
    if (asked === undefined || profiles.some((p) => p.mvpd === asked)) {
      if (!current) throw new Problem('authentication_required', 'Sign in with a TV provider first (POST /v1/authentication).');
      return asked ?? current.mvpd;
    }
    if (current) {
      throw new Problem('mvpd_mismatch', `The device is signed in with ${current.mvpd}, not ${asked}: omit "mvpd" (or name ${current.mvpd}), or log out first.`);
    }
    await this.deps.signin.requireOffered(caller.device, caller.client, asked);
    return asked;
  }

  /** The caller for upstream calls about `mvpd`: the viewer's TempPass identity only with a TempPass MVPD. */
  private async forMvpd(caller: Caller, mvpd: string): Promise<Caller> {
    const { tempPassIdentity: raw, ...rest } = caller;
    const tempPassIdentity = await this.deps.signin.tempPassIdentityFor(caller.device, caller.client, mvpd, raw);
    return tempPassIdentity !== undefined ? { ...rest, tempPassIdentity } : rest;
  }

  /** How long a Permit from this source may live at most: degraded grants end soon after their rule is lifted. */
  private capFor(source: string | undefined): number | undefined {
    return source === DEGRADATION_SOURCE ? this.deps.config.entitlement.degradedPermitMaxMs : undefined;
  }

  private context(caller: Caller): DeviceContext {
    return { device: caller.device.record, client: caller.client, ...(caller.tempPassIdentity !== undefined ? { tempPassIdentity: caller.tempPassIdentity } : {}) };
  }

  /**
   * The running trial's figures from the TempPass profile (profiles API samples 4, 5: expiration_date,
   * remaining_resources, used_assets). Best effort: without them the grant still stands.
   */
  private async tempPassFiguresOf(caller: Caller, mvpd: string): Promise<TempPassFigures | undefined> {
    try {
      return tempPassFigures((await this.deps.pass.profileForMvpd(this.context(caller), mvpd)).profiles[mvpd]);
    } catch (error) {
      if (!(error instanceof UpstreamProblem)) throw error;
      // Profiles sample 5: with every title used, the profile itself is this 403; that is the figure.
      if (error.info.code === 'temporary_access_resources_limit_exceeded') return { remainingResources: 0 };
      this.deps.logger.warn({ code: error.info.code, mvpd }, 'temppass: the trial figures could not be read');
      return undefined;
    }
  }

  /** A TempPass refusal (duration or resources used up, identity refused) as its own problem. */
  private async tempPassRefusal(caller: Caller, resource: string, error: DecisionError): Promise<never> {
    const code = tempPassProblems[error.code] as ProblemCode;
    if (code !== 'invalid_temppass_identity') {
      // The trial grants no more: its profile is gone upstream, and an earlier TempPass Permit must not keep licensing.
      await this.signinStale(caller);
      await this.deps.permits.deny(caller.device.app.id, caller.device.binding, resource).catch((failure: unknown) => {
        this.deps.logger.error({ err: failure }, 'authorize: the TempPass refusal could not be recorded; an earlier Permit lives until its notAfter');
      });
    }
    throw new Problem(code, tempPassDetail(code), { upstream: upstreamOf(error) });
  }

  /** A top-level upstream failure: `authentication` means the viewer must sign in again (§7.2). */
  private static reauthenticate(error: unknown): never {
    if (error instanceof UpstreamProblem && error.remedy === 'reauthenticate') {
      throw new Problem('authentication_required', `The TV provider sign-in is no longer valid (${error.info.code}); sign in again.`, {
        upstream: upstreamOf(error.info),
      });
    }
    throw error;
  }

  /**
   * POST /v1/preauthorize: cached permits answer at once; the rest go upstream in chunks of
   * `preauthorizeChunk`; `retry` items are resent alone, at most MAX_RETRIES times. Never a Permit record.
   */
  async preauthorize(asking: Caller, resources: string[], askedMvpd?: string): Promise<PreauthorizeAnswer> {
    const { cache, metrics } = this.deps;
    const mvpd = await this.mvpdOf(asking, askedMvpd);
    const caller = await this.forMvpd(asking, mvpd);
    const { app, binding } = caller.device;
    const unique = [...new Set(resources)];
    const answers = new Map<string, PreauthorizeItem>();
    let pending: string[] = [];
    for (const resource of unique) {
      const cached = cache.get(app.id, binding, mvpd, resource);
      if (cached) {
        metrics.preauthorizeCache.inc({ result: 'hit' });
        answers.set(resource, { resource, authorized: true, ...cached });
      } else {
        metrics.preauthorizeCache.inc({ result: 'miss' });
        pending.push(resource);
      }
    }

    let failure: unknown;
    let calls = 0;
    let failedCalls = 0;
    for (let attempt = 0; pending.length > 0 && attempt <= MAX_RETRIES; attempt++) {
      const retry: string[] = [];
      for (const chunk of chunked(pending, this.deps.config.entitlement.preauthorizeChunk)) {
        calls++;
        let decisions: PassDecision[];
        try {
          decisions = (await this.deps.pass.preauthorize(this.context(caller), mvpd, chunk)).decisions;
        } catch (error) {
          if (error instanceof UpstreamProblem && error.remedy === 'reauthenticate') EntitlementService.reauthenticate(error);
          if (!(error instanceof UpstreamProblem)) throw error;
          failedCalls++;
          failure ??= error;
          for (const resource of chunk) {
            metrics.decisions.inc({ kind: 'preauthorize', outcome: 'error', source: sourceLabel(undefined) });
            answers.set(resource, { resource, authorized: false, error: upstreamOf(error.info) });
          }
          continue;
        }
        chunk.forEach((resource, index) => {
          const decision = decisionFor(decisions, resource, index);
          const source = sourceLabel(decision?.source);
          const named = decision?.source !== undefined ? { source: decision.source } : {};
          if (decision?.authorized) {
            metrics.decisions.inc({ kind: 'preauthorize', outcome: 'permit', source });
            const capMs = this.capFor(decision.source);
            // A TempPass grant is never cached: the trial may end (or run out of titles) any moment.
            if (decision.source !== TEMPPASS_SOURCE) cache.remember(app.id, binding, mvpd, resource, {
              ...named,
              ...(decision.notAfter !== undefined ? { notAfter: decision.notAfter } : {}),
              ...(capMs !== undefined ? { capMs } : {}),
            });
            answers.set(resource, { resource, authorized: true, ...named });
            return;
          }
          const error = decision?.error ?? missingDecision(resource);
          if (error.remedy === 'retry' && attempt < MAX_RETRIES) retry.push(resource);
          metrics.decisions.inc({ kind: 'preauthorize', outcome: decision?.error?.remedy === 'retry' || !decision ? 'error' : 'deny', source });
          answers.set(resource, { resource, authorized: false, ...named, error: upstreamOf(error) });
        });
      }
      pending = retry;
      if (retry.length > 0) this.deps.logger.info({ retry: retry.length, attempt: attempt + 1 }, 'preauthorize: resending retry items');
    }
    // Every upstream call failed outright: that is the answer (e.g. 503), not a list of errors.
    if (failure !== undefined && failedCalls === calls && answers.size === unique.length && [...answers.values()].every((a) => !a.authorized)) {
      throw failure;
    }
    const items = resources.map((resource) => answers.get(resource) as PreauthorizeItem);
    const tempPass = items.some((item) => item.authorized && item.source === TEMPPASS_SOURCE) ? await this.tempPassFiguresOf(caller, mvpd) : undefined;
    return { decisions: items, ...(tempPass ? { tempPass } : {}) };
  }

  /**
   * POST /v1/authorize: always one upstream call per playback start (identical concurrent
   * requests of one device share it); a Permit writes the Permit record.
   */
  async authorize(asking: Caller, resource: string, askedMvpd?: string): Promise<AuthorizeResult> {
    const mvpd = await this.mvpdOf(asking, askedMvpd);
    const caller = await this.forMvpd(asking, mvpd);
    const { app, binding } = caller.device;
    const key = [app.id, binding, mvpd, resource].join('\n');
    return this.authorizations.do(key, () => this.authorizeUpstream(caller, mvpd, resource));
  }

  private async authorizeUpstream(caller: Caller, mvpd: string, resource: string): Promise<AuthorizeResult> {
    const { metrics, clock } = this.deps;
    const requestedAt = clock.now();
    let decision: PassDecision | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        decision = decisionFor((await this.deps.pass.authorize(this.context(caller), mvpd, [resource])).decisions, resource, 0);
      } catch (error) {
        metrics.decisions.inc({ kind: 'authorize', outcome: 'error', source: sourceLabel(undefined) });
        await this.forgetProfilesIfReauthenticate(caller, error);
        EntitlementService.reauthenticate(error);
      }
      if (decision?.error?.remedy !== 'retry' || attempt >= MAX_RETRIES) break;
      this.deps.logger.info({ code: decision.error.code, attempt: attempt + 1 }, 'authorize: retrying a retry item');
    }
    const source = decision?.source ?? 'none';
    if (decision?.authorized) {
      metrics.decisions.inc({ kind: 'authorize', outcome: 'permit', source: sourceLabel(decision.source) });
      const tempPass = decision.source === TEMPPASS_SOURCE ? await this.tempPassFiguresOf(caller, mvpd) : undefined;
      // A TempPass Permit ends with its trial: the DRM gate licenses nothing after the free time.
      const trialEnd = tempPass?.expiresAt !== undefined ? Date.parse(tempPass.expiresAt) : Number.POSITIVE_INFINITY;
      const notAfter = Math.min(decision.notAfter ?? decision.token?.notAfter ?? Number.POSITIVE_INFINITY, requestedAt + (this.capFor(decision.source) ?? Number.POSITIVE_INFINITY), trialEnd);
      const permit = await this.writePermit({
        appId: caller.device.app.id,
        binding: caller.device.binding,
        resource,
        mvpd,
        source,
        requestedAt,
        ...(decision.notBefore !== undefined ? { notBefore: decision.notBefore } : {}),
        ...(Number.isFinite(notAfter) ? { notAfter } : {}),
      });
      if (!permit) {
        throw new UpstreamProblem('upstream_rejected', 'The Pass service answered a Permit that has already expired.', 'decisions.authorize', {
          code: 'decision_expired',
          action: 'none',
          status: 502,
        });
      }
      // Checklist (authentication, M): re-read the profile after authorization; attributes may change.
      this.deps.signin.rereadProfiles(caller.device, caller.client);
      const mediaToken = decision.token?.serializedToken;
      return { authorized: true, ...(mediaToken !== undefined ? { mediaToken } : {}), notAfter: permit.notAfter, permit, ...(tempPass ? { tempPass } : {}) };
    }
    const error = decision?.error ?? missingDecision(resource);
    metrics.decisions.inc({ kind: 'authorize', outcome: !decision || error.remedy === 'retry' ? 'error' : 'deny', source: sourceLabel(decision?.source) });
    // Never a logout here (checklist "logout" R row): a Deny only answers 403.
    if (decision && tempPassProblems[error.code] !== undefined) await this.tempPassRefusal(caller, resource, error);
    if (error.remedy === 'reauthenticate') {
      await this.signinStale(caller);
      throw new Problem('authentication_required', `The TV provider sign-in is not valid for this (${error.code}); sign in again.`, { upstream: upstreamOf(error) });
    }
    if (error.remedy === 'retry') {
      throw new UpstreamProblem('upstream_unavailable', `The Pass service kept failing authorize: ${error.code}.`, 'decisions.authorize', error, { 'Retry-After': '1' });
    }
    if (!decision) throw new UpstreamProblem('upstream_rejected', error.message ?? 'No decision.', 'decisions.authorize', error);
    // The latest word for this resource is no: an earlier Permit must not keep licensing it.
    await this.deps.permits.deny(caller.device.app.id, caller.device.binding, resource).catch((failure: unknown) => {
      this.deps.logger.error({ err: failure }, 'authorize: the Deny could not be recorded; an earlier Permit lives until its notAfter');
    });
    throw new Problem('authorization_denied', error.message ?? 'The TV provider denied access to this resource.', { upstream: upstreamOf(error) });
  }

  /** The upstream says the profile is gone (e.g. a lifted degradation rule): the device's cached profiles are stale. */
  private async signinStale(caller: Caller): Promise<void> {
    await this.deps.signin.refreshProfiles(caller.device.app.id, caller.device.binding).catch((error: unknown) => {
      this.deps.logger.warn({ err: error }, 'authorize: the stale profile cache could not be dropped');
    });
  }

  private async forgetProfilesIfReauthenticate(caller: Caller, error: unknown): Promise<void> {
    if (error instanceof UpstreamProblem && error.remedy === 'reauthenticate') await this.signinStale(caller);
  }

  private async writePermit(fields: Parameters<PermitStore['write']>[0]): Promise<Permit | undefined> {
    let permit: Permit | undefined;
    try {
      permit = await this.deps.permits.write(fields);
    } catch (error) {
      logStoreFailure(this.deps.logger, error, 'authorize: write the Permit record');
      // No Permit record, no playback: the gate would refuse the license anyway.
      throw storeUnavailable('The Permit could not be recorded; retry shortly.');
    }
    if (permit) this.deps.metrics.permitsWritten.inc();
    return permit;
  }

  /**
   * POST /v1/logout: upstream logout for `mvpd` (or every MVPD with a profile), then this
   * device's permits and signin state are purged, whether or not the upstream answered.
   */
  async logout(caller: Caller, mvpd?: string): Promise<LogoutAnswer> {
    const { app, binding } = caller.device;
    const redirectUrl = (id: string) => this.deps.logoutReturnUrl?.(id) ?? `${this.deps.publicUrl()}/activate/done`;
    const logouts: LogoutAnswer['logouts'] = [];
    try {
      const mvpds = mvpd ? [mvpd] : await this.signedInMvpds(caller);
      for (const id of mvpds) {
        const answer = await this.deps.pass.logout(this.context(caller), id, redirectUrl(id));
        const action = answer.logouts[id] ?? Object.values(answer.logouts)[0];
        if (!action) continue;
        logouts.push({
          mvpd: action.mvpd ?? id,
          actionName: action.actionName,
          ...(action.actionType !== undefined ? { actionType: action.actionType } : {}),
          ...(action.url !== undefined ? { url: action.url } : {}),
        });
      }
    } finally {
      this.deps.cache.forgetDevice(app.id, binding);
      await this.deps.permits.purgeDevice(app.id, binding).catch((error: unknown) => {
        throw new Problem('store_unavailable', `The device's permits could not be purged; retry the logout. (${String(error)})`);
      });
      await this.deps.signin.forgetDevice(app.id, binding);
    }
    // The app acts on one answer: an interactive logout (needs a user agent) wins, then Apple SSO.
    const primary = logouts.find((l) => l.actionType === 'interactive') ?? logouts.find((l) => l.actionName === 'partner_logout') ?? logouts[0];
    if (!primary) return { actionName: 'invalid', actionType: 'none', logouts };
    const interactive = primary.actionType === 'interactive' || primary.actionName === 'logout';
    return {
      actionName: primary.actionName,
      ...(primary.actionType !== undefined ? { actionType: primary.actionType } : {}),
      mvpd: primary.mvpd,
      ...(interactive && primary.url !== undefined ? { url: primary.url } : {}),
      ...(primary.actionName === 'partner_logout' ? { message: APPLE_SSO_LOGOUT_MESSAGE } : {}),
      logouts: logouts.map((l) => {
        const { url, ...rest } = l;
        return l.actionType === 'interactive' && url !== undefined ? { ...rest, url } : rest;
      }),
    };
  }

  /** Every MVPD the device has a profile with upstream (§4.6), plus the one signin knows of. */
  private async signedInMvpds(caller: Caller): Promise<string[]> {
    const mvpds = new Set<string>();
    try {
      const { profiles } = await this.deps.pass.profiles(this.context(caller));
      for (const id of Object.keys(profiles)) mvpds.add(id);
    } catch (error) {
      if (!(error instanceof UpstreamProblem)) throw error;
      this.deps.logger.warn({ code: error.info.code }, 'logout: the profile list failed; using the current profile only');
    }
    const current = await this.deps.signin.currentProfile(caller.device, caller.client);
    if (current) mvpds.add(current.mvpd);
    return [...mvpds];
  }
}
