import { z } from 'zod';
import type { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import { SealedBox, type Keyring } from '../infra/keyring.js';
import { FleetL1Cache } from '../infra/l1-cache.js';
import type { Logger } from '../infra/logger.js';
import type { Store } from '../infra/store.js';
import { storeCall, storeUnavailable } from '../http/store-call.js';

/**
 * What passgate keeps per device binding in the store. Key layout (keyv namespaces, under the store's prefix):
 *   pass.devices:<appId>:<binding>  → the DCR client of that binding (never expires)
 *   pass.tokens:<appId>:<binding>   → its access token (TTL = until expiresAt)
 * A binding (SPEC §2) is one registration of (app, deviceId) with its own DCR client. Its id has
 * no ':'; the first binding of a device has the base64 fingerprint as its id (so records written
 * before bindings existed are that binding), later ones `<fingerprint base64>.<tag>`.
 * Secrets (client_secret, access_token) are sealed with SealedBox(keyring.derive('store')),
 * bound to the record key, so they are unreadable at rest and cannot be moved to another record.
 */

export const DEVICES_NAMESPACE = 'pass.devices';
export const TOKENS_NAMESPACE = 'pass.tokens';

/** A device registered with DCR, secrets opened (in memory only). */
export interface DeviceRecord {
  appId: string;
  /** passgate's id of this binding (the record key's last part); never sent upstream. */
  binding: string;
  /** The `AP-Device-Identifier` value, `fingerprint <base64>`: the same for every binding of a device id. */
  fingerprint: string;
  /** X-Device-Info keys the app registered (without connectionIp/Port: those are per request). */
  deviceInfo: Record<string, unknown>;
  clientId: string;
  clientSecret: string;
  /** Epoch ms. */
  registeredAt: number;
}

export interface AccessToken {
  accessToken: string;
  /** The DCR client it was issued to: a token of replaced credentials is never used. */
  clientId: string;
  /** Epoch ms, passgate's clock. */
  obtainedAt: number;
  /** obtainedAt + expires_in·1000. */
  expiresAt: number;
}

const storedDevice = z.object({
  v: z.literal(1),
  appId: z.string(),
  fingerprint: z.string(),
  deviceInfo: z.record(z.string(), z.unknown()),
  clientId: z.string(),
  sealedClientSecret: z.string(),
  registeredAt: z.number(),
});
type StoredDevice = z.infer<typeof storedDevice>;

const storedToken = z.object({
  v: z.literal(1),
  clientId: z.string(),
  sealedAccessToken: z.string(),
  obtainedAt: z.number(),
  expiresAt: z.number(),
});
type StoredToken = z.infer<typeof storedToken>;

/** `<appId>:<binding>`: the record key of a binding (also names its leases); a `fingerprint <b64>` header value names the first binding. */
export function deviceKey(appId: string, binding: string): string {
  return `${appId}:${binding.replace(/^fingerprint /, '')}`;
}

/** The id of a device id's first binding: the base64 part of its `fingerprint <base64>`. */
export const firstBindingOf = (fingerprint: string) => fingerprint.replace(/^fingerprint /, '');

/** The channel on which replicas tell each other to drop a cached device record. */
export const DEVICE_RECORD_PURGE_CHANNEL = 'pass-device-purges';

export class DeviceRecords {
  private readonly box: SealedBox;
  private readonly devices;
  /**
   * Records recently read, so that a /v1 request (its device token names the binding) reads the
   * store only once per `l1Ms` per device and replica. Every write or delete purges the record on
   * every replica (a re-registration's new credentials are seen at once); one that missed the
   * purge serves the old record for at most `l1Ms`, which the re-registration path already survives
   * (its upstream call fails invalid_client and finds the replacement in the store).
   */
  private readonly l1: FleetL1Cache<DeviceRecord>;

  constructor(private readonly deps: { store: Store; keyring: Keyring; logger: Logger; clock: Clock; l1Ms: number }) {
    this.box = new SealedBox(deps.keyring.derive('store'));
    this.devices = deps.store.namespace<StoredDevice>(DEVICES_NAMESPACE);
    this.l1 = new FleetL1Cache<DeviceRecord>(deps.store, deps.clock, deps.l1Ms, DEVICE_RECORD_PURGE_CHANNEL, deps.logger);
  }

  /** Listens for other replicas' purges. */
  start(): Promise<void> {
    return this.l1.start();
  }

  stop(): Promise<void> {
    return this.l1.stop();
  }

  private sealedFor(key: string): string {
    return `${DEVICES_NAMESPACE}:${key}`;
  }

  async read(appId: string, binding: string): Promise<DeviceRecord | undefined> {
    const key = deviceKey(appId, binding);
    const cached = this.l1.get(key);
    if (cached) return cached;
    // A record re-sealed on this read was written (and purged) by it: cached from the next read on.
    const found = await this.l1.load(key, () => this.readStored(appId, binding, key), (read) => (read && !read.resealed ? { value: read.record } : undefined));
    return found?.record;
  }

  private async readStored(appId: string, binding: string, key: string): Promise<{ record: DeviceRecord; resealed: boolean } | undefined> {
    const raw = await storeCall('read device', this.deps.logger, () => this.devices.get(key));
    if (raw === undefined) return undefined;
    const parsed = storedDevice.safeParse(raw);
    let stale: boolean;
    try {
      if (!parsed.success) throw new Error('record does not have the expected shape');
      // Only the shape and the key here: the secret is opened when an upstream token call needs it.
      ({ stale } = this.box.inspect(parsed.data.sealedClientSecret));
    } catch (err) {
      throw this.unreadable(err, appId);
    }
    const { sealedClientSecret } = parsed.data;
    const record = withSealedSecret(
      {
        appId: parsed.data.appId,
        binding: binding.replace(/^fingerprint /, ''),
        fingerprint: parsed.data.fingerprint,
        deviceInfo: parsed.data.deviceInfo,
        clientId: parsed.data.clientId,
        registeredAt: parsed.data.registeredAt,
      },
      () => {
        try {
          return this.box.open(sealedClientSecret, this.sealedFor(key)).plaintext;
        } catch (err) {
          throw this.unreadable(err, appId);
        }
      },
    );
    if (stale) {
      // Key rotation: re-seal with the active key on read (keyring.ts).
      await this.write(record).catch((err: unknown) => this.deps.logger.warn({ err, app: appId }, 'pass: re-sealing a device record failed'));
    }
    return { record, resealed: stale };
  }

  /**
   * Never re-register over an unreadable record: that would silently log the viewer out (adobe-pass.md §2.1).
   * A 503 with Retry-After, not a 500: the usual cause is a replica whose keyring lacks a key another
   * replica already seals with (a rotation rolled out in one step, README "Keys"); a retry may reach
   * a replica that has it, and the record stays intact for when this one does.
   */
  private unreadable(err: unknown, appId: string): Problem {
    this.deps.logger.error({ err, app: appId }, 'pass: a stored device record cannot be opened (keyring missing the key it was sealed with?)');
    return storeUnavailable('The stored credentials of this device cannot be read by this instance; retry shortly.');
  }

  async write(record: DeviceRecord): Promise<void> {
    const key = deviceKey(record.appId, record.binding);
    const stored: StoredDevice = {
      v: 1,
      appId: record.appId,
      fingerprint: record.fingerprint,
      deviceInfo: record.deviceInfo,
      clientId: record.clientId,
      sealedClientSecret: this.box.seal(record.clientSecret, this.sealedFor(key)),
      registeredAt: record.registeredAt,
    };
    try {
      await storeCall('write device', this.deps.logger, () => this.devices.set(key, stored));
    } finally {
      await this.l1.purge({ key });
    }
  }

  async delete(appId: string, binding: string): Promise<boolean> {
    const key = deviceKey(appId, binding);
    try {
      return await storeCall('delete device', this.deps.logger, () => this.devices.delete(key));
    } finally {
      await this.l1.purge({ key });
    }
  }
}

/**
 * A record whose client secret stays sealed until something reads it (the DCR token call):
 * requests that never reach the upstream never decrypt it. The getter opens it once per object.
 */
function withSealedSecret(fields: Omit<DeviceRecord, 'clientSecret'>, open: () => string): DeviceRecord {
  let secret: string | undefined;
  return Object.defineProperty({ ...fields }, 'clientSecret', { enumerable: true, get: () => (secret ??= open()) }) as DeviceRecord;
}

export class TokenRecords {
  private readonly box: SealedBox;
  private readonly tokens;

  constructor(private readonly deps: { store: Store; keyring: Keyring; logger: Logger }) {
    this.box = new SealedBox(deps.keyring.derive('store'));
    this.tokens = deps.store.namespace<StoredToken>(TOKENS_NAMESPACE);
  }

  private sealedFor(key: string, clientId: string): string {
    return `${TOKENS_NAMESPACE}:${key}:${clientId}`;
  }

  /** The stored token of `key` for `clientId`; undefined when absent, of other credentials or unreadable. */
  async read(key: string, clientId: string): Promise<AccessToken | undefined> {
    const raw = await storeCall('read token', this.deps.logger, () => this.tokens.get(key));
    if (raw === undefined) return undefined;
    const parsed = storedToken.safeParse(raw);
    if (!parsed.success || parsed.data.clientId !== clientId) return undefined;
    try {
      const { plaintext } = this.box.open(parsed.data.sealedAccessToken, this.sealedFor(key, clientId));
      // A stale seal is not rewritten: tokens live hours, the next refresh seals with the active key.
      return { accessToken: plaintext, clientId, obtainedAt: parsed.data.obtainedAt, expiresAt: parsed.data.expiresAt };
    } catch (err) {
      // A token is cheap to replace: fetch a new one rather than fail the call.
      this.deps.logger.warn({ err }, 'pass: a stored access token cannot be opened; fetching a new one');
      return undefined;
    }
  }

  async write(key: string, token: AccessToken, now: number): Promise<void> {
    const stored: StoredToken = {
      v: 1,
      clientId: token.clientId,
      sealedAccessToken: this.box.seal(token.accessToken, this.sealedFor(key, token.clientId)),
      obtainedAt: token.obtainedAt,
      expiresAt: token.expiresAt,
    };
    const ttlMs = Math.max(1, token.expiresAt - now);
    await storeCall('write token', this.deps.logger, () => this.tokens.set(key, stored, ttlMs));
  }

  async delete(key: string): Promise<void> {
    await storeCall('delete token', this.deps.logger, () => this.tokens.delete(key));
  }
}
