import { z } from 'zod';

/** A secret in the file: a literal, `{ env: NAME }` or `{ file: /path }` (a mounted secret). */
export const secretRef = z.union(
  [
    z.string().min(1),
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/) }),
    z.strictObject({ file: z.string().min(1) }),
  ],
  { error: 'expected a non-empty string, { env: NAME } or { file: /path/to/secret }' },
);
export type SecretRef = z.output<typeof secretRef>;
