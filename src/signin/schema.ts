import { z } from 'zod';

/** POST /v1/authentication: `{mvpd?}`; without it the second screen picks the MVPD (resume flow). */
export const startAuthenticationSchema = z.strictObject({
  mvpd: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected an MVPD id' }).optional(),
});
export type StartAuthenticationInput = z.infer<typeof startAuthenticationSchema>;

/** adobe-pass.md §6: codes are short upper-case alphanumerics (tolerant: 4–32 chars). */
export const codeSchema = z.string().regex(/^[A-Za-z0-9]{4,32}$/);

/** `?wait=N`: whole seconds, 0..30 (SPEC §2). */
export const waitQuerySchema = z.strictObject({
  wait: z
    .string()
    .regex(/^\d{1,2}$/, { error: 'expected whole seconds 0..30' })
    .transform(Number)
    .pipe(z.number().int().min(0).max(30))
    .optional(),
});
