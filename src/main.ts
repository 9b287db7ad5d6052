import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { packageVersion } from './config/package.js';
import { redisStoreOptions } from './config/load.js';
import type { Config } from './config/schema.js';
import { createDeviceMetrics } from './devices/metrics.js';
import { devicesRouter } from './devices/routes.js';
import { createDeviceService, type DeviceService } from './devices/service.js';
import { DeviceTokens } from './devices/tokens.js';
import { buildApp } from './http/app.js';
import { HttpDrain } from './http/drain.js';
import type { AppState } from './http/context.js';
import { buildOpsApp } from './http/ops-app.js';
import { guardServer } from './http/server-guards.js';
import { systemClock, type Clock } from './infra/clock.js';
import { Keyring, loadOrCreateLocalKeyring } from './infra/keyring.js';
import { createLogger, flushSampledLines, type Logger } from './infra/logger.js';
import { createMetrics } from './infra/metrics.js';
import { createStore, type Store } from './infra/store.js';
import { createPassServices, type PassServices, type PassServicesDeps } from './pass/index.js';
import { createActivationFeature, type ActivationService } from './activation/feature.js';
import { createEntitlementFeature, type EntitlementService } from './entitlement/feature.js';
import { createDrmFeature, type DrmFeatureService } from './drm/feature.js';
import { createAgentFeature, type AgentFeature } from './agent/feature.js';
import type { AgentService } from './agent/service.js';
import type { Feature, FeatureDeps } from './features.js';
import { createSigninFeature, type SigninService } from './signin/feature.js';

export interface PassgateOverrides {
  logger?: Logger;
  /** An injected store belongs to the caller: close() does not disconnect it. */
  store?: Store;
  clock?: Clock;
  /** Test knobs of the Pass services (e.g. the throttle mirror's sleep under a ManualClock). */
  pass?: Pick<PassServicesDeps, 'sleep' | 'coordination'>;
}

export interface Passgate {
  /** Where the HTTP API answers, e.g. http://127.0.0.1:8080 (the real port when 0 was asked). */
  url: string;
  /** The metrics endpoint, e.g. http://127.0.0.1:9464/metrics. */
  metricsUrl: string;
  /** The ops listener (PASSGATE_METRICS_PORT): /metrics and the admin API, e.g. http://127.0.0.1:9464. */
  opsUrl: string;
  app: Koa<AppState>;
  /** The ops listener's app: /metrics and the admin API. */
  opsApp: Koa<AppState>;
  /** The feature services main.ts built (operator tooling and tests act through them). */
  services: {
    devices: DeviceService;
    pass: PassServices;
    signin: SigninService;
    entitlement: EntitlementService;
    activation: ActivationService;
    drm: DrmFeatureService;
    /** Undefined without an `agent` section. */
    agent: AgentService | undefined;
  };
  /** Graceful shutdown; idempotent. */
  close(): Promise<void>;
}

/**
 * In-flight requests get this long to finish on shutdown (k8s/base/deployment.yaml: 5 s preStop +
 * this + closing, under the 30 s grace period). Long-polls and event streams do not wait it out:
 * they are answered first (Feature.release).
 */
const drainTimeoutMs = 10_000;

