/**
 * The processes under test and around them: the floor servers, the simulator, the license stub,
 * redis-server and passgate itself (`node dist/cli.js serve`, the built current src: how
 * `npm start` and the Docker image run it). Each its own process, pinned, logging to a file.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CORES, answers, freePort, startChild, waitReady, type Child } from './processes.js';

export const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');

export interface Server {
  child: Child;
  url: string;
}

/** `npm run build`: the bench measures the current src through dist/, so it compiles it first. */
export function buildDist(): void {
  console.error('bench: building dist/ from the current src (npm run build)…');
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error('bench: npm run build failed; the bench measures the built current src');
}

/** A floor server (bench/servers/<script>.ts) on the server core. */
export async function startFloor(name: string, script: string, dir: string): Promise<Server> {
  const port = await freePort();
  const child = startChild(name, CORES.server, process.execPath, ['--import=tsx', join(ROOT, 'bench', 'servers', script), '--port', String(port)], {
    logFile: join(dir, `${script.replace(/\.ts$/, '')}.log`),
    cwd: ROOT,
    // As the Docker image runs passgate (Koa reads it too).
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, () => answers(`${url}/livez`));
  return { child, url };
}

/** The license-server stand-in of the token-proxy row, on the helper core. */
export async function startLicenseStub(dir: string): Promise<Server> {
  const port = await freePort();
  const child = startChild('license stub', CORES.helper, process.execPath, ['--import=tsx', join(ROOT, 'bench', 'servers', 'license-stub.ts'), '--port', String(port)], {
    logFile: join(dir, 'license-stub.log'),
    cwd: ROOT,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, () => answers(`${url}/livez`));
  return { child, url };
}

/** `passgate sim --port N`, unthrottled (every bench client is 127.0.0.1), on the helper core. */
export async function startSim(name: string, dir: string): Promise<Server> {
  const port = await freePort();
  const child = startChild(name, CORES.helper, process.execPath, [CLI, 'sim', '--port', String(port)], { logFile: join(dir, `${name.replace(/\W+/g, '-')}.log`), cwd: ROOT });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, () => answers(`${url}/sim/config`));
  const response = await fetch(`${url}/sim/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ throttle: { enabled: false, ratePerSecond: 1, burst: 10 } }),
  });
  if (!response.ok) throw new Error(`bench: POST /sim/config answered ${response.status}: ${await response.text()}`);
  return { child, url };
}

/** One command to redis-server, inline protocol; the raw reply. */
export function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new Error('redis: no reply within 2 s')), 2_000);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      // A simple reply ends at its first CRLF; a bulk string ($len) once len bytes arrived.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if ((bulk && reply.length >= bulk[0].length + Number(bulk[1]) + 2) || (!bulk && reply.endsWith('\r\n'))) {
        clearTimeout(timer);
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

export interface RedisServer {
  child: Child;
  port: number;
  url: string;
}

/** `redis-server --port <free> --save '' --appendonly no` on the helper core. */
export async function startRedis(dir: string): Promise<RedisServer> {
  const port = await freePort();
  const child = startChild('redis-server', CORES.helper, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    logFile: join(dir, 'redis.log'),
  });
  await waitReady(child, async () => (await redisCommand(port, 'PING')).startsWith('+PONG'));
  return { child, port, url: `redis://127.0.0.1:${port}` };
}

/** used_memory of a redis-server (INFO memory), in bytes. */
export async function redisUsedMemory(port: number): Promise<number> {
  const info = await redisCommand(port, 'INFO memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

/** A fresh keyring (`id:base64 of 32 bytes`): with Redis it is required, and the bench makes its own. */
export const benchKeyring = () => `bench:${randomBytes(32).toString('base64')}`;

/**
 * The bench's config file: config/example.yaml with the registration limit and the upstream
 * throttle mirror raised (every bench client is 127.0.0.1), and no RevInfo download (the DRM
 * upstream is the license stub, which serves nothing else).
 */
export function writeBenchConfig(dir: string): string {
  const file = parseYaml(readFileSync(join(ROOT, 'config', 'example.yaml'), 'utf8')) as Record<string, unknown>;
  const drm = { ...(file.drm as Record<string, unknown>) };
  drm.playready = {};
  const config = {
    ...file,
    drm,
    devices: { registrations_per_minute: 100_000_000, registration_burst: 100_000_000 },
    throttle: { rate_per_second: 1_000_000, burst: 1_000_000, max_wait_ms: 1_000 },
  };
  const path = join(dir, 'passgate.yaml');
  // JSON is YAML.
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

export interface Passgate {
  child: Child;
  url: string;
  opsUrl: string;
  dataDir: string;
}

/**
 * `node dist/cli.js serve` with the documented environment (log level info: logging is part of
 * the real cost; output to a file), on the server core.
 */
export async function startPassgate(
  name: string,
  dir: string,
  opts: { configFile: string; simUrl: string; drmUrl: string; keys: string; redisUrl?: string },
): Promise<Passgate> {
  const [port, opsPort] = [await freePort(), await freePort()];
  const dataDir = join(dir, `${name.replace(/\W+/g, '-')}-data`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    PASSGATE_PORT: String(port),
    PASSGATE_METRICS_PORT: String(opsPort),
    PASSGATE_HOST: '127.0.0.1',
    PASSGATE_DATA_DIR: dataDir,
    PASSGATE_CONFIG: opts.configFile,
    PASSGATE_LOG_LEVEL: 'info',
    PASSGATE_KEYS: opts.keys,
    PASS_BASE_URL: opts.simUrl,
    ADAPTER_BASE_URL: opts.simUrl,
    DRM_BASE_URL: opts.drmUrl,
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
  };
  const child = startChild(name, CORES.server, process.execPath, [CLI, 'serve'], { env, logFile: join(dir, `${name.replace(/\W+/g, '-')}.log`), cwd: ROOT });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, () => answers(`${url}/readyz`));
  return { child, url, opsUrl: `http://127.0.0.1:${opsPort}`, dataDir };
}
