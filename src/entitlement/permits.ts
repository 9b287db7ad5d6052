import type { Keyv } from 'keyv';
import type { Clock } from '../infra/clock.js';
import { setNewest } from '../infra/bounded-map.js';
import { FleetL1Cache } from '../infra/l1-cache.js';
import type { Logger } from '../infra/logger.js';
import type { Store } from '../infra/store.js';

/** What the DRM gate checks before any license token (SPEC §4): a live upstream Permit. */
export interface Permit {
  appId: string;
  binding: string;
  resource: string;
  mvpd: string;
  /** The decision's source: mvpd, degradation, temppass, dummy. */
  source: string;
  notBefore: number;
  notAfter: number;
  /** When the authorize call that produced it started (epoch ms): a logout after that revokes it. */
  requestedAt: number;
}

/**
 * Why there is no live Permit, so that a refusal can say so: never had one (`absent`), its
 * `notAfter` passed (`expired`), the device logged out or was purged by a notification
 * (`logged_out`), the upstream's latest answer was a Deny (`denied`), or it starts later.
 */
export type PermitLookup =
  | { state: 'live'; permit: Permit }
  | { state: 'expired'; permit: Permit }
  | { state: 'not_yet_valid'; permit: Permit }
  | { state: 'logged_out' }
  | { state: 'denied' }
  | { state: 'absent' };

/**
 * The one rule for whether a Permit record licenses now: inside [notBefore, notAfter), not
 * requested before the device's last logout/purge, not older than a Deny for its resource.
 */
export function permitState(permit: Permit, now: number, marks: { revokedAt?: number | undefined; deniedAt?: number | undefined } = {}): PermitLookup['state'] {
  if (marks.revokedAt !== undefined && permit.requestedAt <= marks.revokedAt) return 'logged_out';
  if (marks.deniedAt !== undefined && permit.requestedAt <= marks.deniedAt) return 'denied';
  if (now >= permit.notAfter) return 'expired';
  if (now < permit.notBefore) return 'not_yet_valid';
  return 'live';
}

const deviceKey = (appId: string, binding: string) => `${appId}:${binding}`;
// The resource is last: app ids and binding ids hold no ':', so the key stays unambiguous.
const permitKey = (appId: string, binding: string, resource: string) => `${deviceKey(appId, binding)}:${resource}`;

/** An expired record is kept this much longer, only so that a refusal can say "expired" rather than "none". */
const EXPIRED_RETENTION_MS = 10 * 60_000;
/** A pair seen in the index is read again after this long (well inside the index's own lifetime). */
const INDEX_REFRESH_MS = 60_000;
const MAX_INDEXED = 50_000;
/** The fleet-wide channel on which purges travel (every replica drops its L1 copies). */
export const PERMIT_PURGE_CHANNEL = 'permit-purges';

/**
 * Permit records in the shared store (SPEC §4 "Permit cache"):
 * - `permits` `<app>:<binding>:<resource>` → Permit, kept until its notAfter (+ a short retention);
 * - `permit-index` `<app>:<binding>` → the resources with a record (for the logout purge);
 * - `permit-revocations` `<app>:<binding>` → epoch ms of the last logout/purge: permits requested
 *   at or before it are dead even if the index missed them (concurrent writes may lose an index entry);
 * - `permit-denials` `<app>:<binding>:<resource>` → epoch ms of the last Deny for it.
 * Store errors propagate (keyv throwOnErrors): "cannot read" is never a Permit.
 *
 * In front of the store, an in-process L1 holds live Permits only (never an absence), each at
 * most `l1Ms` and never past its notAfter. A purge (logout, Deny, notification) drops the local
 * copies at once and is published on PERMIT_PURGE_CHANNEL so every replica drops its own; a
 * replica that misses the message (disconnected subscriber) serves a purged Permit for at most
 * `l1Ms` — the documented staleness bound.
 */
export class PermitStore {
  private readonly permits: Keyv<Permit>;
  private readonly index: Keyv<string[]>;
  private readonly revocations: Keyv<number>;
  private readonly denials: Keyv<number>;
  private readonly l1: FleetL1Cache<Permit>;
  /** (device, resource) pairs this replica put in the index, and when (bounded). */
  private readonly indexedAt = new Map<string, number>();

  constructor(
    store: Store,
    private readonly clock: Clock,
    private readonly capMs: number,
    options: { l1Ms?: number; logger: Logger },
  ) {
    this.permits = store.namespace<Permit>('permits');
    this.index = store.namespace<string[]>('permit-index');
    this.revocations = store.namespace<number>('permit-revocations');
    this.denials = store.namespace<number>('permit-denials');
    this.l1 = new FleetL1Cache<Permit>(store, clock, options.l1Ms ?? 0, PERMIT_PURGE_CHANNEL, options.logger);
  }

  /** Listens for purges published by other replicas. */
  start(): Promise<void> {
    return this.l1.start();
  }

