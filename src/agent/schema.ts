import { z } from 'zod';
import { fileIdSchema } from './files.js';

/** SPEC §5: `Kep-AgentSession` is 8–256 printable ASCII characters (no spaces). */
export const AGENT_SESSION_PATTERN = /^[\x21-\x7E]{8,256}$/;

/** No spaces, no control characters (a principal is written into logs and compared as is). */
const printable = (value: string) => [...value].every((ch) => (ch.codePointAt(0) as number) > 0x20 && ch !== '\u007f');

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
