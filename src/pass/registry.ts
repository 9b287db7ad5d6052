import { isDeepStrictEqual } from 'node:util';
import type { AppConfig, Config } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { Singleflight } from '../infra/singleflight.js';
import type { LeaseStore } from '../infra/store.js';
import { coalesce, leasedOnce, type CoordinationOptions } from './coordination.js';
import type { AccessTokens } from './credentials.js';
import type { DcrCalls } from './dcr.js';
import { deviceFingerprint } from './device-identity.js';
import type { PassMetrics, RegistrationOutcome } from './metrics.js';
import { deviceKey, type DeviceRecord, type DeviceRecords } from './records.js';

export interface RegisterInput {
  appId: string;
  /** The app's stable device id (POST /v1/devices `deviceId`); only its fingerprint leaves passgate. */
  deviceId: string;
  /** X-Device-Info keys (SPEC §2); connectionIp/Port are dropped: they come from each request. */
  deviceInfo: Record<string, unknown>;
  client: ClientAddress;
}

export interface DeviceRegistryDeps {
  config: Pick<Config, 'apps'>;
  records: DeviceRecords;
  tokens: AccessTokens;
  dcr: DcrCalls;
  leases: LeaseStore;
  clock: Clock;
  metrics: PassMetrics;
  logger: Logger;
  coordination: CoordinationOptions;
}

/**
 * DCR clients per device, keyed by (app, fingerprint). A device is registered upstream ONCE,
 * ever (adobe-pass.md §2.1: lost credentials log the viewer out): concurrent registrations in
 * this process share one call (Singleflight), across processes a store lease `dcr:<app>:<fp>`
 * lets one holder register while the others poll the store for its record.
 */
export class DeviceRegistry {
  private readonly flights = new Singleflight<DeviceRecord>();

  constructor(private readonly deps: DeviceRegistryDeps) {}

  /**
   * The device's record, registering it with DCR if it is new, and a usable access token
   * (fetched once if none is stored). Idempotent per (app, deviceId). Throws a Problem.
   */
  async register(input: RegisterInput): Promise<DeviceRecord> {
    const app = this.deps.config.apps[input.appId];
    if (!app) throw new TypeError(`unknown app ${JSON.stringify(input.appId)}`);
    const fingerprint = deviceFingerprint(input.deviceId);
    const { connectionIp: _ip, connectionPort: _port, ...deviceInfo } = input.deviceInfo;
    const key = deviceKey(app.id, fingerprint);
    let record = await coalesce(this.flights, key, 'registration', this.deps.metrics, () => this.ensure(app, fingerprint, deviceInfo, input.client));
    if (!isDeepStrictEqual(record.deviceInfo, deviceInfo)) {
      // An OS or app update: X-Device-Info must reflect the device as it is now (§3.3); the
      // credentials stay (never re-register).
      record = { ...record, deviceInfo };
      await this.deps.records.write(record);
    }
    // The first token comes with the registration, so the app's first call does not wait for it.
    await this.deps.tokens.get(record, input.client);
    return record;
  }

  /**
   * The registered device, or undefined (never registered, or dropped after invalid_client).
   * `fingerprint`: the header value `fingerprint <base64>` or just its base64 part.
   */
  get(appId: string, fingerprint: string): Promise<DeviceRecord | undefined> {
    return this.deps.records.read(appId, fingerprint);
  }

  /** A usable access token for the device; `rejected` = the token a 401 answered (refresh once). */
  accessToken(record: DeviceRecord, client: ClientAddress, options: { rejected?: string } = {}): Promise<string> {
    return this.deps.tokens.get(record, client, options);
  }

  /** Drops the device's credentials and token (operator action, or invalid_client). */
  async forget(appId: string, fingerprint: string): Promise<void> {
    await this.deps.records.delete(appId, fingerprint);
    await this.deps.tokens.forget(deviceKey(appId, fingerprint));
  }

  /** Resolves once no background (proactive) token refresh is running. */
  idle(): Promise<void> {
    return this.deps.tokens.idle();
  }

  /** invalid_client: drop the record only if it still holds the credentials that failed. */
  async dropRejected(record: DeviceRecord): Promise<void> {
    const dropped = await this.deps.records.deleteIfClient(record.appId, record.fingerprint, record.clientId);
    if (dropped) await this.deps.tokens.forget(deviceKey(record.appId, record.fingerprint));
  }

  private ensure(app: AppConfig, fingerprint: string, deviceInfo: Record<string, unknown>, client: ClientAddress): Promise<DeviceRecord> {
    return leasedOnce<DeviceRecord>({
      leases: this.deps.leases,
      clock: this.deps.clock,
      logger: this.deps.logger,
      options: this.deps.coordination,
      leaseName: `dcr:${deviceKey(app.id, fingerprint)}`,
      what: 'the DCR registration',
      lookup: () => this.deps.records.read(app.id, fingerprint),
      work: () => this.registerUpstream(app, fingerprint, deviceInfo, client),
    });
  }

  /** POST /o/client/register, then the record (lease held). */
  private async registerUpstream(app: AppConfig, fingerprint: string, deviceInfo: Record<string, unknown>, client: ClientAddress): Promise<DeviceRecord> {
    let credentials;
    try {
      credentials = await this.deps.dcr.register(app, deviceInfo, client);
    } catch (err) {
      this.deps.metrics.registrations.inc({ app: app.id, outcome: registrationOutcome(err) });
      throw err;
    }
    this.deps.metrics.registrations.inc({ app: app.id, outcome: 'registered' });
    const record: DeviceRecord = { appId: app.id, fingerprint, deviceInfo, ...credentials, registeredAt: this.deps.clock.now() };
    try {
      await this.deps.records.write(record);
    } catch (err) {
      // The upstream issued credentials that passgate could not keep: the next attempt registers again.
      this.deps.logger.error({ err, app: app.id }, 'pass: a device was registered upstream but its record could not be stored');
      throw err;
    }
    this.deps.logger.info({ app: app.id }, 'pass: device registered with DCR');
    return record;
  }
}

function registrationOutcome(err: unknown): RegistrationOutcome {
  if (!(err instanceof Problem)) return 'error';
  switch (err.code) {
    case 'upstream_misconfigured':
      return 'misconfigured';
    case 'upstream_rejected':
      return 'rejected';
    case 'upstream_throttled':
      return 'throttled';
    case 'upstream_unavailable':
      return 'unavailable';
    default:
      return 'error';
  }
}
