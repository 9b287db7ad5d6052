import type { AppConfig, Config } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import { storeCall } from '../http/store-call.js';
import { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import { FleetL1Cache } from '../infra/l1-cache.js';
import type { Logger } from '../infra/logger.js';
import type { Store } from '../infra/store.js';
import { deviceFingerprint, firstBindingOf, type DeviceRecord } from '../pass/index.js';
import type { DeviceMetrics } from './metrics.js';
import type { DeviceInfoInput, RegisterDeviceInput } from './schema.js';
import { bindingFor, DeviceSecrets, isBindingOf, newDeviceSecret } from './secrets.js';
import { DeviceTokenError, type DeviceTokens } from './tokens.js';

/** What the devices feature needs of the Pass registry (src/pass/registry.ts). */
export interface DeviceRegistryPort {
  register(input: { appId: string; deviceId: string; deviceInfo: Record<string, unknown>; client: ClientAddress; binding: string }): Promise<DeviceRecord>;
  get(appId: string, binding: string): Promise<DeviceRecord | undefined>;
}

export interface DeviceServiceDeps {
  config: Pick<Config, 'apps' | 'devices'>;
  registry: DeviceRegistryPort;
  tokens: DeviceTokens;
  store: Store;
  clock: Clock;
  metrics: DeviceMetrics;
  logger: Logger;
}

export interface Registration {
  /** A new binding was made (201); false = an existing binding was renewed (200). */
  created: boolean;
  deviceToken: string;
  expiresAt: Date;
  /** Only when this registration gave the binding its secret (first registration, or migration). */
  deviceSecret?: string;
  device: { app: string; binding: string; fingerprint: string; registeredAt: Date };
}

/** What proves a registration renews an existing binding (SPEC §2). */
export interface RegistrationProof {
  /** The body's `deviceSecret`. */
  deviceSecret?: string;
  /** The `Authorization: Bearer` device token, if the request carried one. */
  deviceToken?: string;
}

/**
 * A request's device binding, proven by its device token (`ctx.state.device`). Everything
 * passgate keeps per device (permits, sessions, profiles, revocations) is keyed by `binding`;
 * only `record.fingerprint` goes upstream.
 */
export interface AuthenticatedDevice {
  app: AppConfig;
  /** The binding id (records.ts): the token's `sub`. */
  binding: string;
  record: DeviceRecord;
}

export type DeviceService = ReturnType<typeof createDeviceService>;

/**
 * Token generations live beside the Pass device records (which passgate's pass/ owns) under
 * `devices.generations:<app>:<binding>`; absent = 0. Revoking bumps it, and every token
 * carrying an older `gen` stops verifying, while the DCR credentials stay (dropping them would
 * log the viewer out upstream).
 */
const GENERATIONS_NAMESPACE = 'devices.generations';
/** The channel on which replicas tell each other to drop a cached token generation (a revocation). */
export const GENERATION_PURGE_CHANNEL = 'device-generation-purges';

/** The base64 part of `fingerprint <base64>`: what tokens and responses carry. */
export const fingerprintId = (headerValue: string) => headerValue.replace(/^fingerprint /, '');

export function createDeviceService(deps: DeviceServiceDeps) {
  const { config, registry, tokens, store, clock, metrics } = deps;
  const logger = deps.logger.child({ component: 'devices' });
  const generations = store.namespace<number>(GENERATIONS_NAMESPACE);
  const secrets = new DeviceSecrets({ store, clock, logger });
  const registrationRule = { ratePerSecond: config.devices.registrationsPerMinute / 60, burst: config.devices.registrationBurst };

  /** Store failures are a 503 store_unavailable, never "absent" (or a 500). */
  async function fromStore<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return storeCall(`devices: ${what}`, logger, fn);
  }

  async function generationOf(appId: string, binding: string): Promise<number> {
    return (await fromStore('read a token generation', () => generations.get(`${appId}:${binding}`))) ?? 0;
  }

  /**
   * Token generations recently read, so that verifying a token reads the store once per `l1Ms` per
   * device and replica. A revocation purges it on every replica at once; one that missed the purge
   * accepts the revoked tokens for at most `l1Ms` (config devices.l1_ms, the documented bound).
   */
  const generationL1 = new FleetL1Cache<number>(store, clock, config.devices.l1Ms, GENERATION_PURGE_CHANNEL, logger);

  async function currentGeneration(appId: string, binding: string): Promise<number> {
    const key = `${appId}:${binding}`;
    const cached = generationL1.get(key);
    if (cached !== undefined) return cached;
    return generationL1.load(key, () => generationOf(appId, binding), (generation) => ({ value: generation }));
  }

  /**
   * The existing binding the proof renews (undefined: no proof), and the secret to hand out when
   * it has none yet (migration: bindings registered before secrets existed get one on their
   * first renewal with a valid token). A wrong secret or an invalid token is a 401.
   */
  async function provenBinding(app: AppConfig, firstBinding: string, proof: RegistrationProof): Promise<{ binding: string; newSecret?: string } | undefined> {
    if (proof.deviceSecret !== undefined) {
      const binding = await secrets.find(app.id, firstBinding, proof.deviceSecret);
      if (binding === undefined) {
        metrics.secretChecks.inc({ result: 'invalid' });
        // True in both cases: a wrong secret, or a binding the store no longer has (lost data).
        throw new Problem(
          'invalid_device_secret',
          'passgate does not know this deviceSecret for this app and deviceId (a wrong secret, or a binding the store no longer has): register without it to create a new binding.',
        );
      }
      metrics.secretChecks.inc({ result: 'valid' });
      return { binding };
    }
    if (proof.deviceToken === undefined) return undefined;
    const device = await service.authenticate(proof.deviceToken);
    // A token of another app or device id proves nothing about this one.
    if (device.app.id !== app.id || !isBindingOf(device.binding, firstBinding)) return undefined;
    if (await secrets.has(app.id, device.binding)) return { binding: device.binding };
    const secret = newDeviceSecret();
    if (!(await secrets.claim(app.id, device.binding, secret))) return { binding: device.binding };
    metrics.secretChecks.inc({ result: 'migrated' });
    logger.info({ app: app.id, binding: device.binding }, 'devices: a binding registered before device secrets received its secret');
    return { binding: device.binding, newSecret: secret };
  }

  /**
   * A new binding for a registration without proof: the device id's first binding if nobody has
   * it yet (legacy records without a secret count as taken), otherwise a separate one.
   */
  async function newBinding(app: AppConfig, firstBinding: string): Promise<{ binding: string; secret: string }> {
    const secret = newDeviceSecret();
    const vacant = async () => (await registry.get(app.id, firstBinding)) === undefined;
    if (await secrets.claim(app.id, firstBinding, secret, vacant)) return { binding: firstBinding, secret };
    const binding = bindingFor(firstBinding, secret);
    await secrets.write(app.id, binding, secret);
    return { binding, secret };
  }

  const service = {
    /** Subscribes to other replicas' revocations (call once, before serving). */
    start: () => generationL1.start(),
    stop: () => generationL1.stop(),

    /**
     * The app whose key this is. Every configured key is compared, in constant time, whatever
     * matched before: the time taken says nothing about which key (or which part) was close.
     */
    identifyApp(appKey: string | undefined): AppConfig {
      let found: AppConfig | undefined;
      for (const app of Object.values(config.apps)) {
        if (app.appKey.equals(appKey ?? '') && appKey) found = app;
      }
      if (!found) throw new Problem('invalid_app_key', 'Send the key of a configured app in X-App-Key.');
      return found;
    },

    /** SPEC §8: registrations per client IP, fleet-wide, before any upstream work. */
    async admitRegistration(client: ClientAddress): Promise<void> {
      const decision = await fromStore('take a registration token', () => store.buckets.take(`reg:${client.ip}`, registrationRule, clock.now()));
      if (decision.allowed) return;
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      throw new Problem('rate_limited', `Too many device registrations from this address; retry in ${seconds} s.`, {
        headers: { 'Retry-After': String(seconds) },
      });
    },

    /**
     * SPEC §2: renews the binding the proof names, or makes a new binding (DCR once per binding:
     * the registry makes it idempotent), then a device token. Knowing a device id and the app key
     * never yields an existing binding.
     */
    async register(app: AppConfig, input: RegisterDeviceInput, client: ClientAddress, proof: RegistrationProof = {}): Promise<Registration> {
      const fingerprint = deviceFingerprint(input.deviceId);
      const firstBinding = firstBindingOf(fingerprint);
      const renewed = await provenBinding(app, firstBinding, proof);
      const made = renewed ? undefined : await newBinding(app, firstBinding);
      const binding = renewed?.binding ?? (made as { binding: string }).binding;
      let record: DeviceRecord;
      try {
        record = await registry.register({ appId: app.id, deviceId: input.deviceId, deviceInfo: deviceInfoRecord(input.deviceInfo), client, binding });
      } catch (err) {
        // The app never saw this secret: free the binding so its retry is a first registration again.
        if (made) await secrets.release(app.id, made.binding, made.secret).catch((error: unknown) => logger.warn({ err: error }, 'devices: releasing an unused device secret failed'));
        throw err;
      }
      if (made && made.binding !== firstBinding) logger.info({ app: app.id, binding }, 'devices: registration without proof for a known device id: a separate binding was made');
      const generation = await generationOf(app.id, binding);
      const issued = await tokens.issue({ app: app.id, binding, generation });
      const deviceSecret = made?.secret ?? renewed?.newSecret;
      return {
        created: made !== undefined,
        deviceToken: issued.token,
        expiresAt: issued.expiresAt,
        ...(deviceSecret === undefined ? {} : { deviceSecret }),
        device: { app: app.id, binding, fingerprint: fingerprintId(fingerprint), registeredAt: new Date(record.registeredAt) },
      };
    },

    /** The device a bearer token proves; 401 invalid_device_token for anything else. */
    async authenticate(token: string | undefined): Promise<AuthenticatedDevice> {
      if (!token) {
        metrics.tokenVerifications.inc({ result: 'missing' });
        throw invalidToken('Send the device token from POST /v1/devices as Authorization: Bearer <token>.', false);
      }
      let claims;
      try {
        claims = tokens.verify(token);
      } catch (err) {
        if (!(err instanceof DeviceTokenError)) throw err;
        metrics.tokenVerifications.inc({ result: err.reason });
        throw invalidToken(err.reason === 'expired' ? 'The device token has expired; register the device again.' : 'The device token is not valid.');
      }
      const app = config.apps[claims.app];
      if (!app) {
        metrics.tokenVerifications.inc({ result: 'unknown_app' });
        throw invalidToken('The device token is not valid.');
      }
      const [record, generation] = await Promise.all([registry.get(app.id, claims.binding), currentGeneration(app.id, claims.binding)]);
      if (!record) {
        metrics.tokenVerifications.inc({ result: 'unknown_device' });
        throw invalidToken('The device is not registered; register it again.');
      }
      if (generation !== claims.generation) {
        metrics.tokenVerifications.inc({ result: 'revoked' });
        throw invalidToken('The device token was revoked; register the device again.');
      }
      metrics.tokenVerifications.inc({ result: 'valid' });
      return { app, binding: claims.binding, record };
    },

    /**
     * Revokes every device token issued so far for the binding (operator action). The binding
     * keeps its DCR credentials and secret; the app gets a new token by renewing with its secret.
     * `binding`: a binding id, or a `fingerprint <base64>` for the device id's first binding.
     * Returns the new generation; 404 not_found when the app has no such binding.
     */
    async revokeDevice(appId: string, binding: string): Promise<number> {
      const id = fingerprintId(binding);
      if (!(await fromStore('find a device binding', () => registry.get(appId, id)))) {
        throw new Problem('not_found', `App ${appId} has no device binding ${id}.`);
      }
      const next = (await generationOf(appId, id)) + 1;
      try {
        await fromStore('write a token generation', () => generations.set(`${appId}:${id}`, next));
      } finally {
        await generationL1.purge({ key: `${appId}:${id}` });
      }
      logger.info({ app: appId, binding: id, generation: next }, 'devices: device tokens revoked');
      return next;
    },
  };
  return service;
}

function invalidToken(detail: string, presented = true): Problem {
  // RFC 6750 §3: no error code when the request carried no credentials at all.
  const challenge = presented ? 'Bearer realm="passgate", error="invalid_token"' : 'Bearer realm="passgate"';
  return new Problem('invalid_device_token', detail, { headers: { 'WWW-Authenticate': challenge } });
}

/** The registered X-Device-Info keys, absent optionals left out (never `undefined` members). */
function deviceInfoRecord(info: DeviceInfoInput): Record<string, unknown> {
  return Object.fromEntries(Object.entries(info).filter(([, value]) => value !== undefined));
}
