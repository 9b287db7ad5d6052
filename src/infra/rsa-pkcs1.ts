import { constants, privateDecrypt, type KeyObject } from 'node:crypto';

/**
 * RSAES-PKCS1-v1_5 decryption (RFC 8017 §7.2.2) on Node ≥ 20.19, which refuses
 * `privateDecrypt` with RSA_PKCS1_PADDING (CVE-2023-46809, the Marvin timing attack) unless
 * started with `--security-revert`. OpenSSL still does the RSA operation itself (RSA_NO_PADDING:
 * the blinded private-key primitive, CRT and all); only the padding is removed here, without a
 * branch or an early exit on the decrypted bytes, and every kind of failure is the same
 * `undefined`. Callers must not tell their own callers why a ciphertext failed (no padding oracle).
 */
export function decryptRsaPkcs1v15(key: KeyObject, ciphertext: Buffer): Buffer | undefined {
  const modulusBytes = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  // §7.2.2 step 1: the ciphertext is exactly k bytes (and k ≥ 11).
  if (key.asymmetricKeyType !== 'rsa' || modulusBytes < 11 || ciphertext.length !== modulusBytes) return undefined;
  let encoded: Buffer;
  try {
    encoded = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ciphertext);
  } catch {
    // A ciphertext not below the modulus.
    return undefined;
  }
  return encoded.length === modulusBytes ? unpad(encoded) : undefined;
}

/** 1 when `byte` is 0, else 0 (no comparison, so no branch on a secret byte). */
const isZero = (byte: number) => ((byte | -byte) >>> 31) ^ 1;

/** EM = 0x00 ‖ 0x02 ‖ PS (≥ 8 non-zero bytes) ‖ 0x00 ‖ M  →  M (§7.2.2 step 3). */
function unpad(em: Buffer): Buffer | undefined {
  let bad = (em[0] as number) | ((em[1] as number) ^ 0x02);
  let separator = 0;
  let found = 0;
  for (let i = 2; i < em.length; i++) {
    const zero = isZero(em[i] as number);
    // The first zero byte after 0x00 0x02 ends PS; later zeros belong to M.
    separator |= -(zero & (found ^ 1)) & i;
    found |= zero;
  }
  bad |= found ^ 1;
  // PS is at least 8 bytes: the separator is at index 10 or later.
  bad |= (separator - 10) >>> 31;
  return bad === 0 ? em.subarray(separator + 1) : undefined;
}
