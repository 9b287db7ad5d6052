/**
 * The Redis store's command connection, kept answering.
 *
 * node-redis 5 has no deadline on a command once it is written: its `timeout` command option only
 * covers the wait in the client's queue, `socketTimeout` is an idle timer that every write re-arms
 * (under steady traffic to a frozen server it never fires), and `pingInterval` PINGs without a
 * deadline. A server that is SIGSTOPped, or a peer that vanished without a FIN, therefore leaves
 * every command pending for as long as TCP keeps the socket. Deadlines come from the store
 * (store-deadline.ts); this link handles what a missed deadline says about the connection:
 *
 * - one operation timed out ⇒ `suspect()`: a PING with the same deadline; a PONG clears it (the
 *   server was just slow);
 * - no PONG ⇒ the connection is replaced: a `duplicate()` (same URL, options and reconnect policy)
 *   starts connecting, and the old client is destroyed, which rejects every command still waiting
 *   on it. Until the new one is ready, commands fail at once (`disableOfflineQueue`), so requests
 *   answer 503 immediately instead of each waiting out the deadline;
 * - a (re)connect whose handshake does not complete within the deadline (the kernel accepts the
 *   TCP connection of a stopped server) is replaced the same way.
 *
 * After SIGCONT, or a restart of redis-server on the same address, a connection becomes ready
 * again on its own: no passgate restart. `client` always forwards to the current connection.
 */
import type { RedisClientType } from '@keyv/redis';
import { describeError, withTimeout } from './store-core.js';
import type { Logger } from './logger.js';

export interface RedisLinkOptions {
  logger: Logger;
  /** REDIS_URL, password masked. */
  shownUrl: string;
  /** PASSGATE_STORE_TIMEOUT_MS */
  timeoutMs: number;
}

/** node-redis errors that mean "no usable connection" (matched by class name: @redis/client is not a direct dependency). */
const CONNECTION_ERRORS = new Set([
  'ClientClosedError',
  'ClientOfflineError',
  'DisconnectsClientError',
  'SocketClosedUnexpectedlyError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'TimeoutError',
  'AbortError',
  'RootNodesUnavailableError', // no seed node of REDIS_CLUSTER_NODES answered
]);

/**
 * Server replies that mean "no master can take this now" rather than "this command is wrong": a
 * cluster with a slot nobody serves (CLUSTERDOWN), a slot moving or a failover under way
 * (TRYAGAIN, MASTERDOWN), a server still loading its data (LOADING), a master just demoted to a
 * replica by Sentinel (READONLY), a replica that lost its master (MASTERDOWN).
 */
const OUTAGE_REPLIES = /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|READONLY|NOREPLICAS)\b/;

/**
 * True for an error that says the connection (not the command) failed: node-redis's own, the
 * socket's system error (ECONNRESET, EPIPE…) that node-redis rejects the commands in flight with,
 * or a server's "no master now" reply (OUTAGE_REPLIES).
 */
export function isRedisOutage(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    CONNECTION_ERRORS.has(err.constructor.name) ||
    typeof (err as NodeJS.ErrnoException).syscall === 'string' ||
    OUTAGE_REPLIES.test(err.message)
  );
}

export class RedisLink {
  /** Forwards every property to the current connection. */
  readonly client: RedisClientType;
  private current: RedisClientType;
  private probing = false;
  private closed = false;
  /** Connections replaced so far (tests and logs). */
  replacements = 0;

  constructor(
    first: RedisClientType,
    private readonly opts: RedisLinkOptions,
  ) {
    this.current = first;
    this.watchHandshakes(first);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the proxy reads the link's current connection
    const link = this;
    this.client = new Proxy(first, {
      get(_, prop) {
        const target = link.current;
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** An operation on the store missed its deadline: check the connection (one probe at a time). */
  suspect(): void {
    const suspect = this.current;
    if (this.probing || this.closed || !suspect.isReady) return; // not ready: reconnecting already
    this.probing = true;
    withTimeout(suspect.ping(), this.opts.timeoutMs, 'Redis PING')
      .catch((err: unknown) => {
        if (suspect === this.current) this.replace(suspect, `no answer to PING (${describeError(err)})`);
      })
      .finally(() => {
        this.probing = false;
      });
  }

  /** The connection to close on disconnect (the link replaces no more after this). */
  close(): RedisClientType {
    this.closed = true;
    return this.current;
  }

  private replace(old: RedisClientType, why: string): void {
    if (this.closed) return;
    this.replacements += 1;
    this.opts.logger.warn({ redis: this.opts.shownUrl, reason: why }, 'store: Redis connection stopped answering; reconnecting');
    const next = old.duplicate();
    next.on('error', (err: unknown) => {
      this.opts.logger.warn({ redis: this.opts.shownUrl, reason: describeError(err) }, 'store: Redis connection error');
    });
    next.on('ready', () => this.opts.logger.info({ redis: this.opts.shownUrl }, 'store: Redis connection restored'));
    this.watchHandshakes(next);
    this.current = next;
    // Retries on the reconnect policy until ready; rejects only when destroyed (replaced again, or closed).
    next.connect().catch(() => undefined);
    // What the replaced connection reports while it is torn down (node-redis may trip over its own
    // half-open socket: "reading 'destroy'") is not about the store any more: debug, not a warning.
    old.removeAllListeners('error');
    old.on('error', (err: unknown) => this.opts.logger.debug({ redis: this.opts.shownUrl, reason: describeError(err) }, 'store: a replaced Redis connection reported an error while closing'));
    if (old.isOpen) old.destroy();
  }

  /** A connect whose handshake (HELLO/CLIENT SETNAME) does not finish within the deadline is replaced. */
  private watchHandshakes(client: RedisClientType): void {
    let timer: NodeJS.Timeout | undefined;
    client.on('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (!client.isReady && client === this.current) this.replace(client, `no handshake within ${this.opts.timeoutMs} ms`);
      }, this.opts.timeoutMs);
      timer.unref();
    });
    client.on('ready', () => clearTimeout(timer));
    client.on('end', () => clearTimeout(timer));
  }
}
