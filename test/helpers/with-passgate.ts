import type { ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { loadConfig, localInstanceEnv } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { systemClock, type Clock, type ManualClock } from '../../src/infra/clock.js';
import { createLogger, type Logger } from '../../src/infra/logger.js';
import { createStore, type Store } from '../../src/infra/store.js';
import { startPassgate, type Passgate, type PassgateOverrides } from '../../src/main.js';
import { defaultRules, simRulesSchema, type SimRulesInput } from '../../src/sim/rules.js';
import { startSim, type RunningSim } from '../../src/sim/server.js';
import type { SimLogEntry } from '../../src/sim/state.js';
import { demoDrmFile } from './drm-config.js';
import { memoryLogger, tempDir, type MemoryLogger } from './with-app.js';
import { appDeviceInfo, demoSoftwareStatement } from './with-sim.js';

/** What an app sends as `deviceInfo` (adobe-pass.md §3.3 required keys and a few optional ones). */
export const sampleDeviceInfo = appDeviceInfo;

export const newDeviceId = () => `device-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`;

export interface WithPassgateOptions {
  /** Extra environment for loadConfig (PASSGATE_KEYS, PASSGATE_TRUSTED_PROXIES, …). */
  env?: Record<string, string>;
  /**
   * Top-level parts of the YAML config file replacing the test defaults (e.g. `devices`,
   * `upstream_client`, `throttle`). `apps` is merged by app id.
   */
  file?: Record<string, unknown>;
  /** Shared by passgate and the simulator (tokens expire, TTLs pass). Default: the real clock. */
  clock?: ManualClock;
  /** An already running simulator (a second passgate against the same upstream). */
  sim?: RunningSim;
  /** Changes to the simulator's demo rules (only when this helper starts the simulator). */
  simRules?: Partial<SimRulesInput>;
  /** Reuse a data dir (a restarted instance on the same embedded store). */
  dataDir?: string;
  /** Run on this Redis instead of the embedded store (a fresh key prefix unless `keyPrefix`). */
  redisUrl?: string;
  keyPrefix?: string;
  /** Where the Redis store this helper opens logs (default: nowhere). */
  storeLogger?: Logger;
  logLevel?: string;
  pass?: PassgateOverrides['pass'];
  /** The apps' X-App-Keys (default: random per fixture); another fixture's keys to share them. */
  appKeys?: { demo?: string; roku?: string };
}

export interface TestApp {
  id: string;
  key: string;
}

export interface PassgateFixture {
  passgate: Passgate;
  sim: RunningSim;
  config: Config;
  dataDir: string;
  /** With Redis: the key prefix isolating this fixture (pass it to a second "replica"). */
  keyPrefix?: string;
  log: MemoryLogger;
  /** The configured apps: `demo` (tvos) and `roku`. */
  apps: { demo: TestApp; roku: TestApp };
  url: string;
  call(path: string, init?: RequestInit): Promise<Response>;
  /** POST /v1/devices as the `demo` app (or `appKey`), JSON body. */
  register(body?: { deviceId?: string; deviceInfo?: unknown; deviceSecret?: string }, headers?: Record<string, string>): Promise<Response>;
  simLog(): Promise<SimLogEntry[]>;
  simConfig(rules: Record<string, unknown>): Promise<void>;
}

let appCounter = 0;

/**
 * The simulator and a real passgate wired to it (PASS/DRM/ADAPTER base URLs = the simulator),
 * on ephemeral ports, a temp embedded store (or the given Redis), an in-memory log at `logLevel`
 * (default info). Both are stopped when the test ends.
 */
export async function withPassgate(t: ExecutionContext, options: WithPassgateOptions = {}): Promise<PassgateFixture> {
  const clock: Clock = options.clock ?? systemClock;
  let sim = options.sim;
  if (!sim) {
    const started = await startSim({ port: 0, clock, rules: simRulesSchema.parse({ ...defaultRules(), ...options.simRules }) });
    t.teardown(() => started.close());
    sim = started;
  }
  const dataDir = options.dataDir ?? (await tempDir(t));
  const configDir = await tempDir(t);

  const n = ++appCounter;
  const apps = {
    demo: { id: 'demo', key: options.appKeys?.demo ?? `demo-key-${n}-${Math.random().toString(36).slice(2)}` },
    roku: { id: 'roku', key: options.appKeys?.roku ?? `roku-key-${n}-${Math.random().toString(36).slice(2)}` },
  };
  const { apps: extraApps, ...fileOverrides } = options.file ?? {};
  const file = {
    service_provider: 'REF30',
    apps: {
      demo: { platform: 'tvos', app_key: apps.demo.key, software_statement: demoSoftwareStatement },
      roku: { platform: 'roku', app_key: apps.roku.key, software_statement: demoSoftwareStatement },
      ...(extraApps as Record<string, unknown> | undefined),
    },
    // Every test client is 127.0.0.1: the per-IP registration limit is set high unless a test lowers it.
    devices: { registrations_per_minute: 6_000, registration_burst: 1_000 },
    ...demoDrmFile,
    ...fileOverrides,
  };
  const configFile = join(configDir, 'passgate.yaml');
  // JSON is YAML.
  await writeFile(configFile, JSON.stringify(file, null, 2));

  const config = loadConfig({
    ...localInstanceEnv({ simUrl: sim.url, dataDir, configFile }),
    ...options.env,
  });

  let store: Store | undefined;
  const keyPrefix = options.redisUrl ? (options.keyPrefix ?? `t-${Math.random().toString(36).slice(2, 10)}`) : undefined;
  if (options.redisUrl) {
    store = await createStore({ redisUrl: options.redisUrl, dataDir, keyPrefix, timeoutMs: config.store.timeoutMs, logger: options.storeLogger ?? createLogger({ level: 'silent' }) });
    const opened = store;
    t.teardown(() => opened.disconnect());
  }

  const log = memoryLogger(options.logLevel ?? 'info');
  const passgate = await startPassgate(config, {
    logger: log.logger,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(store ? { store } : {}),
    ...(options.pass ? { pass: options.pass } : {}),
  });
  // Registered last, so it runs first: passgate stops before its store and the simulator.
  t.teardown(() => passgate.close());

  const simUrl = sim.url;
  const call = (path: string, init?: RequestInit) => fetch(new URL(path, passgate.url), { redirect: 'manual', ...init });
  return {
    passgate,
    sim,
    config,
    dataDir,
    ...(keyPrefix ? { keyPrefix } : {}),
    log,
    apps,
    url: passgate.url,
    call,
    register: (body = {}, headers = {}) =>
      call('/v1/devices', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-app-key': apps.demo.key, ...headers },
        body: JSON.stringify({
          deviceId: body.deviceId ?? newDeviceId(),
          deviceInfo: body.deviceInfo ?? sampleDeviceInfo,
          ...(body.deviceSecret === undefined ? {} : { deviceSecret: body.deviceSecret }),
        }),
      }),
    simLog: async () => (await (await fetch(`${simUrl}/sim/log`)).json()) as SimLogEntry[],
    simConfig: async (rules) => {
      const response = await fetch(`${simUrl}/sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rules) });
      if (!response.ok) throw new Error(`POST /sim/config answered ${response.status}: ${await response.text()}`);
    },
  };
}

/** The sim log entries of one operation (e.g. `dcr.register`). */
/**
 * A device registered through POST /v1/devices and signed in upstream (a Cablevision profile
 * saved in the simulator for its DCR client, as the MVPD login would); returns its device token.
 */
export async function registeredAndSignedIn(f: PassgateFixture): Promise<string> {
  return (await registerAndSignIn(f)).deviceToken;
}

/** registeredAndSignedIn with what the device keeps to re-register (its deviceId and deviceSecret). */
export async function registerAndSignIn(f: PassgateFixture, deviceId = newDeviceId()): Promise<{ deviceId: string; deviceSecret: string; deviceToken: string }> {
  const registered = await f.register({ deviceId });
  if (registered.status !== 201) throw new Error(`POST /v1/devices: ${registered.status} ${await registered.text()}`);
  const body = (await registered.json()) as { deviceToken: string; deviceSecret: string; device: { app: string; binding: string; fingerprint: string } };
  const record = await f.passgate.services.pass.registry.get(body.device.app, body.device.binding);
  if (!record) throw new Error('no DCR record');
  const now = f.sim.state.now();
  f.sim.state.saveProfile({
    clientId: record.clientId,
    deviceId: body.device.fingerprint,
    serviceProvider: 'REF30',
    mvpd: 'Cablevision',
    notBefore: now,
    notAfter: now + 24 * 3600_000,
    issuer: 'Cablevision',
    type: 'regular',
    attributes: { userID: { value: 'viewer-1', state: 'plain' } },
    userId: 'viewer-1',
  });
  return { deviceId, deviceSecret: body.deviceSecret, deviceToken: body.deviceToken };
}

export const ofOperation = (log: SimLogEntry[], operation: string) => log.filter((entry) => entry.operation === operation);

/** The JSON in an `x-device-info` header value. */
export const decodeDeviceInfo = (value: string | undefined) => JSON.parse(Buffer.from(value ?? '', 'base64').toString('utf8')) as Record<string, unknown>;

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The client's own port: what passgate sees as the peer's port. */
  localPort: number;
}

/** A request over node:http, so the test knows the source port passgate saw. */
export function rawRequest(url: string, init: { method: string; headers?: Record<string, string>; body?: string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let localPort = 0;
    const req = httpRequest(url, { method: init.method, headers: init.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), localPort }));
      res.on('error', reject);
    });
    req.on('socket', (socket) => socket.once('connect', () => (localPort = socket.localPort ?? 0)));
    req.on('error', reject);
    req.end(init.body);
  });
}
