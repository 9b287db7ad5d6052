import { z } from 'zod';
import { fileIdSchema } from './files.js';

/** SPEC §5: `Kep-AgentSession` is 8–256 printable ASCII characters (no spaces). */
export const AGENT_SESSION_PATTERN = /^[\x21-\x7E]{8,256}$/;

/** No separators (spaces, U+2028…), control, format (bidi overrides, zero-width) or unassigned characters: a principal is written into audit lines and compared as is. */
const printable = (value: string) => !/[\p{C}\p{Z}]/u.test(value);

export const authenticateSchema = z.strictObject({
  fileId: fileIdSchema,
  /** The user as the platform knows them (e.g. an e-mail address); entitlements match it exactly or by `*@domain`. */
  userPrincipal: z.string().min(1).max(256).refine(printable, { error: 'expected no spaces or control characters' }),
});
export type AuthenticateInput = z.output<typeof authenticateSchema>;

/** What a decrypt job can end with (the adapter's uploadResult `result`). */
export const JOB_RESULTS = ['success', 'denied', 'not_drm', 'corrupt', 'error'] as const;
export type JobResult = (typeof JOB_RESULTS)[number];

/** A job id as passgate mints them (UUID); anything else in the path is simply unknown. */
export const jobIdSchema = z.uuid();
