import type { Config } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { UpstreamProblem, type DeviceContext, type PassMvpd, type PassServices } from '../pass/index.js';
import { offeredBy, type SigninService } from '../signin/feature.js';
import { BROWSER_ARRIVAL_MS } from '../pass/throttle.js';
import type { FormGuard } from './form-guard.js';

/** passgate's own second-screen client upstream: one DCR device for the activation pages. */
export const ACTIVATION_DEVICE_ID = 'passgate-activation';

/** Server-side X-Device-Info (adobe-pass.md §3.3): the pages run on passgate, not on the phone. */
export const activationDeviceInfo = {
  primaryHardwareType: 'Unknown',
  model: 'passgate activation',
  manufacturer: 'passgate',
  version: '1.0.0',
  osName: 'Linux',
  osFamily: 'Linux',
} as const;

export type Lookup =
  /** Unknown, expired or malformed: one answer for all (no oracle for guessers). */
  | { kind: 'unknown' }
  /** Ready for the browser: send it to authenticateUrl(code). */
  | { kind: 'authenticate'; code: string }
  /** No MVPD yet (adobe-pass.md §10, second screen without a preselected MVPD). */
  | { kind: 'pick'; code: string; mvpds: PassMvpd[] };

export type Choice =
  | { kind: 'unknown' }
  | { kind: 'authenticate'; code: string }
  /** The MVPD is not one the picker offers. */
  | { kind: 'invalid_mvpd'; mvpds: PassMvpd[] }
  /** No MVPD login needed (TempPass, degraded, already signed in): the TV gets its profile. */
  | { kind: 'done' };

/** What the done page says: decided from server-side state, never from the query alone. */
export type DoneOutcome =
  /** The code this browser sent on has a profile: `mvpd` is the provider's display name. */
  | { kind: 'signed_in'; mvpd: string }
  /** The MVPD reported an error (`denied`: the viewer or the provider refused), or no profile came of the code. */
  | { kind: 'failed'; reason: 'denied' | 'error' | 'unconfirmed'; mvpd?: string }
  /** Back from an MVPD logout passgate began (its sealed mark in the URL). */
  | { kind: 'signed_out'; mvpd: string }
  /** Opened directly: nothing to report. */
  | { kind: 'direct' };

/** What the browser brings to /activate/done: the code of its sealed cookie, the query's logout mark and error. */
export interface DoneEvidence {
  code?: string;
  signedOut?: unknown;
  error?: unknown;
}

export interface ActivationServiceDeps {
  config: Pick<Config, 'activation' | 'signin' | 'serviceProvider' | 'upstreams'>;
  pass: PassServices;
  clock: Clock;
  logger: Logger;
  publicUrl: () => string;
  /** Seals passgate's own marks (the logout return link). */
  seals: Pick<FormGuard, 'seal' | 'open'>;
  /** Codes passgate issued through /v1/authentication: their profiles are read as the device that asked. */
  signin?: Pick<SigninService, 'codeProfile'>;
}

/** How long the mark in a logout return link stays good (the MVPD's logout page sits in between). */
const SIGNED_OUT_MARK_MS = 30 * 60_000;
const SIGNED_OUT_PURPOSE = 'signed-out';

/** adobe-pass.md §4.3/§4.4: what the upstream answers for an unknown or expired code. */
const unknownSessionCodes = new Set(['invalid_authentication_session', 'invalid_parameter_code']);

/** The second-screen logic (no Koa types): code lookup, MVPD choice, the upstream authenticate URL. */
export class ActivationService {
  /** The upstream configuration's MVPDs, every one (the picker filters; names are looked up in all). */
  private mvpdCache: { mvpds: PassMvpd[]; expiresAt: number } | undefined;

  constructor(private readonly deps: ActivationServiceDeps) {}

  /** The only place a viewer is ever sent: the configured upstream, never a URL from input. */
  authenticateUrl(code: string): string {
    const { config } = this.deps;
    return `${config.upstreams.pass.baseUrl}/api/v2/authenticate/${encodeURIComponent(config.serviceProvider)}/${encodeURIComponent(code)}`;
  }

  /**
   * Before the 303 to authenticateUrl(): the browser's GET there is a REST API V2 call counted in
   * its IP's upstream bucket, the one a household's TV shares (AdobeDocs/pass.en
   * help/authentication/integration-guide-programmers/throttling-mechanism.md: a token bucket per
   * device IP over /api/v2/), so it takes a token from passgate's mirror of that bucket first.
   * The browser reaches the upstream later than passgate's own calls would: its token is counted as
   * arriving up to BROWSER_ARRIVAL_MS later. Not admitted: the page asks the browser to come back after `retryAfterMs`.
   */
  admitBrowser(client: ClientAddress): Promise<{ admitted: true } | { admitted: false; retryAfterMs: number }> {
    return this.deps.pass.throttle.reserve(client.ip, 'authenticate', { arrivesWithinMs: BROWSER_ARRIVAL_MS });
  }

  /** Where the upstream sends the browser after the MVPD login. */
  doneUrl(): string {
    return `${this.deps.publicUrl().replace(/\/+$/, '')}/activate/done`;
  }

  /** The logout redirectUrl (adobe-pass.md §4.9): the done page, with passgate's sealed word that this logout was begun. */
  signedOutUrl(mvpd: string): string {
    const mark = this.deps.seals.seal(SIGNED_OUT_PURPOSE, Buffer.from(mvpd, 'utf8').toString('base64url').slice(0, 128), SIGNED_OUT_MARK_MS);
    return `${this.doneUrl()}?signed_out=${encodeURIComponent(mark)}`;
  }

