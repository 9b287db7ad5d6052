import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { secretRef, type SecretRef } from './secret-ref.js';
import { Secret } from './secret.js';

/**
 * The `user_metadata` part of the YAML file: which profile attributes apps see, and the
 * programmer's key pairs for the encrypted ones (user-metadata.md "User Metadata Encryption": the
 * programmer generates an RSA key pair, shares the certificate with Adobe and keeps the private
 * key; Adobe supports a primary and a backup certificate, so a compromised one can be revoked).
 */

/** Attribute names as the upstream spells them (userID, householdID, zip, is_hoh, …). */
const attributeName = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, { error: 'expected an attribute name such as userID or zip' });

const keyPair = z.strictObject({
  /** The private key, PEM (PKCS#1 `RSA PRIVATE KEY` or PKCS#8), possibly encrypted (`openssl genrsa -des3`). */
  private_key: secretRef,
  /** The private key's password, when it is encrypted. */
  passphrase: secretRef.optional(),
  /** The certificate shared with Adobe (PEM): checked to belong to the private key; its expiry is a metric. */
  certificate: secretRef.optional(),
});

export const userMetadataSchema = z
  .strictObject({
    /** The only attributes apps see (GET /v1/profile and every profile in /v1); encrypted ones decrypted. */
    exposed: z.array(attributeName).min(1, { error: 'expected at least one attribute name' }),
    /** Decryption tries the primary key first, then the backup (a certificate rotation in progress). */
    keys: z.strictObject({ primary: keyPair, backup: keyPair.optional() }).optional(),
  })
  .optional();
export type UserMetadataFile = z.output<typeof userMetadataSchema>;

export type KeySlot = 'primary' | 'backup';

export interface UserMetadataKey {
  slot: KeySlot;
  /** The PEM text (a Secret, so the config never prints it); userMetadataPrivateKey() opens it. */
  privateKey: Secret;
  passphrase?: Secret;
  modulusBits: number;
  /** From `certificate`, when given. */
  certificate?: { subject: string; validTo: Date; fingerprint256: string };
}

export interface UserMetadataConfig {
  exposed: string[];
  /** Primary first, then the backup; empty when no key is configured (encrypted attributes are then left out). */
  keys: UserMetadataKey[];
}

/** The docs' key size (`openssl genrsa … 2048`); smaller RSA keys are not worth protecting a zip code with. */
export const MIN_MODULUS_BITS = 2048;

/** Opens a configured key (resolveUserMetadataConfig already proved it opens). */
export function userMetadataPrivateKey(key: Pick<UserMetadataKey, 'privateKey' | 'passphrase'>): KeyObject {
  return createPrivateKey({ key: key.privateKey.reveal(), format: 'pem', ...(key.passphrase ? { passphrase: key.passphrase.reveal() } : {}) });
}

type Resolve = (ref: SecretRef, path: string) => Secret | undefined;

function resolveKey(slot: KeySlot, pair: z.output<typeof keyPair>, resolveSecret: Resolve, problems: string[]): UserMetadataKey | undefined {
  const path = `user_metadata.keys.${slot}`;
  const privateKey = resolveSecret(pair.private_key, `${path}.private_key`);
  const passphrase = pair.passphrase ? resolveSecret(pair.passphrase, `${path}.passphrase`) : undefined;
  if (!privateKey || (pair.passphrase && !passphrase)) return undefined;
  let key: KeyObject;
  try {
    key = userMetadataPrivateKey({ privateKey, ...(passphrase ? { passphrase } : {}) });
  } catch {
    // PKCS#8 `ENCRYPTED PRIVATE KEY`, or PKCS#1 with `Proc-Type: 4,ENCRYPTED` (openssl genrsa -des3).
    const why = !passphrase && /ENCRYPTED/.test(privateKey.reveal()) ? 'it is encrypted: set passphrase' : 'not a PEM private key, or the passphrase is wrong';
    problems.push(`${path}.private_key: cannot open the key (${why})`);
    return undefined;
  }
  const modulusBits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || modulusBits < MIN_MODULUS_BITS) {
    problems.push(`${path}.private_key: expected an RSA key of at least ${MIN_MODULUS_BITS} bits (got ${key.asymmetricKeyType ?? 'unknown'}${modulusBits ? ` ${modulusBits}` : ''})`);
    return undefined;
  }
  const resolved: UserMetadataKey = { slot, privateKey, ...(passphrase ? { passphrase } : {}), modulusBits };
  if (!pair.certificate) return resolved;
  const pem = resolveSecret(pair.certificate, `${path}.certificate`);
  if (!pem) return undefined;
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem.reveal());
  } catch {
    problems.push(`${path}.certificate: not a PEM X.509 certificate`);
    return undefined;
  }
  if (!certificate.publicKey.equals(createPublicKey(key))) {
    problems.push(`${path}.certificate: does not belong to ${path}.private_key (Adobe would encrypt for another key)`);
    return undefined;
  }
  return { ...resolved, certificate: { subject: certificate.subject, validTo: new Date(certificate.validTo), fingerprint256: certificate.fingerprint256 } };
}

/** The `user_metadata` section resolved (keys opened and checked); undefined when the file has none. */
export function resolveUserMetadataConfig(file: UserMetadataFile, resolveSecret: Resolve, problems: string[]): UserMetadataConfig | undefined {
  if (!file) return undefined;
  const keys: UserMetadataKey[] = [];
  if (file.keys) {
    const primary = resolveKey('primary', file.keys.primary, resolveSecret, problems);
    const backup = file.keys.backup ? resolveKey('backup', file.keys.backup, resolveSecret, problems) : undefined;
    if (primary) keys.push(primary);
    if (backup) keys.push(backup);
    if (primary && backup && createPublicKey(userMetadataPrivateKey(primary)).equals(createPublicKey(userMetadataPrivateKey(backup)))) {
      problems.push('user_metadata.keys.backup: the same key as the primary (a backup is a second key pair)');
    }
  }
  return { exposed: [...new Set(file.exposed)], keys };
}

/**
 * `serve --with-sim`: a `user_metadata` section without keys gets a key pair made at start (kept
 * in memory only, gone at exit); its public key is the certificate the simulator encrypts for.
 */
export function withDemoKey(config: UserMetadataConfig): { config: UserMetadataConfig; publicKey: string } {
  const pair = generateKeyPairSync('rsa', { modulusLength: MIN_MODULUS_BITS });
  const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    config: { ...config, keys: [{ slot: 'primary', privateKey: new Secret(pem, '(demo key made at start)'), modulusBits: MIN_MODULUS_BITS }] },
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
