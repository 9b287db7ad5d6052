import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ByteReader } from './byte-reader.js';

/**
 * passgate's DRM file format, the "envelope" (SPEC §5; the format, its reasoning and a test vector
 * are in docs/envelope.md). A header naming the key, the file and its label, authenticated by an
 * HMAC under a per-file key; then the plaintext in fixed-size chunks, each sealed by AES-256-GCM
 * under a per-file key with the chunk's index and a last-chunk mark in its nonce (STREAM), so
 * that cutting, reordering, splicing or extending the file fails authentication. Both directions
 * stream: about two chunks are held in memory whatever the file's size.
 */

export const ENVELOPE_MAGIC = Buffer.from('PGDRM', 'latin1');
export const ENVELOPE_VERSION = 1;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
/** Small chunks only cost overhead (16 bytes each); 64 keeps the documented test vector short. */
export const MIN_CHUNK_SIZE = 64;
/** A reader holds about two chunks: this bounds what a file can make it allocate. */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
export const MAX_KEY_ID_BYTES = 64;
export const MAX_FILE_ID_BYTES = 1024;
export const MAX_LABEL_BYTES = 64;

const KEY_BYTES = 32;
const SALT_BYTES = 32;
const HEADER_TAG_BYTES = 32;
const GCM_TAG_BYTES = 16;
/** The nonce's counter is 32 bits. */
const MAX_CHUNKS = 2 ** 32;
const HKDF_INFO = Buffer.from('passgate envelope v1 chunk-key header-key', 'latin1');

/** The longest header there can be (every field at its bound): enough to read to know a file. */
export const MAX_HEADER_BYTES = ENVELOPE_MAGIC.length + 1 + 4 + 1 + MAX_KEY_ID_BYTES + 2 + MAX_FILE_ID_BYTES + 1 + MAX_LABEL_BYTES + SALT_BYTES + HEADER_TAG_BYTES;

export interface EnvelopeHeader {
  version: number;
  keyId: string;
  fileId: string;
  label: string;
  /** Plaintext bytes per chunk (the last chunk may hold fewer). */
  chunkSize: number;
}

/**
 * - `not_envelope`: the bytes do not start with the magic (a plain file, garbage, nothing);
 * - `unsupported_version`: an envelope of a version this code does not read;
 * - `unknown_key`: the header names a key id that keyFor does not know;
 * - `corrupt`: anything else (a malformed or cut header, a wrong key, a tampered, cut, reordered,
 *   spliced or extended body).
 */
export type EnvelopeFailure = 'not_envelope' | 'corrupt' | 'unknown_key' | 'unsupported_version';

export class EnvelopeError extends Error {
  constructor(
    readonly reason: EnvelopeFailure,
    message: string,
  ) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

export interface ProtectOptions {
  keyId: string;
  /** 32 bytes (config: envelopeKey(secret)). */
  key: Buffer;
  fileId: string;
  label: string;
  chunkSize?: number;
  /** The source of the per-file salt; tests pass fixed bytes for the vector, nothing else should. */
  random?: (n: number) => Buffer;
}

const FORBIDDEN_CHARACTERS = /[\p{Cc}\p{Cs}]/u;

/** Why `text` cannot be an envelope text field of at most `maxBytes` (undefined: it can). */
function textProblem(text: unknown, maxBytes: number): string | undefined {
  if (typeof text !== 'string') return 'expected a string';
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes < 1 || bytes > maxBytes) return `expected 1 to ${maxBytes} bytes of UTF-8, got ${bytes}`;
  // Control characters would reach logs and audit lines; lone surrogates have no UTF-8 form.
  if (FORBIDDEN_CHARACTERS.test(text)) return 'expected no control characters (nor lone surrogates)';
  return undefined;
}

/** Why `fileId` is not a valid file id (1–1024 bytes of UTF-8, no control characters), or undefined. */
export function fileIdProblem(fileId: unknown): string | undefined {
  return textProblem(fileId, MAX_FILE_ID_BYTES);
}

/** Why `keyId` cannot name an envelope key (1–64 bytes of UTF-8, no control characters), or undefined. */
export function keyIdProblem(keyId: unknown): string | undefined {
  return textProblem(keyId, MAX_KEY_ID_BYTES);
}

