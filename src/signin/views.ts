import type { CurrentProfile } from './records.js';

/** What apps may see of a profile's attributes (user-metadata.ts: the exposed ones, decrypted). */
export type AttributesView = (attributes: Record<string, unknown>) => Record<string, unknown>;

/** The profile as /v1 shows it: timestamps as ISO strings, attributes as `attributes` lets apps see them. */
export function profileView(profile: CurrentProfile, attributes: AttributesView) {
  return {
    mvpd: profile.mvpd,
    ...(profile.type !== undefined ? { type: profile.type } : {}),
    ...(profile.issuer !== undefined ? { issuer: profile.issuer } : {}),
    notBefore: new Date(profile.notBefore).toISOString(),
    notAfter: new Date(profile.notAfter).toISOString(),
    attributes: attributes(profile.attributes),
  };
}
