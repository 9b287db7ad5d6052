import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { Singleflight } from '../infra/singleflight.js';
import type { LeaseStore } from '../infra/store.js';
import { coalesce, leasedOnce, type CoordinationOptions } from './coordination.js';
import { isInvalidClient, type DcrCalls } from './dcr.js';
import type { PassMetrics, TokenOutcome, TokenReason } from './metrics.js';
import { deviceKey, type AccessToken, type DeviceRecord, type TokenRecords } from './records.js';
import { setNewest } from '../infra/bounded-map.js';

/**
 * Token refresh policy (SPEC §6, checklist "registration" rows):
 * - a token is usable until `expiresAt − skew`;
 * - from `refreshAhead` before that, it is still used but a refresh starts in the background;
 * - past it, the call waits for a new token.
 * Both windows are clamped for short-lived tokens (skew ≤ ½ lifetime, refresh-ahead ≤ ½ of what
 * is left), so a short `expires_in` never makes every call fetch a token.
 */
export type TokenState = 'fresh' | 'refresh-ahead' | 'expired';

export interface TokenPolicy {
  skewMs: number;
  refreshAheadMs: number;
}

export function tokenPolicy(dcr: Config['dcr']): TokenPolicy {
  return { skewMs: dcr.tokenExpirySkewSeconds * 1000, refreshAheadMs: dcr.tokenRefreshAheadSeconds * 1000 };
}

export function tokenWindows(token: Pick<AccessToken, 'obtainedAt' | 'expiresAt'>, policy: TokenPolicy): { refreshFrom: number; usableUntil: number } {
  const lifetime = Math.max(0, token.expiresAt - token.obtainedAt);
  const usableUntil = token.expiresAt - Math.min(policy.skewMs, lifetime / 2);
  const refreshFrom = usableUntil - Math.min(policy.refreshAheadMs, (usableUntil - token.obtainedAt) / 2);
  return { refreshFrom, usableUntil };
}

export function tokenState(token: Pick<AccessToken, 'obtainedAt' | 'expiresAt'>, now: number, policy: TokenPolicy): TokenState {
  const { refreshFrom, usableUntil } = tokenWindows(token, policy);
  if (now >= usableUntil) return 'expired';
  return now >= refreshFrom ? 'refresh-ahead' : 'fresh';
}

const L1_MAX_ENTRIES = 10_000;

export interface AccessTokensDeps {
  dcr: DcrCalls;
  records: TokenRecords;
  leases: LeaseStore;
  clock: Clock;
  policy: TokenPolicy;
  metrics: PassMetrics;
  logger: Logger;
  coordination: CoordinationOptions;
}

/**
 * Access tokens per device: an in-process L1 in front of the store, one token call per device
 * at a time across the fleet (Singleflight + a store lease `pass-token:<app>:<fp>`).
 */
export class AccessTokens {
  private readonly l1 = new Map<string, AccessToken>();
  private readonly flights = new Singleflight<AccessToken | undefined>();
  private readonly background = new Set<Promise<unknown>>();

  constructor(private readonly deps: AccessTokensDeps) {}

  /**
   * A usable access token for the device. `rejected`: the token the upstream just answered 401
   * to — a different one is fetched (reason `unauthorized`), unless another caller already did.
   */
  async get(record: DeviceRecord, client: ClientAddress, options: { rejected?: string } = {}): Promise<string> {
    const key = deviceKey(record.appId, record.binding);
    if (options.rejected !== undefined) {
      this.dropL1(key, options.rejected);
      return (await this.refresh(record, client, 'unauthorized', options.rejected)).accessToken;
    }
    const now = this.deps.clock.now();
    let token = this.fromL1(key, record.clientId);
    if (!token || tokenState(token, now, this.deps.policy) !== 'fresh') {
      // Another replica may have refreshed it: the store is the truth, the L1 only a shortcut.
      const stored = await this.deps.records.read(key, record.clientId);
      if (stored && (!token || stored.expiresAt > token.expiresAt)) token = this.remember(key, stored);
    }
    if (token) {
      const state = tokenState(token, now, this.deps.policy);
      if (state === 'fresh') return token.accessToken;
      if (state === 'refresh-ahead') {
        this.refreshInBackground(record, client, token);
        return token.accessToken;
      }
    }
    return (await this.refresh(record, client, token ? 'expired' : 'initial')).accessToken;
  }

  /** Forgets the device's token here and in the store (its credentials are gone). */
  async forget(key: string): Promise<void> {
    this.l1.delete(key);
    await this.deps.records.delete(key);
  }

