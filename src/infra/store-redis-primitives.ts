/**
 * Store.leases and Store.buckets on Redis: each call is ONE Lua script on ONE key, run by EVALSHA
 * (EVAL when the server does not know the script yet, e.g. after a restart) over the store's one
 * shared connection. Redis runs a script atomically, so a read-decide-write is atomic across every
 * replica. Records are hashes; numbers are stored as the decimal strings JavaScript sent (exact),
 * `PEXPIRE` only collects garbage well after the logical end. Time is the caller's `now`.
 *
 * The bucket script is `takeFromBucket` / `holdBucket` (store-primitives.ts) in Lua: keep them in step.
 */
import { createHash } from 'node:crypto';
import type { RedisClientType } from '@keyv/redis';
import type { BucketDecision, BucketStore, LeaseStore } from './store-core.js';
import {
  BUCKET_GC_MS,
  checkedBuckets,
  checkedLeases,
  leaseGcMs,
  newToken,
  primitiveKey,
} from './store-primitives.js';

/** A Lua script and its SHA1 (what EVALSHA names it by). */
export class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

/** KEYS[1] lease; ARGV token, expiresAt, now, gcMs → 1 taken, 0 held by someone else. */
const ACQUIRE = new Script(`
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires'))
if expires ~= nil and expires > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'expires', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`);

/** KEYS[1] lease; ARGV token → 1 released, 0 not the holder. */
const RELEASE = new Script(`
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** KEYS[1] lease; ARGV token, expiresAt, now, gcMs → 1 renewed, 0 not the holder (or it ended). */
const RENEW = new Script(`
local lease = redis.call('HMGET', KEYS[1], 'token', 'expires')
local expires = tonumber(lease[2])
if lease[1] ~= ARGV[1] or expires == nil or expires <= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'expires', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`);

/**
 * KEYS[1] bucket {since, burst, hold}; ARGV now, ratePerSecond, burst, gcMs, countedAt (≥ now) → {allowed 0|1, retryAfterMs}.
 * Lua numbers are doubles like JavaScript's, so the arithmetic is the same as takeFromBucket.
 */
const TAKE = new Script(`
local nowText = ARGV[1]
local now = tonumber(nowText)
local bucket = redis.call('HMGET', KEYS[1], 'since', 'burst', 'hold')
local sinceText, burstText = bucket[1], bucket[2]
if not sinceText or not burstText then
  sinceText, burstText = nowText, ARGV[3]
end
local since, burst, hold = tonumber(sinceText), tonumber(burstText), tonumber(bucket[3])
local held = hold ~= nil and hold > now
local ready = since + 1000 / tonumber(ARGV[2])
local allowed, wait = 0, 0
if not held and now >= ready then
  sinceText = ARGV[5]
  allowed = 1
elseif not held and burst >= 1 then
  burstText = tostring(burst - 1)
  allowed = 1
else
  if held then wait = hold - now end
  if burst < 1 and ready - now > wait then wait = ready - now end
end
redis.call('HSET', KEYS[1], 'since', sinceText, 'burst', burstText)
local gc = tonumber(ARGV[4])
if held then gc = gc + (hold - now) end
redis.call('PEXPIRE', KEYS[1], math.ceil(gc))
return {allowed, math.ceil(wait)}
`);

/** KEYS[1] bucket; ARGV untilMs, now, gcMs: hold (never shortened) and spend the burst. */
const HOLD = new Script(`
local bucket = redis.call('HMGET', KEYS[1], 'since', 'hold')
local holdText = ARGV[1]
local hold = tonumber(holdText)
local earlier = tonumber(bucket[2])
if earlier ~= nil and earlier >= hold then holdText, hold = bucket[2], earlier end
redis.call('HSET', KEYS[1], 'since', bucket[1] or ARGV[2], 'burst', '0', 'hold', holdText)
local now = tonumber(ARGV[2])
local gc = tonumber(ARGV[3])
if hold > now then gc = gc + (hold - now) end
redis.call('PEXPIRE', KEYS[1], math.ceil(gc))
return 1
`);

/** Runs a script on `keys` (EVALSHA, or EVAL once the server lost it); rejects after disconnect(). */
export type RunScript = (script: Script, keys: string[], args: Array<string | number>) => Promise<unknown>;

export function scriptRunner(client: RedisClientType, isClosed: () => boolean): RunScript {
  return async (script, keys, args) => {
    if (isClosed()) throw new Error('store is disconnected');
    const options = { keys, arguments: args.map(String) };
    try {
      return await client.evalSha(script.sha, options);
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
      return client.eval(script.source, options); // also loads it into the script cache
    }
  };
}

/** A script's 0/1 answer as a boolean; anything else is a bug, not "false". */
export function asFlag(reply: unknown, what: string): boolean {
  if (reply === 0 || reply === 1) return reply === 1;
  throw new Error(`unexpected Redis reply to ${what}: ${JSON.stringify(reply)}`);
}

export function redisPrimitives(
  client: RedisClientType,
  keyPrefix: string | undefined,
  isClosed: () => boolean,
): { leases: LeaseStore; buckets: BucketStore } {
  const leaseKey = (name: string) => primitiveKey('lease', name, keyPrefix);
  const bucketKey = (key: string) => primitiveKey('bucket', key, keyPrefix);

  const run = scriptRunner(client, isClosed);
  const evaluate = (script: Script, key: string, args: Array<string | number>) => run(script, [key], args);

  const leases: LeaseStore = {
    async acquire(name, ttlMs, now) {
      const token = newToken();
      const reply = await evaluate(ACQUIRE, leaseKey(name), [token, now + ttlMs, now, leaseGcMs(ttlMs)]);
      return asFlag(reply, 'lease acquire') ? token : undefined;
    },
    async release(name, token) {
      return asFlag(await evaluate(RELEASE, leaseKey(name), [token]), 'lease release');
    },
    async renew(name, token, ttlMs, now) {
      const reply = await evaluate(RENEW, leaseKey(name), [token, now + ttlMs, now, leaseGcMs(ttlMs)]);
      return asFlag(reply, 'lease renew');
    },
  };

  const buckets: BucketStore = {
    async take(key, rule, now, countedAt = now): Promise<BucketDecision> {
      const reply = await evaluate(TAKE, bucketKey(key), [now, rule.ratePerSecond, rule.burst, BUCKET_GC_MS, countedAt]);
      if (!Array.isArray(reply) || reply.length !== 2 || typeof reply[1] !== 'number') {
        throw new Error(`unexpected Redis reply to bucket take: ${JSON.stringify(reply)}`);
      }
      const allowed = asFlag(reply[0], 'bucket take');
      return { allowed, retryAfterMs: allowed ? 0 : reply[1] };
    },
    async holdUntil(key, untilMs, now) {
      asFlag(await evaluate(HOLD, bucketKey(key), [untilMs, now, BUCKET_GC_MS]), 'bucket hold');
    },
    async reset(key) {
      if (isClosed()) throw new Error('store is disconnected');
      await client.del(bucketKey(key));
    },
  };

  // Argument checks once, in front of both backends (store-primitives.ts).
  return { leases: checkedLeases(leases), buckets: checkedBuckets(buckets) };
}
