import { isDeepStrictEqual } from 'node:util';
import type { AppConfig, Config } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { Singleflight } from '../infra/singleflight.js';
import type { LeaseStore } from '../infra/store.js';
import { coalesce, leasedOnce, type CoordinationOptions } from './coordination.js';
import type { AccessTokens } from './credentials.js';
import { isInvalidClient, type DcrCalls } from './dcr.js';
import { UpstreamProblem } from './errors.js';
import { deviceFingerprint } from './device-identity.js';
import { dcrFailureOutcome, type PassMetrics } from './metrics.js';
import { deviceKey, firstBindingOf, type DeviceRecord, type DeviceRecords } from './records.js';
import type { ClientReplacedListener, ClientReregistration } from './reregistration.js';

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
  /** invalid_client → the device's DCR client registered anew under the same record. */
  reregistration: ClientReregistration;
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
    return (await this.usableToken(record, input.client)).record;
  }

  /**
   * The registered binding, or undefined (never registered, or forgotten by an operator).
   * A `fingerprint <base64>` header value names the device id's first binding.
   */
  get(appId: string, binding: string): Promise<DeviceRecord | undefined> {
    return this.deps.records.read(appId, binding);
  }

  /**
   * A usable access token for the device; `rejected` = the token a 401 answered (refresh once).
   * When the upstream forgot the device's client, it is registered again first (once).
   */
  async accessToken(record: DeviceRecord, client: ClientAddress, options: { rejected?: string } = {}): Promise<string> {
    return (await this.usableToken(record, client, options)).token;
  }

  /** Called on the replica that re-registered a device after invalid_client (e.g. to drop cached profiles). */
  onClientReplaced(listener: ClientReplacedListener): void {
    this.deps.reregistration.onReplaced(listener);
  }

  /** Drops the binding's credentials and token (operator action). */
  async forget(appId: string, binding: string): Promise<void> {
    await this.deps.records.delete(appId, binding);
    await this.deps.tokens.forget(deviceKey(appId, binding));
  }

  /** Resolves once no background (proactive) token refresh is running. */
  idle(): Promise<void> {
    return this.deps.tokens.idle();
  }

  /**
   * A token, and the record it belongs to. invalid_client (adobe-pass.md §2.3) re-registers the
   * device once (reregistration.ts) and asks for the new client's token; a second invalid_client
   * for brand-new credentials is the upstream refusing the app (upstream_misconfigured), not retried.
   */
  private async usableToken(record: DeviceRecord, client: ClientAddress, options: { rejected?: string } = {}): Promise<{ record: DeviceRecord; token: string }> {
    // A request that read the record before its client was replaced here uses the replacement.
    const current = this.deps.reregistration.current(record);
    try {
      return { record: current, token: await this.deps.tokens.get(current, client, options) };
    } catch (err) {
      if (!isInvalidClient(err)) throw err;
      const replaced = await this.deps.reregistration.replace(current, client);
      try {
        return { record: replaced, token: await this.deps.tokens.get(replaced, client) };
      } catch (again) {
        if (!isInvalidClient(again)) throw again;
        this.deps.logger.error({ app: record.appId }, 'pass: DCR refuses even a client it has just registered (invalid_client); check the app\'s software statement');
        throw new UpstreamProblem('upstream_misconfigured', 'The Pass service does not accept this app\'s new registrations; retry later.', 'dcr.token', again.info);
      }
    }
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
      this.deps.metrics.registrations.inc({ app: app.id, outcome: dcrFailureOutcome(err) });
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