/** The composition root: config → logger → metrics → store → keyring → upstream clients → features → app → listeners. */
export async function startPassgate(config: Config, overrides: PassgateOverrides = {}): Promise<Passgate> {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel, sampleIntervalMs: config.logSampleIntervalMs });
  const version = packageVersion();
  const metrics = createMetrics({ version });
  const clock = overrides.clock ?? systemClock;
  const ownStore = overrides.store === undefined;
  const store =
    overrides.store ??
    (await createStore({ dataDir: config.dataDir, timeoutMs: config.store.timeoutMs, logger: logger.child({ component: 'store' }), ...redisStoreOptions(config) }));

  let pass: PassServices | undefined;
  let shuttingDown = false;
  const server = createServer();
  const metricsServer = createServer();
  const drains = [new HttpDrain(server), new HttpDrain(metricsServer)];
  // Request deadlines (408) and problem answers for what Node refuses itself, on both listeners.
  const guards = { requestTimeoutMs: config.http.requestTimeoutMs, logger, registry: metrics.registry };
  guardServer(server, { ...guards, listener: 'public' });
  guardServer(metricsServer, { ...guards, listener: 'ops' });
  let app: Koa<AppState>;
  let opsApp: Koa<AppState>;
  let devices: DeviceService | undefined;
  let features:
    | {
        signin: Feature<SigninService>;
        entitlement: Feature<EntitlementService>;
        activation: Feature<ActivationService>;
        drm: Feature<DrmFeatureService>;
        agent: AgentFeature;
      }
    | undefined;
  // Known once the server listens; features read it lazily (activation links, redirectUrl).
  let listeningUrl = '';
  try {
    const keyring = openKeyring(config, logger);
    pass = createPassServices({ config, store, keyring, metricsRegistry: metrics.registry, logger, clock, ...overrides.pass });
    const deviceMetrics = createDeviceMetrics(metrics.registry);
    const deviceTokens = new DeviceTokens(keyring.derive('device-token'), clock, config.devices.tokenTtlSeconds);
    devices = createDeviceService({ config, registry: pass.registry, tokens: deviceTokens, store, clock, metrics: deviceMetrics, logger });
    const deps: FeatureDeps = {
      config,
      store,
      clock,
      logger,
      metricsRegistry: metrics.registry,
      pass,
      devices,
      publicUrl: () => config.publicUrl ?? listeningUrl,
      keyring,
    };
    const signin = createSigninFeature(deps);
    const activation = createActivationFeature({ ...deps, signin: signin.service });
    // /v1/authorize lends the DRM feature's licensing, which needs the entitlement service: a getter breaks the cycle.
    const entitlement = createEntitlementFeature({
      ...deps,
      signin: signin.service,
      licensing: () => drm.service.licensing,
      logoutReturnUrl: (mvpd) => activation.service.signedOutUrl(mvpd),
    });
    const drm = createDrmFeature({ ...deps, entitlement: entitlement.service, signin: signin.service });
    const agent = createAgentFeature(deps);
    features = { signin, entitlement, activation, drm, agent };
    await pass.start();
    await devices.start();
    await entitlement.start();
    await drm.start();
    await agent.start();
    // Each /v1 feature puts requireDevice(devices.authenticate) in front of its own routes.
    const routers = [devicesRouter(devices, deviceMetrics), ...Object.values(features).flatMap((f) => f.routers)];

    app = buildApp({ config, logger, metrics, store, clock, version, isShuttingDown: () => shuttingDown, routers, fallbacks: Object.values(features).flatMap((f) => f.fallbacks ?? []) });
    server.on('request', app.callback());
    const opsRouters = Object.values(features).flatMap((f) => f.opsRouters ?? []);
    opsApp = buildOpsApp({ logger, metrics, routers: opsRouters, adminEnabled: config.adminKey !== undefined });
    metricsServer.on('request', opsApp.callback());
    await listen(server, config.http.port, config.http.host);
    // Same bind address as the API; the port keeps it apart (the Service exposes it as `metrics`).
    await listen(metricsServer, config.metrics.port, config.http.host);
  } catch (error) {
    server.close();
    metricsServer.close();
    await Promise.all([closeFeatures(features), devices?.stop(), pass?.close()]);
    if (ownStore) await store.disconnect();
    throw error;
  }
  const services = {
    devices,
    pass,
    signin: features.signin.service,
    entitlement: features.entitlement.service,
    activation: features.activation.service,
    drm: features.drm.service,
    agent: features.agent.service,
  };
  const running = features;

  const url = displayUrl(config.http.host, (server.address() as AddressInfo).port);
  listeningUrl = url;
  const opsUrl = displayUrl(config.http.host, (metricsServer.address() as AddressInfo).port);
  const metricsUrl = `${opsUrl}/metrics`;
  logger.info({ url, metricsUrl, store: store.kind, version }, 'passgate started');

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      // Readiness fails first (/readyz answers 503 from here on).
      shuttingDown = true;
      logger.info({ inFlight: drains[0]?.pending ?? 0 }, 'shutting down');
      for (const drain of drains) drain.stop();
      // Long-polls answer and event streams end now, with the current status, instead of being cut.
      await releaseFeatures(running).catch((err: unknown) => logger.warn({ err }, 'shutdown: releasing waiting requests failed'));
      // Everything else in flight (e.g. an authorize waiting on the upstream) finishes, within the bound.
      await Promise.all(drains.map((drain) => drain.finish(drainTimeoutMs)));
      // After the drain (no request still needs the upstream), before the store goes.
      // In parallel: with the store down, each unsubscribe waits out its own bound.
      await Promise.all([closeFeatures(running), services.devices.stop(), services.pass.close()]);
      if (ownStore) await store.disconnect();
      logger.info('stopped');
      // The counts of repeated lines still held back (log-sampler.ts).
      flushSampledLines(logger);
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })();
    return closing;
  };

  return { url, metricsUrl, opsUrl, app, opsApp, services, close };
}

async function releaseFeatures(features: Record<string, Feature<unknown>>): Promise<void> {
  await Promise.all(Object.values(features).map((feature) => feature.release?.()));
}

async function closeFeatures(features: Record<string, Feature<unknown>> | undefined): Promise<void> {
  await Promise.all(Object.values(features ?? {}).map((feature) => feature.close?.()));
}

/**
 * PASSGATE_KEYS (or _FILE) when set; otherwise the embedded store's own keyring in the data dir,
 * generated on first start. Warned about: a lost data dir loses the keys, and replicas cannot
 * share a generated keyring (loadConfig already requires PASSGATE_KEYS with Redis).
 */
function openKeyring(config: Config, logger: Logger): Keyring {
  if (config.keys) return Keyring.parse(config.keys.reveal());
  const local = loadOrCreateLocalKeyring(config.dataDir);
  if (local.created) {
    logger.warn({ file: local.file }, 'PASSGATE_KEYS is not set: generated a keyring for the embedded store; set PASSGATE_KEYS from a secret in production');
  }
  return local.keyring;
}

/** A URL a person on this machine can use: a wildcard bind is reachable on 127.0.0.1. */
export function displayUrl(host: string, port: number): string {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  const shown = wildcard ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${port}`;
}

async function listen(server: Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  await once(server, 'listening');
}
