import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { storeCall } from '../http/store-call.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import type { Store } from '../infra/store.js';

/**
 * Device secrets (SPEC §2): the proof that a `POST /v1/devices` renews an existing binding. A
 * secret is 32 random bytes (base64url), shown to the app once and kept only as its SHA-256:
 *   devices.secrets:<app>:<binding> → { v: 1, sha256: <hex> }   (never expires)
 * Secrets are high-entropy, so a plain hash is enough (no salt or slow KDF to defeat guessing).
 *
 * Which binding a secret proves needs no lookup table: the first binding of a device id has the
 * base64 fingerprint as its id; every later binding is `<fingerprint>.<tag>`, where the tag is
 * derived from its own secret (`bindingFor`). A presented secret therefore names at most two
 * candidates, each checked against its stored hash in constant time.
 */
export const SECRETS_NAMESPACE = 'devices.secrets';

const storedSecret = z.object({ v: z.literal(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
type StoredSecret = z.infer<typeof storedSecret>;

/** How long the claim of a binding's secret may be held (a few store calls). */
const CLAIM_LEASE_MS = 10_000;

const digest = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

/** A fresh device secret: 256 random bits. */
export const newDeviceSecret = () => randomBytes(32).toString('base64url');

/**
 * The id of the non-first binding whose secret this is: `<first binding>.<16 base64url chars>`
 * (96 bits of a domain-separated hash of the secret; no ':' so permit keys stay unambiguous).
 */
export function bindingFor(firstBinding: string, secret: string): string {
  const tag = createHash('sha256').update('passgate device binding\n', 'utf8').update(secret, 'utf8').digest('base64url').slice(0, 16);
  return `${firstBinding}.${tag}`;
}

/** True when `binding` is the first binding of the device id whose first binding is `firstBinding`, or one of its later ones. */
export const isBindingOf = (binding: string, firstBinding: string) =>
  binding === firstBinding || (binding.startsWith(`${firstBinding}.`) && !binding.includes(':', firstBinding.length));

export class DeviceSecrets {
  private readonly secrets;

  constructor(private readonly deps: { store: Store; clock: Clock; logger: Logger }) {
    this.secrets = deps.store.namespace<StoredSecret>(SECRETS_NAMESPACE);
  }

  /** Whether the binding has a secret (bindings registered before secrets existed have none). */
  async has(appId: string, binding: string): Promise<boolean> {
    return (await this.read(appId, binding)) !== undefined;
  }

  /** The binding of (app, device id) that `secret` proves, or undefined. */
  async find(appId: string, firstBinding: string, secret: string): Promise<string | undefined> {
    const candidates = [firstBinding, bindingFor(firstBinding, secret)];
    const presented = digest(secret);
    const stored = await Promise.all(candidates.map((binding) => this.read(appId, binding)));
    let found: string | undefined;
    // Both candidates are compared whatever the first answered.
    stored.forEach((record, i) => {
      if (record && timingSafeEqual(Buffer.from(record.sha256, 'hex'), presented)) found = candidates[i];
    });
    return found;
  }

  /**
   * Stores `secret` for the binding if it has none and `vacant()` still holds, atomically across
   * the fleet (a store lease per binding). False when the binding has a secret already, `vacant()`
   * says no, or another request is claiming it right now.
   */
  async claim(appId: string, binding: string, secret: string, vacant: () => Promise<boolean> = async () => true): Promise<boolean> {
    const leaseName = `device-secret:${appId}:${binding}`;
    const { clock, logger } = this.deps;
    const leases = this.deps.store.leases;
    const lease = await storeCall('acquire a lease', logger, () => leases.acquire(leaseName, CLAIM_LEASE_MS, clock.now()));
    if (lease === undefined) return false;
    try {
      if (await this.has(appId, binding)) return false;
      if (!(await vacant())) return false;
      await this.write(appId, binding, secret);
      return true;
    } finally {
      await leases.release(leaseName, lease).catch((err: unknown) => logger.warn({ err, lease: leaseName }, 'devices: releasing a lease failed'));
    }
  }

  /** Stores the secret of a binding nobody else can name (a fresh `bindingFor`). */
  async write(appId: string, binding: string, secret: string): Promise<void> {
    const record: StoredSecret = { v: 1, sha256: digest(secret).toString('hex') };
    await storeCall('write a device secret', this.deps.logger, () => this.secrets.set(`${appId}:${binding}`, record));
  }

  /** Undoes a claim whose registration failed upstream, if the binding still holds this secret. */
  async release(appId: string, binding: string, secret: string): Promise<void> {
    if ((await this.find(appId, binding.split('.')[0] ?? binding, secret)) !== binding) return;
    await storeCall('delete a device secret', this.deps.logger, () => this.secrets.delete(`${appId}:${binding}`));
  }

  private async read(appId: string, binding: string): Promise<StoredSecret | undefined> {
    const raw = await storeCall('read a device secret', this.deps.logger, () => this.secrets.get(`${appId}:${binding}`));
    if (raw === undefined) return undefined;
    const parsed = storedSecret.safeParse(raw);
    if (!parsed.success) {
      // Never treat it as absent: that would hand the binding to whoever asks next.
      this.deps.logger.error({ app: appId }, 'devices: a stored device secret has an unexpected shape');
      return { v: 1, sha256: '0'.repeat(64) };
    }
    return parsed.data;
  }
}
