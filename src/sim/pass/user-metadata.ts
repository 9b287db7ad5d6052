import { constants, publicEncrypt } from 'node:crypto';
import type { SimRules } from '../rules.js';
import type { SimAttribute } from '../state.js';

/**
 * Encrypted user metadata as the upstream delivers it (user-metadata.md "User Metadata
 * Encryption"; legacy/rest-api-v1/apis/user-metadata.md: Adobe encrypts with the programmer's
 * public certificate, the programmer Base64-decodes and RSA-decrypts with its private key).
 * A stored attribute with `state: "enc"` holds what the MVPD gave; each answer encrypts it for the
 * certificate on file at that moment (RSAES-PKCS1-v1_5, base64), so a rotation applies at once.
 * A list or map is encrypted as its JSON ("When encrypted, the representation of the zip key will
 * be a String instead of an Array").
 */
export function attributesFor(attributes: Record<string, SimAttribute>, userMetadata: SimRules['userMetadata'] | undefined): Record<string, SimAttribute> {
  const out: Record<string, SimAttribute> = {};
  for (const [name, attribute] of Object.entries(attributes)) {
    if (attribute.state !== 'enc') {
      out[name] = attribute;
      continue;
    }
    out[name] = { value: encrypted(attribute, userMetadata?.certificate ?? UNOPENABLE_PUBLIC_KEY), state: 'enc' };
  }
  return out;
}

/** Each stored attribute's ciphertext for the certificate it was last encrypted for. */
const ciphertexts = new WeakMap<SimAttribute, { key: string; value: string }>();

/**
 * The same profile reads the same on every endpoint and every call ("values are saved in the
 * token", user-metadata-feature.md), though PKCS#1 v1.5 padding is random: one encryption per
 * attribute and certificate.
 */
function encrypted(attribute: SimAttribute, key: string): string {
  const known = ciphertexts.get(attribute);
  if (known?.key === key) return known.value;
  const plain = typeof attribute.value === 'string' ? attribute.value : JSON.stringify(attribute.value);
  // Public-key encryption with PKCS#1 v1.5 padding is allowed by Node (only private decryption is not).
  const value = publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(plain, 'utf8')).toString('base64');
  ciphertexts.set(attribute, { key, value });
  return value;
}

/**
 * With no certificate given, the answers still carry `enc` values as the documented samples do,
 * encrypted for this public key: a certificate on file whose private half nobody holds (it was
 * discarded when the key was made), so a programmer service can only leave them out.
 */
export const UNOPENABLE_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtFbICBQGX7aBehFKhMer
F3PmvEEvciGvAKduOhQD+RWOYQyMiBpjApNGBIFW3fGXULXh2iff4Qdp48o3LKg1
qhHlZ+g+MZHulcCPZ0bcS+7M1XR2SDh22tJ5zDqMIo9mhy4VTwFxCEmZxBYHxVGx
XjNBBn7WryUObqUjxjSqnd804LaCYkwLg7WXLfaIyo41O5p4xSMmbSlzpMI84QOv
ep3Kf64Vjd/cNqQBmmTy8Df16SylLla4gFJU8BXsloF+KtTAYSNqM0sGQdFBf9zK
TcBRQ4/69ms4vEjoc1smypZu2uZt8ZTXdmM7+oQ+uNf/WiM3OKevLu394iUA52Ro
twIDAQAB
-----END PUBLIC KEY-----
`;
