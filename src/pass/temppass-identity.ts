import { Problem } from '../http/problem.js';

/** The request header the app names a promotional TempPass viewer with (as the upstream spells it). */
export const TEMPPASS_IDENTITY_HEADER = 'ap-temppass-identity';

const MAX_IDENTITY_LENGTH = 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * AP-TempPass-Identity as the app sent it (rest-api-v2-appendix-headers-ap-temppass-identity.md):
 * base64 of a non-empty JSON object such as {"email": "…"} (temp-pass-feature.md recommends a hash
 * of it). Checked here so a bad value is a clear 400 and never reaches the upstream; the value itself
 * never appears in a problem, a log line or a metric.
 */
export function readTempPassIdentity(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  const value = raw.trim();
  const refuse = (why: string) => new Problem('invalid_temppass_identity', `AP-TempPass-Identity must be base64 of a JSON object with the viewer's identity (e.g. {"email": "…"}): ${why}.`);
  if (value.length > MAX_IDENTITY_LENGTH) throw refuse(`at most ${MAX_IDENTITY_LENGTH} characters`);
  if (value === '' || !BASE64.test(value)) throw refuse('not base64');
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
  } catch {
    throw refuse('not JSON');
  }
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded) || Object.keys(decoded).length === 0) throw refuse('not a non-empty JSON object');
  return value;
}
