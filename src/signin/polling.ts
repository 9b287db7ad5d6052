import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import type { LeaseStore } from '../infra/store.js';
import type { SigninMetrics } from './metrics.js';
import type { CurrentProfile, PendingSession, SigninRecords, SigninStatus } from './records.js';

/** A waiting mark older than this (clock ms) means nobody waits any more; waiters refresh it every tick. */
export const WAITING_FRESH_MS = 1_000;
/** SSE comment keep-alive cadence (clock ms). */
export const KEEP_ALIVE_MS = 15_000;

interface Waiter {
  code: string;
  session: PendingSession;
  last: SigninStatus['status'];
  /** Long-polls answer by then (clock ms) whatever the status; event streams have none. */
  deadline?: number;
  lastWriteAt: number;
  /** Returns true when the waiter is done (and leaves). */
  deliver(status: SigninStatus, now: number): boolean;
  keepAlive?: () => void;
  cancel(): void;
  /** Shutdown: answer now with `status` (a long-poll resolves, a stream sends it as its last event) and leave. */
  release(status: SigninStatus): void;
}

/** What an event stream hears: changes, keep-alives, and at shutdown one last status to end on. */
export interface FollowListener {
  send: (status: SigninStatus) => void;
  keepAlive: () => void;
  /** The replica is shutting down: the stream's last event (with a reconnect hint); the stream ends after it. */
  last: (status: SigninStatus) => void;
}

export interface SigninPollingDeps {
  records: SigninRecords;
  leases: LeaseStore;
  clock: Clock;
  logger: Logger;
  metrics: SigninMetrics;
  pollIntervalMs: number;
  /** Long-polls and event streams waiting on this replica at most (each is an open request). */
  maxWaiters: number;
  statusOf(session: PendingSession, now: number): Promise<SigninStatus>;
  /** profiles/code/{code}: the valid profiles (best first), or undefined when the device is gone. */
  pollUpstream(session: PendingSession): Promise<CurrentProfile[] | undefined>;
  /** After a profile was found; returns the TTL for its result record. */
  onFound(session: PendingSession, profile: CurrentProfile): Promise<number>;
}

/**
 * Fleet-wide polling of profiles/code/{code} (adobe-pass.md §9, SPEC §6):
 * - at most once per pollIntervalMs per code across replicas: a store lease `poll:<code>` taken
 *   for the interval and never released (its expiry IS the interval);
 * - only while an app waits: waiters on any replica refresh `signin.waiting[code]` each tick, and
 *   a replica polls only while that mark is younger than WAITING_FRESH_MS;
 * - stops at a profile (stored in `signin.results`, so every replica's waiters see it), at the
 *   session's notAfter, or when the device has a newer code (both read as `expired`).
 * Each replica watches the codes it issued or has waiters for; tick() does one round.
 */
export class SigninPolling {
  private readonly watched = new Map<string, PendingSession>();
  private readonly waiters = new Set<Waiter>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** Set at shutdown: waiters are answered at once instead of waiting. */
  private releasing = false;

  constructor(private readonly deps: SigninPollingDeps) {}

  waiterCount(): number {
    return this.waiters.size;
  }

  unwatch(code: string): void {
    this.watched.delete(code);
    this.deps.metrics.pendingSessions.set(this.watched.size);
  }

