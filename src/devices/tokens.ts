import { createHmac, randomUUID, timingSafeEqual, webcrypto } from 'node:crypto';
import { SignJWT } from 'jose';
import { setNewest } from '../infra/bounded-map.js';
import type { Clock } from '../infra/clock.js';
import type { Keyring } from '../infra/keyring.js';

/**
 * Device tokens (SPEC §2): compact JWS, HS256 under the keyring's `device-token` key. The `kid`
 * header names the key, so during and after a rotation (README "Keys") a token verifies on every
 * replica whose keyring holds its key, `:verify` or not; a kid missing from the ring is `invalid`. Claims:
 *   iss "passgate", aud "passgate:v1", sub = the device binding (SPEC §2: the first binding's id
 *   is the base64 fingerprint, so tokens issued before bindings existed name it), app = app id,
 *   gen = the binding's token generation (bumped to revoke), iat, exp, jti.
 * This module checks the cryptography and the claims; whether the app and the device still
 * exist (and the generation still matches) is the service's part.
 */
export const deviceTokenIssuer = 'passgate';
export const deviceTokenAudience = 'passgate:v1';
const algorithm = 'HS256';
/**
 * Genuine tokens remembered per replica. Entries are a few hundred bytes; a rejected token is never
 * remembered, so forged tokens cannot push genuine ones out faster than genuine traffic does.
 */
const MAX_VERIFIED_TOKENS = 20_000;

export interface DeviceTokenClaims {
  app: string;
  /** The binding id (`sub`). */
  binding: string;
  generation: number;
  jti: string;
  /** Epoch seconds. */
  issuedAt: number;
  /** Epoch seconds. */
  expiresAt: number;
}

export type DeviceTokenFailure = 'malformed' | 'invalid' | 'expired';

/** Why a token was refused (for metrics and debug logs; the client only ever sees 401). */
export class DeviceTokenError extends Error {
  constructor(readonly reason: DeviceTokenFailure) {
    super(`device token ${reason}`);
    this.name = 'DeviceTokenError';
  }
}

export interface IssuedDeviceToken {
  token: string;
  expiresAt: Date;
}

export class DeviceTokens {
  /**
   * The keyring's keys imported once as WebCrypto HMAC keys, by kid, for signing: handing jose the
   * raw bytes makes it import the key again on every sign.
   */
  private readonly imported = new Map<string, Promise<webcrypto.CryptoKey>>();
  /** Tokens whose MAC and claims checked out, newest last (bounded; only genuine tokens get in). */
  private readonly verified = new Map<string, DeviceTokenClaims>();

  /** `keys` is the keyring already derived for the purpose: `keyring.derive('device-token')`. */
  constructor(
    private readonly keys: Keyring,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
  ) {}

  async issue(subject: { app: string; binding: string; generation: number }): Promise<IssuedDeviceToken> {
    const { id } = this.keys.active;
    const key = await this.cryptoKey(id);
    const issuedAt = Math.floor(this.clock.now() / 1000);
    const expiresAt = issuedAt + this.ttlSeconds;
    const token = await new SignJWT({ app: subject.app, gen: subject.generation })
      .setProtectedHeader({ alg: algorithm, kid: id, typ: 'JWT' })
      .setIssuer(deviceTokenIssuer)
      .setAudience(deviceTokenAudience)
      .setSubject(subject.binding)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(key);
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }

  /**
   * The claims of a genuine, unexpired token; throws DeviceTokenError otherwise.
   *
   * Verified here with node:crypto rather than jose: this runs on every /v1 request, and jose
   * verifies HS256 through WebCrypto, an asynchronous job on libuv's pool for a few microseconds
   * of HMAC. The checks are jose's for this profile (RFC 7515/7519): exactly three base64url parts,
   * the MAC compared in constant time over the canonical encoding before any JSON is parsed, then
   * header alg HS256 with a known kid and no `crit`, then iss, aud, sub, iat, exp, nbf and jti.
   */
  verify(token: string): DeviceTokenClaims {
    // A token this replica verified before: the same bytes carry the same MAC and claims, so only
    // the time checks are left (an app sends its token on every request; a license storm is renewals).
    const known = this.verified.get(token);
    if (known) return this.stillValid(known);
    const claims = this.verifyBytes(token);
    setNewest(this.verified, token, claims, MAX_VERIFIED_TOKENS);
    return claims;
  }

  /** exp is re-checked against the clock on every use of a remembered token. */
  private stillValid(claims: DeviceTokenClaims): DeviceTokenClaims {
    if (claims.expiresAt <= Math.floor(this.clock.now() / 1000)) throw new DeviceTokenError('expired');
    return claims;
  }

  private verifyBytes(token: string): DeviceTokenClaims {
    // Three base64url parts and nothing else; anything longer than a few KB is not ours.
    if (token.length > 4096 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new DeviceTokenError('malformed');
    const [encodedHeader = '', encodedPayload = '', signature = ''] = token.split('.');
    const header = decodeJson(encodedHeader);
    if (header.alg !== algorithm || typeof header.kid !== 'string' || header.crit !== undefined) throw new DeviceTokenError('invalid');
    const entry = this.keys.find(header.kid);
    if (!entry) throw new DeviceTokenError('invalid');
    const expected = Buffer.from(createHmac('sha256', entry.key).update(`${encodedHeader}.${encodedPayload}`).digest('base64url'));
    const presented = Buffer.from(signature);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) throw new DeviceTokenError('invalid');

    const { app, gen, sub, jti, iat, exp, nbf, iss, aud } = decodeJson(encodedPayload);
    const now = Math.floor(this.clock.now() / 1000);
    if (iss !== deviceTokenIssuer || !(aud === deviceTokenAudience || (Array.isArray(aud) && aud.includes(deviceTokenAudience)))) {
      throw new DeviceTokenError('invalid');
    }
    if (typeof iat !== 'number' || typeof exp !== 'number' || (nbf !== undefined && (typeof nbf !== 'number' || nbf > now))) throw new DeviceTokenError('invalid');
    if (typeof app !== 'string' || typeof sub !== 'string' || typeof jti !== 'string') throw new DeviceTokenError('invalid');
    if (typeof gen !== 'number' || !Number.isSafeInteger(gen) || gen < 0) throw new DeviceTokenError('invalid');
    if (exp <= now) throw new DeviceTokenError('expired');
    // Frozen: the same object is handed to every request that presents this token.
    return Object.freeze({ app, binding: sub, generation: gen, jti, issuedAt: iat, expiresAt: exp });
  }

  /** The key of `kid` (a kid of the keyring) as an HMAC-SHA-256 CryptoKey, imported on first use. */
  private cryptoKey(kid: string): Promise<webcrypto.CryptoKey> {
    let key = this.imported.get(kid);
    if (!key) {
      const entry = this.keys.find(kid);
      if (!entry) throw new DeviceTokenError('invalid');
      key = webcrypto.subtle.importKey('raw', entry.key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
      this.imported.set(kid, key);
    }
    return key;
  }
}

/** A JWS part that must be a base64url JSON object; anything else makes the token invalid. */
function decodeJson(part: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new DeviceTokenError('invalid');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DeviceTokenError('invalid');
  return value as Record<string, unknown>;
}
