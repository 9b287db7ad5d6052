import KeyvRedis, { createClient, Keyv, type RedisClientType } from '@keyv/redis';
import {
  describeError,
  keyvOptions,
  logKeyvErrors,
  storageNamespace,
  StoreUnavailableError,
  withTimeout,
  type Store,
  type StoreOptions,
} from './store-core.js';
import { redisChannels } from './store-redis-channels.js';
import { redisPrimitives } from './store-redis-primitives.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const PING_TIMEOUT_MS = 2000;

/**
 * Scale-out store: @keyv/redis 5 with ONE client connection shared by every namespace.
 * Keys are `<prefix>:<namespace>:<key>`: each namespace's adapter prefixes with its namespace and
 * ':' (`keyPrefixSeparator`), and Keyv's own prefixing is off (`useKeyPrefix: false`, as
 * @keyv/redis `createKeyv` does) so keys are not prefixed twice (`ns::ns:key`, ecosystem.md §5).
 * The native primitives (leases, buckets) are Lua scripts on the same connection
 * (store-redis-primitives.ts), keys `<prefix>:lease:<name>` and `<prefix>:bucket:<key>`.
 * Store.channels is Redis pub/sub, channels `<prefix>:channel:<name>`, subscribed on a second
 * connection opened on the first subscribe (store-redis-channels.ts).
 */
export async function createRedisStore(redisUrl: string, opts: StoreOptions): Promise<Store> {
  const { logger, keyPrefix } = opts;
  const shownUrl = maskPassword(redisUrl);
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;

  let started = false;
  let lastError: unknown;
  const deadline = Date.now() + connectTimeoutMs;
  const client: RedisClientType = createClient({
    url: redisUrl,
    name: keyPrefix ? `passgate:${keyPrefix}` : 'passgate', // shows in CLIENT LIST
    // Commands fail at once while the connection is down instead of queueing without bound:
    // callers (the DRM gate) fail closed and /readyz turns false, rather than hanging.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      // Backoff as the adapter's default (exponential, capped at 2 s, jittered). At start-up
      // the retries stop at the connect deadline (Redis may start a moment after us, but
      // createStore must not wait forever); once running, reconnect forever.
      reconnectStrategy: (retries, cause) => {
        const delay = Math.min(2 ** retries * 100, 2000) + Math.random() * 100;
        return started || Date.now() + delay < deadline ? delay : cause;
      },
    },
  });
  client.on('error', (err: unknown) => {
    lastError = err;
    logger.warn({ err, redis: shownUrl }, 'store: Redis connection error');
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

  const namespaces = new Map<string, Keyv<unknown>>();
  let closing: Promise<void> | undefined;
  const borrowed = borrowClient(client);
  const isClosed = () => closing !== undefined;
  const pubsub = redisChannels(client, {
    logger,
    keyPrefix,
    connectTimeoutMs,
    closeTimeoutMs: PING_TIMEOUT_MS,
    isClosed,
    shownUrl,
  });

  return {
    kind: 'redis',
    ...redisPrimitives(client, keyPrefix, isClosed),
    channels: pubsub.channels,
    namespace<T>(name: string): Keyv<T> {
      const ns = storageNamespace(name, keyPrefix);
      const cached = namespaces.get(ns);
      if (cached) return cached as Keyv<T>;
      if (closing) throw new Error('store is disconnected');
      // throwOnErrors on the adapter too: otherwise it catches command errors and answers
      // undefined/false, which Keyv would pass on as "absent".
      const adapter = new KeyvRedis<T>(borrowed, { namespace: ns, keyPrefixSeparator: ':', ...keyvOptions });
      const keyv = new Keyv<T>({ store: adapter, namespace: ns, useKeyPrefix: false, ...keyvOptions });
      logKeyvErrors(keyv as Keyv<unknown>, logger, ns);
      namespaces.set(ns, keyv as Keyv<unknown>);
      return keyv;
    },
    async ping() {
      if (closing) return false;
      try {
        return (await withTimeout(client.ping(), PING_TIMEOUT_MS, 'Redis PING')) === 'PONG';
      } catch (err) {
        logger.warn({ err }, 'store: ping failed');
        return false;
      }
    },
    purgeExpired: async () => 0, // Redis expires keys itself: the adapter sets PX from the TTL
    disconnect() {
      closing ??= (async () => {
        await pubsub.close(); // logs its own failure; never rejects
        try {
          await withTimeout(client.close(), PING_TIMEOUT_MS, 'Redis close');
        } catch (err) {
          logger.warn({ err }, 'store: Redis close failed; destroying the connection');
          if (client.isOpen) client.destroy();
        }
        logger.info('store: Redis disconnected');
      })();
      return closing;
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