  /** Resolves once no background refresh is running (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private refreshInBackground(record: DeviceRecord, client: ClientAddress, current: AccessToken): void {
    const work = this.refresh(record, client, 'proactive', undefined, current).catch((err: unknown) =>
      this.deps.logger.warn({ err, app: record.appId }, 'pass: proactive access token refresh failed; the current token is still used'),
    );
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }

  /** One refresh per device and kind at a time in this process; across processes via the lease. */
  private async refresh(record: DeviceRecord, client: ClientAddress, reason: TokenReason, rejected?: string, current?: AccessToken): Promise<AccessToken> {
    const key = deviceKey(record.appId, record.binding);
    // Waiting callers never join a background refresh (it returns early when another process refreshes).
    const flight = reason === 'proactive' ? `${key}|proactive` : reason === 'unauthorized' ? `${key}|401|${digest(rejected ?? '')}` : `${key}|needed`;
    const acceptable = (t: AccessToken | undefined): t is AccessToken => {
      if (!t || t.accessToken === rejected) return false;
      const state = tokenState(t, this.deps.clock.now(), this.deps.policy);
      return reason === 'proactive' ? state === 'fresh' : state !== 'expired';
    };
    const token = await coalesce(this.flights, flight, 'token', this.deps.metrics, () =>
      leasedOnce<AccessToken | undefined>({
        leases: this.deps.leases,
        clock: this.deps.clock,
        logger: this.deps.logger,
        options: this.deps.coordination,
        leaseName: `pass-token:${key}`,
        what: 'an access token refresh',
        lookup: async () => {
          const stored = await this.deps.records.read(key, record.clientId);
          return acceptable(stored) ? this.remember(key, stored) : undefined;
        },
        work: () => this.fetch(record, client, reason),
        // A background refresh does not wait for another process's: it only wanted a newer token.
        onBusy: () => (reason === 'proactive' ? current : undefined),
      }),
    );
    if (!token) throw new Problem('upstream_unavailable', 'No access token is available for this device; retry shortly.', { headers: { 'Retry-After': '1' } });
    return token;
  }

  /** The token call itself (lease held). */
  private async fetch(record: DeviceRecord, client: ClientAddress, reason: TokenReason): Promise<AccessToken> {
    const key = deviceKey(record.appId, record.binding);
    const obtainedAt = this.deps.clock.now();
    let issued;
    try {
      issued = await this.deps.dcr.token(record, record.deviceInfo, client);
    } catch (err) {
      this.deps.metrics.tokenRequests.inc({ app: record.appId, reason, outcome: tokenOutcome(err) });
      if (isInvalidClient(err)) {
        // adobe-pass.md §2.3: "the client needs to obtain new client credentials" — the registry
        // registers the device again (reregistration.ts) and asks for a token of the new client.
        this.deps.logger.warn({ app: record.appId }, 'pass: the upstream no longer knows this device\'s client credentials (invalid_client)');
      }
      throw err;
    }
    this.deps.metrics.tokenRequests.inc({ app: record.appId, reason, outcome: 'ok' });
    const token: AccessToken = {
      accessToken: issued.accessToken,
      clientId: record.clientId,
      obtainedAt,
      expiresAt: obtainedAt + issued.expiresInSeconds * 1000,
    };
    this.remember(key, token);
    await this.deps.records.write(key, token, this.deps.clock.now());
    return token;
  }

  private fromL1(key: string, clientId: string): AccessToken | undefined {
    const token = this.l1.get(key);
    return token && token.clientId === clientId ? token : undefined;
  }

  private remember(key: string, token: AccessToken): AccessToken {
    setNewest(this.l1, key, token, L1_MAX_ENTRIES);
    return token;
  }

  private dropL1(key: string, accessToken: string): void {
    if (this.l1.get(key)?.accessToken === accessToken) this.l1.delete(key);
  }
}

function tokenOutcome(err: unknown): TokenOutcome {
  if (isInvalidClient(err)) return 'invalid_client';
  if (!(err instanceof Problem)) return 'error';
  switch (err.code) {
    case 'upstream_throttled':
      return 'throttled';
    case 'upstream_unavailable':
      return 'unavailable';
    case 'upstream_rejected':
    case 'upstream_misconfigured':
      return 'rejected';
    default:
      return 'error';
  }
}

/** Singleflight keys hold no secret: a rejected token is named by a digest. */
function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 16);
}
