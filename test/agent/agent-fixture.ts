import type { ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { openAsBlob } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { protect } from '../../src/agent/envelope.js';
import { tempDir } from '../helpers/with-app.js';

/** Two envelope keys: `new` protects, `old` is still accepted (rotation). */
export const KEYS = {
  new: { id: 'k-2026', hex: randomBytes(32).toString('hex') },
  old: { id: 'k-2025', hex: randomBytes(32).toString('hex') },
};
export const PARTNER_SECRET = `partner-secret-${randomBytes(8).toString('hex')}`;
export const OTHER_PARTNER_SECRET = `other-secret-${randomBytes(8).toString('hex')}`;

/** The `agent` part of a test config file: `*@corp.example` may open `internal`; `boss@corp.example` also `secret`. */
export function agentFile(overrides: Record<string, unknown> = {}, jobs: Record<string, unknown> = {}) {
  return {
    partners: { demo: { secret: PARTNER_SECRET }, other: { secret: OTHER_PARTNER_SECRET } },
    keys: [
      { id: KEYS.new.id, secret: KEYS.new.hex },
      { id: KEYS.old.id, secret: KEYS.old.hex },
    ],
    entitlements: [
      { principals: ['*@corp.example'], labels: ['internal'] },
      { principals: ['boss@corp.example'], labels: ['secret'] },
    ],
    jobs: { concurrency: 2, lease_ms: 2_000, retry_initial_ms: 100, retry_max_ms: 400, ...jobs },
    ...overrides,
  };
}

export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A file of `size` pseudo-random bytes written in 1 MiB pieces; its sha256. */
export async function randomFile(t: ExecutionContext, size: number, name = 'plain.bin'): Promise<{ path: string; sha256: string }> {
  const dir = await tempDir(t);
  const path = join(dir, name);
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const piece = randomBytes(Math.min(left, 1 << 20));
    hash.update(piece);
    if (!out.write(piece)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    left -= piece.length;
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return { path, sha256: hash.digest('hex') };
}

/** `plain` protected under `key` (default the new key) as file `fileId` with `label`; the envelope's path. */
export async function protectFile(t: ExecutionContext, plain: string | Buffer, fileId: string, label: string, key = KEYS.new): Promise<string> {
  const dir = await tempDir(t);
  const out = join(dir, 'file.pgdrm');
  const input = typeof plain === 'string' ? createReadStream(plain) : Readable.from([plain]);
  await protect(input, createWriteStream(out), { keyId: key.id, key: Buffer.from(key.hex, 'hex'), fileId, label });
  return out;
}

export async function bytesFile(t: ExecutionContext, bytes: Buffer): Promise<string> {
  const path = join(await tempDir(t), 'bytes.bin');
  await writeFile(path, bytes);
  return path;
}

export const newSession = () => `dsid-${randomBytes(12).toString('base64url')}`;

export interface AgentClient {
  authenticate(dsid: string | undefined, body: unknown, secret?: string): Promise<Response>;
  decrypt(dsid: string | undefined, fields: { fileId?: string; file?: string }, secret?: string): Promise<Response>;
  job(jobId: string, secret?: string): Promise<Response>;
}

export function agentClient(url: string): AgentClient {
  const headers = (dsid: string | undefined, secret: string) => ({ authorization: `Bearer ${secret}`, ...(dsid !== undefined ? { 'kep-agentsession': dsid } : {}) });
  return {
    authenticate: (dsid, body, secret = PARTNER_SECRET) =>
      fetch(`${url}/agent/v1/drm/authenticate`, { method: 'POST', headers: { ...headers(dsid, secret), 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    decrypt: async (dsid, fields, secret = PARTNER_SECRET) => {
      const form = new FormData();
      if (fields.fileId !== undefined) form.set('fileId', fields.fileId);
      if (fields.file !== undefined) form.set('file', await openAsBlob(fields.file), 'upload.bin');
      return fetch(`${url}/agent/v1/drm/decrypt`, { method: 'POST', headers: headers(dsid, secret), body: form });
    },
    job: (jobId, secret = PARTNER_SECRET) => fetch(`${url}/agent/v1/drm/jobs/${jobId}`, { headers: { authorization: `Bearer ${secret}` } }),
  };
}

export interface Received {
  kind: 'result' | 'decrypted';
  jobId: string;
  fileId: string;
  sessionId?: string;
  result?: string;
  message?: string;
  sha256?: string;
  size?: number;
  deliveries: number;
}

export async function received(simUrl: string): Promise<Received[]> {
  return (await (await fetch(`${simUrl}/sim/adapter/received`)).json()) as Received[];
}

/** Waits until the adapter holds what `done` asks for (the job's result, and the plaintext on success). */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The adapter's records of one job once it is delivered: the result, and the plaintext for `success`. */
export function delivered(simUrl: string, jobId: string, timeoutMs = 30_000) {
  return waitFor(`job ${jobId} delivered`, async () => {
    const all = (await received(simUrl)).filter((r) => r.jobId === jobId);
    const result = all.find((r) => r.kind === 'result');
    if (!result) return undefined;
    if (result.result === 'success' && !all.some((r) => r.kind === 'decrypted')) return undefined;
    return all;
  }, timeoutMs);
}

export async function jobState(client: AgentClient, jobId: string, state: string): Promise<Record<string, unknown>> {
  return waitFor(`job ${jobId} ${state}`, async () => {
    const body = (await (await client.job(jobId)).json()) as Record<string, unknown>;
    return body.state === state ? body : undefined;
  });
}
