import type { Keyv } from 'keyv';
import { z } from 'zod';
import { labelSchema } from '../config/agent.js';
import type { Store } from '../infra/store.js';
import { fileIdProblem, keyIdProblem } from './envelope.js';

/** A file id as the envelope and the registry take it: 1–1024 bytes of UTF-8, no control characters. */
export const fileIdSchema = z.string().superRefine((value, ctx) => {
  const problem = fileIdProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const keyIdSchema = z.string().superRefine((value, ctx) => {
  const problem = keyIdProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const registeredFileSchema = z.discriminatedUnion('type', [
  z.strictObject({ fileId: fileIdSchema, type: z.literal('drm'), label: labelSchema, keyId: keyIdSchema, registeredAt: z.iso.datetime() }),
  z.strictObject({ fileId: fileIdSchema, type: z.literal('plain'), registeredAt: z.iso.datetime() }),
]);

/**
 * A file passgate knows (SPEC §5 "the file registry"): one it protected (`drm`, with the label
 * and key id written in its envelope) or one an operator declared not to need decryption (`plain`).
 */
export type RegisteredFile = z.output<typeof registeredFileSchema>;

/** The store namespace; `passgate protect --register` and the running service share it. */
const NAMESPACE = 'agent-files';

/**
 * The file registry over the shared store, keyed by file id. Registrations are permanent (no TTL)
 * until removed; registering an id again replaces its record. Store errors propagate (keyv
 * throwOnErrors): "cannot read" is never "unknown file".
 */
export class FileRegistry {
  private readonly files: Keyv<RegisteredFile>;

  constructor(store: Store) {
    this.files = store.namespace<RegisteredFile>(NAMESPACE);
  }

  /** Throws a RangeError naming the field when `file` is not a valid RegisteredFile. */
  async register(file: RegisteredFile): Promise<void> {
    const parsed = registeredFileSchema.safeParse(file);
    if (!parsed.success) throw new RangeError(`FileRegistry.register: ${parsed.error.issues.map(describeIssue).join('; ')}`);
    await this.files.set(parsed.data.fileId, parsed.data);
  }

  /** The record, or undefined when the id is unknown (or could not be an id at all). */
  async get(fileId: string): Promise<RegisteredFile | undefined> {
    if (fileIdProblem(fileId)) return undefined;
    const stored = await this.files.get(fileId);
    if (stored === undefined) return undefined;
    const parsed = registeredFileSchema.safeParse(stored);
    // Only this class writes the namespace: a record it cannot read is a fault to surface, not an unknown file.
    if (!parsed.success) throw new Error(`file registry: the record of ${JSON.stringify(fileId)} is not a RegisteredFile`);
    return parsed.data;
  }

  /** True when a record was removed. */
  async remove(fileId: string): Promise<boolean> {
    if (fileIdProblem(fileId)) return false;
    return this.files.delete(fileId);
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}
