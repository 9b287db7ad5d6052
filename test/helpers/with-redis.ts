import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestFn } from 'ava';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** SIGSTOP: the process freezes; the kernel still accepts connections and buffers what is sent. */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** SIGKILL (no goodbye to the clients, as a crash); resolves once the process is gone. */
  crash(): Promise<void>;
}

const INSTALL_HINT = 'redis-server is required by the tests: apt-get install -y redis-server';

/**
 * Registers a private `redis-server` for the calling test file: started in `test.before`, killed
 * in `test.after.always`. Returns a getter for its URL (valid inside tests). Never skips: without
 * redis-server the `before` hook fails with the install command.
 */
export function withRedis(test: TestFn<unknown>): () => string {
  let server: RedisServer | undefined;
  test.before(async () => {
    server = await startRedisServer();
  });
  test.after.always(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('withRedis: the redis-server did not start (see the before hook)');
    return server.url;
  };
}

/** A fresh `keyPrefix` so tests sharing one server never see each other's keys. */
export function freshPrefix(): string {
  return `t-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * Starts `redis-server` with persistence off on `port` (default: a free one); resolves once it
 * answers PING.
 */
export async function startRedisServer(
  options: {
    port?: number;
    dir?: string;
    durable?: boolean;
    /** More redis-server arguments (cluster mode, --replicaof, --sentinel…). */
    args?: string[];
    /** A config file, given first (a sentinel needs one it can rewrite). */
    configFile?: string;
  } = {},
): Promise<RedisServer> {
  // A caller's `dir` survives the server (a restart on it reads the data back); ours is removed.
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'passgate-redis-')));
  // durable: every write fsynced to the AOF before the reply, so even SIGKILL loses nothing.
  const persistence = options.durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const removeDir = async () => (ownDir ? rm(dir, { recursive: true, force: true }) : undefined);
  let lastError: unknown;
  for (let attempt = 0; attempt < (options.port ? 1 : 3); attempt++) {
    const port = options.port ?? (await freePort());
    const child = spawn(
      'redis-server',
      [...(options.configFile ? [options.configFile] : []), '--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, ...(options.args ?? [])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new Error(INSTALL_HINT) : err),
      ),
    );
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output.trim()}`))),
    );
    spawnError.catch(() => undefined);
    exited.catch(() => undefined);
    // If the test process ends without running after.always (AVA's timeout sends SIGTERM to the
    // worker), take the server down with it, then let the signal do what it would have done.
    const killOnExit = () => {
      child.kill('SIGKILL');
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    };
    const killOnSignal = (signal: NodeJS.Signals) => {
      killOnExit();
      process.kill(process.pid, signal);
    };
    const unwatch = () => {
      process.removeListener('exit', killOnExit);
      process.removeListener('SIGTERM', killOnSignal);
      process.removeListener('SIGINT', killOnSignal);
    };
    process.once('exit', killOnExit);
    process.once('SIGTERM', killOnSignal);
    process.once('SIGINT', killOnSignal);
    try {
      await Promise.race([waitForPong(port), spawnError, exited]);
    } catch (err) {
      unwatch();
      child.kill('SIGKILL');
      if (err instanceof Error && err.message === INSTALL_HINT) throw err;
      lastError = err; // most likely the port was taken between freePort() and bind: try another
      continue;
    }
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      async stop() {
        unwatch();
        if (child.signalCode === null && child.exitCode === null) child.kill('SIGCONT'); // a frozen server cannot handle SIGTERM
        await kill(child);
        await removeDir();
      },
      freeze: () => void child.kill('SIGSTOP'),
      thaw: () => void child.kill('SIGCONT'),
      async crash() {
        unwatch();
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGKILL');
          await exited;
        }
        await removeDir();
      },
    };
  }
  await removeDir();
  throw new Error(`could not start redis-server: ${String(lastError)}`);
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends PING until the server answers +PONG (bounded: about 10 s). */
async function waitForPong(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await pingOnce(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING`);
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
