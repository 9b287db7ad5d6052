/**
 * Store.channels: what both backends share (argument checks, handler isolation) and the in-process
 * implementation used by the embedded store. The Redis one is store-redis-channels.ts.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from './logger.js';
import { storageChannel, type ChannelHandler, type ChannelStore } from './store-core.js';

/** A notification, not a payload transport: callers send a key or a small JSON object. */
export const MAX_MESSAGE_LENGTH = 64 * 1024;

export function checkMessage(message: unknown): asserts message is string {
  if (typeof message !== 'string' || message.length > MAX_MESSAGE_LENGTH) {
    throw new TypeError(`channel message must be a string of at most ${MAX_MESSAGE_LENGTH} characters`);
  }
}

export function checkHandler(handler: unknown): asserts handler is ChannelHandler {
  if (typeof handler !== 'function') throw new TypeError('channel handler must be a function');
}

/**
 * `handler` as the backend calls it: later (a microtask, so never inside publish() or the Redis
 * reply parser, where a throw would corrupt the connection's decoder), and with whatever it throws
 * or rejects logged instead of becoming an uncaught exception that ends the process.
 */
export function isolatedHandler(handler: ChannelHandler, channel: string, logger: Logger): (message: string) => void {
  const failed = (err: unknown) => logger.error({ err, channel }, 'store: channel handler failed');
  return (message) => {
    queueMicrotask(() => {
      try {
        const result = handler(message);
        if (result instanceof Promise) result.catch(failed);
      } catch (err) {
        failed(err);
      }
    });
  };
}

/**
 * Channels inside this process (the embedded store, and test stores that live in memory). The
 * embedded store belongs to one process — it is the single-node deployment, with no other replica
 * holding an L1 cache to purge — so an EventEmitter reaches every subscriber there is. Another
 * process opening the same SQLite file (a CLI command) does not receive these messages.
 */
export function localChannels(logger: Logger, keyPrefix: string | undefined, isClosed: () => boolean): ChannelStore {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0); // many subscribers on one channel is normal, not a leak

  return {
    async publish(channel, message) {
      const name = storageChannel(channel, keyPrefix);
      checkMessage(message);
      if (isClosed()) throw new Error('store is disconnected');
      emitter.emit(name, message); // listeners are isolatedHandler: each defers to a microtask
    },
    async subscribe(channel, handler) {
      const name = storageChannel(channel, keyPrefix);
      checkHandler(handler);
      if (isClosed()) throw new Error('store is disconnected');
      const listener = isolatedHandler(handler, channel, logger);
      emitter.on(name, listener);
      return async () => {
        emitter.off(name, listener);
      };
    },
  };
}
