/**
 * Store.jobs on Redis: every call is ONE Lua script over the queue's keys (EVALSHA on the store's
 * shared connection, store-redis-primitives.ts), so a claim — find the next job, lease it — is
 * atomic across every replica. A queue is six keys under `<prefix>:jobs:<queue>:` (in a Redis
 * Cluster `<prefix>:jobs:{<queue>}:`, one hash slot: see queueHashTag)
 *
 *   meta      hash  jobId → JSON {member, attempts, enqueuedAt, runAfter, token?, leaseUntil?}
 *   payload   hash  jobId → payload
 *   waiting   zset  member, score runAfter     (jobs nobody holds)
 *   leased    zset  member, score leaseUntil   (claimed jobs; one whose score <= now is claimable again)
 *   enqueued  zset  member, score enqueuedAt   (every job: the oldest waiting one, for stats)
 *   seq       counter of enqueues
 *
 * `member` is the job's enqueue sequence number (16 digits) + ':' + jobId, so equal scores sort in
 * enqueue order. Per-queue hashes rather than a key per job: ids may contain ':', and a key per
 * job could then collide with another queue's keys; here every key ends in a fixed suffix.
 * Numbers are kept as the decimal strings JavaScript sent (exact). Nothing expires: a job stays
 * until complete(). The model (claim order, states) is store-jobs.ts's; keep the two in step.
 */
import type { RedisClientType } from '@keyv/redis';
import type { ClaimedJob, JobQueueStats, JobQueueStore, JobStatus } from './store-core.js';
import { checkedJobs, jobState } from './store-jobs.js';
import { newToken, primitiveKey } from './store-primitives.js';
import { asFlag, Script, scriptRunner } from './store-redis-primitives.js';

const QUEUE_KEYS = ['meta', 'payload', 'waiting', 'leased', 'enqueued', 'seq'] as const;

/** KEYS queue keys; ARGV jobId, payload, enqueuedAt, runAfter → 1 added, 0 the id exists. */
const ENQUEUE = new Script(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local member = string.format('%016d', redis.call('INCR', KEYS[6])) .. ':' .. ARGV[1]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({member = member, attempts = 0, enqueuedAt = ARGV[3], runAfter = ARGV[4]}))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], member)
redis.call('ZADD', KEYS[5], ARGV[3], member)
return 1
`);

/**
 * KEYS queue keys; ARGV now, leaseUntil, token → {jobId, payload, token, attempts, enqueuedAt} or
 * nil. The next job is the smaller (score, member) of the heads of waiting and leased at `now`.
 */
const CLAIM = new Script(`
local waiting = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, 1)
local ended = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, 1)
local member = waiting[1]
if ended[1] and (not member or tonumber(ended[2]) < tonumber(waiting[2])
    or (tonumber(ended[2]) == tonumber(waiting[2]) and ended[1] < member)) then
  member = ended[1]
end
if not member then return false end
local jobId = string.sub(member, 18)
local meta = cjson.decode(redis.call('HGET', KEYS[1], jobId))
meta.attempts = meta.attempts + 1
meta.token = ARGV[3]
meta.leaseUntil = ARGV[2]
redis.call('HSET', KEYS[1], jobId, cjson.encode(meta))
redis.call('ZREM', KEYS[3], member)
redis.call('ZADD', KEYS[4], ARGV[2], member)
return {jobId, redis.call('HGET', KEYS[2], jobId), ARGV[3], meta.attempts, meta.enqueuedAt}
`);

/** KEYS queue keys; ARGV jobId, token, now, leaseUntil → 1 renewed, 0 not the holder (or the lease ended). */
const RENEW = new Script(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local meta = cjson.decode(raw)
if meta.token ~= ARGV[2] or tonumber(meta.leaseUntil) <= tonumber(ARGV[3]) then return 0 end
meta.leaseUntil = ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(meta))
redis.call('ZADD', KEYS[4], ARGV[4], meta.member)
return 1
`);

/** KEYS queue keys; ARGV jobId, token, payload, runAfter → 1 given back, 0 not the holder. */
const RELEASE = new Script(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local meta = cjson.decode(raw)
if meta.token ~= ARGV[2] then return 0 end
meta.token = nil
meta.leaseUntil = nil
meta.runAfter = ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(meta))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZREM', KEYS[4], meta.member)
redis.call('ZADD', KEYS[3], ARGV[4], meta.member)
return 1
`);

/** KEYS queue keys; ARGV jobId, token → 1 deleted, 0 not the holder. */
const COMPLETE = new Script(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local meta = cjson.decode(raw)
if meta.token ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], meta.member)
redis.call('ZREM', KEYS[4], meta.member)
redis.call('ZREM', KEYS[5], meta.member)
return 1
`);

/** KEYS queue keys; ARGV jobId → {meta, payload} or nil (one script: never a torn read across a release). */
const GET = new Script(`
local meta = redis.call('HGET', KEYS[1], ARGV[1])
if not meta then return false end
return {meta, redis.call('HGET', KEYS[2], ARGV[1])}
`);

/**
 * KEYS queue keys; ARGV now → {ready, delayed, running, oldest enqueuedAt or nil}. The counts are
 * ZCOUNTs (O(log n)); the oldest waiting job is found walking `enqueued` past the jobs whose lease
 * is live, i.e. past at most as many as are running.
 */
