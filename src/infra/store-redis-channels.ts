/**
 * Store.channels on Redis pub/sub. PUBLISH goes over the store's shared connection (so, like every
 * other command there, it rejects at once while Redis is down: disableOfflineQueue). A connection
 * in subscribe mode can run nothing else, so subscriptions get a second connection of their own, a
 * `duplicate()` of the shared client (same address, options and reconnect policy), opened on the first
 * subscribe and closed by disconnect().
 *
 * After a reconnect, node-redis (v5, @redis/client lib/client) re-sends SUBSCRIBE for every channel
 * that still has listeners before the connection is ready again, so subscriptions survive a Redis
 * restart. In a Redis Cluster a classic PUBLISH reaches every node, so the subscriber connection
 * needs one node; when that node goes, the store's topology refresh moves the subscriptions to
 * another (store-redis-topology.ts); with Sentinel they follow the master. Redis pub/sub is fire-and-forget: whatever was published while the subscriber was
 * disconnected is lost (at most once; see ChannelStore).
 */
import type { Logger } from './logger.js';
import { describeError, storageChannel, withTimeout, type ChannelStore } from './store-core.js';
import type { StoreDeadline } from './store-deadline.js';
import { checkHandler, checkMessage, isolatedHandler } from './store-channels.js';
import type { RedisConnection, SubscriberClient } from './store-redis-topology.js';

export interface RedisChannelsOptions {
  logger: Logger;
  keyPrefix: string | undefined;
  /** Bound on opening the subscriber connection (and on closing it). */
  connectTimeoutMs: number;
  closeTimeoutMs: number;
  /** The store's deadline, for PUBLISH on the shared connection. */
  deadline: StoreDeadline;
  /** True once the store's disconnect() began. */
  isClosed: () => boolean;
  /** The REDIS_URL as logs may show it (password masked). */
  shownUrl: string;
}

export function redisChannels(
  connection: Pick<RedisConnection, 'publish' | 'subscriber'>,
  opts: RedisChannelsOptions,
): { channels: ChannelStore; close(): Promise<void> } {
  const { logger, keyPrefix, isClosed, shownUrl } = opts;
  let opening: Promise<SubscriberClient> | undefined;

  const openSubscriber = (): Promise<SubscriberClient> => {
    opening ??= (async () => {
      const subscriber = connection.subscriber(
        keyPrefix ? `passgate:${keyPrefix}:sub` : 'passgate:sub', // shows in CLIENT LIST
      );
      let ready = false;
      subscriber.on('error', (err: unknown) => {
        // Repeats on every reconnect attempt while Redis is down: an expected condition, no stack.
        logger.warn({ redis: shownUrl, reason: describeError(err) }, 'store: Redis subscriber connection error');
      });
      subscriber.on('ready', () => {
        if (ready) logger.info({ redis: shownUrl }, 'store: Redis subscriber restored (subscriptions re-sent)');
      });
      try {
        await withTimeout(subscriber.connect(), opts.connectTimeoutMs, 'Redis subscriber connect');
        ready = true;
        return subscriber;
      } catch (err) {
        if (subscriber.isOpen) subscriber.destroy();
        opening = undefined; // the next subscribe tries again
        throw err;
      }
    })();
    return opening;
  };

  const channels: ChannelStore = {
    async publish(channel, message) {
      const name = storageChannel(channel, keyPrefix);
      checkMessage(message);
      if (isClosed()) throw new Error('store is disconnected');
      await opts.deadline('Redis PUBLISH', () => connection.publish(name, message));
    },
    async subscribe(channel, handler) {
      const name = storageChannel(channel, keyPrefix);
      checkHandler(handler);
      if (isClosed()) throw new Error('store is disconnected');
      const subscriber = await openSubscriber();
      if (isClosed()) throw new Error('store is disconnected');
      // One listener per subscription: node-redis sends SUBSCRIBE for the first listener of a
      // channel and UNSUBSCRIBE when its last one leaves. `active` stops delivery at once on
      // unsubscribe, whatever the connection is doing.
      let active = true;
      const listener = isolatedHandler((message) => (active ? handler(message) : undefined), channel, logger);
      const unsubscribe = async (): Promise<void> => {
        active = false;
        if (isClosed() || !subscriber.isOpen) return; // the connection (and its subscriptions) is gone
        try {
          // While Redis is down the command waits for the reconnect: bounded, and only tidying up.
          await withTimeout(subscriber.unsubscribe(name, listener), opts.closeTimeoutMs, 'Redis UNSUBSCRIBE');
        } catch (err) {
          logger.warn({ err, channel }, 'store: Redis UNSUBSCRIBE failed (delivery to the handler stopped anyway)');
        }
      };
      try {
        // While Redis is down SUBSCRIBE waits for the reconnect: bounded like connecting.
        await withTimeout(subscriber.subscribe(name, listener), opts.connectTimeoutMs, 'Redis SUBSCRIBE');
      } catch (err) {
        void unsubscribe(); // a SUBSCRIBE still queued must not deliver to a handler the caller saw fail
        throw err;
      }
      let ended: Promise<void> | undefined;
      return () => (ended ??= unsubscribe());
    },
  };

  return {
    channels,
    async close() {
      const pending = opening;
      if (!pending) return;
      const subscriber = await pending.catch(() => undefined);
      if (!subscriber?.isOpen) return;
      try {
        await withTimeout(subscriber.close(), opts.closeTimeoutMs, 'Redis subscriber close');
      } catch (err) {
        logger.warn({ err }, 'store: Redis subscriber close failed; destroying the connection');
        if (subscriber.isOpen) subscriber.destroy();
      }
    },
  };
}
