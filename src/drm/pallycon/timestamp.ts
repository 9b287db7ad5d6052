/**
 * The token's `timestamp` (and the policy's `expire_date`): `yyyy-MM-dd'T'HH:mm:ss'Z'` in UTC,
 * no fractional seconds (drm.md §1.3 "Timestamp").
 */

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/** Epoch milliseconds → `2019-07-17T08:57:04Z` (milliseconds dropped, not rounded). */
export function formatTimestamp(epochMs: number): string {
  if (!Number.isFinite(epochMs)) throw new RangeError(`not a time: ${epochMs}`);
  const iso = new Date(Math.floor(epochMs / 1000) * 1000).toISOString();
  if (!/^\d{4}-/.test(iso)) throw new RangeError(`time outside years 0000–9999: ${epochMs}`);
  return iso.replace(/\.\d{3}Z$/, 'Z');
}

/** `2019-07-17T08:57:04Z` → epoch milliseconds; undefined unless exactly that shape and a real date. */
export function parseTimestamp(text: string): number | undefined {
  const match = TIMESTAMP.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  const ms = date.getTime();
  // Rejects 2019-02-30, 24:00:00 and the like: the parsed instant must print back identically.
  return formatTimestamp(ms) === text ? ms : undefined;
}

export const isTimestamp = (text: string): boolean => parseTimestamp(text) !== undefined;
