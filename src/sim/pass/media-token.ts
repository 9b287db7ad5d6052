import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/** adobe-pass.md §4.7: `token` of a Permit; timestamps in ms, `serializedToken` Base64 and opaque. */
export interface MediaToken {
  notBefore: number;
  notAfter: number;
  serializedToken: string;
}

export interface MediaTokenInput {
  serviceProvider: string;
  mvpd: string;
  resource: string;
  now: number;
  ttlMs: number;
}

const escapeXml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);

const SIGNED = /^<signatureInfo>([A-Za-z0-9+/=]+)<\/signatureInfo>(<authToken>[\s\S]*<\/authToken>)$/;

/**
 * Mints short media tokens shaped like the upstream's (`<signatureInfo>…</signatureInfo><authToken>…`,
 * Base64 — the documented sample starts `PHNpZ25hdHVyZUluZm8`). Signed with an HMAC key made when the
 * simulator starts. One-time and never cached (§9), so nothing is stored.
 */
export class MediaTokenIssuer {
  readonly #key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.#key = key;
  }

  issue(input: MediaTokenInput): MediaToken {
    const authToken =
      '<authToken>' +
      `<sessionGUID>${randomUUID()}</sessionGUID>` +
      `<requestorID>${escapeXml(input.serviceProvider)}</requestorID>` +
      `<resourceID>${escapeXml(input.resource)}</resourceID>` +
      `<ttl>${input.ttlMs}</ttl>` +
      `<issueTime>${input.now}</issueTime>` +
      `<mvpdId>${escapeXml(input.mvpd)}</mvpdId>` +
      '</authToken>';
    const serialized = `<signatureInfo>${this.#sign(authToken)}</signatureInfo>${authToken}`;
    return { notBefore: input.now, notAfter: input.now + input.ttlMs, serializedToken: Buffer.from(serialized, 'utf8').toString('base64') };
  }

  /** True when the token was minted by this issuer and not altered. */
  verify(serializedToken: string): boolean {
    const match = SIGNED.exec(Buffer.from(serializedToken, 'base64').toString('utf8'));
    if (!match?.[1] || !match[2]) return false;
    const expected = Buffer.from(this.#sign(match[2]));
    const given = Buffer.from(match[1]);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  #sign(authToken: string): string {
    return createHmac('sha256', this.#key).update(authToken, 'utf8').digest('base64');
  }
}
