import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import type { ClaimedJob, JobQueueStore } from '../infra/store.js';

/** What one run of a job ends with: finished (the job leaves the queue) or run again at `runAfter` with its progress. */
export type RunOutcome = { done: true; cleanup?: () => Promise<void> } | { done: false; payload: string; runAfter: number };

export interface JobRunnerOptions {
  queue: JobQueueStore;
  /** The queue this replica serves (one per spool: a job runs where its upload is). */
  queueName: string;
  concurrency: number;
  leaseMs: number;
  /** How often an idle runner looks for jobs another process queued (its own enqueues wake it at once). */
  pollMs: number;
  run: (job: ClaimedJob, lease: { lost: () => boolean }) => Promise<RunOutcome>;
  /** Called after every pass over the queue (metrics). */
  afterPass?: () => Promise<void>;
  clock: Clock;
  logger: Logger;
}

/**
 * Runs the jobs of one store queue with bounded concurrency. A claimed job is leased; the lease is
 * renewed while it runs, so a replica that dies (SIGKILL) gives its jobs back after `leaseMs` and
 * the next claim runs them again — at least once, and the job's effects are idempotent by job id.
 * A run whose lease was lost (the store was unreachable past the lease) commits nothing.
 */
export class JobRunner {
  private readonly running = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(private readonly opts: JobRunnerOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.opts.pollMs);
    this.timer.unref();
    this.wake();
  }

  /** Look for work now (a job was just queued, or one finished and a slot is free). */
  wake(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = this.pass().finally(() => {
      this.passing = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Jobs running on this replica now. */
  get active(): number {
    return this.running.size;
  }

  private async pass(): Promise<void> {
    const { queue, queueName, concurrency, leaseMs, clock, logger } = this.opts;
    try {
      while (!this.stopped && this.running.size < concurrency) {
        const job = await queue.claim(queueName, leaseMs, clock.now());
        if (!job) break;
        const run = this.runOne(job).finally(() => {
          this.running.delete(run);
          this.wake();
        });
        this.running.add(run);
      }
    } catch (err) {
      logger.warn({ err }, 'agent: cannot claim jobs from the store; retrying on the next pass');
    }
    await this.opts.afterPass?.().catch((err: unknown) => logger.warn({ err }, 'agent: queue metrics failed'));
  }

  private async runOne(job: ClaimedJob): Promise<void> {
    const { queue, queueName, leaseMs, clock, logger } = this.opts;
    let lost = false;
    const renew = setInterval(() => {
      queue
        .renew(queueName, job.jobId, job.token, leaseMs, clock.now())
        .then((held) => {
          if (!held && !lost) {
            lost = true;
            logger.warn({ jobId: job.jobId }, 'agent: lost the lease of a running job; another run will redo it');
          }
        })
        .catch((err: unknown) => logger.warn({ err, jobId: job.jobId }, 'agent: cannot renew a job lease'));
    }, Math.max(250, Math.floor(leaseMs / 3)));
    renew.unref();
    try {
      const outcome = await this.opts.run(job, { lost: () => lost });
      if (lost) return;
      const kept = outcome.done ? await queue.complete(queueName, job.jobId, job.token) : await queue.release(queueName, job.jobId, job.token, outcome.payload, outcome.runAfter);
      if (!kept) logger.warn({ jobId: job.jobId }, 'agent: a job lease ended before the run could be recorded; another run will redo it');
      else if (outcome.done) await outcome.cleanup?.();
    } catch (err) {
      // The lease lapses and the job runs again: nothing is lost.
      logger.error({ err, jobId: job.jobId }, 'agent: a job run failed; it will run again after its lease');
    } finally {
      clearInterval(renew);
    }
  }

  /** Stops claiming; waits up to `ms` for running jobs (those still running keep their lease until it lapses). */
  async stop(ms: number): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.passing;
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.running), new Promise<void>((resolve) => (timeout = setTimeout(resolve, ms)))]);
    clearTimeout(timeout);
  }
}