  /** Long-poll: resolves at the next status change, at `deadline`, or (pending) when aborted. */
  waitForChange(session: PendingSession, deadline: number, signal?: AbortSignal): Promise<SigninStatus> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        code: session.code,
        session,
        last: 'pending',
        deadline,
        lastWriteAt: this.deps.clock.now(),
        deliver: (status, now) => {
          if (status.status === waiter.last && now < deadline) return false;
          resolve(status);
          return true;
        },
        cancel: () => resolve({ status: 'pending' }),
        release: (status) => resolve(status),
      };
      this.add(session, waiter, signal);
    });
  }

  /** Event stream: every change until a terminal status, keep-alives in between. */
  follow(session: PendingSession, listener: FollowListener, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        code: session.code,
        session,
        last: 'pending',
        lastWriteAt: this.deps.clock.now(),
        deliver: (status, now) => {
          if (status.status === waiter.last) return false;
          waiter.last = status.status;
          waiter.lastWriteAt = now;
          listener.send(status);
          if (status.status === 'pending') return false;
          resolve();
          return true;
        },
        keepAlive: listener.keepAlive,
        cancel: () => resolve(),
        release: (status) => {
          listener.last(status);
          resolve();
        },
      };
      this.add(session, waiter, signal);
    });
  }

  private add(session: PendingSession, waiter: Waiter, signal?: AbortSignal): void {
    if (this.closed || signal?.aborted) {
      waiter.cancel();
      return;
    }
    if (this.releasing) {
      // Arrived during shutdown: the caller has just read the status (pending); answer with it now.
      waiter.release({ status: 'pending' });
      return;
    }
    if (this.waiters.size >= this.deps.maxWaiters) {
      // Bounded memory: past the cap a long-poll answers at once with the status the caller just
      // read (pending), as at its deadline, and an event stream ends with it; the app asks again.
      this.deps.logger.warn({ waiters: this.waiters.size }, 'signin: too many apps waiting on this replica; answering at once');
      waiter.release({ status: 'pending' });
      return;
    }
    this.waiters.add(waiter);
    this.watched.set(session.code, session);
    this.deps.metrics.pendingSessions.set(this.watched.size);
    // Counted as waiting at once (the next tick refreshes it).
    void this.deps.records.waiting.set(session.code, this.deps.clock.now(), WAITING_FRESH_MS * 60).catch((err: unknown) => {
      this.deps.logger.warn({ err }, 'signin: could not record a waiting app');
    });
    signal?.addEventListener(
      'abort',
      () => {
        if (this.waiters.delete(waiter)) waiter.cancel();
      },
      { once: true },
    );
  }

  /** One round; rounds never overlap (a call during a round runs after it). */
  tick(): Promise<void> {
    const round = this.queue.then(() => this.round());
    this.queue = round.catch(() => undefined);
    return round;
  }

  private async round(): Promise<void> {
    if (this.closed) return;
    const { records, clock, metrics } = this.deps;
    const now = clock.now();
    // Before any store call: a store that stalls (up to its deadline per call) or fails must not
    // hold a long-poll past its `wait` or an event stream without its keep-alive.
    this.deliver(new Map(), now);
    const waitedHere = new Set([...this.waiters].map((w) => w.code));
    try {
      await Promise.all([...waitedHere].map((code) => records.waiting.set(code, now, WAITING_FRESH_MS * 60)));
    } catch (err) {
      this.deps.logger.warn({ err }, 'signin: could not record the waiting apps');
    }

    // Codes watched here plus any a waiter still holds (e.g. unwatched because a newer code exists).
    const sessions = new Map(this.watched);
    for (const waiter of this.waiters) if (!sessions.has(waiter.code)) sessions.set(waiter.code, waiter.session);
    const statuses = new Map<string, SigninStatus>();
    await Promise.all(
      [...sessions.values()].map(async (session) => {
        try {
          let status = await this.deps.statusOf(session, now);
          if (status.status === 'pending' && (await this.someoneWaits(session.code, now))) status = await this.poll(session, now);
          statuses.set(session.code, status);
          if (status.status !== 'pending') this.watched.delete(session.code);
        } catch (err) {
          this.deps.logger.warn({ err }, 'signin: polling round failed for a code');
        }
      }),
    );
    metrics.pendingSessions.set(this.watched.size);
    this.deliver(statuses, clock.now());
  }

  /** Hands each waiter the status read for its code, its last status once its deadline passed, or a keep-alive. */
  private deliver(statuses: Map<string, SigninStatus>, now: number): void {
    for (const waiter of this.waiters) {
      const status = statuses.get(waiter.code) ?? (waiter.deadline !== undefined && now >= waiter.deadline ? { status: waiter.last } : undefined);
      if (status && waiter.deliver(status as SigninStatus, now)) {
        this.waiters.delete(waiter);
        continue;
      }
      if (waiter.keepAlive && now - waiter.lastWriteAt >= KEEP_ALIVE_MS) {
        waiter.lastWriteAt = now;
        waiter.keepAlive();
      }
    }
  }

  private async someoneWaits(code: string, now: number): Promise<boolean> {
    const seen = await this.deps.records.waiting.get(code);
    return seen !== undefined && now - seen < WAITING_FRESH_MS;
  }

  private async poll(session: PendingSession, now: number): Promise<SigninStatus> {
    const { leases, records, metrics, logger } = this.deps;
    // Not released: the lease's expiry is the polling interval, fleet-wide.
    const lease = await leases.acquire(`poll:${session.code}`, this.deps.pollIntervalMs, now);
    if (!lease) return { status: 'pending' };
    let profiles: CurrentProfile[] | undefined;
    try {
      profiles = await this.deps.pollUpstream(session);
    } catch (err) {
      metrics.polls.inc({ outcome: 'error' });
      logger.warn({ err }, 'signin: profiles/code poll failed; next interval retries');
      return { status: 'pending' };
    }
    const profile = profiles?.[0];
    if (!profile) {
      metrics.polls.inc({ outcome: 'empty' });
      return { status: 'pending' };
    }
    metrics.polls.inc({ outcome: 'found' });
    metrics.timeToSignin.observe(Math.max(0, now - session.createdAt) / 1000);
    const result: SigninStatus = { status: 'authenticated', profile };
    const ttl = await this.deps.onFound(session, profile);
    await records.results.set(session.code, result, ttl);
    return result;
  }

  /**
   * Shutdown, before the HTTP drain: every waiter answers now with the status the store holds
   * (no upstream poll), so long-polls get a normal answer and streams a last event instead of
   * being cut; waiters arriving later answer at once. Idempotent.
   */
  async release(): Promise<void> {
    this.releasing = true;
    const waiters = [...this.waiters];
    this.waiters.clear();
    const now = this.deps.clock.now();
    const statuses = new Map<string, SigninStatus>();
    await Promise.all(
      [...new Map(waiters.map((w) => [w.code, w.session])).values()].map(async (session) => {
        try {
          statuses.set(session.code, await this.deps.statusOf(session, now));
        } catch (err) {
          // The store is down: the waiter's last known status is still an honest answer.
          this.deps.logger.warn({ err }, 'signin: could not read a status at shutdown; answering with the last known one');
        }
      }),
    );
    // A waiter still here has only seen `pending` (any other status ends it).
    for (const waiter of waiters) waiter.release(statuses.get(waiter.code) ?? { status: 'pending' });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters) waiter.cancel();
    this.waiters.clear();
    await this.queue;
  }
}
