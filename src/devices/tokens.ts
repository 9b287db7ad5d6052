import { randomUUID, webcrypto } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Clock } from '../infra/clock.js';
import type { Keyring } from '../infra/keyring.js';

/**
 * Device tokens (SPEC §2): compact JWS, HS256 under the keyring's `device-token` key. The `kid`
 * header names the key, so after a rotation (new key first in PASSGATE_KEYS) tokens signed with
 * the old key still verify until it is removed. Claims:
 *   iss "passgate", aud "passgate:v1", sub = the device binding (SPEC §2: the first binding's id
 *   is the base64 fingerprint, so tokens issued before bindings existed name it), app = app id,
 *   gen = the binding's token generation (bumped to revoke), iat, exp, jti.
 * This module checks the cryptography and the claims; whether the app and the device still
 * exist (and the generation still matches) is the service's part.
 */
export const deviceTokenIssuer = 'passgate';
export const deviceTokenAudience = 'passgate:v1';
const algorithm = 'HS256';

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
   * The keyring's keys imported once as WebCrypto HMAC keys, by kid: handing jose the raw bytes
   * makes it import the key again on every sign and verify (a hot path: every /v1 request).
   */
  private readonly imported = new Map<string, Promise<webcrypto.CryptoKey>>();

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

  /** The claims of a genuine, unexpired token; throws DeviceTokenError otherwise. */
  async verify(token: string): Promise<DeviceTokenClaims> {
    // Three base64url parts and nothing else; anything longer than a few KB is not ours.
    if (token.length > 4096 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new DeviceTokenError('malformed');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        (header) => {
          if (header.kid === undefined || !this.keys.find(header.kid)) throw new DeviceTokenError('invalid');
          return this.cryptoKey(header.kid);
        },
        {
          algorithms: [algorithm],
          issuer: deviceTokenIssuer,
          audience: deviceTokenAudience,
          currentDate: new Date(this.clock.now()),
          requiredClaims: ['sub', 'iat', 'exp', 'jti'],
        },
      ));
    } catch (error) {
      if (error instanceof DeviceTokenError) throw error;
      if (error instanceof errors.JWTExpired) throw new DeviceTokenError('expired');
      throw new DeviceTokenError('invalid');
    }
    const { app, gen, sub, jti, iat, exp } = payload;
    if (typeof app !== 'string' || typeof sub !== 'string' || typeof jti !== 'string') throw new DeviceTokenError('invalid');
    if (typeof gen !== 'number' || !Number.isSafeInteger(gen) || gen < 0) throw new DeviceTokenError('invalid');
    return { app, binding: sub, generation: gen, jti, issuedAt: iat as number, expiresAt: exp as number };
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