/** Why `label` cannot be an envelope label (1–64 bytes of UTF-8, no control characters), or undefined. */
export function labelProblem(label: unknown): string | undefined {
  return textProblem(label, MAX_LABEL_BYTES);
}

interface FileKeys {
  /** AES-256-GCM key of this file's chunks. */
  chunkKey: Buffer;
  /** HMAC-SHA256 key of this file's header. */
  headerKey: Buffer;
}

/** HKDF-SHA256 of the configured key with the file's random salt: a key pair no other file shares. */
function fileKeys(key: Buffer, salt: Buffer): FileKeys {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) throw new TypeError(`an envelope key is ${KEY_BYTES} bytes`);
  const okm = Buffer.from(hkdfSync('sha256', key, salt, HKDF_INFO, 2 * KEY_BYTES));
  return { chunkKey: okm.subarray(0, KEY_BYTES), headerKey: okm.subarray(KEY_BYTES) };
}

function headerTag(keys: FileKeys, headerBody: Buffer): Buffer {
  return createHmac('sha256', keys.headerKey).update(headerBody).digest();
}

/** STREAM (Hoang et al. 2015): 7 zero bytes, the chunk index (uint32 BE), 1 if last else 0. */
function chunkNonce(index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(index, 7);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function sealChunk(keys: FileKeys, tag: Buffer, index: number, last: boolean, plaintext: Buffer): [Buffer, Buffer] {
  const cipher = createCipheriv('aes-256-gcm', keys.chunkKey, chunkNonce(index, last), { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(tag);
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  return [ciphertext, cipher.getAuthTag()];
}

/** The chunk's plaintext once its tag checked; EnvelopeError('corrupt') if it does not. */
function openChunk(keys: FileKeys, tag: Buffer, index: number, last: boolean, record: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', keys.chunkKey, chunkNonce(index, last), { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(tag);
  decipher.setAuthTag(record.subarray(record.length - GCM_TAG_BYTES));
  const plaintext = decipher.update(record.subarray(0, record.length - GCM_TAG_BYTES));
  try {
    decipher.final();
  } catch {
    throw new EnvelopeError('corrupt', `chunk ${index} failed authentication (cut, reordered, spliced, extended or altered)`);
  }
  return plaintext;
}

function encodeHeaderBody(header: EnvelopeHeader, salt: Buffer): Buffer {
  const keyId = Buffer.from(header.keyId, 'utf8');
  const fileId = Buffer.from(header.fileId, 'utf8');
  const label = Buffer.from(header.label, 'utf8');
  const fixed = Buffer.alloc(ENVELOPE_MAGIC.length + 1 + 4);
  ENVELOPE_MAGIC.copy(fixed);
  fixed[ENVELOPE_MAGIC.length] = header.version;
  fixed.writeUInt32BE(header.chunkSize, ENVELOPE_MAGIC.length + 1);
  const fileIdLength = Buffer.alloc(2);
  fileIdLength.writeUInt16BE(fileId.length);
  return Buffer.concat([fixed, Buffer.of(keyId.length), keyId, fileIdLength, fileId, Buffer.of(label.length), label, salt]);
}

interface ParsedHeader {
  header: EnvelopeHeader;
  /** Every header byte before the tag: what the tag authenticates. */
  body: Buffer;
  salt: Buffer;
  tag: Buffer;
}

const corruptHeader = (what: string) => new EnvelopeError('corrupt', `malformed envelope header: ${what}`);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads and checks the header's shape (not its tag): the only part of a file read before its key is known. */
async function parseHeader(reader: ByteReader): Promise<ParsedHeader> {
  const read: Buffer[] = [];
  const need = async (n: number, what: string): Promise<Buffer> => {
    const bytes = await reader.read(n);
    if (bytes.length < n) throw corruptHeader(`cut short in the ${what}`);
    read.push(bytes);
    return bytes;
  };
  const start = await reader.read(ENVELOPE_MAGIC.length + 1);
  if (start.length < ENVELOPE_MAGIC.length || !start.subarray(0, ENVELOPE_MAGIC.length).equals(ENVELOPE_MAGIC)) {
    throw new EnvelopeError('not_envelope', 'not a passgate envelope (no PGDRM magic)');
  }
  if (start.length <= ENVELOPE_MAGIC.length) throw corruptHeader('cut short after the magic');
  read.push(start);
  const version = start[ENVELOPE_MAGIC.length] as number;
  if (version !== ENVELOPE_VERSION) throw new EnvelopeError('unsupported_version', `envelope version ${version} is not supported (this reads version ${ENVELOPE_VERSION})`);
  const chunkSize = (await need(4, 'chunk size')).readUInt32BE(0);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) throw corruptHeader(`chunk size ${chunkSize} outside ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE}`);
  const text = async (lengthBytes: 1 | 2, max: number, what: string): Promise<string> => {
    const lengthField = await need(lengthBytes, `${what} length`);
    const length = lengthBytes === 1 ? lengthField.readUInt8(0) : lengthField.readUInt16BE(0);
    if (length < 1 || length > max) throw corruptHeader(`${what} length ${length} outside 1..${max}`);
    let value: string;
    try {
      value = utf8.decode(await need(length, what));
    } catch (error) {
      if (error instanceof EnvelopeError) throw error;
      throw corruptHeader(`${what} is not UTF-8`);
    }
    if (FORBIDDEN_CHARACTERS.test(value)) throw corruptHeader(`${what} holds control characters`);
    return value;
  };
  const keyId = await text(1, MAX_KEY_ID_BYTES, 'key id');
  const fileId = await text(2, MAX_FILE_ID_BYTES, 'file id');
  const label = await text(1, MAX_LABEL_BYTES, 'label');
  const salt = await need(SALT_BYTES, 'salt');
  const body = Buffer.concat(read);
  const tag = await reader.read(HEADER_TAG_BYTES);
  if (tag.length < HEADER_TAG_BYTES) throw corruptHeader('cut short in the header tag');
  return { header: { version, keyId, fileId, label, chunkSize }, body, salt, tag };
}

/** Encrypts `input` into `output` (both node streams); resolves when output has finished. */
export async function protect(input: Readable, output: Writable, opts: ProtectOptions): Promise<{ plaintextBytes: number; envelopeBytes: number }> {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`protect: chunkSize must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}`);
  }
  for (const [field, problem] of [
    ['keyId', keyIdProblem(opts.keyId)],
    ['fileId', fileIdProblem(opts.fileId)],
    ['label', labelProblem(opts.label)],
  ] as const) {
    if (problem) throw new RangeError(`protect: ${field}: ${problem}`);
  }
  const salt = (opts.random ?? randomBytes)(SALT_BYTES);
  if (!Buffer.isBuffer(salt) || salt.length !== SALT_BYTES) throw new TypeError(`protect: random(${SALT_BYTES}) must return ${SALT_BYTES} bytes`);
  const keys = fileKeys(opts.key, salt);
  const body = encodeHeaderBody({ version: ENVELOPE_VERSION, keyId: opts.keyId, fileId: opts.fileId, label: opts.label, chunkSize }, salt);
  const tag = headerTag(keys, body);

  let plaintextBytes = 0;
  let envelopeBytes = 0;
  await pipeline(
    input,
    async function* seal(source: AsyncIterable<unknown>) {
      envelopeBytes += body.length + tag.length;
      yield body;
      yield tag;
      const reader = new ByteReader(source[Symbol.asyncIterator]());
      for (let index = 0; ; index++) {
        if (index >= MAX_CHUNKS) throw new RangeError(`protect: more than ${MAX_CHUNKS} chunks; use a larger chunkSize`);
        const plaintext = await reader.read(chunkSize);
        // A full chunk is the last one only if nothing follows it: peek one piece ahead.
        const last = plaintext.length < chunkSize || (await reader.atEnd());
        const [ciphertext, chunkTag] = sealChunk(keys, tag, index, last, plaintext);
        plaintextBytes += plaintext.length;
        envelopeBytes += ciphertext.length + chunkTag.length;
        yield ciphertext;
        yield chunkTag;
        if (last) return;
      }
    },
    output,
  );
  return { plaintextBytes, envelopeBytes };
}

