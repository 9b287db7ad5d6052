import type { Logger } from '../infra/logger.js';
import { Problem } from './problem.js';

/**
 * Store failures become `503 store_unavailable` (with Retry-After), never "absent" and never a
 * 500; the cause is logged once here. Problems thrown inside pass through unchanged.
 */
export async function storeCall<T>(what: string, logger: Logger, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Problem) throw err;
    logger.error({ err, what }, 'store operation failed');
    throw new Problem('store_unavailable', 'The store could not be reached; retry shortly.', { headers: { 'Retry-After': '5' } });
  }
}
