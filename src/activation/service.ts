import type { Config } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { UpstreamProblem, type DeviceContext, type PassMvpd, type PassServices } from '../pass/index.js';

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

export interface ActivationServiceDeps {
  config: Pick<Config, 'activation' | 'signin' | 'serviceProvider' | 'upstreams'>;
  pass: PassServices;
  clock: Clock;
  logger: Logger;
  publicUrl: () => string;
}

/** adobe-pass.md §4.3/§4.4: what the upstream answers for an unknown or expired code. */
const unknownSessionCodes = new Set(['invalid_authentication_session', 'invalid_parameter_code']);

/** The second-screen logic (no Koa types): code lookup, MVPD choice, the upstream authenticate URL. */
export class ActivationService {
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
   * Not admitted: the page asks the browser to come back after `retryAfterMs`.
   */
  admitBrowser(client: ClientAddress): Promise<{ admitted: true } | { admitted: false; retryAfterMs: number }> {
    return this.deps.pass.throttle.reserve(client.ip, 'authenticate');
  }

  /** Where the upstream sends the browser after the MVPD login. */
  doneUrl(): string {
    return `${this.deps.publicUrl().replace(/\/+$/, '')}/activate/done`;
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

  /** §4.3 POST sessions/{code} with the picked MVPD (one of the offered ones). */
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
    const now = this.deps.clock.now();
    if (this.mvpdCache && this.mvpdCache.expiresAt > now) return this.mvpdCache.mvpds;
    const { hiddenMvpds, hideTempPass, configurationTtlMs } = this.deps.config.signin;
    const configuration = await this.deps.pass.pass.configuration(ctx);
    const mvpds = configuration.mvpds
      .filter((m) => !hiddenMvpds.includes(m.id) && !(hideTempPass && m.isTempPass === true))
      .sort((a, b) => (a.displayName ?? a.id).localeCompare(b.displayName ?? b.id));
    this.mvpdCache = { mvpds, expiresAt: now + configurationTtlMs };
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
