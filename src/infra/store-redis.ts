import KeyvRedis, { createClient, Keyv, type RedisClientType } from '@keyv/redis';
import {
  DEFAULT_STORE_TIMEOUT_MS,
  describeError,
  keyvOptions,
  logKeyvErrors,
  storageNamespace,
  StoreUnavailableError,
  withTimeout,
  type Store,
  type StoreOptions,
} from './store-core.js';
import { storeDeadline, withDeadlines } from './store-deadline.js';
import { redisChannels } from './store-redis-channels.js';
import { isRedisOutage, RedisLink } from './store-redis-link.js';
import { redisJobs } from './store-redis-jobs.js';
import { redisPrimitives } from './store-redis-primitives.js';
import { connectTopology, reconnectPolicy, type ConnectSettings, type RedisConnection } from './store-redis-topology.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * Scale-out store: @keyv/redis 5 with ONE client connection shared by every namespace.
 * Keys are `<prefix>:<namespace>:<key>`: each namespace's adapter prefixes with its namespace and
 * ':' (`keyPrefixSeparator`), and Keyv's own prefixing is off (`useKeyPrefix: false`, as
 * @keyv/redis `createKeyv` does) so keys are not prefixed twice (`ns::ns:key`, ecosystem.md §5).
 * The native primitives (leases, buckets) are Lua scripts on the same connection
 * (store-redis-primitives.ts), keys `<prefix>:lease:<name>` and `<prefix>:bucket:<key>`; so are
 * the job queues (store-redis-jobs.ts), keys `<prefix>:jobs:<queue>:…`.
 * Store.channels is Redis pub/sub, channels `<prefix>:channel:<name>`, subscribed on a second
 * connection opened on the first subscribe (store-redis-channels.ts).
 * Every operation has a deadline (`timeoutMs`, store-deadline.ts), and a connection that stops
 * answering is replaced (store-redis-link.ts), so a frozen Redis is a StoreUnavailableError within
 * the deadline and the store recovers by itself once Redis answers again.
 * `opts.redis` instead of `opts.redisUrl`: the same store over a Redis Cluster or a Sentinel-watched
 * master (store-redis-topology.ts: failover and topology changes); in a cluster the job queues'
 * keys carry a hash tag, `<prefix>:jobs:{<queue>}:…`, so each queue's script runs on one slot.
 */
export async function createRedisStore(opts: StoreOptions): Promise<Store> {
  const { logger, keyPrefix } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const settings: ConnectSettings = {
    logger,
    name: keyPrefix ? `passgate:${keyPrefix}` : 'passgate', // shows in CLIENT LIST
    connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    timeoutMs,
  };
  const connection = opts.redis
    ? await connectTopology(opts.redis, settings)
    : await connectStandalone(opts.redisUrl ?? '', settings, keyPrefix);
  const { client } = connection;

  const deadline = storeDeadline({
    ms: timeoutMs,
    isOutage: isRedisOutage,
    onTimeout: () => connection.suspect(),
    onOutage: () => connection.outage(),
  });
  const namespaces = new Map<string, Keyv<unknown>>();
  let closing: Promise<void> | undefined;
  const borrowed = borrowClient(client);
  const isClosed = () => closing !== undefined;
  const pubsub = redisChannels(connection, {
    logger,
    keyPrefix,
    connectTimeoutMs: timeoutMs,
    closeTimeoutMs: timeoutMs,
    deadline,
    isClosed,
    shownUrl: connection.shown,
  });
  const { leases, buckets } = redisPrimitives(client, keyPrefix, isClosed);

  return {
    kind: 'redis',
    leases: withDeadlines(leases, deadline, 'lease'),
    buckets: withDeadlines(buckets, deadline, 'bucket'),
    jobs: withDeadlines(redisJobs(client, keyPrefix, isClosed, connection.hashTags), deadline, 'jobs'),
    channels: pubsub.channels,
    namespace<T>(name: string): Keyv<T> {
      const ns = storageNamespace(name, keyPrefix);
      const cached = namespaces.get(ns);
      if (cached) return cached as Keyv<T>;
      if (closing) throw new Error('store is disconnected');
      // throwOnErrors on the adapter too: otherwise it catches command errors and answers
      // undefined/false, which Keyv would pass on as "absent".
      const adapter = new KeyvRedis<T>(borrowed, { namespace: ns, keyPrefixSeparator: ':', ...keyvOptions });
      const keyv = new Keyv<T>({ store: withDeadlines(adapter, deadline, name), namespace: ns, useKeyPrefix: false, ...keyvOptions });
      logKeyvErrors(keyv as Keyv<unknown>, logger, ns, isRedisOutage);
      namespaces.set(ns, keyv as Keyv<unknown>);
      return keyv;
    },
    async ping() {
      if (closing) return false;
      try {
        return await deadline('Redis PING', () => connection.ping());
      } catch (err) {
        logger.warn({ reason: describeError(err) }, 'store: ping failed');
        return false;
      }
    },
    purgeExpired: async () => 0, // Redis expires keys itself: the adapter sets PX from the TTL
    disconnect() {
      closing ??= (async () => {
        await pubsub.close(); // logs its own failure; never rejects
        await connection.close(timeoutMs);
        logger.info('store: Redis disconnected');
      })();
      return closing;
    },
  };
}

