import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Clock } from '../infra/clock.js';
import type { Keyring } from '../infra/keyring.js';
import type { Logger } from '../infra/logger.js';
import type { Store } from '../infra/store.js';
import { createConfiguredUpstreamClient } from '../infra/upstream-http.js';
import { createUpstreamMetrics } from '../infra/upstream-metrics.js';
import { PassClient } from './client.js';
import { defaultCoordination, type CoordinationOptions } from './coordination.js';
import { AccessTokens, tokenPolicy } from './credentials.js';
import { DcrCalls } from './dcr.js';
import { createPassMetrics } from './metrics.js';
import { DeviceRecords, TokenRecords } from './records.js';
import { DeviceRegistry } from './registry.js';
import { ClientReregistration } from './reregistration.js';
import { ThrottleMirror, timerSleep, type Sleep } from './throttle.js';
import { PassTransport, type PassHttp } from './transport.js';

export interface PassServicesDeps {
  config: Pick<Config, 'serviceProvider' | 'apps' | 'upstreams' | 'upstreamClient' | 'throttle' | 'dcr'> & Partial<Pick<Config, 'devices'>>;
  store: Store;
  /** The keyring; device secrets are sealed with its 'store' derivation. */
  keyring: Keyring;
  /** Where the Pass metrics (and, when the client is built here, the upstream client's) register. */
  metricsRegistry: Registry;
  logger: Logger;
  clock: Clock;
  /** The Pass upstream client; built from config.upstreamClient when absent (and then closed by close()). */
  upstreamClient?: PassHttp;
  /** How the throttle mirror waits for its next token (tests with a ManualClock replace it). */
  sleep?: Sleep;
  /** Safety margin added to the throttle mirror's steady period (default DEFAULT_THROTTLE_MARGIN_MS). */
  throttleMarginMs?: number;
  /** Lease/poll timings of fleet-wide coalescing (tests shorten them). */
  coordination?: Partial<CoordinationOptions>;
}

export interface PassServices {
  /** DCR clients and access tokens per device: register / get / accessToken / forget. */
  registry: DeviceRegistry;
  /** The typed REST API V2 client. */
  pass: PassClient;
  throttle: ThrottleMirror;
  /** Subscribes to the fleet-wide purges of cached device records (call once, before serving). */
  start(): Promise<void>;
  /** Waits for background token refreshes, then closes the upstream client if it was built here. */
  close(): Promise<void>;
}

/** Builds the Pass client and its parts (composition root for main.ts and tests). */
export function createPassServices(deps: PassServicesDeps): PassServices {
  const { config, store, keyring, clock } = deps;
  const logger = deps.logger.child({ component: 'pass' });
  const metrics = createPassMetrics(deps.metricsRegistry);
  const coordination = { ...defaultCoordination, ...deps.coordination };

  const ownClient =
    deps.upstreamClient === undefined
      ? createConfiguredUpstreamClient('pass', config.upstreams.pass.baseUrl, config.upstreamClient, {
          metrics: createUpstreamMetrics(deps.metricsRegistry),
          logger,
        })
      : undefined;
  const http: PassHttp = deps.upstreamClient ?? (ownClient as PassHttp);

  const throttle = new ThrottleMirror({
    buckets: store.buckets,
    throttle: config.throttle,
    clock,
    sleep: deps.sleep ?? timerSleep,
    metrics,
    logger,
    ...(deps.throttleMarginMs === undefined ? {} : { marginMs: deps.throttleMarginMs }),
  });
  const transport = new PassTransport({ http, throttle, logger });
  const dcr = new DcrCalls({ transport, logger });

  const tokens = new AccessTokens({
    dcr,
    records: new TokenRecords({ store, keyring, logger }),
    leases: store.leases,
    clock,
    policy: tokenPolicy(config.dcr),
    metrics,
    logger,
    coordination,
  });
  const records = new DeviceRecords({ store, keyring, logger, clock, l1Ms: config.devices?.l1Ms ?? 0 });
  const reregistration = new ClientReregistration({ config, records, dcr, leases: store.leases, buckets: store.buckets, clock, metrics, logger, coordination });
  const registry = new DeviceRegistry({
    config,
    records,
    tokens,
    dcr,
    leases: store.leases,
    clock,
    metrics,
    logger,
    coordination,
    reregistration,
  });
  const pass = new PassClient({ serviceProvider: config.serviceProvider, transport, tokens: registry, metrics, logger });

  let closing: Promise<void> | undefined;
  return {
    registry,
    pass,
    throttle,
    start: () => records.start(),
    close: () => {
      closing ??= (async () => {
        await records.stop();
        await tokens.idle();
        ownClient?.close();
      })();
      return closing;
    },
  };
}