/**
 * Reads just the header (for "is this an envelope, which label/key"), consuming what it needs of
 * `input` and then destroying it. It does NOT authenticate: anyone can write a header naming any
 * label. Only unprotect's answer is to be trusted. Rejects EnvelopeError('not_envelope' |
 * 'corrupt' | 'unsupported_version'); the stream's own errors as they are.
 */
export async function readHeader(input: Readable): Promise<EnvelopeHeader> {
  const iterator = input[Symbol.asyncIterator]();
  try {
    return (await parseHeader(new ByteReader(iterator))).header;
  } finally {
    await iterator.return?.();
  }
}

/** readHeader of a file, reading at most MAX_HEADER_BYTES of it. Not authenticated either. */
export async function readHeaderFromFile(path: string): Promise<EnvelopeHeader> {
  return (await parseHeaderOfFile(path)).header;
}

/** The header of a file, reading at most MAX_HEADER_BYTES of it. */
async function parseHeaderOfFile(path: string): Promise<ParsedHeader> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(MAX_HEADER_BYTES);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return await parseHeader(ByteReader.of(buffer.subarray(0, filled)));
  } finally {
    await handle.close();
  }
}

/**
 * readHeaderFromFile, and the header's tag checked under its key: the label, file id and key id
 * are then the ones the file was protected with (the chunks are checked only by unprotect). Rejects
 * EnvelopeError: 'not_envelope', 'unsupported_version', 'unknown_key', or 'corrupt' (malformed,
 * or altered, or made with another key under this key id).
 */
