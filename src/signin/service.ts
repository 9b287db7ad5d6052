import type { Config } from '../config/schema.js';
import type { AuthenticatedDevice } from '../devices/service.js';
import { storedAddress, type ClientAddress } from '../http/client-address.js';
import { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { setNewest } from '../infra/bounded-map.js';
import { Singleflight } from '../infra/singleflight.js';
import type { Store } from '../infra/store.js';
import { readTempPassIdentity, UpstreamProblem, type DeviceContext, type PassServices, type SessionAction, type SsoToken } from '../pass/index.js';
import type { SigninMetrics } from './metrics.js';
import { SigninPolling, type FollowListener } from './polling.js';
import { createSsoSignin } from './sso.js';
import { asUnknownMvpd, validProfiles } from './upstream-answers.js';
import {
  deviceKey,
  offeredBy,
  signinRecords,
  withBinding,
  type CachedConfiguration,
  type CurrentProfile,
  type PendingSession,
  type PickerMvpd,
  type SigninStatus,
} from './records.js';

export type { CurrentProfile, PickerMvpd, SigninStatus } from './records.js';
export { validProfiles } from './upstream-answers.js';

/** A signed-out device's empty profile list (or one with a degraded profile) is re-read after this long (sign-ins through passgate drop it sooner). */
const NO_PROFILE_CACHE_MS = 30_000;
/** Devices whose last re-read time is remembered (the oldest are forgotten first: they re-read again, no harm). */
const MAX_REREAD_MARKS = 100_000;
/** adobe-pass.md §4.2 sample: a session lasts 30 min when the upstream omits notAfter. */
const DEFAULT_SESSION_MS = 30 * 60_000;
/** Store records outlive their logical end by this much (real-time TTL; logical time is the clock's). */
const RECORD_SLACK_MS = 10 * 60_000;

export interface SigninServiceDeps {
  config: Pick<Config, 'signin'>;
  store: Store;
  clock: Clock;
  logger: Logger;
  pass: PassServices;
  metrics: SigninMetrics;
  publicUrl: () => string;
}

export type StartOutcome =
  | { kind: 'code'; code: string; notAfter: number }
  | { kind: 'authenticated'; profile: CurrentProfile };

const contextOf = (device: AuthenticatedDevice, client: ClientAddress): DeviceContext => ({ device: device.record, client });

export function createSigninService(deps: SigninServiceDeps) {
  const { config, store, clock, pass, metrics, publicUrl } = deps;
  const logger = deps.logger.child({ component: 'signin' });
  const records = signinRecords(store);
  const settings = config.signin;
  const configurationL1 = new Map<string, CachedConfiguration>();
  const configurationCalls = new Singleflight<CachedConfiguration>();

  const ttlUntil = (until: number) => Math.max(60_000, until - clock.now()) + RECORD_SLACK_MS;

  /** Status from store state only (no upstream call): result, expiry, superseded, else pending. */
  async function statusOf(session: PendingSession, now = clock.now()): Promise<SigninStatus> {
    const result = await records.results.get(session.code);
    if (result) return result;
    if (now >= session.notAfter) return { status: 'expired' };
    const current = await records.current.get(deviceKey(session.appId, session.binding));
    if (current !== session.code) return { status: 'expired' };
    return { status: 'pending' };
  }

  async function rememberMvpd(appId: string, binding: string, id: string): Promise<void> {
    const listed = [...configurationL1.values()].flatMap((c) => c.mvpds).find((m) => m.id === id);
    const known = listed ?? (await records.chosenMvpd.get(deviceKey(appId, binding)));
    const chosen: PickerMvpd =
      known && known.id === id ? { id, displayName: known.displayName, ...(known.logoUrl ? { logoUrl: known.logoUrl } : {}) } : { id, displayName: id };
    await records.chosenMvpd.set(deviceKey(appId, binding), chosen);
  }

  const polling = new SigninPolling({
    records,
    leases: store.leases,
    clock,
    logger,
    metrics,
    pollIntervalMs: settings.pollIntervalMs,
    maxWaiters: settings.maxWaiters,
    statusOf,
    pollUpstream: async (session) => {
      const record = await pass.registry.get(session.appId, session.binding);
      if (!record) return undefined;
      return validProfiles(await pass.pass.profileByCode({ device: record, client: session.client }, session.code), clock.now());
    },
    onFound: async (session, profile) => {
      // The new profile changes what GET /v1/profile and authorize see: drop the device's cache.
      await records.profiles.delete(deviceKey(session.appId, session.binding));
      await rememberMvpd(session.appId, session.binding, profile.mvpd);
      return ttlUntil(session.notAfter);
    },
  });

  async function ownedSession(device: AuthenticatedDevice, code: string): Promise<PendingSession> {
    const session = withBinding(await records.sessions.get(code));
    if (!session || session.appId !== device.app.id || session.binding !== device.binding) {
      throw new Problem('session_not_found', 'This device has no sign-in session with this code.');
    }
    return session;
  }

  /**
   * Re-reads of a device's profiles after an authorization, in flight (by device key): a read of
   * that device meanwhile waits for it instead of serving the profiles it replaces.
   */
  const rereads = new Map<string, Promise<void>>();
  /** When each device's profiles were last re-read after a Permit (bounded): at most one re-read per interval. */
  const rereadAt = new Map<string, number>();

  function rereadProfiles(device: AuthenticatedDevice, client: ClientAddress): void {
    const key = deviceKey(device.app.id, device.binding);
    if (rereads.has(key)) return;
    const last = rereadAt.get(key);
    if (last !== undefined && clock.now() - last < settings.profileRereadIntervalMs) return;
    setNewest(rereadAt, key, clock.now(), MAX_REREAD_MARKS);
    const reread = (async () => {
      try {
        await upstreamProfiles(device, client, key);
      } catch (err) {
        // The next read asks the upstream itself.
        logger.warn({ err }, 'signin: re-reading the profiles after an authorization failed');
        await records.profiles.delete(key).catch(() => undefined);
      } finally {
        rereads.delete(key);
      }
    })();
    rereads.set(key, reread);
  }

  async function profilesOf(device: AuthenticatedDevice, client: ClientAddress): Promise<CurrentProfile[]> {
    const key = deviceKey(device.app.id, device.binding);
    await rereads.get(key);
    const now = clock.now();
    const cached = await records.profiles.get(key);
    if (cached && cached.validUntil > now) {
      metrics.profiles.inc({ source: 'cache' });
      return cached.profiles.filter((p) => p.notAfter > now);
    }
    return upstreamProfiles(device, client, key);
  }

  /** The device's valid profiles from the upstream, cached until the first one ends (or briefly, when there is none). */
  async function upstreamProfiles(device: AuthenticatedDevice, client: ClientAddress, key: string): Promise<CurrentProfile[]> {
    metrics.profiles.inc({ source: 'upstream' });
    const now = clock.now();
    const profiles = validProfiles(await pass.pass.profiles(contextOf(device, client)), now);
    // A degraded profile ends when its degradation rule is lifted, which no notAfter announces: re-read it soon.
    const degraded = profiles.some((p) => p.type === 'degraded');
    const validUntil = Math.min(profiles[0]?.notAfter ?? now + NO_PROFILE_CACHE_MS, degraded ? now + NO_PROFILE_CACHE_MS : Number.POSITIVE_INFINITY);
    await records.profiles.set(key, { profiles, validUntil }, ttlUntil(validUntil));
    return profiles;
  }

  async function configurationFor(device: AuthenticatedDevice, client: ClientAddress): Promise<CachedConfiguration> {
    const platform = device.app.platform;
    const now = clock.now();
    const local = configurationL1.get(platform);
    if (local && local.expiresAt > now) {
      metrics.configuration.inc({ source: 'memory' });
      return local;
    }
    return configurationCalls.do(platform, async () => {
      const shared = await records.configuration.get(platform);
      if (shared && shared.expiresAt > clock.now()) {
        metrics.configuration.inc({ source: 'store' });
        configurationL1.set(platform, shared);
        return shared;
      }
      metrics.configuration.inc({ source: 'upstream' });
      const answer = await pass.pass.configuration(contextOf(device, client));
      const fresh: CachedConfiguration = {
        mvpds: answer.mvpds.map((m) => ({
          id: m.id,
          displayName: m.displayName ?? m.id,
          ...(m.logoUrl ? { logoUrl: m.logoUrl } : {}),
          isTempPass: m.isTempPass === true,
        })),
        expiresAt: clock.now() + settings.configurationTtlMs,
      };
      await records.configuration.set(platform, fresh, settings.configurationTtlMs);
      configurationL1.set(platform, fresh);
      return fresh;
    });
  }

  const offered = offeredBy(settings);

  /**
   * The one check of every route an app names an MVPD on (authentication, authorize, preauthorize):
   * only an MVPD the picker list offers (GET /v1/mvpds), else 400 unknown_mvpd — hidden and, while
   * `hide_temppass`, TempPass MVPDs included, whatever the upstream would allow.
   */
  async function requireOffered(device: AuthenticatedDevice, client: ClientAddress, id: string): Promise<void> {
    const { mvpds } = await configurationFor(device, client);
    if (!mvpds.some((m) => m.id === id && offered(m))) throw new Problem('unknown_mvpd', `"${id}" is not in this service's MVPD list (GET /v1/mvpds).`);
  }

  /**
   * AP-TempPass-Identity for the upstream calls about `mvpd`: checked (400 invalid_temppass_identity)
   * and kept only when `mvpd` is a TempPass MVPD of the upstream configuration; with any other MVPD
   * the viewer's identity is ignored, never forwarded. (The configuration does not tell promotional
   * from basic TempPass; a basic one does not use it.)
   */
  async function tempPassIdentityFor(device: AuthenticatedDevice, client: ClientAddress, mvpd: string, raw: string | undefined): Promise<string | undefined> {
    if (raw === undefined || raw === '') return undefined;
    const { mvpds } = await configurationFor(device, client);
    return mvpds.some((m) => m.id === mvpd && m.isTempPass) ? readTempPassIdentity(raw) : undefined;
  }

  /**
   * A code the upstream's session answer carries (authenticate/resume): kept as the device's current
   * sign-in, polled for like any other; undefined when the answer has no code.
   */
  async function issueCode(device: AuthenticatedDevice, client: ClientAddress, action: SessionAction, mvpd: string | undefined): Promise<Extract<StartOutcome, { kind: 'code' }> | undefined> {
    if ((action.actionName !== 'authenticate' && action.actionName !== 'resume') || !action.code) return undefined;
    const key = deviceKey(device.app.id, device.binding);
    const now = clock.now();
    const session: PendingSession = {
      code: action.code,
      appId: device.app.id,
      binding: device.binding,
      notAfter: action.notAfter ?? now + DEFAULT_SESSION_MS,
      createdAt: now,
      client: storedAddress(client),
      ...(mvpd ? { mvpd } : {}),
    };
    const ttl = ttlUntil(session.notAfter);
    await records.sessions.set(session.code, session, ttl);
    // adobe-pass.md §9: a new code invalidates the old session; its status now reads `expired`.
    const previous = await records.current.get(key);
    await records.current.set(key, session.code, ttl);
    if (previous && previous !== session.code) polling.unwatch(previous);
    if (mvpd) await rememberMvpd(device.app.id, device.binding, mvpd);
    return { kind: 'code', code: session.code, notAfter: session.notAfter };
  }

  /**
   * POST /v1/authentication: a code to show (authenticate/resume), or the profile (authorize).
   * `tempPassIdentity`: the app's AP-TempPass-Identity header as sent (see tempPassIdentityFor);
   * `ssoToken`: a platform/service token sent with the session and profile calls (sso.ts).
   */
  async function start(device: AuthenticatedDevice, client: ClientAddress, mvpd: string | undefined, tempPassIdentity?: string, ssoToken?: SsoToken): Promise<StartOutcome> {
    if (mvpd !== undefined) await requireOffered(device, client, mvpd);
    const ctx: DeviceContext = { ...contextOf(device, client), ...(ssoToken ? { ssoToken } : {}) };
    const key = deviceKey(device.app.id, device.binding);
    const params = { domainName: settings.domainName, redirectUrl: `${publicUrl()}/activate/done`, ...(mvpd ? { mvpd } : {}) };
    const action = await pass.pass.createSession(ctx, params).catch((err: unknown) => {
      throw asUnknownMvpd(err);
    });

    if (action.actionName === 'authorize') {
      // adobe-pass.md §4.2: already authenticated, TempPass or degraded — no code; read the profile.
      const chosen = action.mvpd ?? mvpd;
      if (!chosen) throw new Problem('upstream_rejected', 'The Pass service answered authorize without naming the MVPD.');
      await records.profiles.delete(key);
      // Profiles API sample 5 (rest-api-v2-profiles-apis-retrieve-profile-for-specific-mvpd.md): a
      // promotional TempPass profile is read with the viewer's identity; the session call takes none (sessions sample 4).
      const identity = await tempPassIdentityFor(device, client, chosen, tempPassIdentity);
      const profileCtx = identity !== undefined ? { ...ctx, tempPassIdentity: identity } : ctx;
      const profiles = validProfiles(await pass.pass.profileForMvpd(profileCtx, chosen), clock.now());
      const profile = profiles.find((p) => p.mvpd === chosen) ?? profiles[0];
      if (!profile) throw new Problem('authentication_required', 'The Pass service has no valid profile for this MVPD; start again.');
      await rememberMvpd(device.app.id, device.binding, chosen);
      return { kind: 'authenticated', profile };
    }

    const issued = await issueCode(device, client, action, mvpd);
    if (issued) return issued;
    throw new Problem('upstream_rejected', `The Pass service answered the session with an unexpected action (${action.actionName}).`);
  }

  return {
    /** GET /v1/mvpds: the picker list (hidden and, when configured, TempPass MVPDs left out). */
    async mvpds(device: AuthenticatedDevice, client: ClientAddress): Promise<PickerMvpd[]> {
      const { mvpds } = await configurationFor(device, client);
      return mvpds.filter(offered).map((m) => ({ id: m.id, displayName: m.displayName, ...(m.logoUrl ? { logoUrl: m.logoUrl } : {}) }));
    },

    requireOffered,
    tempPassIdentityFor,

    /** POST /v1/authentication (above). */
    start,

    /** Single sign-on (Apple partner SSO, platform identity and service tokens): sso.ts. */
    sso: createSsoSignin({
      pass,
      metrics,
      logger,
      clock,
      settings,
      publicUrl,
      contextOf,
      requireOffered,
      issueCode,
      adopt: async (device: AuthenticatedDevice, mvpd: string) => {
        // The new profile changes what GET /v1/profile and authorize see: the next read asks the upstream.
        await records.profiles.delete(deviceKey(device.app.id, device.binding));
        await rememberMvpd(device.app.id, device.binding, mvpd);
      },
      start: (device: AuthenticatedDevice, client: ClientAddress, mvpd: string | undefined, ssoToken: SsoToken) => start(device, client, mvpd, undefined, ssoToken),
    }),

    /** GET /v1/authentication/{code}: the status now, or after it changes / `waitSeconds` pass. */
    async status(device: AuthenticatedDevice, code: string, waitSeconds = 0, signal?: AbortSignal): Promise<SigninStatus> {
      const session = await ownedSession(device, code);
      const now = clock.now();
      const status = await statusOf(session, now);
      if (waitSeconds === 0 || status.status !== 'pending') return status;
      return polling.waitForChange(session, now + waitSeconds * 1000, signal);
    },

    /** GET …/events: every status change through `send`, keep-alives through `keepAlive`; resolves when done. */
    async follow(
      device: AuthenticatedDevice,
      code: string,
      listener: FollowListener,
      signal?: AbortSignal,
    ): Promise<void> {
      const session = await ownedSession(device, code);
      const status = await statusOf(session);
      listener.send(status);
      if (status.status !== 'pending') return;
      await polling.follow(session, listener, signal);
    },

    /**
     * The second screen's done page: the profile a code passgate issued led to, from the polling's
     * result or, before a poll found it, one upstream read as the device that asked for the code.
     * `issued: false` when passgate never issued (or already forgot) this code.
     */
    async codeProfile(code: string): Promise<{ issued: false } | { issued: true; profile?: CurrentProfile }> {
      const session = withBinding(await records.sessions.get(code));
      if (!session) return { issued: false };
      const result = await records.results.get(code);
      if (result?.status === 'authenticated') return { issued: true, profile: result.profile };
      const record = await pass.registry.get(session.appId, session.binding);
      if (!record || clock.now() >= session.notAfter) return { issued: true };
      try {
        const [profile] = validProfiles(await pass.pass.profileByCode({ device: record, client: session.client }, code), clock.now());
        return profile ? { issued: true, profile } : { issued: true };
      } catch (err) {
        // adobe-pass.md §4.6: an unknown or replaced session has no profile to show.
        if (err instanceof UpstreamProblem && ['invalid_authentication_session', 'invalid_parameter_code'].includes(err.info.code)) return { issued: true };
        throw err;
      }
    },

    /** The owner check for routes that only shape data (the QR code). */
    async session(device: AuthenticatedDevice, code: string): Promise<PendingSession> {
      return ownedSession(device, code);
    },

    /** GET /v1/profile: valid profiles, longest notAfter first (cached until notAfter). */
    profiles: profilesOf,

    async currentProfile(device: AuthenticatedDevice, client: ClientAddress): Promise<CurrentProfile | undefined> {
      return (await profilesOf(device, client))[0];
    },

    /** The MVPD the viewer last chose (persisted; checklist "configuration"). */
    chosenMvpd(appId: string, binding: string): Promise<PickerMvpd | undefined> {
      return records.chosenMvpd.get(deviceKey(appId, binding));
    },

    async refreshProfiles(appId: string, binding: string): Promise<void> {
      await records.profiles.delete(deviceKey(appId, binding));
    },

    /**
     * After an authorization (MVPDs may update profile attributes then, adobe-pass.md §4.6): the
     * profiles are read again in the background, so the answer does not wait for a second upstream
     * call; this replica's next read of the device waits for the new ones.
     */
    rereadProfiles,

    async forgetDevice(appId: string, binding: string): Promise<void> {
      const key = deviceKey(appId, binding);
      rereadAt.delete(key);
      const code = await records.current.get(key);
      await records.profiles.delete(key);
      await records.current.delete(key);
      if (code) {
        polling.unwatch(code);
        await records.sessions.delete(code);
        await records.results.delete(code);
        await records.waiting.delete(code);
      }
    },

    /** One step of fleet-wide polling and waiter delivery (a timer calls it; tests call it after moving the clock). */
    tick: () => polling.tick(),
    /** Apps waiting on this replica (long-polls and event streams). */
    localWaiters: () => polling.waiterCount(),
    /** Shutdown: waiting long-polls answer and event streams end now, with the current status. */
    release: () => polling.release(),
    close: async () => {
      await polling.close();
      // Before the store closes: a re-read still in flight writes its result.
      await Promise.all(rereads.values());
    },
  };
}

export type SigninService = ReturnType<typeof createSigninService>;