/** One Redis server at REDIS_URL, its connection kept answering by a RedisLink (store-redis-link.ts). */
async function connectStandalone(redisUrl: string, settings: ConnectSettings, keyPrefix: string | undefined): Promise<RedisConnection> {
  const { logger, connectTimeoutMs, timeoutMs } = settings;
  const shownUrl = maskPassword(redisUrl);
  let started = false;
  let lastError: unknown;
  const client: RedisClientType = createClient({
    url: redisUrl,
    name: settings.name,
    // Commands fail at once while the connection is down instead of queueing without bound:
    // callers (the DRM gate) fail closed and /readyz turns false, rather than hanging.
    disableOfflineQueue: true,
    socket: {
      // Each TCP connect attempt (start-up retries, reconnects): the handshake after it is
      // bounded by the link (store-redis-link.ts), the start-up as a whole by connectTimeoutMs.
      connectTimeout: Math.min(connectTimeoutMs, timeoutMs),
      // At start-up the retries stop at the connect deadline (Redis may start a moment after us,
      // but createStore must not wait forever); once running, reconnect forever.
      reconnectStrategy: reconnectPolicy(connectTimeoutMs, () => started),
    },
  });
  client.on('error', (err: unknown) => {
    lastError = err;
    // An expected condition while Redis is down (repeats on every reconnect attempt): no stack.
    logger.warn({ redis: shownUrl, reason: describeError(err) }, 'store: Redis connection error');
  });
  client.on('ready', () => {
    if (started) logger.info({ redis: shownUrl }, 'store: Redis connection restored');
  });

  try {
    // The hard bound, also for a server that accepts but never completes the handshake.
    await withTimeout(client.connect(), connectTimeoutMs + 500, 'connect');
    started = true;
  } catch (err) {
    if (client.isOpen) client.destroy(); // stop a connect still in flight (timeout case)
    const reason = scrubPassword(describeError(lastError ?? err), redisUrl);
    throw new StoreUnavailableError(
      `cannot connect to Redis at REDIS_URL=${shownUrl} within ${connectTimeoutMs} ms: ${reason}`,
      { cause: lastError ?? err },
    );
  }
  logger.info({ redis: shownUrl, keyPrefix }, 'store: Redis connected');

  const link = new RedisLink(client, { logger, shownUrl, timeoutMs });
  return {
    client: link.client,
    shown: shownUrl,
    hashTags: false,
    suspect: () => link.suspect(),
    outage: () => undefined, // node-redis reconnects by itself; a silent connection is the link's job
    ping: async () => (await link.client.ping()) === 'PONG',
    publish: (channel, message) => link.client.publish(channel, message),
    subscriber: (name) => link.client.duplicate({ name }),
    async close(ms) {
      const current = link.close();
      try {
        await withTimeout(current.close(), ms, 'Redis close');
      } catch (err) {
        logger.warn({ reason: describeError(err) }, 'store: Redis close failed; destroying the connection');
        if (current.isOpen) current.destroy();
      }
    },
  };
}

/**
 * The shared client as one namespace adapter sees it. KeyvRedis would otherwise add its own
 * listeners to the client (one copy of every connection error per namespace), reconnect a closed
 * client on the next operation (resurrecting the store after disconnect()), and close the shared
 * connection when a single namespace's Keyv is disconnected. The store owns the connection.
 */
function borrowClient(client: RedisClientType): RedisClientType {
  const borrowed: RedisClientType = new Proxy(client, {
    get(target, prop) {
      switch (prop) {
        case 'on':
          return () => borrowed;
        case 'connect':
          return () => Promise.reject(new Error('store is disconnected'));
        case 'close':
        case 'destroy':
          return () => Promise.resolve();
        default: {
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        }
      }
    },
  });
  return borrowed;
}

/** Removes the URL's password (raw or decoded) from a text that may quote it. */
function scrubPassword(text: string, url: string): string {
  let raw = '';
  try {
    raw = new URL(url).password;
  } catch {
    return text;
  }
  if (!raw) return text;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // keep the raw form only
  }
  return text.replaceAll(raw, '***').replaceAll(decoded, '***');
}

/** REDIS_URL as it may appear in logs and errors: the password replaced by `***`. */
export function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<not a URL>';
  }
}
