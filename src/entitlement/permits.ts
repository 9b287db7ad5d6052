import type { Keyv } from 'keyv';
import type { Clock } from '../infra/clock.js';
import type { Store } from '../infra/store.js';

/** What the DRM gate checks before any license token (SPEC §4): a live upstream Permit. */
export interface Permit {
  appId: string;
  fingerprint: string;
  resource: string;
  mvpd: string;
  /** The decision's source: mvpd, degradation, temppass, dummy. */
  source: string;
  notBefore: number;
  notAfter: number;
  /** When the authorize call that produced it started (epoch ms): a logout after that revokes it. */
  requestedAt: number;
}

const deviceKey = (appId: string, fingerprint: string) => `${appId}:${fingerprint}`;
// The resource is last: app ids and base64 fingerprints hold no ':', so the key stays unambiguous.
const permitKey = (appId: string, fingerprint: string, resource: string) => `${deviceKey(appId, fingerprint)}:${resource}`;

/**
 * Permit records in the shared store (SPEC §4 "Permit cache"):
 * - `permits` `<app>:<fingerprint>:<resource>` → Permit, TTL until its notAfter;
 * - `permit-index` `<app>:<fingerprint>` → the resources with a record (for the logout purge);
 * - `permit-revocations` `<app>:<fingerprint>` → epoch ms of the last logout: permits requested
 *   at or before it are dead even if the index missed them (concurrent writes may lose an index entry).
 * Store errors propagate (keyv throwOnErrors): "cannot read" is never a Permit.
 */
export class PermitStore {
  private readonly permits: Keyv<Permit>;
  private readonly index: Keyv<string[]>;
  private readonly revocations: Keyv<number>;

  constructor(
    store: Store,
    private readonly clock: Clock,
    private readonly capMs: number,
  ) {
    this.permits = store.namespace<Permit>('permits');
    this.index = store.namespace<string[]>('permit-index');
    this.revocations = store.namespace<number>('permit-revocations');
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
    const { appId, fingerprint, resource } = permit;
    const resources = (await this.index.get(deviceKey(appId, fingerprint))) ?? [];
    if (!resources.includes(resource)) {
      await this.index.set(deviceKey(appId, fingerprint), [...resources, resource], this.capMs);
    }
    await this.permits.set(permitKey(appId, fingerprint, resource), permit, notAfter - now);
    return permit;
  }

  /** The live Permit, or undefined (absent, expired by the injected clock, or revoked by a logout). */
  async live(appId: string, fingerprint: string, resource: string): Promise<Permit | undefined> {
    const [permit, revokedAt] = await Promise.all([
      this.permits.get(permitKey(appId, fingerprint, resource)),
      this.revocations.get(deviceKey(appId, fingerprint)),
    ]);
    if (!permit) return undefined;
    const now = this.clock.now();
    if (now >= permit.notAfter || now < permit.notBefore) return undefined;
    if (revokedAt !== undefined && permit.requestedAt <= revokedAt) return undefined;
    return permit;
  }

  /** Logout: every Permit of the device dies now (records deleted, and a revocation mark for stragglers). */
  async purgeDevice(appId: string, fingerprint: string): Promise<number> {
    const key = deviceKey(appId, fingerprint);
    // The mark outlives every Permit requested before it (none lives longer than the cap).
    await this.revocations.set(key, this.clock.now(), this.capMs);
    const resources = (await this.index.get(key)) ?? [];
    if (resources.length > 0) await this.permits.deleteMany(resources.map((resource) => permitKey(appId, fingerprint, resource)));
    await this.index.delete(key);
    return resources.length;
  }
}
