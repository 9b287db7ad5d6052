import { Problem, type ProblemCode } from '../http/problem.js';
import type { PassProfile } from '../pass/schema.js';

/** The decision source of TempPass (adobe-pass.md §4.7). */
export const TEMPPASS_SOURCE = 'temppass';

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

/**
 * The upstream's TempPass refusals (decisions API samples 4, 5; temp-pass-feature.md) as passgate's
 * problems: the trial is over, the promotional resources are used up, the identity was refused.
 */
export const tempPassProblems: Readonly<Record<string, ProblemCode>> = {
  temporary_access_duration_limit_exceeded: 'temppass_expired',
  temporary_access_resources_limit_exceeded: 'temppass_limit_reached',
  invalid_header_identity_for_temporary_access: 'invalid_temppass_identity',
};

const tempPassDetails: Readonly<Record<string, string>> = {
  temppass_expired: 'The free TempPass time of this device is used up; sign in with a TV provider (POST /v1/authentication) to keep watching.',
  temppass_limit_reached: 'This promotional TempPass has no titles left; sign in with a TV provider (POST /v1/authentication) to keep watching.',
  invalid_temppass_identity: 'The promotional TempPass needs the viewer\'s identity: send AP-TempPass-Identity (base64 of a JSON object, e.g. {"email": "…"}).',
};

export const tempPassDetail = (code: ProblemCode): string => tempPassDetails[code] ?? 'TempPass refused this request.';

/** What the app may show of a running trial (profiles API samples 4, 5): its end and, promotional, what is left. */
export interface TempPassFigures {
  /** Absent when the upstream no longer shows the profile (the last title was just used). */
  expiresAt?: string;
  remainingResources?: number;
  usedResources?: string[];
}

/** A profile attribute's value: the samples wrap it as {value, state}; a bare value is taken as is. */
function attribute(attributes: Record<string, unknown>, name: string): unknown {
  const raw = attributes[name];
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'value' in raw ? (raw as { value: unknown }).value : raw;
}

/** The figures of a temporary profile; undefined when it is not one (or carries no end). */
export function tempPassFigures(profile: PassProfile | undefined): TempPassFigures | undefined {
  if (!profile || profile.type !== 'temporary') return undefined;
  const expiration = Number(attribute(profile.attributes, 'expiration_date') ?? profile.notAfter);
  if (!Number.isFinite(expiration)) return undefined;
  const remaining = attribute(profile.attributes, 'remaining_resources');
  const used = attribute(profile.attributes, 'used_assets');
  return {
    expiresAt: new Date(expiration).toISOString(),
    ...(typeof remaining === 'number' && Number.isInteger(remaining) ? { remainingResources: remaining } : {}),
    ...(Array.isArray(used) ? { usedResources: used.filter((item): item is string => typeof item === 'string') } : {}),
  };
}
