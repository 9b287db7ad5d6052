import type { Keyv } from 'keyv';
import type { Clock } from '../infra/clock.js';
import { FleetL1Cache } from '../infra/l1-cache.js';
import type { Logger } from '../infra/logger.js';
import type { Store } from '../infra/store.js';
import { withBinding, type DrmDevice } from './users.js';

export interface Revocation {
  appId: string;
  binding: string;
  userId: string;
  /** `operator` (admin API) or `license_service` (it answered 7110 / 0x8004C065 for this device). */
  source: 'operator' | 'license_service';
  reason: string;
  at: number;
}

export interface AllowListing {
  appId: string;
  binding: string;
  userId: string;
  note: string;
  at: number;
}

export type RevocationStatus = 'revoked' | 'allowed' | 'ok';

const REVOCATION_CHANNEL = 'drm-revocations';
/** Index lists are bounded: revocations are operator-scale, not viewer-scale. */
const MAX_LISTED = 10_000;

const deviceKey = (device: DrmDevice) => `${device.appId}:${device.binding}`;

/**
 * Device revocation for DRM licenses (SPEC §4 Revocation (c)): devices an operator revokes or
 * the license service reports revoked get no more licenses, unless an operator allow-lists them.
 * Records live in the store (`drm-revocations`, `drm-allow-list`, each with an index of keys for
 * listing); an L1 keeps each device's status for `l1Ms`, purged fleet-wide on every change.
 */
export class DeviceRevocations {
  private readonly revoked: Keyv<Revocation>;
  private readonly allowed: Keyv<AllowListing>;
  private readonly index: Keyv<string[]>;
  private readonly l1: FleetL1Cache<RevocationStatus>;

  constructor(
    store: Store,
    private readonly clock: Clock,
    l1Ms: number,
    logger: Logger,
  ) {
    this.revoked = store.namespace<Revocation>('drm-revocations');
    this.allowed = store.namespace<AllowListing>('drm-allow-list');
    this.index = store.namespace<string[]>('drm-revocation-index');
    this.l1 = new FleetL1Cache<RevocationStatus>(store, clock, l1Ms, REVOCATION_CHANNEL, logger);
  }

  start(): Promise<void> {
    return this.l1.start();
  }

  stop(): Promise<void> {
    return this.l1.stop();
  }

  /** Store errors propagate: the gate fails closed. */
  async status(device: DrmDevice): Promise<RevocationStatus> {
    const key = deviceKey(device);
    const cached = this.l1.get(key);
    if (cached) return cached;
    return this.l1.load(
      key,
      async (): Promise<RevocationStatus> => {
        const [revocation, allowed] = await Promise.all([this.revoked.get(key), this.allowed.get(key)]);
        return revocation ? (allowed ? 'allowed' : 'revoked') : 'ok';
      },
      (status) => ({ value: status }),
    );
  }

  async revocation(device: DrmDevice): Promise<Revocation | undefined> {
    return withBinding<Revocation>(await this.revoked.get(deviceKey(device)));
  }

  async revoke(device: DrmDevice & { userId: string }, source: Revocation['source'], reason: string): Promise<Revocation> {
    const record: Revocation = { appId: device.appId, binding: device.binding, userId: device.userId, source, reason, at: this.clock.now() };
    await this.revoked.set(deviceKey(device), record);
    await this.addToIndex('revoked', deviceKey(device));
    await this.changed(device);
    return record;
  }

  /** True when there was a revocation to lift. */
  async unrevoke(device: DrmDevice): Promise<boolean> {
    const existed = await this.revoked.delete(deviceKey(device));
    await this.removeFromIndex('revoked', deviceKey(device));
    await this.changed(device);
    return existed;
  }

  async allow(device: DrmDevice & { userId: string }, note: string): Promise<AllowListing> {
    const record: AllowListing = { appId: device.appId, binding: device.binding, userId: device.userId, note, at: this.clock.now() };
    await this.allowed.set(deviceKey(device), record);
    await this.addToIndex('allowed', deviceKey(device));
    await this.changed(device);
    return record;
  }

  async disallow(device: DrmDevice): Promise<boolean> {
    const existed = await this.allowed.delete(deviceKey(device));
    await this.removeFromIndex('allowed', deviceKey(device));
    await this.changed(device);
    return existed;
  }

  async list(): Promise<{ revoked: Revocation[]; allowed: AllowListing[] }> {
    const [revokedKeys, allowedKeys] = await Promise.all([this.index.get('revoked'), this.index.get('allowed')]);
    const revoked = revokedKeys?.length ? await this.revoked.getMany(revokedKeys) : [];
    const allowed = allowedKeys?.length ? await this.allowed.getMany(allowedKeys) : [];
    return {
      revoked: revoked.map((r) => withBinding<Revocation>(r)).filter((r): r is Revocation => r !== undefined),
      allowed: allowed.map((a) => withBinding<AllowListing>(a)).filter((a): a is AllowListing => a !== undefined),
    };
  }

  private async addToIndex(list: 'revoked' | 'allowed', key: string): Promise<void> {
    const keys = (await this.index.get(list)) ?? [];
    if (!keys.includes(key)) await this.index.set(list, [...keys, key].slice(-MAX_LISTED));
  }

  private async removeFromIndex(list: 'revoked' | 'allowed', key: string): Promise<void> {
    const keys = (await this.index.get(list)) ?? [];
    if (keys.includes(key)) await this.index.set(list, keys.filter((k) => k !== key));
  }

  private async changed(device: DrmDevice): Promise<void> {
    await this.l1.purge({ key: deviceKey(device) });
  }
}
