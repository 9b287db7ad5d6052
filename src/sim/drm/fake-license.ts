import { createHash } from 'node:crypto';
import type { LicenseSystem } from './license-request.js';

/**
 * What the simulator answers instead of a license: a readable fake that says what it licenses,
 * encoded per system as the real service does (drm.md §1.5): Widevine binary, PlayReady and
 * FairPlay (CKC) as base64 text; with response_format json/custom a JSON envelope.
 */

export interface FakeLicense {
  type: string;
  body: Buffer | string | object;
}

/** What a license is issued for: from a verified token, or from the site's callback grant. */
export interface LicenseGrant {
  system: LicenseSystem;
  siteId: string;
  userId: string;
  cid: string;
  /** The policy the grant carries: a token's decrypted v2 policy, a callback's v1 objects. */
  policy: unknown;
  challenge: Buffer;
  /** yyyy-mm-ddThh:mm:ssZ on the simulator's clock. */
  issuedAt: string;
  /** The token's key_rotation; false when absent. */
  keyRotation?: boolean;
  /** The token's response_format; absent means original. */
  responseFormat?: string;
}

export function fakeLicense(grant: LicenseGrant): FakeLicense {
  const summary = {
    system: grant.system,
    site_id: grant.siteId,
    user_id: grant.userId,
    cid: grant.cid,
    issued_at: grant.issuedAt,
    key_rotation: grant.keyRotation ?? false,
    policy: grant.policy,
  };
  const bytes = Buffer.from(`PASSGATE-SIM FAKE ${grant.system.toUpperCase()} LICENSE\n${JSON.stringify(summary)}\n`, 'utf8');
  const format = grant.responseFormat ?? 'original';
  if (format !== 'original') {
    // drm.md §1.5: the proxy sample reads `license` (Widevine: hex) and `device_info.device_id`.
    return {
      type: 'application/json',
      body: {
        license: grant.system === 'Widevine' ? bytes.toString('hex') : bytes.toString('base64'),
        device_info: { device_id: createHash('sha256').update(grant.challenge).digest('hex').slice(0, 32) },
      },
    };
  }
  if (grant.system === 'PlayReady' || grant.system === 'FairPlay') return { type: 'text/plain; charset=utf-8', body: bytes.toString('base64') };
  return { type: 'application/octet-stream', body: bytes };
}
