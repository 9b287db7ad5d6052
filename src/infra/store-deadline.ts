/**
 * Deadlines on store operations (SPEC §8: "a frozen Redis is an error within seconds, never a hung
 * request"). Every operation a Store hands out (namespace Keyv calls, leases, buckets, publish,
 * ping) runs through one `StoreDeadline`: it rejects with a StoreTimeoutError once the deadline
 * passes, and turns the backend's "cannot reach it" errors into StoreUnavailableError, so callers
 * see one kind of outage (storeCall answers 503 store_unavailable and logs it without a stack).
 *
 * The operation itself is not cancelled (node-redis cannot take back a command once sent; the
 * embedded store's statements are synchronous and its lock retries stop at the same deadline);
 * its late result is dropped, and a write that timed out may still land once
 * the backend answers again (callers treat a timeout as "unknown", like any 503). The Redis link (store-redis-link.ts) uses
 * `onTimeout` to notice a connection that stopped answering and replace it.
 */
import { StoreTimeoutError, StoreUnavailableError, describeError } from './store-core.js';

export interface StoreDeadlineOptions {
  /** PASSGATE_STORE_TIMEOUT_MS */
  ms: number;
  /** Whether a backend error means "unreachable" (it then becomes a StoreUnavailableError). */
  isOutage?: (err: unknown) => boolean;
  /** Called (once per timed-out operation) after the deadline passed. */
  onTimeout?: (what: string) => void;
  /** Called with each backend error that `isOutage` calls an outage (the cluster store then re-reads its topology). */
  onOutage?: (err: unknown) => void;
}

export type StoreDeadline = <T>(what: string, operation: () => Promise<T>) => Promise<T>;

export function storeDeadline(opts: StoreDeadlineOptions): StoreDeadline {
  const { ms, isOutage = () => false, onTimeout, onOutage } = opts;
  return async <T>(what: string, operation: () => Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new StoreTimeoutError(what, ms));
        onTimeout?.(what);
      }, ms);
      timer.unref();
    });
    const running = (async () => operation())().catch((err: unknown) => {
      if (err instanceof StoreUnavailableError || !isOutage(err)) throw err;
      onOutage?.(err);
      throw new StoreUnavailableError(`${what}: ${describeError(err)}`, { cause: err });
    });
    try {
      return await Promise.race([running, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * The same object with every method that returns a promise under `deadline` (`what` = label and
 * method name). Methods returning anything else (an iterator, `this`) pass through untouched.
 * Methods run on the original object (`this` is never the proxy), so private fields keep working;
 * property writes (Keyv sets `adapter.namespace`) land on the original too.
 */
export function withDeadlines<A extends object>(target: A, deadline: StoreDeadline, label: string): A {
  return new Proxy(target, {
    get(object, prop) {
      const value: unknown = Reflect.get(object, prop, object);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        const result = method.apply(object, args);
        return isThenable(result) ? deadline(`${label} ${String(prop)}`, () => result) : result;
      };
    },
    set(object, prop, value) {
      return Reflect.set(object, prop, value, object);
    },
  });
}

function isThenable(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
