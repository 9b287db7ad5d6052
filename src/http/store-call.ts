import type { Logger } from '../infra/logger.js';
import { describeError } from '../infra/store-core.js';
import { StoreUnavailableError } from '../infra/store.js';
import { Problem } from './problem.js';

/** The Retry-After (seconds) of an answer the store could not serve. */
export const STORE_RETRY_AFTER = '5';

/** The answer to a request the store could not serve (SPEC §8): 503 with a hint when to retry. */
export function storeUnavailable(detail = 'The store could not be reached; retry shortly.'): Problem {
  return new Problem('store_unavailable', detail, { headers: { 'Retry-After': STORE_RETRY_AFTER } });
}

/**
 * Logs a failed store operation once: an outage (unreachable, locked, past PASSGATE_STORE_TIMEOUT_MS)
 * is an expected condition, one warn line without a stack; anything else is an error with its stack.
 */
export function logStoreFailure(logger: Logger, err: unknown, what: string): void {
  if (err instanceof StoreUnavailableError) logger.warn({ what, reason: describeError(err) }, 'store unavailable');
  else logger.error({ err, what }, 'store operation failed');
}

/**
 * Store failures become `503 store_unavailable` (with Retry-After), never "absent" and never a
 * 500; the cause is logged once here. Problems thrown inside pass through unchanged.
 */
export async function storeCall<T>(what: string, logger: Logger, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Problem) throw err;
    logStoreFailure(logger, err, what);
    throw storeUnavailable();
  }
}
