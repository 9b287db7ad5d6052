/**
 * Real Redis topologies for the tests, each a set of local `redis-server` processes:
 *
 * - startRedisCluster: 3 masters + 3 replicas (`--cluster-enabled yes`, joined by
 *   `redis-cli --cluster create … --cluster-replicas 1`), a short cluster-node-timeout so a
 *   killed master is failed over within seconds;
 * - startRedisSentinel: a master, its replica and 3 sentinels (`redis-server <conf> --sentinel`,
 *   quorum 2) watching it as `passgate-master`.
 *
 * Ports are picked free (a cluster node also needs port + 10000 for its bus). Every process is
 * killed when the test file ends (after.always; and on exit, by startRedisServer).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestFn } from 'ava';
import type { RedisNode, RedisTopology } from '../../src/infra/store.js';
import { startRedisServer, type RedisServer } from './with-redis.js';

const run = promisify(execFile);

/** `redis-cli -p <port> <args…>` on 127.0.0.1; resolves its output (bounded). */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

/** Polls `check` every 100 ms until it holds; throws `what` after `timeoutMs` (set-up only, never an assertion). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`test Redis set-up: ${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (+10000) is free too. */
async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await isFree(port)) && (await isFree(port + 10_000))) return port;
  }
}

export interface ClusterNodeInfo {
  port: number;
  id: string;
  role: 'master' | 'replica';
  /** A node the cluster marked as failed (a killed master). */
  failed: boolean;
  /** The master's id (replicas). */
  masterId?: string;
}

