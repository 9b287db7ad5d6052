/**
 * Store.jobs: what both backends share — argument checks, the job-state rule, the payload bound —
 * and an in-memory implementation with the same semantics for tests that replace the real store.
 * The embedded store's queue is store-embedded-jobs.ts (one table), the Redis one
 * store-redis-jobs.ts (Lua scripts); the three follow the model below, keep them in step.
 *
 * The model: a job is claimable from its `availableAt` — its runAfter while nobody holds it, the
 * end of its lease while someone does (so a holder that died gives the job back when its lease
 * ends). Claim takes the claimable job with the smallest (availableAt, enqueue sequence).
 */
import type { ClaimedJob, JobQueueStats, JobQueueStore, JobState, JobStatus } from './store-core.js';
import { checkName, checkNow, checkTtl, newToken } from './store-primitives.js';

/** A job's payload is its progress record (a small JSON), not the file it works on. */
export const MAX_JOB_PAYLOAD_BYTES = 64 * 1024;

export function checkPayload(payload: unknown): asserts payload is string {
  if (typeof payload !== 'string' || Buffer.byteLength(payload, 'utf8') > MAX_JOB_PAYLOAD_BYTES) {
    throw new TypeError(`job payload must be a string of at most ${MAX_JOB_PAYLOAD_BYTES} bytes (UTF-8)`);
  }
}

/** Running while a lease lasts; otherwise delayed until runAfter, then ready. */
export function jobState(leaseUntil: number | null | undefined, runAfter: number, now: number): JobState {
  if (leaseUntil !== null && leaseUntil !== undefined && leaseUntil > now) return 'running';
  return runAfter > now ? 'delayed' : 'ready';
}

/**
 * The argument checks of Store.jobs, once for every backend: a bad argument rejects with a
 * TypeError before the backend sees it. The defaults are filled in here too (enqueue's runAfter is
 * `now`; get's `now` is the wall clock), so backends always receive both.
 */
export function checkedJobs(jobs: JobQueueStore): JobQueueStore {
  return {
    async enqueue(queue, jobId, payload, now, runAfter) {
      checkName('job queue', queue);
      checkName('job id', jobId);
      checkPayload(payload);
      checkNow('now', now);
      if (runAfter !== undefined) checkNow('runAfter', runAfter);
      return jobs.enqueue(queue, jobId, payload, now, runAfter ?? now);
    },
    async claim(queue, leaseMs, now) {
      checkName('job queue', queue);
      checkTtl(leaseMs, 'leaseMs');
      checkNow('now', now);
      return jobs.claim(queue, leaseMs, now);
    },
    async renew(queue, jobId, token, leaseMs, now) {
      checkName('job queue', queue);
      checkName('job id', jobId);
      checkName('job token', token);
      checkTtl(leaseMs, 'leaseMs');
      checkNow('now', now);
      return jobs.renew(queue, jobId, token, leaseMs, now);
    },
    async release(queue, jobId, token, payload, runAfter) {
      checkName('job queue', queue);
      checkName('job id', jobId);
      checkName('job token', token);
      checkPayload(payload);
      checkNow('runAfter', runAfter);
      return jobs.release(queue, jobId, token, payload, runAfter);
    },
    async complete(queue, jobId, token) {
      checkName('job queue', queue);
      checkName('job id', jobId);
      checkName('job token', token);
      return jobs.complete(queue, jobId, token);
    },
    async get(queue, jobId, now) {
      checkName('job queue', queue);
      checkName('job id', jobId);
      if (now !== undefined) checkNow('now', now);
      return jobs.get(queue, jobId, now ?? Date.now());
    },
    async stats(queue, now) {
      checkName('job queue', queue);
      checkNow('now', now);
      return jobs.stats(queue, now);
    },
  };
}

interface MemoryJob {
  payload: string;
  attempts: number;
  enqueuedAt: number;
  runAfter: number;
  /** Set while claimed (until release or complete), with the lease's end. */
  lease?: { token: string; until: number };
  seq: number;
}

const availableAt = (job: MemoryJob) => job.lease?.until ?? job.runAfter;

/**
 * Job queues in this process's memory (no sharing across processes, gone with the process). For
 * tests that replace the real store (test/helpers/with-app.ts memoryStore); same semantics.
 */
export function memoryJobs(): JobQueueStore {
  const queues = new Map<string, Map<string, MemoryJob>>();
  let seq = 0;
  const queueOf = (queue: string) => {
    let jobs = queues.get(queue);
    if (!jobs) queues.set(queue, (jobs = new Map()));
    return jobs;
  };
  const held = (queue: string, jobId: string, token: string) => {
    const job = queues.get(queue)?.get(jobId);
    return job?.lease?.token === token ? job : undefined;
  };

  return checkedJobs({
    async enqueue(queue, jobId, payload, now, runAfter = now) {
      const jobs = queueOf(queue);
      if (jobs.has(jobId)) return false;
      jobs.set(jobId, { payload, attempts: 0, enqueuedAt: now, runAfter, seq: ++seq });
      return true;
    },
    async claim(queue, leaseMs, now): Promise<ClaimedJob | undefined> {
      let best: [string, MemoryJob] | undefined;
      for (const entry of queues.get(queue) ?? []) {
        const at = availableAt(entry[1]);
        if (at > now) continue;
        if (!best || at < availableAt(best[1]) || (at === availableAt(best[1]) && entry[1].seq < best[1].seq)) best = entry;
      }
      if (!best) return undefined;
      const [jobId, job] = best;
      job.attempts += 1;
      job.lease = { token: newToken(), until: now + leaseMs };
      return { jobId, payload: job.payload, token: job.lease.token, attempts: job.attempts, enqueuedAt: job.enqueuedAt };
    },
    async renew(queue, jobId, token, leaseMs, now) {
      const job = held(queue, jobId, token);
      if (!job?.lease || job.lease.until <= now) return false;
      job.lease.until = now + leaseMs;
      return true;
    },
    async release(queue, jobId, token, payload, runAfter) {
      const job = held(queue, jobId, token);
      if (!job) return false;
      job.lease = undefined;
      job.payload = payload;
      job.runAfter = runAfter;
      return true;
    },
    async complete(queue, jobId, token) {
      if (!held(queue, jobId, token)) return false;
      return queueOf(queue).delete(jobId);
    },
    async get(queue, jobId, now = Date.now()): Promise<JobStatus | undefined> {
      const job = queues.get(queue)?.get(jobId);
      if (!job) return undefined;
      const { payload, attempts, runAfter, enqueuedAt } = job;
      return { payload, attempts, state: jobState(job.lease?.until, runAfter, now), runAfter, enqueuedAt };
    },
    async stats(queue, now): Promise<JobQueueStats> {
      const stats: JobQueueStats = { ready: 0, delayed: 0, running: 0 };
      for (const job of queues.get(queue)?.values() ?? []) {
        const at = availableAt(job);
        if (at <= now) stats.ready += 1;
        else if (job.lease) stats.running += 1;
        else stats.delayed += 1;
        const waiting = at <= now || !job.lease;
        if (waiting && (stats.oldestWaitingSince === undefined || job.enqueuedAt < stats.oldestWaitingSince)) {
          stats.oldestWaitingSince = job.enqueuedAt;
        }
      }
      return stats;
    },
  });
}
