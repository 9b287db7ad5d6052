import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_FILE_MODE, ensurePrivateDataDir, tightenDataFiles } from './data-files.js';

/**
 * passgate's keys: `kid:base64(32 random bytes)[:verify]` entries, comma-separated. The first entry
 * WITHOUT `:verify` is active: it signs and seals. Every entry verifies and unseals; a `:verify`
 * entry never signs or seals. Each purpose (store encryption, device-token signing, …) uses its
 * own key derived with HKDF, so one keyring serves all of them and a leaked derived key exposes
 * only its purpose.
 *
 * Rotation is two rollouts (README "Keys"), so that no replica ever meets a token or value signed
 * or sealed with a key it lacks: (1) add `new:…:verify` on every replica; (2) promote it
 * (`new:…,old:…:verify`): new data is sealed/signed with it, old data still opens/verifies and is
 * re-sealed on its next read. Drop the old entry once nothing needs it (the longest token lifetime).
 */
export interface KeyEntry {
  id: string;
  key: Buffer;
  /** Verifies and unseals only (`kid:base64:verify`); never signs or seals. */
  verifyOnly: boolean;
}

const ENTRY = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/_-]+={0,2})(:verify)?$/;

function parseEntries(text: string): KeyEntry[] | string {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) return 'expected at least one key: kid:base64(32 bytes)[:verify][,kid:…]';
  const entries: KeyEntry[] = [];
  for (const [index, part] of parts.entries()) {
    const match = ENTRY.exec(part);
    // Never echo the entry: it is key material.
    if (!match?.[1] || !match[2]) return `entry ${index + 1} is not kid:base64 or kid:base64:verify (kid of letters, digits, _ or -)`;
    const key = Buffer.from(match[2], match[2].includes('-') || match[2].includes('_') ? 'base64url' : 'base64');
    if (key.length !== 32) return `entry ${index + 1} (kid ${match[1]}) decodes to ${key.length} bytes; expected 32`;
    if (entries.some((e) => e.id === match[1])) return `kid ${match[1]} appears twice`;
    entries.push({ id: match[1], key, verifyOnly: match[3] !== undefined });
  }
  if (entries.every((e) => e.verifyOnly)) return 'every key is :verify; the first key without :verify signs and seals, so at least one is needed';
  return entries;
}

/** Why a keyring text is unusable, or undefined when it is fine (used by config validation). */
export function keyringProblem(text: string): string | undefined {
  const parsed = parseEntries(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** A fresh one-entry keyring text, e.g. for `passgate keys generate` or the embedded default. */
export function generateKeyringText(id = `k${Date.now().toString(36)}`): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

export class Keyring {
  /** The signing/sealing entry: the first without `:verify` (parseEntries guarantees one). */
  readonly active: KeyEntry;

  private constructor(private readonly entries: KeyEntry[]) {
    this.active = entries.find((e) => !e.verifyOnly) as KeyEntry;
  }

  static parse(text: string): Keyring {
    const parsed = parseEntries(text);
    if (typeof parsed === 'string') throw new TypeError(`invalid keyring: ${parsed}`);
    return new Keyring(parsed);
  }

  find(id: string): KeyEntry | undefined {
    return this.entries.find((e) => e.id === id);
  }

  /** The same ids and flags, each key replaced by HKDF-SHA256(key, info = purpose). */
  derive(purpose: string): Keyring {
    return new Keyring(
      this.entries.map(({ id, key, verifyOnly }) => ({ id, key: Buffer.from(hkdfSync('sha256', key, 'passgate', `passgate:${purpose}`, 32)), verifyOnly })),
    );
  }

  ids(): string[] {
    return this.entries.map((e) => e.id);
  }
}

/** Thrown when a sealed value cannot be opened: unknown key id, tampering, or a wrong binding. */
export class SealError extends Error {
  override readonly name = 'SealError';
}

const VERSION = 'v1';

/**
 * AES-256-GCM envelope for secrets at rest: `v1.<kid>.<iv>.<ciphertext>.<tag>` (base64url).
 * `binding` is authenticated but not stored (AAD): a value sealed for one record key cannot be
 * copied under another.
 */
export class SealedBox {
  constructor(private readonly keys: Keyring) {}

  seal(plaintext: string, binding: string): string {
    const { id, key } = this.keys.active;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(binding, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, id, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /**
   * Without decrypting: whether `sealed` has the sealed shape and a key of this keyring, and whether
   * that key is an older one (so the caller re-seals it). Throws SealError like open() for the first two.
   */
  inspect(sealed: string): { stale: boolean } {
    return { stale: this.parse(sealed).id !== this.keys.active.id };
  }

  /** The plaintext, and whether it was sealed with an older key (so the caller re-seals it). */
  open(sealed: string, binding: string): { plaintext: string; stale: boolean } {
    const { id, iv, ciphertext, tag, entry } = this.parse(sealed);
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(binding, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      const plaintext = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
      return { plaintext, stale: id !== this.keys.active.id };
    } catch {
      throw new SealError('sealed value failed authentication (tampered, or bound to another record)');
    }
  }

  private parse(sealed: string) {
    const [version, id, iv, ciphertext, tag, ...rest] = sealed.split('.');
    if (version !== VERSION || !id || !iv || ciphertext === undefined || !tag || rest.length > 0) throw new SealError('not a sealed value');
    const entry = this.keys.find(id);
    if (!entry) throw new SealError(`sealed with key ${id}, which is not in the keyring`);
    return { id, iv, ciphertext, tag, entry };
  }
}

/**
 * The embedded store's keyring when PASSGATE_KEYS is not set: generated once into
 * `<dataDir>/keyring` (mode 0600, a looser existing one is tightened; the directory 0700) and reused, so credentials sealed before a restart still open.
 * `created` tells the caller to warn: production sets PASSGATE_KEYS from a secret.
 */
export function loadOrCreateLocalKeyring(dataDir: string): { keyring: Keyring; file: string; created: boolean } {
  const file = join(dataDir, 'keyring');
  ensurePrivateDataDir(dataDir);
  let created = false;
  try {
    // 'wx' fails when the file exists, so two processes starting together keep one keyring.
    writeFileSync(file, `${generateKeyringText()}\n`, { flag: 'wx', mode: DATA_FILE_MODE });
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // A keyring written by an older version, or copied in, may be readable by others.
    tightenDataFiles(dataDir, ['keyring']);
  }
  return { keyring: Keyring.parse(readFileSync(file, 'utf8').trim()), file, created };
}
