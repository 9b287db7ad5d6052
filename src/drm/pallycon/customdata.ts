import { decryptPolicy, encryptPolicy } from './crypto.js';
import { parseTokenJson } from './token.js';

/**
 * The callback-era custom data that can ride in the same headers as a token (drm.md §1.5):
 * `pallycon-customdata-v2` = base64 of `{"drm_type","site_id","data"}` where `data` =
 * base64(AES-256-CBC(`{"user_id","cid","oid"}`)) under the site key; the older
 * `pallycon-customdata` = DRMType(1) + SiteID(4) + base64(AES(json)).
 */

export interface CustomDataV2 {
  drmType?: string;
  siteId: string;
  /** base64(AES-256-CBC(user JSON)) under the site key. */
  data: string;
  raw: Record<string, unknown>;
}

export interface CustomDataUser {
  user_id: string;
  cid: string;
  oid?: string;
  [other: string]: unknown;
}

export type CustomDataFailure = { ok: false; errorCode: '7007' | '7008'; reason: string };

/** Tells a license token from callback custom data: the latter has `data` and no `hash`. */
export const isCustomDataV2 = (raw: Record<string, unknown>): boolean => typeof raw.data === 'string' && raw.hash === undefined;

/** Decodes a `pallycon-customdata-v2` value holding callback custom data (not a token). */
export function decodeCustomDataV2(value: string): { ok: true; customData: CustomDataV2 } | CustomDataFailure {
  const parsed = parseTokenJson(value);
  if (!parsed.ok) return { ok: false, errorCode: '7007', reason: parsed.reason };
  const { raw } = parsed;
  if (typeof raw.site_id !== 'string' || typeof raw.data !== 'string' || (raw.drm_type !== undefined && typeof raw.drm_type !== 'string')) {
    return { ok: false, errorCode: '7007', reason: 'custom data needs string site_id and data (and drm_type if present)' };
  }
  return {
    ok: true,
    customData: { ...(typeof raw.drm_type === 'string' ? { drmType: raw.drm_type } : {}), siteId: raw.site_id, data: raw.data, raw },
  };
}

/** Decrypts the custom data's `data` (or a callback body's `data`) with the site key. */
export function decryptCustomData(data: string, siteKey: string): { ok: true; user: CustomDataUser } | CustomDataFailure {
  const decrypted = decryptPolicy(data, siteKey);
  if (!decrypted.ok) return { ok: false, errorCode: '7008', reason: `data cannot be decrypted with this site key (${decrypted.problem})` };
  let value: unknown;
  try {
    value = JSON.parse(decrypted.text);
  } catch {
    return { ok: false, errorCode: '7008', reason: 'decrypted data is not JSON' };
  }
  const user = value as Partial<CustomDataUser> | null;
  if (typeof user !== 'object' || user === null || typeof user.user_id !== 'string' || typeof user.cid !== 'string') {
    return { ok: false, errorCode: '7008', reason: 'decrypted data needs string user_id and cid' };
  }
  return { ok: true, user: user as CustomDataUser };
}

/** Builds a `pallycon-customdata-v2` value for callback mode (tests and the simulator's caller). */
export function encodeCustomDataV2(input: { drmType: string; siteId: string; siteKey: string; user: CustomDataUser }): string {
  const data = encryptPolicy(JSON.stringify(input.user), input.siteKey);
  return Buffer.from(JSON.stringify({ drm_type: input.drmType, site_id: input.siteId, data }), 'utf8').toString('base64');
}

const legacyDrmTypes: Record<string, string> = { W: 'Widevine', P: 'PlayReady', F: 'FairPlay' };

/** The older `pallycon-customdata`: `W` + `DEMO` + base64(AES(json)). */
export function decodeLegacyCustomData(value: string): { ok: true; drmType: string; siteId: string; data: string } | CustomDataFailure {
  const match = /^([WPF])([A-Z0-9]{4})([A-Za-z0-9+/]+={0,2})$/.exec(value.trim());
  const drmType = match ? legacyDrmTypes[match[1] ?? ''] : undefined;
  if (!match || !drmType) return { ok: false, errorCode: '7007', reason: 'expected DRMType(1) + SiteID(4) + base64' };
  return { ok: true, drmType, siteId: match[2] ?? '', data: match[3] ?? '' };
}
