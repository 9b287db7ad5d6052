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
import { deviceKey, firstBindingOf, type DeviceRecord, type DeviceRecords } from './records.js';

export interface RegisterInput {
  appId: string;
  /** The app's stable device id (POST /v1/devices `deviceId`); only its fingerprint leaves passgate. */
  deviceId: string;
  /** X-Device-Info keys (SPEC §2); connectionIp/Port are dropped: they come from each request. */
  deviceInfo: Record<string, unknown>;
  client: ClientAddress;
  /**
   * The binding to register or renew (SPEC §2; records.ts): default the device id's first
   * binding. Another binding's id must start with `<fingerprint base64>.`.
   */
  binding?: string;
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
 * DCR clients per device binding, keyed by (app, binding). A binding is registered upstream ONCE,
 * ever (adobe-pass.md §2.1: lost credentials log the viewer out): concurrent registrations in
 * this process share one call (Singleflight), across processes a store lease `dcr:<app>:<binding>`
 * lets one holder register while the others poll the store for its record. Every binding of a
 * device id sends the same `AP-Device-Identifier`; the upstream tells them apart by DCR client.
 */
export class DeviceRegistry {
  private readonly flights = new Singleflight<DeviceRecord>();

  constructor(private readonly deps: DeviceRegistryDeps) {}

  /**
   * The binding's record, registering it with DCR if it is new, and a usable access token
   * (fetched once if none is stored). Idempotent per (app, binding). Throws a Problem.
   */
  async register(input: RegisterInput): Promise<DeviceRecord> {
    const app = this.deps.config.apps[input.appId];
    if (!app) throw new TypeError(`unknown app ${JSON.stringify(input.appId)}`);
    const fingerprint = deviceFingerprint(input.deviceId);
    const first = firstBindingOf(fingerprint);
    const binding = input.binding ?? first;
    if (binding !== first && !(binding.startsWith(`${first}.`) && !binding.includes(':'))) {
      throw new TypeError('the binding does not belong to this device id');
    }
    const { connectionIp: _ip, connectionPort: _port, ...deviceInfo } = input.deviceInfo;
    const key = deviceKey(app.id, binding);
    let record = await coalesce(this.flights, key, 'registration', this.deps.metrics, () => this.ensure(app, binding, fingerprint, deviceInfo, input.client));
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
   * The registered binding, or undefined (never registered, or dropped after invalid_client).
   * A `fingerprint <base64>` header value names the device id's first binding.
   */
  get(appId: string, binding: string): Promise<DeviceRecord | undefined> {
    return this.deps.records.read(appId, binding);
  }

  /** A usable access token for the device; `rejected` = the token a 401 answered (refresh once). */
  accessToken(record: DeviceRecord, client: ClientAddress, options: { rejected?: string } = {}): Promise<string> {
    return this.deps.tokens.get(record, client, options);
  }

  /** Drops the binding's credentials and token (operator action, or invalid_client). */
  async forget(appId: string, binding: string): Promise<void> {
    await this.deps.records.delete(appId, binding);
    await this.deps.tokens.forget(deviceKey(appId, binding));
  }

  /** Resolves once no background (proactive) token refresh is running. */
  idle(): Promise<void> {
    return this.deps.tokens.idle();
  }

  /** invalid_client: drop the record only if it still holds the credentials that failed. */
  async dropRejected(record: DeviceRecord): Promise<void> {
    const dropped = await this.deps.records.deleteIfClient(record.appId, record.binding, record.clientId);
    if (dropped) await this.deps.tokens.forget(deviceKey(record.appId, record.binding));
  }

  private ensure(app: AppConfig, binding: string, fingerprint: string, deviceInfo: Record<string, unknown>, client: ClientAddress): Promise<DeviceRecord> {
    return leasedOnce<DeviceRecord>({
      leases: this.deps.leases,
      clock: this.deps.clock,
      logger: this.deps.logger,
      options: this.deps.coordination,
      leaseName: `dcr:${deviceKey(app.id, binding)}`,
      what: 'the DCR registration',
      lookup: () => this.deps.records.read(app.id, binding),
      work: () => this.registerUpstream(app, binding, fingerprint, deviceInfo, client),
    });
  }

  /** POST /o/client/register, then the record (lease held). */
  private async registerUpstream(app: AppConfig, binding: string, fingerprint: string, deviceInfo: Record<string, unknown>, client: ClientAddress): Promise<DeviceRecord> {
    let credentials;
    try {
      credentials = await this.deps.dcr.register(app, deviceInfo, client);
    } catch (err) {
      this.deps.metrics.registrations.inc({ app: app.id, outcome: registrationOutcome(err) });
      throw err;
    }
    this.deps.metrics.registrations.inc({ app: app.id, outcome: 'registered' });
    const record: DeviceRecord = { appId: app.id, binding, fingerprint, deviceInfo, ...credentials, registeredAt: this.deps.clock.now() };
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
