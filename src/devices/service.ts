import type { AppConfig, Config } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import { storeCall } from '../http/store-call.js';
import { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import type { Store } from '../infra/store.js';
import { deviceFingerprint, type DeviceRecord } from '../pass/index.js';
import type { DeviceMetrics } from './metrics.js';
import type { DeviceInfoInput, RegisterDeviceInput } from './schema.js';
import { DeviceTokenError, type DeviceTokens } from './tokens.js';

/** What the devices feature needs of the Pass registry (src/pass/registry.ts). */
export interface DeviceRegistryPort {
  register(input: { appId: string; deviceId: string; deviceInfo: Record<string, unknown>; client: ClientAddress }): Promise<DeviceRecord>;
  get(appId: string, fingerprint: string): Promise<DeviceRecord | undefined>;
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
  created: boolean;
  deviceToken: string;
  expiresAt: Date;
  device: { app: string; fingerprint: string; registeredAt: Date };
}

/** A request's device, proven by its device token (`ctx.state.device`). */
export interface AuthenticatedDevice {
  app: AppConfig;
  /** The base64 identifier of `AP-Device-Identifier: fingerprint <base64>`. */
  fingerprint: string;
  record: DeviceRecord;
}

export type DeviceService = ReturnType<typeof createDeviceService>;

/**
 * Token generations live beside the Pass device records (which passgate's pass/ owns) under
 * `devices.generations:<app>:<fingerprint>`; absent = 0. Revoking bumps it, and every token
 * carrying an older `gen` stops verifying, while the DCR credentials stay (dropping them would
 * log the viewer out upstream).
 */
const GENERATIONS_NAMESPACE = 'devices.generations';

/** The base64 part of `fingerprint <base64>`: what tokens and responses carry. */
export const fingerprintId = (headerValue: string) => headerValue.replace(/^fingerprint /, '');

export function createDeviceService(deps: DeviceServiceDeps) {
  const { config, registry, tokens, store, clock, metrics } = deps;
  const logger = deps.logger.child({ component: 'devices' });
  const generations = store.namespace<number>(GENERATIONS_NAMESPACE);
  const registrationRule = { ratePerSecond: config.devices.registrationsPerMinute / 60, burst: config.devices.registrationBurst };

  /** Store failures are a 503 store_unavailable, never "absent" (or a 500). */
  async function fromStore<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return storeCall(`devices: ${what}`, logger, fn);
  }

  async function generationOf(appId: string, fingerprint: string): Promise<number> {
    return (await fromStore('read a token generation', () => generations.get(`${appId}:${fingerprint}`))) ?? 0;
  }

  return {
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

    /** DCR once per (app, deviceId) (the registry makes it idempotent), then a device token. */
    async register(app: AppConfig, input: RegisterDeviceInput, client: ClientAddress): Promise<Registration> {
      const fingerprint = fingerprintId(deviceFingerprint(input.deviceId));
      // "created" = the device was unknown when this request arrived (concurrent first
      // registrations all say so; the registry still registers upstream only once).
      const known = (await registry.get(app.id, fingerprint)) !== undefined;
      const record = await registry.register({ appId: app.id, deviceId: input.deviceId, deviceInfo: deviceInfoRecord(input.deviceInfo), client });
      const generation = await generationOf(app.id, fingerprint);
      const issued = await tokens.issue({ app: app.id, fingerprint, generation });
      return {
        created: !known,
        deviceToken: issued.token,
        expiresAt: issued.expiresAt,
        device: { app: app.id, fingerprint, registeredAt: new Date(record.registeredAt) },
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
        claims = await tokens.verify(token);
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
      const [record, generation] = await Promise.all([registry.get(app.id, claims.fingerprint), generationOf(app.id, claims.fingerprint)]);
      if (!record) {
        metrics.tokenVerifications.inc({ result: 'unknown_device' });
        throw invalidToken('The device is not registered; register it again.');
      }
      if (generation !== claims.generation) {
        metrics.tokenVerifications.inc({ result: 'revoked' });
        throw invalidToken('The device token was revoked; register the device again.');
      }
      metrics.tokenVerifications.inc({ result: 'valid' });
      return { app, fingerprint: claims.fingerprint, record };
    },

    /**
     * Revokes every device token issued so far for the device (operator action; later the admin
     * API). The device keeps its DCR credentials; the app gets a new token by registering again.
     * Returns the new generation.
     */
    async revokeDevice(appId: string, fingerprint: string): Promise<number> {
      const id = fingerprintId(fingerprint);
      const next = (await generationOf(appId, id)) + 1;
      await fromStore('write a token generation', () => generations.set(`${appId}:${id}`, next));
      logger.info({ app: appId, generation: next }, 'devices: device tokens revoked');
      return next;
    },
  };
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
