import type { KeyObject } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { userMetadataPrivateKey, type KeySlot, type UserMetadataConfig } from '../config/user-metadata.js';
import { setNewest } from '../infra/bounded-map.js';
import type { Logger } from '../infra/logger.js';
import { decryptRsaPkcs1v15 } from '../infra/rsa-pkcs1.js';

/**
 * What apps see of a profile's user metadata (user-metadata.md). The upstream sends each attribute
 * as `{value, state}`; `state: "enc"` values are encrypted for the programmer. The format, from the
 * REST API's user-metadata page (legacy/rest-api-v1/apis/user-metadata.md): "perform a Base64
 * decode on the metadata then apply a RSA decryption on the resulting value, using its own
 * private key (Adobe encrypts the metadata on the server using the Programmer's public
 * certificate)" — RSA without a named padding, i.e. RSAES-PKCS1-v1_5 (Java's "RSA" cipher). The
 * plaintext is UTF-8: the value itself, or its JSON when the value is a list or a map ("When
 * encrypted, the representation of the zip key will be a String instead of an Array").
 *
 * Profiles stay encrypted in the store (and in logs); values are decrypted only here, on the way
 * out, so a key rotation applies to cached profiles too. Decrypted values live only in this
 * replica's memory (a bounded memo: one RSA operation per ciphertext, not per request).
 */

/** Ciphertexts whose plaintext this replica remembers (the oldest are forgotten first). */
const MAX_MEMO = 10_000;

/** The decrypt outcomes: which key opened it, or why the attribute was left out. */
export const decryptOutcomes = ['primary', 'backup', 'failed', 'no_key'] as const;
export type DecryptOutcome = (typeof decryptOutcomes)[number];

export interface UserMetadataMetrics {
  decryptions: Counter<'outcome'>;
  certificateExpiry: Gauge<'slot'>;
}

export function createUserMetadataMetrics(registry: Registry): UserMetadataMetrics {
  const decryptions = new Counter({
    name: 'passgate_user_metadata_decryptions_total',
    help: 'Encrypted profile attributes by outcome: decrypted with the primary or the backup key, failed (left out), no_key (none configured, left out)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of decryptOutcomes) decryptions.inc({ outcome }, 0);
  return {
    decryptions,
    certificateExpiry: new Gauge({
      name: 'passgate_user_metadata_certificate_expiry_timestamp_seconds',
      help: 'When the certificate shared with Adobe for encrypted user metadata expires (configured certificates only), by slot (primary, backup)',
      labelNames: ['slot'],
      registers: [registry],
    }),
  };
}

/** `{value, state}` as the upstream sends an attribute; anything else is taken as a plain value. */
interface Attribute {
  value: unknown;
  state: string;
}

const isAttribute = (raw: unknown): raw is Attribute => typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'value' in raw && typeof (raw as { state?: unknown }).state === 'string';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Base64 (standard or URL alphabet, line breaks allowed) → bytes; undefined when it is not base64. */
function base64Bytes(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** The decrypted text as the attribute's value: a list or map comes as its JSON, anything else as text. */
function valueOf(text: string): unknown {
  if (!/^\s*[[{"]/.test(text)) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export interface UserMetadataDeps {
  /** Absent: the plain attributes are shown and the encrypted ones left out (no keys to open them). */
  config?: UserMetadataConfig;
  logger: Logger;
  metrics: UserMetadataMetrics;
}

export type UserMetadata = ReturnType<typeof createUserMetadata>;

export function createUserMetadata(deps: UserMetadataDeps) {
  const logger = deps.logger.child({ component: 'user-metadata' });
  const { metrics } = deps;
  const exposed = deps.config ? new Set(deps.config.exposed) : undefined;
  const keys: { slot: KeySlot; key: KeyObject }[] = (deps.config?.keys ?? []).map((k) => ({ slot: k.slot, key: userMetadataPrivateKey(k) }));
  for (const k of deps.config?.keys ?? []) {
    if (!k.certificate) continue;
    metrics.certificateExpiry.set({ slot: k.slot }, Math.floor(k.certificate.validTo.getTime() / 1000));
    // Still usable for decryption, but Adobe encrypts only for a valid certificate: say so at start, not only in the metric.
    if (k.certificate.validTo.getTime() <= Date.now()) {
      logger.warn({ slot: k.slot, validTo: k.certificate.validTo.toISOString() }, 'user metadata: the configured certificate has expired; share a new one with Adobe and rotate (README "User metadata")');
    }
  }
  const memo = new Map<string, unknown>();

  /** The value under the first key (primary, then backup) that opens it into UTF-8 text. */
  function decrypt(ciphertext: Buffer): { slot: KeySlot; value: unknown } | undefined {
    for (const { slot, key } of keys) {
      const plain = decryptRsaPkcs1v15(key, ciphertext);
      if (!plain) continue;
      let text: string;
      try {
        // A ciphertext for the other key decodes "validly" once in ~65,000 tries: its bytes are then noise, not UTF-8.
        text = utf8.decode(plain);
      } catch {
        continue;
      }
      return { slot, value: valueOf(text) };
    }
    return undefined;
  }

  /** An `enc` attribute's value decrypted; undefined (counted, logged without the value) when it cannot be. */
  function decrypted(name: string, ciphertext: unknown): { found: true; value: unknown } | { found: false } {
    if (typeof ciphertext === 'string' && memo.has(ciphertext)) return { found: true, value: memo.get(ciphertext) };
    if (keys.length === 0) {
      metrics.decryptions.inc({ outcome: 'no_key' });
      logger.warn({ attribute: name }, 'user metadata: an encrypted attribute is left out (no user_metadata.keys configured)');
      return { found: false };
    }
    const bytes = typeof ciphertext === 'string' ? base64Bytes(ciphertext) : undefined;
    const opened = bytes ? decrypt(bytes) : undefined;
    if (!opened) {
      metrics.decryptions.inc({ outcome: 'failed' });
      logger.warn({ attribute: name }, 'user metadata: an encrypted attribute opens with neither configured key; left out (was it encrypted for another certificate?)');
      return { found: false };
    }
    metrics.decryptions.inc({ outcome: opened.slot });
    setNewest(memo, ciphertext as string, opened.value, MAX_MEMO);
    return { found: true, value: opened.value };
  }

  return {
    /**
     * A profile's attributes as apps see them: only the exposed ones (every plain one when
     * `user_metadata` is not configured), encrypted ones decrypted to `{value, state: "plain"}` or
     * left out when they cannot be.
     */
    forApp(attributes: Record<string, unknown>): Record<string, unknown> {
      const shown: Record<string, unknown> = {};
      for (const [name, raw] of Object.entries(attributes)) {
        const encrypted = isAttribute(raw) && raw.state === 'enc';
        if (exposed ? !exposed.has(name) : encrypted) continue;
        if (!encrypted) {
          shown[name] = raw;
          continue;
        }
        const opened = decrypted(name, raw.value);
        if (opened.found) shown[name] = { value: opened.value, state: 'plain' };
      }
      return shown;
    },
  };
}
