import { createHmac } from 'node:crypto';
import { setNewest } from '../infra/bounded-map.js';
import type { Keyv } from 'keyv';
import type { Keyring } from '../infra/keyring.js';
import type { Store } from '../infra/store.js';

/** A device binding as the DRM side names it (devices/service.ts AuthenticatedDevice). */
export interface DrmDevice {
  appId: string;
  binding: string;
}

/** Records stored before device bindings name the device `fingerprint`: the id of its first binding. */
export function withBinding<T extends { binding: string }>(stored: (T & { fingerprint?: string }) | undefined): T | undefined {
  if (!stored || typeof stored.binding === 'string') return stored;
  const { fingerprint, ...rest } = stored;
  return typeof fingerprint === 'string' ? ({ ...rest, binding: fingerprint } as unknown as T) : undefined;
}

/** How long the user id → device link is kept after its last use (callbacks and 7110 reports come soon after). */
const LINK_TTL_MS = 7 * 86_400_000;
const MAX_USER_IDS = 50_000;
/** A replica rewrites a link it already wrote only after this long (keeps the hot path free of store writes). */
const RELINK_AFTER_MS = 86_400_000;

/**
 * The `user_id` passgate puts in license tokens (drm.md §1.2: at most 32 alphanumeric
 * characters): 32 hex characters of HMAC-SHA256(keyring-derived key, app:binding). It names
 * the device binding to the license service without revealing its fingerprint (a first binding's
 * id is its fingerprint, so user ids issued before bindings stay the same); the store keeps the
 * reverse link (`drm-users`) so that a callback or a revocation report finds the device.
 * A keyring rotation gives devices new user ids (links written before stay valid for their TTL).
 */
export class DrmUsers {
  private readonly key: Buffer;
  private readonly links: Keyv<DrmDevice>;
  private readonly written = new Map<string, number>();
  /** user ids already computed, by app:binding (a pure function of them; bounded). */
  private readonly userIds = new Map<string, string>();

  constructor(
    store: Store,
    keyring: Keyring,
    private readonly now: () => number,
  ) {
    this.key = keyring.derive('drm-user-id').active.key;
    this.links = store.namespace<DrmDevice>('drm-users');
  }

  userIdOf(device: DrmDevice): string {
    const subject = `${device.appId}:${device.binding}`;
    let userId = this.userIds.get(subject);
    if (userId === undefined) {
      userId = createHmac('sha256', this.key).update(subject).digest('hex').slice(0, 32);
      setNewest(this.userIds, subject, userId, MAX_USER_IDS);
    }
    return userId;
  }

  /** The user id, with its reverse link written (at most once a day per replica). */
  async link(device: DrmDevice): Promise<string> {
    const userId = this.userIdOf(device);
    const last = this.written.get(userId);
    if (last === undefined || this.now() - last > RELINK_AFTER_MS) {
      await this.links.set(userId, { appId: device.appId, binding: device.binding }, LINK_TTL_MS);
      if (this.written.size > 100_000) this.written.clear();
      this.written.set(userId, this.now());
    }
    return userId;
  }

  /** The device behind a user id, or undefined (unknown, or its link expired). */
  async find(userId: string): Promise<DrmDevice | undefined> {
    if (!/^[0-9a-f]{32}$/.test(userId)) return undefined;
    return withBinding<DrmDevice>(await this.links.get(userId));
  }
}