  stop(): Promise<void> {
    return this.l1.stop();
  }

  /**
   * Writes the Permit unless it is already over; its lifetime is its notAfter, never beyond
   * permitCapMs from now (the cap also stands in when the decision has no notAfter).
   * Returns the record written, or undefined when there was nothing to write.
   */
  async write(fields: Omit<Permit, 'notAfter' | 'notBefore'> & { notBefore?: number; notAfter?: number }): Promise<Permit | undefined> {
    const now = this.clock.now();
    const notAfter = Math.min(fields.notAfter ?? Number.POSITIVE_INFINITY, now + this.capMs);
    if (notAfter <= now) return undefined;
    const permit: Permit = { ...fields, notBefore: fields.notBefore ?? now, notAfter };
    const { appId, binding, resource } = permit;
    const key = permitKey(appId, binding, resource);
    // In parallel: the index only serves a logout's clean-up (the revocation mark decides), so it
    // need not be written before the record. A copy of an earlier Permit in some replica's L1 stays
    // valid until its own notAfter: nothing to purge.
    await Promise.all([this.indexed(appId, binding, resource), this.permits.set(key, permit, notAfter - now + EXPIRED_RETENTION_MS), this.denials.delete(key)]);
    return permit;
  }

  /** Adds `resource` to the device's index unless this replica saw it there within the index's lifetime. */
  private async indexed(appId: string, binding: string, resource: string): Promise<void> {
    const key = deviceKey(appId, binding);
    const seen = `${key}:${resource}`;
    const at = this.indexedAt.get(seen);
    // Skipping a write is safe even if a logout emptied the index meanwhile: the revocation mark kills
    // every Permit requested before that logout, and a record the index missed still expires.
    if (at !== undefined && this.clock.now() - at < INDEX_REFRESH_MS) return;
    const resources = (await this.index.get(key)) ?? [];
    if (!resources.includes(resource)) await this.index.set(key, [...resources, resource], this.capMs + EXPIRED_RETENTION_MS);
    setNewest(this.indexedAt, seen, this.clock.now(), MAX_INDEXED);
  }

  /** The Permit's state for (device, resource); L1 first, then the store. */
  async lookup(appId: string, binding: string, resource: string): Promise<PermitLookup & { cached: boolean }> {
    const key = permitKey(appId, binding, resource);
    const now = this.clock.now();
    const cached = this.l1.get(key);
    if (cached && permitState(cached, now) === 'live') return { state: 'live', permit: cached, cached: true };

    return this.l1.load(
      key,
      async (): Promise<PermitLookup & { cached: boolean }> => {
        const [permit, revokedAt, deniedAt] = await Promise.all([
          this.permits.get(key),
          this.revocations.get(deviceKey(appId, binding)),
          this.denials.get(key),
        ]);
        if (permit) {
          const state = permitState(permit, now, { revokedAt, deniedAt });
          return state === 'logged_out' || state === 'denied' ? { state, cached: false } : { state, permit, cached: false };
        }
        if (deniedAt !== undefined && (revokedAt === undefined || deniedAt > revokedAt)) return { state: 'denied', cached: false };
        if (revokedAt !== undefined) return { state: 'logged_out', cached: false };
        return { state: 'absent', cached: false };
      },
      (found) => (found.state === 'live' ? { value: found.permit, validUntil: found.permit.notAfter } : undefined),
    );
  }

  /** The live Permit, or undefined (absent, expired by the injected clock, revoked by a logout, denied). */
  async live(appId: string, binding: string, resource: string): Promise<Permit | undefined> {
    const found = await this.lookup(appId, binding, resource);
    return found.state === 'live' ? found.permit : undefined;
  }

  /** The upstream's latest answer for (device, resource) is a Deny: any earlier Permit for it dies now. */
  async deny(appId: string, binding: string, resource: string): Promise<void> {
    const key = permitKey(appId, binding, resource);
    // Local copies go first: even if a store write below fails, this replica stops licensing.
    await this.l1.purge({ key });
    await Promise.all([this.denials.set(key, this.clock.now(), this.capMs + EXPIRED_RETENTION_MS), this.permits.delete(key)]);
  }

  /** Logout or notification: every Permit of the device dies now (records deleted, and a revocation mark for stragglers). */
  async purgeDevice(appId: string, binding: string): Promise<number> {
    const key = deviceKey(appId, binding);
    await this.l1.purge({ prefix: `${key}:` });
    // The mark outlives every Permit requested before it (none lives longer than the cap).
    await this.revocations.set(key, this.clock.now(), this.capMs + EXPIRED_RETENTION_MS);
    const resources = (await this.index.get(key)) ?? [];
    if (resources.length > 0) await this.permits.deleteMany(resources.map((resource) => permitKey(appId, binding, resource)));
    await this.index.delete(key);
    return resources.length;
  }
}
