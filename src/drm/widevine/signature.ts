import { createCipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { decodeBase64 } from '../pallycon/crypto.js';

/**
 * Widevine cloud request signing (drm.md §3.3): base64(AES-256-CBC(provider key, provider IV,
 * SHA-1(message))). Pinned by the published vector in test/fixtures/widevine-request-signature.json.
 */

export const WIDEVINE_KEY_BYTES = 32;
export const WIDEVINE_IV_BYTES = 16;

/**
 * How the 20-byte digest is padded to two AES blocks. shaka-packager's AesRequestSigner uses
 * PKCS#5/7 (12 bytes of 0x0c); Google's reference license proxy pads with zero bytes. Both
 * give the same first block and differ in the second (drm.md §3.3).
 */
export type SignaturePadding = 'pkcs7' | 'zero';

function checkKeys(key: Buffer, iv: Buffer): void {
  if (key.length !== WIDEVINE_KEY_BYTES) throw new RangeError(`the Widevine signing key must be ${WIDEVINE_KEY_BYTES} bytes, got ${key.length}`);
  if (iv.length !== WIDEVINE_IV_BYTES) throw new RangeError(`the Widevine signing IV must be ${WIDEVINE_IV_BYTES} bytes, got ${iv.length}`);
}

function signatureBytes(message: string | Uint8Array, key: Buffer, iv: Buffer, padding: SignaturePadding): Buffer {
  checkKeys(key, iv);
  const digest = createHash('sha1').update(message).digest();
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  if (padding === 'pkcs7') return Buffer.concat([cipher.update(digest), cipher.final()]);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([digest, Buffer.alloc(32 - digest.length)])), cipher.final()]);
}

/**
 * The envelope's `signature` for `message` (a string is signed as its UTF-8 bytes). passgate
 * signs with PKCS#7, the padding the published vector pins; `zero` exists for tests and tools.
 */
export function signRequest(message: string | Uint8Array, key: Buffer, iv: Buffer, padding: SignaturePadding = 'pkcs7'): string {
  return signatureBytes(message, key, iv, padding).toString('base64');
}

/**
 * Constant-time check of an envelope signature. Accepts both paddings: which one the real
 * service requires is unconfirmed (drm.md §3.3, §7) and public clients of the same service use
 * either, so a verifier (the simulator) that refused one would fail a client the service may
 * well accept. Both candidates are always computed so timing does not reveal which matched.
 */
export function verifySignature(message: string | Uint8Array, signature: string, key: Buffer, iv: Buffer): boolean {
  const given = decodeBase64(signature) ?? Buffer.alloc(0);
  const candidates = [signatureBytes(message, key, iv, 'pkcs7'), signatureBytes(message, key, iv, 'zero')];
  let matched = false;
  for (const expected of candidates) {
    const equal = given.length === expected.length && timingSafeEqual(given, expected);
    matched = matched || equal;
  }
  return matched;
}