export interface RedisClusterSet {
  /** Every node, in start order. */
  readonly servers: RedisServer[];
  /** What createStore takes: every node as a seed. */
  readonly topology: RedisTopology;
  /** CLUSTER NODES as seen by a live node. */
  nodes(): Promise<ClusterNodeInfo[]>;
  /** The ports of the masters serving slots. */
  masters(): Promise<number[]>;
  server(port: number): RedisServer;
  /** Waits until every live node reports cluster_state:ok and `ready` holds for the node table. */
  settle(ready?: (nodes: ClusterNodeInfo[]) => boolean): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(options: { nodeTimeoutMs?: number } = {}): Promise<RedisClusterSet> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const servers: RedisServer[] = [];
  const dead = new Set<number>();
  const stopAll = () => Promise.all(servers.map((server) => server.stop()));
  try {
    for (let i = 0; i < 6; i++) {
      servers.push(
        await startRedisServer({
          port: await freeClusterPort(),
          args: [
            ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs)],
            // A replica may take over however long it was cut off (the tests WAIT for it first).
            ...['--cluster-replica-validity-factor', '0'],
          ],
        }),
      );
    }
    await run('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
  } catch (err) {
    await stopAll();
    throw err;
  }
  const live = () => servers.filter((server) => !dead.has(server.port));
  const nodes = async (): Promise<ClusterNodeInfo[]> => {
    const text = await redisCli((live()[0] as RedisServer).port, 'cluster', 'nodes');
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id = '', address = '', flags = '', masterId = '-'] = line.split(' ');
        return {
          port: Number(address.split('@')[0]?.split(':').at(-1)),
          id,
          role: flags.includes('master') ? ('master' as const) : ('replica' as const),
          failed: /\bfail\b/.test(flags),
          ...(masterId === '-' ? {} : { masterId }),
        };
      });
  };
  const settle = async (ready: (table: ClusterNodeInfo[]) => boolean = () => true) => {
    await until('cluster_state:ok on every live node', async () => {
      const states = await Promise.all(live().map((server) => redisCli(server.port, 'cluster', 'info')));
      return states.every((info) => info.includes('cluster_state:ok')) && ready(await nodes());
    });
  };
  const set: RedisClusterSet = {
    servers,
    topology: { kind: 'cluster', nodes: servers.map((server): RedisNode => ({ host: '127.0.0.1', port: server.port })) },
    nodes,
    masters: async () => (await nodes()).filter((node) => node.role === 'master' && !node.failed).map((node) => node.port),
    server(port) {
      const server = servers.find((s) => s.port === port);
      if (!server) throw new Error(`no cluster node on port ${port}`);
      // A crash takes the node out of the set the helpers ask.
      return {
        ...server,
        crash: async () => {
          dead.add(port);
          await server.crash();
        },
      };
    },
    settle,
    stop: async () => void (await stopAll()),
  };
  try {
    // Every node agrees, each master has its replica, and each replica has copied its master.
    await settle((table) => table.filter((node) => node.role === 'master').length === 3 && table.filter((node) => node.role === 'replica').length === 3);
    for (const node of (await nodes()).filter((n) => n.role === 'replica')) {
      await until('every replica in sync', async () => (await redisCli(node.port, 'info', 'replication')).includes('master_link_status:up'));
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return set;
}

export interface RedisSentinelSet {
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinels: RedisServer[];
  readonly masterName: string;
  /** What createStore takes. */
  readonly topology: RedisTopology;
  /** The port the sentinels currently name as the master. */
  currentMaster(): Promise<number>;
  stop(): Promise<void>;
}

export async function startRedisSentinel(options: { downAfterMs?: number } = {}): Promise<RedisSentinelSet> {
  const masterName = 'passgate-master';
  const downAfterMs = options.downAfterMs ?? 1000;
  const started: RedisServer[] = [];
  const dirs: string[] = [];
  const stopAll = async () => {
    await Promise.all(started.map((server) => server.stop()));
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  };
  try {
    const master = await startRedisServer();
    started.push(master);
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    started.push(replica);
    const sentinels: RedisServer[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'passgate-sentinel-'));
      dirs.push(dir);
      const configFile = path.join(dir, 'sentinel.conf');
      await writeFile(
        configFile,
        [
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
          `sentinel failover-timeout ${masterName} ${downAfterMs * 5}`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      const sentinel = await startRedisServer({ dir, configFile, args: ['--sentinel'] });
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    // The replica copies the master, and every sentinel knows the replica and the other two.
    await until('the replica in sync', async () => (await redisCli(replica.port, 'info', 'replication')).includes('master_link_status:up'));
    for (const sentinel of sentinels) {
      await until('each sentinel sees the replica and the other sentinels', async () => {
        const replicas = await redisCli(sentinel.port, 'sentinel', 'replicas', masterName);
        const peers = await redisCli(sentinel.port, 'sentinel', 'sentinels', masterName);
        return replicas.includes(String(replica.port)) && peers.split('\n').filter((line) => line === 'runid').length === 2;
      });
    }
    return {
      master,
      replica,
      sentinels,
      masterName,
      topology: { kind: 'sentinel', sentinels: sentinels.map((s): RedisNode => ({ host: '127.0.0.1', port: s.port })), masterName },
      async currentMaster() {
        const reply = await redisCli((sentinels.at(-1) as RedisServer).port, 'sentinel', 'get-master-addr-by-name', masterName);
        return Number(reply.trim().split('\n')[1]);
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Starts a set of processes in `test.before`, stops it in `after.always`; the getter is valid inside tests. */
function withSet<T extends { stop(): Promise<void> }>(test: TestFn<unknown>, what: string, start: () => Promise<T>): () => T {
  let set: T | undefined;
  test.before(async () => {
    set = await start();
  });
  test.after.always(async () => {
    await set?.stop();
  });
  return () => {
    if (!set) throw new Error(`${what} did not start (see the before hook)`);
    return set;
  };
}

/** Registers a cluster for the calling test file. */
export const withRedisCluster = (test: TestFn<unknown>, options?: Parameters<typeof startRedisCluster>[0]) =>
  withSet(test, 'the Redis Cluster', () => startRedisCluster(options));

/** Registers a Sentinel set for the calling test file. */
export const withRedisSentinel = (test: TestFn<unknown>, options?: Parameters<typeof startRedisSentinel>[0]) =>
  withSet(test, 'the Redis Sentinel set', () => startRedisSentinel(options));
