import type { LicensePolicyV2 } from './pallycon/policy-schema.js';
import { formatTimestamp, parseTimestamp } from './pallycon/timestamp.js';

/**
 * SPEC §4: no license without a live Permit. A license token is accepted by the license service
 * until its Permit's notAfter at the latest (tokenStart), for every Permit. The license's own
 * duration is bounded by the Permit only where the grant itself ends there — a TempPass trial, a
 * degraded grant (gate.ts decides by the Permit's source): an MVPD's Permit gates the start of
 * playback, and a running stream continues past it (the upstream's checklist, authorization).
 */

/** Whole seconds: the license service's timestamps and expire_date carry no milliseconds (drm.md §1.3). */
const wholeSecond = (epochMs: number): number => Math.floor(epochMs / 1000) * 1000;

/** When the license a policy grants at `now` stops licensing playback; +∞ for "unlimited" (drm.md §1.4: 0 = unlimited). */
function licenseEnds(policy: LicensePolicyV2, now: number): number {
  const playback = policy.playback_policy ?? {};
  // "'expire_date' is ignored if 'duration' is set" (drm.md §1.4).
  if (playback.license_duration) return now + playback.license_duration * 1000;
  if (playback.expire_date !== undefined) return parseTimestamp(playback.expire_date) ?? Number.POSITIVE_INFINITY;
  return Number.POSITIVE_INFINITY;
}

export type PolicyBound =
  /** The policy's licenses already end by the Permit's end: use it as it is (the ordinary case). */
  | { kind: 'unchanged' }
  /** A copy whose licenses end by the Permit's end. */
  | { kind: 'bounded'; policy: LicensePolicyV2 }
  /** Less than a whole second left: no duration can say it (0 would mean unlimited). */
  | { kind: 'ended' };

/**
 * The policy bounded to a Permit ending at `notAfter`. The bound is an absolute `expire_date`
 * (the Permit's end, to the second) instead of a shorter `license_duration`, so the bounded copy
 * is the same for every request on that Permit and its encryption can be reused; Widevine direct
 * turns it back into seconds left (widevine/license-message.ts). The offline-rental windows are
 * relative to when the license is used, so each one longer than the time left becomes the time left.
 */
export function boundPolicy(policy: LicensePolicyV2, now: number, notAfter: number): PolicyBound {
  const end = wholeSecond(notAfter);
  const left = Math.floor((end - now) / 1000);
  const playback = policy.playback_policy ?? {};
  const licenseFits = licenseEnds(policy, now) <= notAfter;
  const rentalFits = [playback.rental_duration, playback.playback_duration].every((d) => d === undefined || d <= left);
  if (licenseFits && rentalFits) return { kind: 'unchanged' };
  if (left < 1) return { kind: 'ended' };
  const bounded = { ...playback };
  if (!licenseFits) {
    delete bounded.license_duration;
    bounded.expire_date = formatTimestamp(end);
  }
  if (bounded.rental_duration !== undefined && bounded.rental_duration > left) bounded.rental_duration = left;
  if (bounded.playback_duration !== undefined && bounded.playback_duration > left) bounded.playback_duration = left;
  return { kind: 'bounded', policy: { ...policy, playback_policy: bounded } };
}

/**
 * The license token's `timestamp`: the license service accepts a token for `validitySeconds`
 * after it (drm.md §1.2), so a Permit ending sooner gets a timestamp early enough that the token
 * is refused from the Permit's end on. Ordinary Permits: now, to the second.
 */
export function tokenStart(now: number, notAfter: number, validitySeconds: number): number {
  // The service accepts the token up to and including timestamp + validity; the Permit ends just before notAfter.
  return Math.min(wholeSecond(now), wholeSecond(notAfter - 1 - validitySeconds * 1000));
}
