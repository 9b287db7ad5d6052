import type { ProblemCode } from '../http/problem.js';
import type { PassProfile } from '../pass/schema.js';

/** The decision source of TempPass (adobe-pass.md §4.7). */
export const TEMPPASS_SOURCE = 'temppass';

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
