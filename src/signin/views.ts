import type { CurrentProfile } from './records.js';

/** The profile as /v1 shows it: timestamps as ISO strings, attributes passed through. */
export function profileView(profile: CurrentProfile) {
  return {
    mvpd: profile.mvpd,
    ...(profile.type !== undefined ? { type: profile.type } : {}),
    ...(profile.issuer !== undefined ? { issuer: profile.issuer } : {}),
    notBefore: new Date(profile.notBefore).toISOString(),
    notAfter: new Date(profile.notAfter).toISOString(),
    attributes: profile.attributes,
  };
}