const STATS = new Script(`
local now = tonumber(ARGV[1])
local after = '(' .. ARGV[1]
local ready = redis.call('ZCOUNT', KEYS[3], '-inf', ARGV[1]) + redis.call('ZCOUNT', KEYS[4], '-inf', ARGV[1])
local delayed = redis.call('ZCOUNT', KEYS[3], after, '+inf')
local running = redis.call('ZCOUNT', KEYS[4], after, '+inf')
local oldest = false
local start = 0
while not oldest do
  local batch = redis.call('ZRANGE', KEYS[5], start, start + 99, 'WITHSCORES')
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local leaseUntil = redis.call('ZSCORE', KEYS[4], batch[i])
    if not leaseUntil or tonumber(leaseUntil) <= now then
      oldest = batch[i + 1]
      break
    end
  end
  start = start + 100
end
return {ready, delayed, running, oldest}
`);

interface StoredMeta {
  attempts: number;
  enqueuedAt: string;
  runAfter: string;
  leaseUntil?: string;
}

/**
 * A queue's name as a Redis Cluster hash tag, `{<queue>}`: the slot is computed from the text
 * between the first `{` and the next `}`, so the queue's six keys hash to one slot. A `}` (and so
 * the `%` that escapes it) inside the name is percent-encoded, so the tag is the whole name and
 * never empty.
 */
export function queueHashTag(queue: string): string {
  return `{${queue.replaceAll('%', '%25').replaceAll('}', '%7D')}}`;
}

/**
 * `hashTags` (a Redis Cluster): keys `<prefix>:jobs:{<queue>}:<suffix>`, one slot per queue. On
 * one Redis (REDIS_URL or Sentinel) they stay `<prefix>:jobs:<queue>:<suffix>`, as before cluster
 * support: a rolling upgrade keeps the queued jobs. (Moving a deployment from one Redis to a
 * cluster copies no keys anyway; README "Redis" says how to drain the agent's queue first.)
 */
export function redisJobs(client: RedisClientType, keyPrefix: string | undefined, isClosed: () => boolean, hashTags = false): JobQueueStore {
  const run = scriptRunner(client, isClosed);
  const keys = (queue: string) => {
    const base = primitiveKey('jobs', hashTags ? queueHashTag(queue) : queue, keyPrefix);
    return QUEUE_KEYS.map((suffix) => `${base}:${suffix}`);
  };
  const unexpected = (what: string, reply: unknown) => new Error(`unexpected Redis reply to job ${what}: ${JSON.stringify(reply)}`);

  const jobs: JobQueueStore = {
    async enqueue(queue, jobId, payload, now, runAfter = now) {
      return asFlag(await run(ENQUEUE, keys(queue), [jobId, payload, now, runAfter]), 'job enqueue');
    },
    async claim(queue, leaseMs, now): Promise<ClaimedJob | undefined> {
      const token = newToken();
      const reply = await run(CLAIM, keys(queue), [now, now + leaseMs, token]);
      if (reply === null) return undefined;
      if (!Array.isArray(reply) || reply.length !== 5) throw unexpected('claim', reply);
      const [jobId, payload, claimed, attempts, enqueuedAt] = reply as unknown[];
      if (typeof jobId !== 'string' || typeof payload !== 'string' || claimed !== token || typeof attempts !== 'number') {
        throw unexpected('claim', reply);
      }
      return { jobId, payload, token, attempts, enqueuedAt: Number(enqueuedAt) };
    },
    async renew(queue, jobId, token, leaseMs, now) {
      return asFlag(await run(RENEW, keys(queue), [jobId, token, now, now + leaseMs]), 'job renew');
    },
    async release(queue, jobId, token, payload, runAfter) {
      return asFlag(await run(RELEASE, keys(queue), [jobId, token, payload, runAfter]), 'job release');
    },
    async complete(queue, jobId, token) {
      return asFlag(await run(COMPLETE, keys(queue), [jobId, token]), 'job complete');
    },
    async get(queue, jobId, now = Date.now()): Promise<JobStatus | undefined> {
      const reply = await run(GET, keys(queue), [jobId]);
      if (reply === null) return undefined;
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'string') throw unexpected('get', reply);
      const meta = JSON.parse(reply[0]) as StoredMeta;
      const runAfter = Number(meta.runAfter);
      const leaseUntil = meta.leaseUntil === undefined ? undefined : Number(meta.leaseUntil);
      return {
        payload: reply[1],
        attempts: meta.attempts,
        state: jobState(leaseUntil, runAfter, now),
        runAfter,
        enqueuedAt: Number(meta.enqueuedAt),
      };
    },
    async stats(queue, now): Promise<JobQueueStats> {
      const reply = await run(STATS, keys(queue), [now]);
      if (!Array.isArray(reply) || reply.length < 3 || !reply.slice(0, 3).every((n) => typeof n === 'number')) {
        throw unexpected('stats', reply);
      }
      const [ready, delayed, running, oldest] = reply as [number, number, number, unknown];
      const stats: JobQueueStats = { ready, delayed, running };
      if (oldest !== null && oldest !== undefined) stats.oldestWaitingSince = Number(oldest);
      return stats;
    },
  };

  // Argument checks (and defaults) once, in front of every backend (store-jobs.ts).
  return checkedJobs(jobs);
}
