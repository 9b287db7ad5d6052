import { createEmbeddedStore } from './store-embedded.js';
import { createRedisStore } from './store-redis.js';
import { checkKeyPrefix, type Store, type StoreOptions } from './store-core.js';

export {
  StoreUnavailableError,
  type BucketDecision,
  type BucketRule,
  type BucketStore,
  type ChannelHandler,
  type ChannelStore,
  type ClaimedJob,
  type JobQueueStats,
  type JobQueueStore,
  type JobState,
  type JobStatus,
  type LeaseStore,
  type RedisNode,
  type RedisTopology,
  type Store,
  type StoreOptions,
} from './store-core.js';
export { maskPassword } from './store-redis.js';

/**
 * The one place shared state is opened. `redisUrl` (one Redis) or `redis` (a Redis Cluster or a
 * Sentinel-watched master) ⇒ Redis, which many replicas share; otherwise the embedded SQLite file
 * in `dataDir`, which survives restarts but belongs to one node.
 * Rejects with a StoreUnavailableError naming the REDIS_* setting or PASSGATE_DATA_DIR when the
 * backend cannot be reached or opened (bounded: it never waits forever for Redis).
 */
export async function createStore(opts: StoreOptions): Promise<Store> {
  if (opts.keyPrefix) checkKeyPrefix(opts.keyPrefix);
  if (opts.redisUrl && opts.redis) throw new TypeError('createStore: give redisUrl or redis, not both');
  return opts.redisUrl || opts.redis ? createRedisStore(opts) : createEmbeddedStore(opts);
}
