/**
 * Request coalescing (ecosystem.md §10): while a call for `key` is in flight, later callers with
 * the same key get the same promise, its result and its error alike. The key is forgotten as soon
 * as the call settles, so nothing is cached here, rejections included.
 *
 * The key must hold everything that changes the answer, credentials and device included
 * (e.g. `${deviceId}:${mvpd}:${resource}`): never share one device's upstream call with another.
 * `fn` should not take a caller's AbortSignal, since one caller giving up must not cancel the
 * call the others wait for; give it its own timeout. Coalescing is per process: N replicas
 * can still make N concurrent calls.
 */
export class Singleflight<T> {
  readonly #pending = new Map<string, Promise<T>>();

  /** Keys with a call in flight. */
  get inFlight(): number {
    return this.#pending.size;
  }

  do(key: string, fn: () => Promise<T>): Promise<T> {
    const pending = this.#pending.get(key);
    if (pending) return pending;
    // The executor turns a synchronous throw from fn into a rejection shared like any other.
    const call: Promise<T> = new Promise<T>((resolve) => resolve(fn())).finally(() => {
      if (this.#pending.get(key) === call) this.#pending.delete(key);
    });
    this.#pending.set(key, call);
    return call;
  }
}
