/**
 * Activation codes as viewers type them (ecosystem.md §3, oidc-provider `user_codes.js`):
 * case-insensitive, spaces and dashes ignored. The upstream's codes are A–Z and 0–9
 * (adobe-pass.md §4.2 sample `8ER640M`).
 */
export const CODE_PATTERN = /^[A-Z0-9]{4,16}$/;

/** Upper-cases and strips spaces and dashes (any Unicode dash or space, not only ASCII). */
export function normalizeCode(input: string): string {
  return input.toUpperCase().replace(/[\s\p{Pd}]/gu, '');
}

/** The normalised code, or undefined when it cannot be an upstream code. */
export function parseCode(input: string): string | undefined {
  const code = normalizeCode(input);
  return CODE_PATTERN.test(code) ? code : undefined;
}
