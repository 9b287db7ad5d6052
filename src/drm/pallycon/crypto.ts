import { createCipheriv, createDecipheriv, hash, timingSafeEqual } from 'node:crypto';

/**
 * The license token's crypto (drm.md §1.3): AES-256-CBC/PKCS7 under the UTF-8 bytes of the
 * 32-character site key with the fixed IV `0123456789abcdef`; SHA-256 over a plain concatenation.
 */

/** drm.md §1.3: the IV is the 16 ASCII bytes of this literal (Java `AES_IV`). */
export const POLICY_IV = Buffer.from('0123456789abcdef', 'ascii');

/** The key is the site key's own UTF-8 bytes (no hex/base64 decoding), so it must be 32 of them. */
export const siteKeyBytes = (siteKey: string): Buffer => Buffer.from(siteKey, 'utf8');
export const isSiteKey = (siteKey: string): boolean => siteKeyBytes(siteKey).length === 32;

function keyFor(siteKey: string): Buffer {
  const key = siteKeyBytes(siteKey);
  if (key.length !== 32) throw new RangeError(`the site key must be 32 bytes (UTF-8), got ${key.length}`);
  return key;
}

/** Standard base64 with `=` padding, the only alphabet the token uses; undefined when `text` is not that. */
export function decodeBase64(text: string): Buffer | undefined {
  const unpadded = text.replace(/={1,2}$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(unpadded) || unpadded.length % 4 === 1) return undefined;
  if (text.length !== unpadded.length && text.length % 4 !== 0) return undefined;
  return Buffer.from(unpadded, 'base64');
}

/** UTF-8 text (a policy JSON, a callback payload) → base64(AES-256-CBC(text)). */
export function encryptPolicy(plaintext: string, siteKey: string): string {
  const cipher = createCipheriv('aes-256-cbc', keyFor(siteKey), POLICY_IV);
  return Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]).toString('base64');
}

export type PolicyDecryption = { ok: true; text: string } | { ok: false; problem: 'base64' | 'length' | 'padding' | 'utf8' };

/** base64(AES-256-CBC(text)) → text, or which layer failed. */
export function decryptPolicy(encrypted: string, siteKey: string): PolicyDecryption {
  const bytes = decodeBase64(encrypted);
  if (!bytes) return { ok: false, problem: 'base64' };
  if (bytes.length === 0 || bytes.length % 16 !== 0) return { ok: false, problem: 'length' };
  const decipher = createDecipheriv('aes-256-cbc', keyFor(siteKey), POLICY_IV);
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(bytes), decipher.final()]);
  } catch {
    return { ok: false, problem: 'padding' };
  }
  try {
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(plain) };
  } catch {
    return { ok: false, problem: 'utf8' };
  }
}

export interface HashParts {
  accessKey: string;
  drmType: string;
  siteId: string;
  userId: string;
  cid: string;
  /** The base64 policy exactly as placed in the token (`policy`, or `token` in v1 tokens). */
  policy: string;
  timestamp: string;
}

/** drm.md §1.3: access key + drm type + site id + user id + cid + policy + timestamp, no separators. */
export const hashMessage = (p: HashParts): string => p.accessKey + p.drmType + p.siteId + p.userId + p.cid + p.policy + p.timestamp;

// One-shot hashing: a Hash object per token cost more than the digest itself on the license path.
const digest = (p: HashParts): Buffer => hash('sha256', hashMessage(p), 'buffer');

/** base64 of the raw SHA-256 digest of a hash message (hashMessage), for a caller that already built it. */
export const messageHash = (message: string): string => hash('sha256', message, 'base64');

/** base64 of the raw SHA-256 digest (not of its hex form, unlike the guide's illustrative example). */
export const tokenHash = (p: HashParts): string => messageHash(hashMessage(p));

/** Constant-time comparison of a token's `hash` with the one recomputed from its fields. */
export function hashMatches(hash: string, p: HashParts): boolean {
  const given = decodeBase64(hash);
  const expected = digest(p);
  return given !== undefined && given.length === expected.length && timingSafeEqual(given, expected);
}
