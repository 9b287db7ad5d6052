/**
 * The Redis store's connection to a Redis Cluster (`REDIS_CLUSTER_NODES`) or to the master a set
 * of sentinels watch (`REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`); store-redis.ts builds the
 * store on top, the same way as on one `REDIS_URL`.
 *
 * Cluster (node-redis 5 `createCluster`): commands go to the master of their key's slot; the
 * store's multi-key scripts hash-tag their keys into one slot (store-redis-jobs.ts). node-redis
 * re-reads the slot map only when a server answers MOVED/ASK, which a dead master never does: its
 * slots would keep failing after the cluster promoted its replica. So the store re-reads the
 * topology itself (`ClusterTopology.refresh`, at most every REFRESH_MIN_INTERVAL_MS) whenever a
 * node connection reports an error (a dead or restarting node: on every reconnect attempt), a
 * command fails with an outage or misses its deadline, and again every REFRESH_MIN_INTERVAL_MS
 * while a master of the map does not answer. While no master serves a slot its commands
 * fail at once (offline queue off) or answer CLUSTERDOWN: 503 store_unavailable, never a hang;
 * once the replica is promoted the next refresh routes to it. Subscriptions use a connection of
 * their own on one node (a classic PUBLISH reaches every node of a cluster); a refresh that drops
 * that node moves them to another and re-sends SUBSCRIBE there.
 *
 * Sentinel (node-redis 5 `createSentinel`): the client asks the sentinels for the master, follows
 * their +switch-master notices (and re-asks every SENTINEL_SCAN_INTERVAL_MS), reconnects to the
 * promoted replica and re-subscribes there. While there is no master, commands wait inside the
 * client for it: the store's deadline turns that wait into 503 store_unavailable.
 */
import { createCluster, createSentinel, type RedisClientType, type RedisClusterType, type RedisSentinelType } from '@keyv/redis';
import type { Logger } from './logger.js';
import { describeError, StoreUnavailableError, withTimeout, type RedisNode, type RedisTopology } from './store-core.js';

/** The client a subscriber uses: a duplicate of the store's (standalone, cluster or sentinel). */
export type SubscriberClient = Pick<RedisClientType, 'connect' | 'subscribe' | 'unsubscribe' | 'close' | 'destroy' | 'isOpen' | 'on'>;

/** What store-redis.ts needs from a connection, whatever the topology. */
export interface RedisConnection {
  /**
   * Runs the store's commands (Keyv adapters, scripts, PUBLISH, DEL). For a cluster or sentinel this
   * is that client, typed as a single client: the commands the store sends take the same arguments.
   */
  readonly client: RedisClientType;
  /** Where it points, as logs may show it (no password). */
  readonly shown: string;
  /** Keys that one script touches together must share a hash tag (cluster only). */
  readonly hashTags: boolean;
  /** A store operation missed its deadline. */
  suspect(): void;
  /** A store operation failed with an outage error. */
  outage(): void;
  /** Every master answers PING. */
  ping(): Promise<boolean>;
  /** PUBLISH; in a cluster always through the same node for a channel (see connectCluster). */
  publish(channel: string, message: string): Promise<unknown>;
  /** A new, not yet connected client of the same deployment, for subscriptions. */
  subscriber(name: string): SubscriberClient;
  /** Closes the connection (bounded by `timeoutMs`, then destroyed). */
  close(timeoutMs: number): Promise<void>;
}

export interface ConnectSettings {
  logger: Logger;
  /** CLIENT SETNAME of the command connection(s). */
  name: string;
  connectTimeoutMs: number;
  timeoutMs: number;
}

/** Re-reading the cluster's slot map at most this often (it is one CLUSTER SLOTS on one node). */
const REFRESH_MIN_INTERVAL_MS = 500;
/** Sentinel: the client asks the sentinels for the master this often besides their notices. */
const SENTINEL_SCAN_INTERVAL_MS = 5000;

export const nodeList = (nodes: readonly RedisNode[]) => nodes.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',');

/** What logs and errors call the deployment (never the password). */
export function describeTopology(topology: RedisTopology): string {
  return topology.kind === 'cluster'
    ? `Redis Cluster REDIS_CLUSTER_NODES=${nodeList(topology.nodes)}`
    : `Redis Sentinel master ${JSON.stringify(topology.masterName)} REDIS_SENTINELS=${nodeList(topology.sentinels)}`;
}

/**
 * The reconnect policy of every connection: exponential backoff capped at 2 s, jittered. Before
 * `started()` the retries stop at the connect deadline; once running, they go on forever.
 */
export function reconnectPolicy(connectTimeoutMs: number, started: () => boolean) {
  const startBy = Date.now() + connectTimeoutMs;
  return (retries: number, cause: Error): number | Error => {
    const delay = Math.min(2 ** retries * 100, 2000) + Math.random() * 100;
    return started() || Date.now() + delay < startBy ? delay : cause;
  };
}

