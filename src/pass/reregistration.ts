import type { Config } from '../config/schema.js';
import type { ClientAddress } from '../http/client-address.js';
import { Problem } from '../http/problem.js';
import { storeCall } from '../http/store-call.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { Singleflight } from '../infra/singleflight.js';
import type { BucketStore, LeaseStore } from '../infra/store.js';
import { coalesce, leasedOnce, type CoordinationOptions } from './coordination.js';
import type { DcrCalls } from './dcr.js';
import { dcrFailureOutcome, type PassMetrics } from './metrics.js';
import { deviceKey, type DeviceRecord, type DeviceRecords } from './records.js';
import { setNewest } from '../infra/bounded-map.js';

export interface ClientReregistrationDeps {
  config: Pick<Config, 'apps' | 'dcr'>;
  records: DeviceRecords;
  dcr: DcrCalls;
  leases: LeaseStore;
  buckets: BucketStore;
  clock: Clock;
  metrics: PassMetrics;
  logger: Logger;
  coordination: CoordinationOptions;
}

/**
 * Called once per replacement, by the process that made it (e.g. to drop cached profiles).
 * `binding`: the device binding whose client was replaced, as device tokens name it.
 */
export type ClientReplacedListener = (appId: string, binding: string) => Promise<void> | void;

const REPLACED_MAX_ENTRIES = 10_000;

/**
 * adobe-pass.md §2.3: `invalid_client` on the token call means the upstream forgot the device's
 * DCR client (its restart, a rotated software statement). The device is registered anew ONCE,
 * its record keeps its key (so device tokens stay valid) and only gets new credentials.
 * Once per (device, rejected client) across the fleet: Singleflight in process, and across
 * replicas the registry's own lease `dcr:<key>` with the store record as the result; a store
 * bucket per app keeps a mass forget from stampeding the upstream's registration endpoint.
 */
export class ClientReregistration {
  private readonly flights = new Singleflight<DeviceRecord>();
  /** Rejected client id → the record that replaced it here, so requests holding the old record skip the dead token call. */
  private readonly replaced = new Map<string, DeviceRecord>();
  private readonly listeners: ClientReplacedListener[] = [];

  constructor(private readonly deps: ClientReregistrationDeps) {}

  onReplaced(listener: ClientReplacedListener): void {
    this.listeners.push(listener);
  }

  /** The newest record known here for `record`'s device if its client was replaced, else `record`. */
  current(record: DeviceRecord): DeviceRecord {
    let found = record;
    // A chain when the upstream forgot the replacement too; bounded by the map's size.
    for (let hops = 0; hops < 8; hops++) {
      const next = this.replaced.get(found.clientId);
      if (!next) break;
      found = next;
    }
    return found;
  }

  /**
   * The device's record with credentials the upstream knows: the one another caller or replica
   * already registered after `rejected`, else a new DCR registration. Throws a Problem:
   * 503 upstream_unavailable (with Retry-After) when the app's re-registration bucket is empty.
   */
  replace(rejected: DeviceRecord, client: ClientAddress): Promise<DeviceRecord> {
    const key = deviceKey(rejected.appId, rejected.binding);
    return coalesce(this.flights, `${key}|${rejected.clientId}`, 'reregistration', this.deps.metrics, async () => {
      const record = await leasedOnce<DeviceRecord>({
        leases: this.deps.leases,
        clock: this.deps.clock,
        logger: this.deps.logger,
        options: this.deps.coordination,
        // The registration's lease: a first registration and a re-registration never overlap.
        leaseName: `dcr:${key}`,
        what: 'the DCR re-registration',
        lookup: () => this.replacedInStore(rejected),
        work: () => this.registerAgain(rejected, client),
      });
      this.remember(rejected.clientId, record);
      return record;
    });
  }

  /** The stored record when its client is no longer the rejected one; undefined ⇒ still to do. */
  private async replacedInStore(rejected: DeviceRecord): Promise<DeviceRecord | undefined> {
    const stored = await this.deps.records.read(rejected.appId, rejected.binding);
    if (!stored) {
      // An operator forgot the device meanwhile: nothing to re-register.
      throw new Problem('invalid_device_token', 'The device is not registered; register it again.', {
        headers: { 'WWW-Authenticate': 'Bearer realm="passgate", error="invalid_token"' },
      });
    }
    return stored.clientId === rejected.clientId ? undefined : stored;
  }

  /** Bucket, POST /o/client/register, then the same record with the new credentials (lease held). */
  private async registerAgain(rejected: DeviceRecord, client: ClientAddress): Promise<DeviceRecord> {
    const { appId } = rejected;
    const app = this.deps.config.apps[appId];
    if (!app) throw new Problem('internal_error', 'The device belongs to an app that is no longer configured.');
    const stored = (await this.deps.records.read(appId, rejected.binding)) ?? rejected;
    const limit = this.deps.config.dcr.reregistrations;
    const decision = await storeCall('take a re-registration token', this.deps.logger, () =>
      this.deps.buckets.take(`dcr-reregister:${appId}`, { ratePerSecond: limit.perMinute / 60, burst: limit.burst }, this.deps.clock.now()),
    );
    if (!decision.allowed) {
      this.deps.metrics.reregistrations.inc({ app: appId, outcome: 'limited' });
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      this.deps.logger.warn({ app: appId, retryAfterSeconds: seconds }, 'pass: DCR re-registration limit reached; the device retries later');
      throw new Problem('upstream_unavailable', `The Pass service forgot this device's registration; it is registered again shortly, retry in ${seconds} s.`, {
        headers: { 'Retry-After': String(seconds) },
      });
    }
    let credentials;
    try {
      credentials = await this.deps.dcr.register(app, stored.deviceInfo, client);
    } catch (err) {
      const outcome = dcrFailureOutcome(err);
      this.deps.metrics.registrations.inc({ app: appId, outcome });
      this.deps.metrics.reregistrations.inc({ app: appId, outcome });
      throw err;
    }
    this.deps.metrics.registrations.inc({ app: appId, outcome: 'registered' });
    this.deps.metrics.reregistrations.inc({ app: appId, outcome: 'reregistered' });
    // Same key (binding), fingerprint, device info and registeredAt: only the DCR client changes.
    const record: DeviceRecord = { ...stored, ...credentials };
    try {
      await this.deps.records.write(record);
    } catch (err) {
      this.deps.logger.error({ err, app: appId }, 'pass: a device was registered again upstream but its record could not be stored');
      throw err;
    }
    this.deps.logger.warn({ app: appId }, 'pass: the upstream forgot a device\'s DCR client (invalid_client); registered it again under the same record');
    for (const listener of this.listeners) {
      try {
        await listener(appId, rejected.binding);
      } catch (err) {
        this.deps.logger.warn({ err, app: appId }, 'pass: a listener of a DCR re-registration failed');
      }
    }
    return record;
  }

  private remember(clientId: string, record: DeviceRecord): void {
    setNewest(this.replaced, clientId, record, REPLACED_MAX_ENTRIES);
  }
}

