import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext, TestFn } from 'ava';
import { createLogger, type Logger } from '../../src/infra/logger.js';
import { createStore, type RedisTopology, type Store } from '../../src/infra/store.js';
import { freshPrefix } from '../helpers/with-redis.js';

/** A logger whose lines the test can read back. */
export function captureLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  // Every line, as written: the sampler (log-sampler.ts, its own tests) would hold a repeated
  // warn/error line back for its 10 s window, and a test counting them would race that window.
  const logger = createLogger({ level: 'debug', sampleIntervalMs: 0, destination: { write: (line: string) => void raw.push(line) } });
  return { logger, lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** Temp directories made by a test file, removed together at the end. */
export function tempDirs(): { make: () => Promise<string>; removeAll: () => Promise<void> } {
  const made: string[] = [];
  return {
    async make() {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'passgate-store-'));
      made.push(dir);
      return dir;
    },
    async removeAll() {
      await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}

/** Polls `check` until it returns true; false when `timeoutMs` passes first (no timing assertion). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return check();
}

/** The namespace test/helpers/store-child.ts writes to and reads from. */
export const RESTART_NAMESPACE = 'restart';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const childScript = path.join(repoRoot, 'test/helpers/store-child.ts');

/** Runs test/helpers/store-child.ts in a new Node process; resolves its stdout. */
export function runStoreChild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import=tsx', childScript, ...args],
      { cwd: repoRoot, timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`store-child ${args[0]} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

const primitivesChildScript = path.join(repoRoot, 'test/helpers/store-primitives-child.ts');

/**
 * Starts one test/helpers/store-primitives-child.ts per argument list, waits until every child has
 * opened the store, releases them together, and resolves each child's JSON result.
 */
export async function raceStoreChildren(argsList: string[][]): Promise<unknown[][]> {
  const children = argsList.map((args) => {
    const child = spawn(process.execPath, ['--import=tsx', primitivesChildScript, ...args], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let onLine: (() => void) | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      onLine?.();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`store-primitives-child ${args[0]} exited (${code ?? signal}):\n${stderr}`)),
      );
    });
    exited.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
    const ready = new Promise<void>((resolve, reject) => {
      onLine = () => {
        if (stdout.startsWith('ready\n')) resolve();
      };
      onLine();
      exited.then(() => reject(new Error('store-primitives-child exited before it was ready')), reject);
    });
    return { child, ready, exited, output: () => stdout.slice('ready\n'.length) };
  });
  try {
    await Promise.all(children.map((c) => c.ready));
    for (const { child } of children) child.stdin.end('go\n');
    await Promise.all(children.map((c) => c.exited));
    return children.map((c) => JSON.parse(c.output()) as unknown[]);
  } finally {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Where a store lives; stores opened on the same location (and prefix) share their data. */
export interface StoreLocation {
  dataDir: string;
  redisUrl?: string;
  /** A Redis Cluster or Sentinel set (test/helpers/with-redis-cluster.ts) instead of redisUrl. */
  redis?: RedisTopology;
  keyPrefix?: string;
}

/**
 * How a suite (test/infra/store-suites) registers its tests: `test`, or `test.serial` where the
 * backend is a set of processes that many concurrent tests would swamp (cluster, Sentinel).
 */
export type SuiteTest = TestFn<unknown>['serial'];

/** A backend the primitives suites run against. */
export interface StoreBackend {
  /** embedded, redis, redis-cluster, redis-sentinel: the first word of each test title. */
  label: string;
  /** A fresh location: a new SQLite directory (no keyPrefix), or the test Redis with a fresh prefix. */
  location(): Promise<StoreLocation>;
}

export function storeBackends(dirs: ReturnType<typeof tempDirs>, redisUrl: () => string): StoreBackend[] {
  return [
    { label: 'embedded', location: async () => ({ dataDir: await dirs.make() }) },
    {
      label: 'redis',
      location: async () => ({ dataDir: await dirs.make(), redisUrl: redisUrl(), keyPrefix: freshPrefix() }),
    },
  ];
}

/** A store on `location`, disconnected when the test ends. */
export async function openStoreAt(t: ExecutionContext, location: StoreLocation, logger?: Logger): Promise<Store> {
  const store = await createStore({
    ...location,
    logger: logger ?? captureLogger().logger,
    connectTimeoutMs: 20_000, // generous: a loaded CI box must not turn a slow connect into a failure
  });
  t.teardown(() => store.disconnect());
  return store;
}

/** The `--redis-url` / `--key-prefix` options a child process needs to open `location`. */
export function childOptions(location: StoreLocation): string[] {
  return [
    ...(location.redisUrl ? ['--redis-url', location.redisUrl] : []),
    ...(location.redis ? ['--redis-topology', JSON.stringify(location.redis)] : []),
    ...(location.keyPrefix ? ['--key-prefix', location.keyPrefix] : []),
  ];
}
