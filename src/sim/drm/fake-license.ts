import { createHash } from 'node:crypto';
import type { DecodedLicenseToken } from '../../drm/pallycon/token.js';
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

export interface LicenseGrant {
  system: LicenseSystem;
  token: DecodedLicenseToken;
  policy: unknown;
  challenge: Buffer;
  issuedAt: string;
}

export function fakeLicense(grant: LicenseGrant): FakeLicense {
  const summary = {
    system: grant.system,
    site_id: grant.token.siteId,
    user_id: grant.token.userId,
    cid: grant.token.cid,
    issued_at: grant.issuedAt,
    key_rotation: grant.token.keyRotation ?? false,
    policy: grant.policy,
  };
  const bytes = Buffer.from(`PASSGATE-SIM FAKE ${grant.system.toUpperCase()} LICENSE\n${JSON.stringify(summary)}\n`, 'utf8');
  const format = grant.token.responseFormat ?? 'original';
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