export async function connectTopology(topology: RedisTopology, settings: ConnectSettings): Promise<RedisConnection> {
  const shown = describeTopology(topology);
  const scrub = (text: string) => (topology.password ? text.replaceAll(topology.password, '***') : text);
  try {
    return topology.kind === 'cluster' ? await connectCluster(topology, settings, shown) : await connectSentinel(topology, settings, shown);
  } catch (err) {
    throw new StoreUnavailableError(`cannot connect to ${shown} within ${settings.connectTimeoutMs} ms: ${scrub(describeError(err))}`, { cause: err });
  }
}

type Cluster = RedisClusterType;

function clusterDefaults(topology: Extract<RedisTopology, { kind: 'cluster' }>, settings: ConnectSettings, name: string, started: () => boolean) {
  return {
    name,
    ...(topology.password ? { password: topology.password } : {}),
    // As on one Redis: commands to a node that is down fail at once instead of queueing.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: Math.min(settings.connectTimeoutMs, settings.timeoutMs),
      reconnectStrategy: reconnectPolicy(settings.connectTimeoutMs, started),
    },
  };
}

async function connectCluster(topology: Extract<RedisTopology, { kind: 'cluster' }>, settings: ConnectSettings, shown: string): Promise<RedisConnection> {
  const { logger } = settings;
  let started = false;
  const cluster: Cluster = createCluster({
    rootNodes: topology.nodes.map(({ host, port }) => ({ socket: { host, port } })),
    defaults: clusterDefaults(topology, settings, settings.name, () => started),
  });
  const topologyWatch = new ClusterTopology(cluster, topology.nodes, logger, shown);
  // Redis may come up a moment after us: every seed is tried, again, until the connect deadline.
  const startBy = Date.now() + settings.connectTimeoutMs;
  for (;;) {
    try {
      await withTimeout(cluster.connect(), Math.max(startBy - Date.now(), 0) + 500, 'Redis Cluster connect');
      break;
    } catch (err) {
      if (cluster.isOpen) cluster.destroy();
      if (Date.now() + 200 >= startBy) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  started = true;
  logger.info({ redis: shown, masters: cluster.masters.length }, 'store: Redis Cluster connected');

  return {
    client: cluster as unknown as RedisClientType,
    shown,
    hashTags: true,
    suspect: () => topologyWatch.refresh('a store call missed its deadline'),
    outage: () => topologyWatch.refresh('a store call found no master'),
    async ping() {
      const { masters } = cluster;
      if (masters.length === 0) return false;
      const replies = await Promise.all(masters.map(async (master) => (await cluster.nodeClient(master)).ping()));
      return replies.every((reply) => reply === 'PONG');
    },
    // A classic PUBLISH reaches every node's subscribers, whichever node takes it; node-redis would
    // send each to a random node, and two messages through two nodes can arrive in either order.
    // Through the master of the channel name's slot, one channel's messages keep their order.
    publish: (channel, message) => cluster.sendCommand(channel, false, ['PUBLISH', channel, message]),
    subscriber(name) {
      // Subscriptions need one node only: no connection to every master.
      const subscriber: Cluster = cluster.duplicate({ minimizeConnections: true, defaults: clusterDefaults(topology, settings, name, () => true) });
      new ClusterTopology(subscriber, topology.nodes, logger, shown);
      return subscriber as unknown as SubscriberClient;
    },
    async close(timeoutMs) {
      topologyWatch.stop();
      await closeBounded(cluster, timeoutMs, logger);
    },
  };
}

/** Re-reads a cluster's slot map after node errors, outages and missed deadlines (see the file comment). */
class ClusterTopology {
  private running = false;
  private last = 0;
  private stopped = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly seeds: readonly RedisNode[],
    private readonly logger: Logger,
    private readonly shown: string,
  ) {
    cluster.on('node-error', (err: unknown, node: RedisNode) => {
      // Repeats on every reconnect attempt while a node is down: an expected condition, no stack.
      logger.warn({ redis: shown, node: nodeList([node]), reason: describeError(err) }, 'store: Redis Cluster node connection error');
      this.refresh('a node connection failed');
    });
    cluster.on('error', (err: unknown) => logger.warn({ redis: shown, reason: describeError(err) }, 'store: Redis Cluster error'));
  }

  stop(): void {
    this.stopped = true;
  }

  /** Re-reads the slot map (one at a time, at most every REFRESH_MIN_INTERVAL_MS); never throws. */
  refresh(why: string): void {
    if (this.stopped || this.running || !this.cluster.isOpen || Date.now() - this.last < REFRESH_MIN_INTERVAL_MS) return;
    this.running = true;
    this.last = Date.now();
    const before = this.describe();
    // node-redis re-reads from the node given first, then from the seeds. A master that answers is
    // the best start; failing that, a seed (node-redis only reads `options` from it).
    const live = this.cluster.masters.find((master) => master.client?.isReady)?.client;
    const seed = this.seeds[Math.floor(Math.random() * this.seeds.length)] as RedisNode;
    const start = live ?? ({ options: { socket: { host: seed.host, port: seed.port } } } as unknown as RedisClientType);
    this.cluster._slots
      .rediscover(start as Parameters<Cluster['_slots']['rediscover']>[0])
      .then(() => {
        const after = this.describe();
        if (after !== before) this.logger.info({ redis: this.shown, masters: after, why }, 'store: Redis Cluster topology changed');
        else this.logger.debug({ redis: this.shown, masters: after, why, pubSub: this.cluster.pubSubNode?.address }, 'store: Redis Cluster topology re-read, unchanged');
      })
      .catch((err: unknown) => this.logger.warn({ redis: this.shown, reason: describeError(err), why }, 'store: Redis Cluster topology refresh failed'))
      .finally(() => {
        this.running = false;
        // While a master in the map does not answer (dead, not yet replaced), keep re-reading:
        // the promotion is then found within REFRESH_MIN_INTERVAL_MS, traffic or not.
        if (!this.stopped && this.cluster.masters.some((master) => master.client !== undefined && !master.client.isReady)) {
          setTimeout(() => this.refresh('a master is still unreachable'), REFRESH_MIN_INTERVAL_MS).unref();
        }
      });
  }

  private describe(): string {
    return this.cluster.masters.map((master) => master.address).sort().join(',');
  }
}

type Sentinel = RedisSentinelType;

function sentinelOptions(topology: Extract<RedisTopology, { kind: 'sentinel' }>, settings: ConnectSettings, name: string, started: () => boolean) {
  const socket = {
    connectTimeout: Math.min(settings.connectTimeoutMs, settings.timeoutMs),
    reconnectStrategy: reconnectPolicy(settings.connectTimeoutMs, started),
  };
  return {
    name: topology.masterName,
    sentinelRootNodes: topology.sentinels.map(({ host, port }) => ({ host, port })),
    nodeClientOptions: { name, ...(topology.password ? { password: topology.password } : {}), disableOfflineQueue: true, socket },
    sentinelClientOptions: { socket: { connectTimeout: socket.connectTimeout } },
    scanInterval: SENTINEL_SCAN_INTERVAL_MS,
  };
}

async function connectSentinel(topology: Extract<RedisTopology, { kind: 'sentinel' }>, settings: ConnectSettings, shown: string): Promise<RedisConnection> {
  const { logger } = settings;
  let started = false;
  const open = (name: string, isStarted: () => boolean): Sentinel => {
    const sentinel: Sentinel = createSentinel(sentinelOptions(topology, settings, name, isStarted));
    sentinel.on('error', (err: unknown) => logger.warn({ redis: shown, reason: describeError(err) }, 'store: Redis Sentinel connection error'));
    sentinel.on('topology-change', (event: { type: string; node?: RedisNode }) => {
      if (event.type === 'MASTER_CHANGE' && event.node) logger.info({ redis: shown, master: nodeList([event.node]) }, 'store: Redis Sentinel master is now this node');
    });
    return sentinel;
  };
  const sentinel = open(settings.name, () => started);
  try {
    // node-redis retries the sentinels itself (once a second); the deadline bounds it.
    await withTimeout(sentinel.connect(), settings.connectTimeoutMs + 500, 'Redis Sentinel connect');
  } catch (err) {
    void sentinel.destroy().catch(() => undefined);
    throw err;
  }
  started = true;
  const master = sentinel.getMasterNode();
  logger.info({ redis: shown, master: master ? nodeList([master]) : undefined }, 'store: Redis Sentinel master connected');

  return {
    client: sentinel as unknown as RedisClientType,
    shown,
    hashTags: false, // one master holds every key
    // The client follows the sentinels by itself; a call waiting for a master just fails its deadline.
    suspect: () => undefined,
    outage: () => undefined,
    async ping() {
      return (await sentinel.ping()) === 'PONG';
    },
    publish: (channel, message) => sentinel.publish(channel, message),
    subscriber: (name) => open(name, () => true) as unknown as SubscriberClient,
    close: (timeoutMs) => closeBounded(sentinel, timeoutMs, logger),
  };
}

/** close(), or destroy() when it takes longer than `timeoutMs` (a frozen node never answers QUIT). */
async function closeBounded(client: { close(): Promise<void>; destroy(): unknown; isOpen: boolean }, timeoutMs: number, logger: Logger): Promise<void> {
  try {
    await withTimeout(client.close(), timeoutMs, 'Redis close');
  } catch (err) {
    logger.warn({ reason: describeError(err) }, 'store: Redis close failed; destroying the connection');
    if (client.isOpen) await Promise.resolve(client.destroy()).catch(() => undefined);
  }
}