  /**
   * What the done page reports. A logout mark passgate sealed says signed out; the code this
   * browser sent on (its sealed cookie) says signed in only when the upstream has its profile;
   * an MVPD error in the query can only ever produce a failure.
   */
  async done(evidence: DoneEvidence, client: ClientAddress): Promise<DoneOutcome> {
    const signedOut = this.deps.seals.open(SIGNED_OUT_PURPOSE, evidence.signedOut);
    if (signedOut) {
      const id = Buffer.from(signedOut, 'base64url').toString('utf8');
      return { kind: 'signed_out', mvpd: await this.mvpdName(id, client) };
    }
    const error = typeof evidence.error === 'string' ? evidence.error : undefined;
    if (evidence.code) {
      const mvpd = await this.profileMvpd(evidence.code);
      if (mvpd) return { kind: 'signed_in', mvpd: await this.mvpdName(mvpd, client) };
      return { kind: 'failed', reason: error === undefined ? 'unconfirmed' : errorReason(error) };
    }
    return error === undefined ? { kind: 'direct' } : { kind: 'failed', reason: errorReason(error) };
  }

  /**
   * The MVPD of the code's profile. Profiles by code belong to the DCR client that created the
   * session (adobe-pass.md §4.6), one per device: only the signin service, which knows which
   * device asked for a code passgate issued, can read them. Other codes have nothing to show.
   */
  private async profileMvpd(code: string): Promise<string | undefined> {
    const issued = await this.deps.signin?.codeProfile(code);
    return issued?.issued ? issued.profile?.mvpd : undefined;
  }

  /** The display name the upstream configuration gives an MVPD id (the id itself when unlisted). */
  private async mvpdName(id: string, client: ClientAddress): Promise<string> {
    const listed = (await this.configuredMvpds(await this.context(client))).find((m) => m.id === id);
    return listed?.displayName ?? id;
  }

  /** §4.4 GET sessions/{code} for a normalised code; completes domain/redirect when only those are missing. */
  async lookup(code: string, client: ClientAddress): Promise<Lookup> {
    const ctx = await this.context(client);
    const info = await this.orUnknown(() => this.deps.pass.pass.getSession(ctx, code));
    if (!info) return { kind: 'unknown' };
    const existing = info.existingParameters;
    const mvpd = typeof existing.mvpd === 'string' && existing.mvpd !== '' ? existing.mvpd : undefined;
    if (!mvpd) return { kind: 'pick', code, mvpds: await this.mvpds(ctx) };
    // §12.4: the domain appears as `domainName` or `domain`.
    const hasDomain = Boolean(existing.domainName ?? existing.domain);
    if (hasDomain && existing.redirectUrl) return { kind: 'authenticate', code };
    const resumed = await this.orUnknown(() =>
      this.deps.pass.pass.resumeSession(ctx, code, {
        ...(hasDomain ? {} : { domainName: this.deps.config.signin.domainName }),
        ...(existing.redirectUrl ? {} : { redirectUrl: this.doneUrl() }),
      }),
    );
    if (!resumed) return { kind: 'unknown' };
    return resumed.actionName === 'authenticate' ? { kind: 'authenticate', code } : { kind: 'unknown' };
  }

  /** §4.3 POST sessions/{code} with the picked MVPD: only one of the offered ones (a forged hidden id is `invalid_mvpd`). */
  async choose(code: string, mvpd: string, client: ClientAddress): Promise<Choice> {
    const ctx = await this.context(client);
    const mvpds = await this.mvpds(ctx);
    if (!mvpds.some((m) => m.id === mvpd)) return { kind: 'invalid_mvpd', mvpds };
    const resumed = await this.orUnknown(() =>
      this.deps.pass.pass.resumeSession(ctx, code, { mvpd, domainName: this.deps.config.signin.domainName, redirectUrl: this.doneUrl() }),
    );
    if (!resumed) return { kind: 'unknown' };
    if (resumed.actionName === 'authenticate') return { kind: 'authenticate', code };
    if (resumed.actionName === 'authorize') return { kind: 'done' };
    this.deps.logger.warn({ actionName: resumed.actionName, missing: resumed.missingParameters }, 'activation: the session is still incomplete after resume');
    return { kind: 'unknown' };
  }

  /** The MVPD picker's list: the upstream configuration filtered like the apps' list (SPEC §3). */
  private async mvpds(ctx: DeviceContext): Promise<PassMvpd[]> {
    return (await this.configuredMvpds(ctx))
      .filter(offeredBy(this.deps.config.signin))
      .sort((a, b) => (a.displayName ?? a.id).localeCompare(b.displayName ?? b.id));
  }

  private async configuredMvpds(ctx: DeviceContext): Promise<PassMvpd[]> {
    const now = this.deps.clock.now();
    if (this.mvpdCache && this.mvpdCache.expiresAt > now) return this.mvpdCache.mvpds;
    const { mvpds } = await this.deps.pass.pass.configuration(ctx);
    this.mvpdCache = { mvpds, expiresAt: now + this.deps.config.signin.configurationTtlMs };
    return mvpds;
  }

  /** The activation client, registered once (idempotent), with the viewer's address for this call. */
  private async context(client: ClientAddress): Promise<DeviceContext> {
    const device = await this.deps.pass.registry.register({
      appId: this.deps.config.activation.app,
      deviceId: ACTIVATION_DEVICE_ID,
      deviceInfo: { ...activationDeviceInfo },
      client,
    });
    return { device, client };
  }

  /** The call's answer, or undefined when the upstream says the code is unknown or expired. */
  private async orUnknown<T>(call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof UpstreamProblem && unknownSessionCodes.has(err.info.code)) return undefined;
      throw err;
    }
  }
}

/** An OAuth-style `error` the MVPD side put on the return URL: refused, or something else went wrong. */
function errorReason(error: string): 'denied' | 'error' {
  return error === 'access_denied' ? 'denied' : 'error';
}