export async function authenticateHeaderFromFile(path: string, keyFor: (keyId: string) => Buffer | undefined): Promise<EnvelopeHeader> {
  const parsed = await parseHeaderOfFile(path);
  checkHeaderTag(parsed, keyFor);
  return parsed.header;
}

/** The header's tag under the key its key id names; the file's keys. */
function checkHeaderTag(parsed: ParsedHeader, keyFor: (keyId: string) => Buffer | undefined): FileKeys {
  const key = keyFor(parsed.header.keyId);
  if (key === undefined) throw new EnvelopeError('unknown_key', `envelope key ${JSON.stringify(parsed.header.keyId)} is not configured`);
  const keys = fileKeys(key, parsed.salt);
  if (!timingSafeEqual(headerTag(keys, parsed.body), parsed.tag)) {
    throw new EnvelopeError('corrupt', 'envelope header failed authentication (altered, or not made with this key)');
  }
  return keys;
}

/**
 * Decrypts and authenticates; writes plaintext chunk by chunk only after each chunk's tag checked,
 * and nothing before the header's tag checked. Rejects EnvelopeError on any failure of the envelope
 * ('unknown_key' when keyFor returns undefined); the streams' own errors as they are. On failure
 * both streams are destroyed and `output` may hold the chunks that checked before it: the caller
 * discards partial output.
 */
export async function unprotect(input: Readable, output: Writable, keyFor: (keyId: string) => Buffer | undefined): Promise<{ header: EnvelopeHeader; plaintextBytes: number }> {
  let header: EnvelopeHeader | undefined;
  let plaintextBytes = 0;
  await pipeline(
    input,
    async function* decrypt(source: AsyncIterable<unknown>) {
      const reader = new ByteReader(source[Symbol.asyncIterator]());
      const parsed = await parseHeader(reader);
      const keys = checkHeaderTag(parsed, keyFor);
      const recordSize = parsed.header.chunkSize + GCM_TAG_BYTES;
      for (let index = 0; ; index++) {
        if (index >= MAX_CHUNKS) throw new EnvelopeError('corrupt', `more than ${MAX_CHUNKS} chunks`);
        const record = await reader.read(recordSize);
        // The file ends after the last chunk; a short record can only be the last one.
        const last = record.length < recordSize || (await reader.atEnd());
        if (record.length < GCM_TAG_BYTES) throw new EnvelopeError('corrupt', `envelope cut short at chunk ${index}`);
        const plaintext = openChunk(keys, parsed.tag, index, last, record);
        plaintextBytes += plaintext.length;
        if (plaintext.length > 0) yield plaintext;
        if (last) break;
      }
      header = parsed.header;
    },
    output,
  );
  if (!header) throw new EnvelopeError('corrupt', 'envelope ended before its last chunk');
  return { header, plaintextBytes };
}
