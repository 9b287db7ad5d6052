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
  type Store,
  type StoreOptions,
} from './store-core.js';
export { maskPassword } from './store-redis.js';

/**
 * The one place shared state is opened. `redisUrl` ⇒ Redis (many replicas share it); otherwise
 * the embedded SQLite file in `dataDir`, which survives restarts but belongs to one node.
 * Rejects with a StoreUnavailableError naming REDIS_URL or PASSGATE_DATA_DIR when the backend
 * cannot be reached or opened (bounded: it never waits forever for Redis).
 */
export async function createStore(opts: StoreOptions): Promise<Store> {
  if (opts.keyPrefix) checkKeyPrefix(opts.keyPrefix);
  return opts.redisUrl ? createRedisStore(opts.redisUrl, opts) : createEmbeddedStore(opts);
}
