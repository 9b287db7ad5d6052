import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { secretRef, type SecretRef } from './secret-ref.js';
import type { Secret } from './secret.js';

/**
 * The partner agent's part of the YAML file (SPEC §5): the partners allowed to call /agent, the
 * envelope keys (protect with the first, decrypt with any), which principals may open which
 * labels, and the limits of the decrypt jobs.
 */

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { error: 'expected an id of letters, digits, _, . and - (at most 64)' });
/** An envelope label: what entitlements grant. Printable, no spaces (it is written into every envelope header). */
export const labelSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, { error: 'expected a label of letters, digits, _, ., : and - (at most 64)' });
/** `user@corp.example` exactly, or every principal of a domain: `*@corp.example`. */
const principalPattern = z
  .string()
  .min(1)
  .max(256)
  .refine((value) => !/\s/.test(value) && (!value.includes('*') || /^\*@[^*@]+$/.test(value)), {
    error: "expected a principal, or '*@domain' for every principal of a domain",
  });

export const agentSchema = z
  .strictObject({
    /** Partner id → its bearer secret (`Authorization: Bearer <secret>` on every /agent call). */
    partners: z.record(id, z.strictObject({ secret: secretRef })).refine((p) => Object.keys(p).length > 0, { error: 'expected at least one partner' }),
    /** Envelope keys, newest first: protect uses the first; decrypt finds a key by the id in the header. */
    keys: z.array(z.strictObject({ id, secret: secretRef })).min(1, { error: 'expected at least one key' }),
    /** Principals (exact or `*@domain`) → the labels they may open. */
    entitlements: z.array(z.strictObject({ principals: z.array(principalPattern).min(1), labels: z.array(labelSchema).min(1) })).default([]),
    /** How long a Kep-AgentSession (DSID) maps to its principal after authenticate. */
    session_ttl_seconds: z.number().int().min(60).max(30 * 86_400).default(86_400),
    /** Largest file part a decrypt accepts (413 past it). */
    max_upload_bytes: z.number().int().min(1).max(64 * 1024 ** 3).default(512 * 1024 ** 2),
    /** Where uploads wait for their job (default `<PASSGATE_DATA_DIR>/agent-spool`). Relative paths are from the data dir. */
    spool_dir: z.string().min(1).optional(),
    jobs: z
      .strictObject({
        /** Decrypt jobs one replica runs at once. */
        concurrency: z.number().int().min(1).max(64).default(2),
        /** A running job's lease; renewed while it runs, so a replica that dies gives its jobs back after this. */
        lease_ms: z.number().int().min(1_000).max(600_000).default(30_000),
        /** Adapter callback retries: exponential from this… */
        retry_initial_ms: z.number().int().min(10).max(60_000).default(500),
        /** …capped at this; retried until the adapter answers 2xx. */
        retry_max_ms: z.number().int().min(100).max(3_600_000).default(60_000),
        /** A finished job's record is kept this long for GET /agent/v1/drm/jobs/{jobId}. */
        retention_seconds: z.number().int().min(60).max(90 * 86_400).default(7 * 86_400),
      })
      .default({ concurrency: 2, lease_ms: 30_000, retry_initial_ms: 500, retry_max_ms: 60_000, retention_seconds: 7 * 86_400 }),
  })
  .optional();
export type AgentFile = z.output<typeof agentSchema>;

export interface AgentConfig {
  /** Partner id → secret (compare with Secret.equals: constant time). */
  partners: Array<{ id: string; secret: Secret }>;
  /** Newest first; envelopeKey(secret) gives the 32 bytes (kept a Secret so the config never prints them). */
  keys: Array<{ id: string; secret: Secret }>;
  entitlements: Array<{ principals: string[]; labels: string[] }>;
  sessionTtlMs: number;
  maxUploadBytes: number;
  /** Absolute path. */
  spoolDir: string;
  jobs: { concurrency: number; leaseMs: number; retryInitialMs: number; retryMaxMs: number; retentionMs: number };
}

type Resolve = (ref: SecretRef, path: string) => Secret | undefined;

/** A key secret: 64 hex characters, or `base64:` and the base64 of 32 bytes. */
function keyBytes(text: string): Buffer | undefined {
  text = text.trim();
  if (/^[0-9A-Fa-f]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (text.startsWith('base64:')) {
    const bytes = Buffer.from(text.slice(7), 'base64');
    if (bytes.length === 32 && bytes.toString('base64') === text.slice(7)) return bytes;
  }
  return undefined;
}

/** The 32 bytes of an envelope key that resolveAgentConfig accepted. */
export function envelopeKey(secret: Secret): Buffer {
  const key = keyBytes(secret.reveal());
  if (!key) throw new TypeError('envelopeKey: not a 32-byte key (hex or base64:)');
  return key;
}

/** The `agent` section resolved (secrets read, keys decoded); undefined when the file has none (/agent is then 404). */
export function resolveAgentConfig(agent: AgentFile, dataDir: string, resolveSecret: Resolve, problems: string[]): AgentConfig | undefined {
  if (!agent) return undefined;
  const partners: AgentConfig['partners'] = [];
  for (const [partnerId, partner] of Object.entries(agent.partners)) {
    const secret = resolveSecret(partner.secret, `agent.partners.${partnerId}.secret`);
    if (secret && secret.reveal().length < 16) problems.push(`agent.partners.${partnerId}.secret: expected at least 16 characters`);
    else if (secret) partners.push({ id: partnerId, secret });
  }
  const seen = new Set<string>();
  const keys: AgentConfig['keys'] = [];
  agent.keys.forEach((entry, i) => {
    if (seen.has(entry.id)) problems.push(`agent.keys[${i}].id: ${JSON.stringify(entry.id)} is used twice`);
    seen.add(entry.id);
    const secret = resolveSecret(entry.secret, `agent.keys[${i}].secret`);
    if (!secret) return;
    if (!keyBytes(secret.reveal())) problems.push(`agent.keys[${i}].secret: expected 32 bytes as 64 hex characters or base64:<base64>`);
    else keys.push({ id: entry.id, secret });
  });
  if (agent.jobs.retry_max_ms < agent.jobs.retry_initial_ms) problems.push('agent.jobs.retry_max_ms: expected at least retry_initial_ms');
  if (partners.length !== Object.keys(agent.partners).length || keys.length !== agent.keys.length) return undefined;
  const spool = agent.spool_dir ?? 'agent-spool';
  return {
    partners,
    keys,
    entitlements: agent.entitlements.map((e) => ({ principals: e.principals, labels: e.labels })),
    sessionTtlMs: agent.session_ttl_seconds * 1000,
    maxUploadBytes: agent.max_upload_bytes,
    spoolDir: isAbsolute(spool) ? spool : resolve(join(dataDir, spool)),
    jobs: {
      concurrency: agent.jobs.concurrency,
      leaseMs: agent.jobs.lease_ms,
      retryInitialMs: agent.jobs.retry_initial_ms,
      retryMaxMs: agent.jobs.retry_max_ms,
      retentionMs: agent.jobs.retention_seconds * 1000,
    },
  };
}
