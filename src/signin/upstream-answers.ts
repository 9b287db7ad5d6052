/** How the signin feature reads the upstream's answers: its profiles maps and its MVPD refusals. */
import { Problem } from '../http/problem.js';
import { UpstreamProblem, type PassProfiles } from '../pass/index.js';
import type { CurrentProfile } from './records.js';

/** Upstream profiles map → passgate profiles still valid at `now`, longest notAfter first (FAQ Authn 11). */
export function validProfiles(answer: PassProfiles, now: number): CurrentProfile[] {
  return Object.entries(answer.profiles)
    .map(([mvpd, p]) => ({
      mvpd,
      notBefore: p.notBefore,
      notAfter: p.notAfter,
      ...(p.type !== undefined ? { type: p.type } : {}),
      ...(p.issuer !== undefined ? { issuer: p.issuer } : {}),
      attributes: p.attributes,
    }))
    .filter((p) => p.notAfter > now)
    .sort((a, b) => b.notAfter - a.notAfter);
}

/** invalid_parameter_mvpd / invalid_integration (adobe-pass.md §4.2) are the app's bad input, not an upstream failure. */
export function asUnknownMvpd(err: unknown): unknown {
  if (err instanceof UpstreamProblem && (err.info.code === 'invalid_parameter_mvpd' || err.info.code === 'invalid_integration')) {
    return new Problem('unknown_mvpd', `The Pass service does not know this MVPD for this service: ${err.info.code}.`, {
      upstream: { code: err.info.code, action: err.info.action, ...(err.info.message ? { message: err.info.message } : {}) },
    });
  }
  return err;
}

