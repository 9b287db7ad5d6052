import type { ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Router from '@koa/router';
import { Keyv } from 'keyv';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildApp } from '../../src/http/app.js';
import type { AppState } from '../../src/http/context.js';
import { systemClock } from '../../src/infra/clock.js';
import { createLogger, type Logger } from '../../src/infra/logger.js';
import { createMetrics, type Metrics } from '../../src/infra/metrics.js';
import type { Store } from '../../src/infra/store.js';
import { localChannels } from '../../src/infra/store-channels.js';
import { memoryJobs } from '../../src/infra/store-jobs.js';
import { memoryPrimitives } from '../../src/infra/store-primitives.js';
import { startPassgate, type Passgate } from '../../src/main.js';

export interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  [field: string]: unknown;
}

/** A pino logger whose lines tests read back (parsed, and as raw text for leak searches). */
export interface MemoryLogger {
  logger: Logger;
  lines: LogLine[];
  text(): string;
}

export function memoryLogger(level = 'info'): MemoryLogger {
  const lines: LogLine[] = [];
  let raw = '';
  const destination = {
    write(line: string) {
      raw += line;
      lines.push(JSON.parse(line) as LogLine);
    },
  };
  return { logger: createLogger({ level, destination }), lines, text: () => raw };
}

/** Temp directory removed when the test ends. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'passgate-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A store that answers from memory; `ping` says what readiness should see. */
export function memoryStore(ping: () => Promise<boolean> = async () => true): Store {
  return {
    kind: 'embedded',
    namespace: <T>() => new Keyv<T>(),
    ping,
    disconnect: async () => {},
    purgeExpired: async () => 0,
    ...memoryPrimitives(),
    jobs: memoryJobs(),
    // A handler's failure goes to stderr, where the test run shows it.
    channels: localChannels(createLogger({ level: 'error', destination: process.stderr }), undefined, () => false),
  };
}

export interface AppFixture {
  passgate: Passgate;
  config: Config;
  url: string;
  metricsUrl: string;
  log: MemoryLogger;
  /** fetch against passgate's HTTP port with a path. */
  call(path: string, init?: RequestInit): Promise<Response>;
}

export interface WithAppOptions {
  /** Extra environment for loadConfig (ports, host and data dir are set for you). */
  env?: Record<string, string>;
  /** Replaces the real store (which is otherwise the embedded one in a temp dir). */
  store?: Store;
}

/**
 * Starts the whole of passgate (startPassgate) on 127.0.0.1 with ephemeral ports, a temp data
 * dir and an in-memory log, and shuts it down gracefully when the test ends.
 */
export async function withApp(t: ExecutionContext, options: WithAppOptions = {}): Promise<AppFixture> {
  const dataDir = await tempDir(t);
  const config = loadConfig({
    PASSGATE_PORT: '0',
    PASSGATE_METRICS_PORT: '0',
    PASSGATE_HOST: '127.0.0.1',
    PASSGATE_DATA_DIR: dataDir,
    ...options.env,
  });
  const log = memoryLogger();
  const passgate = await startPassgate(config, { logger: log.logger, ...(options.store ? { store: options.store } : {}) });
  // Registered after tempDir's teardown, so it runs first (ava runs teardowns in reverse).
  t.teardown(() => passgate.close());
  return {
    passgate,
    config,
    url: passgate.url,
    metricsUrl: passgate.metricsUrl,
    log,
    call: (path, init) => fetch(new URL(path, passgate.url), { redirect: 'manual', ...init }),
  };
}

export interface BareAppFixture {
  url: string;
  metrics: Metrics;
  log: MemoryLogger;
  call(path: string, init?: RequestInit): Promise<Response>;
}

/** buildApp alone with extra routers (e.g. one that throws), on a real socket. */
export async function withBareApp(t: ExecutionContext, routers: Router<AppState>[]): Promise<BareAppFixture> {
  const log = memoryLogger();
  const metrics = createMetrics({ version: '0.0.0-test' });
  const config = loadConfig({ PASSGATE_DATA_DIR: await tempDir(t) });
  const app = buildApp({ config, logger: log.logger, metrics, store: memoryStore(), clock: systemClock, version: '0.0.0-test', routers });
  const server = createServer(app.callback()).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, metrics, log, call: (path, init) => fetch(new URL(path, url), init) };
}
