import type { ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { Config } from '../../src/config/schema.js';
import { Secret } from '../../src/config/secret.js';
import type { ClientAddress } from '../../src/http/client-address.js';
import type { Clock } from '../../src/infra/clock.js';
import { generateKeyringText, Keyring } from '../../src/infra/keyring.js';
import { createLogger, type Logger } from '../../src/infra/logger.js';
import { createStore, type Store } from '../../src/infra/store.js';
import { createPassServices, type PassServices, type PassServicesDeps } from '../../src/pass/service.js';
import type { SimLogEntry } from '../../src/sim/state.js';
import { appDeviceInfo, demoSoftwareStatement, freshIp, type SimFixture } from './with-sim.js';

/** The app every pass test registers devices for (the simulator approves its software statement). */
export const APP_ID = 'demo';

/** What an app registers (adobe-pass.md §3.3 required keys); connectionIp/Port come per request. */
export const registeredInfo = appDeviceInfo;

export type PassConfig = PassServicesDeps['config'];

/** The slice of Config the Pass services read, pointed at the simulator. */
export function passConfig(simUrl: string, overrides: Partial<PassConfig> = {}): PassConfig {
  const apps: Config['apps'] = {
    [APP_ID]: {
      id: APP_ID,
      platform: 'tvos',
      appKey: new Secret('demo-app-key'),
      softwareStatement: new Secret(demoSoftwareStatement),
      redirectUri: 'https://passgate.invalid/activate/done',
    },
  };
  return {
    serviceProvider: 'REF30',
    apps,
    upstreams: { pass: { baseUrl: simUrl }, drm: { baseUrl: simUrl }, adapter: { baseUrl: simUrl } },
    upstreamClient: {
      dnsMaxTtlSeconds: 30,
      connectTimeoutMs: 2_000,
      requestTimeoutMs: 8_000,
      callDeadlineMs: 10_000,
      maxRetries: 2,
      breaker: { consecutiveFailures: 5, halfOpenAfterMs: 10_000 },
    },
    throttle: { ratePerSecond: 1, burst: 10, maxWaitMs: 1_000 },
    dcr: { tokenExpirySkewSeconds: 60, tokenRefreshAheadSeconds: 600, reregistrations: { burst: 100, perMinute: 600 } },
    ...overrides,
  };
}

export interface MemoryLog {
  logger: Logger;
  text(): string;
}

/** A pino logger (with passgate's redaction) that keeps every line in memory. */
export function memoryLog(level = 'trace'): MemoryLog {
  let raw = '';
  const logger = createLogger({ level, destination: { write: (line: string) => void (raw += line) } });
  return { logger, text: () => raw };
}

export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'passgate-pass-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface StoreSpec {
  /** Redis URL; absent ⇒ the embedded store in `dataDir`. */
  redisUrl?: string;
  keyPrefix?: string;
  dataDir?: string;
}

/** A real store, disconnected when the test ends. */
export async function openStore(t: ExecutionContext, spec: StoreSpec = {}): Promise<{ store: Store; dataDir: string }> {
  const dataDir = spec.dataDir ?? (await tempDir(t));
  const store = await createStore({
    dataDir,
    logger: createLogger({ level: 'silent' }),
    ...(spec.redisUrl ? { redisUrl: spec.redisUrl } : {}),
    ...(spec.keyPrefix ? { keyPrefix: spec.keyPrefix } : {}),
  });
  t.teardown(() => store.disconnect());
  return { store, dataDir };
}

export interface PassFixture {
  services: PassServices;
  store: Store;
  dataDir: string;
  keyringText: string;
  metrics: Registry;
  log: MemoryLog;
}

export interface PassFixtureOptions extends StoreSpec {
  config?: Partial<PassConfig>;
  /** Reuse a store (e.g. two "replicas" on one Redis); otherwise one is opened. */
  store?: Store;
  keyringText?: string;
  clock?: Clock;
  sleep?: PassServicesDeps['sleep'];
  coordination?: PassServicesDeps['coordination'];
  metrics?: Registry;
  upstreamClient?: PassServicesDeps['upstreamClient'];
}

/** Pass services against the simulator `f`, on a real store, closed when the test ends. */
export async function withPass(t: ExecutionContext, f: SimFixture, options: PassFixtureOptions = {}): Promise<PassFixture> {
  const opened = options.store ? { store: options.store, dataDir: options.dataDir ?? '' } : await openStore(t, options);
  const keyringText = options.keyringText ?? generateKeyringText('test');
  const metrics = options.metrics ?? new Registry();
  const log = memoryLog();
  const services = createPassServices({
    config: passConfig(f.url, options.config),
    store: opened.store,
    keyring: Keyring.parse(keyringText),
    metricsRegistry: metrics,
    logger: log.logger,
    clock: options.clock ?? f.clock,
    ...(options.sleep ? { sleep: options.sleep } : {}),
    ...(options.coordination ? { coordination: options.coordination } : {}),
    ...(options.upstreamClient ? { upstreamClient: options.upstreamClient } : {}),
  });
  t.teardown(() => services.close());
  return { services, store: opened.store, dataDir: opened.dataDir, keyringText, metrics, log };
}

/** A device address: a fresh documentation-range IP (own throttle bucket) and a source port. */
export function deviceAddress(port = 40_000 + Math.floor(Math.random() * 20_000)): ClientAddress {
  return { ip: freshIp(), port };
}

/** A fresh device id. */
export const newDeviceId = () => `device-${Math.random().toString(36).slice(2)}`;

export async function simLog(f: SimFixture): Promise<SimLogEntry[]> {
  const response = await f.call('/sim/log');
  return (await response.json()) as SimLogEntry[];
}

export async function simConfig(f: SimFixture, body: Record<string, unknown>): Promise<void> {
  const response = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (response.status !== 200) throw new Error(`POST /sim/config answered ${response.status}: ${await response.text()}`);
}

export const byOperation = (entries: SimLogEntry[], operation: string) => entries.filter((e) => e.operation === operation);

/** The value of one sample of a metric (0 when absent). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Decodes an X-Device-Info header value (base64 JSON). */
export function decodeDeviceInfo(value: string | undefined): Record<string, unknown> {
  if (!value) throw new Error('no x-device-info');
  return JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as Record<string, unknown>;
}
