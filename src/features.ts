import type Router from '@koa/router';
import type { Registry } from 'prom-client';
import type { Config } from './config/schema.js';
import type { DeviceService } from './devices/service.js';
import type { AppMiddleware, AppState } from './http/context.js';
import type { Clock } from './infra/clock.js';
import type { Keyring } from './infra/keyring.js';
import type { Logger } from './infra/logger.js';
import type { Store } from './infra/store.js';
import type { PassServices } from './pass/index.js';

/** What main.ts hands every feature factory (STYLE.md: services receive their dependencies). */
export interface FeatureDeps {
  config: Config;
  store: Store;
  clock: Clock;
  logger: Logger;
  metricsRegistry: Registry;
  pass: PassServices;
  /** Verifies device tokens (requireDevice(devices.authenticate) guards /v1 routes). */
  devices: DeviceService;
  /** Where viewers and apps reach passgate (PASSGATE_PUBLIC_URL, else the listening URL). */
  publicUrl: () => string;
  /** Derive a purpose key (e.g. keyring.derive('csrf')) rather than using entries directly. */
  keyring: Keyring;
}

/** A feature as main.ts mounts it. */
export interface Feature<S> {
  service: S;
  routers: Router<AppState>[];
  /** Routers of the ops listener (the admin API, SPEC §7): never mounted on the public port. */
  opsRouters?: Router<AppState>[];
  /** Public-port middleware for requests no route matched (e.g. other spellings of the feature's pages). */
  fallbacks?: AppMiddleware[];
  /**
   * Shutdown, first step (after readiness fails, before the HTTP drain): answer requests that
   * would otherwise wait out the drain (long-polls, event streams).
   */
  release?: () => Promise<void>;
  /** Stops timers and in-flight background work on shutdown. */
  close?: () => Promise<void>;
}
