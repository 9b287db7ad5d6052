/**
 * The RevAllowInfo allow-list of the PlayReady Server SDK ≥ 4.3 (drm.md §4): certificate hashes of
 * revoked models or companies that the operator still wants to license. Pure: validation of the
 * operator's hashes and the XML file the Server SDK's `RevocationAllowFile` setting points at.
 */

/** Upper bound on the allow-list: it names exceptions to revocation, never a device population. */
export const MAX_CERTIFICATE_HASHES = 10_000;

/**
 * drm.md §4: the documented samples are 44 characters of base64 (32 bytes) and upper-cased, so the
 * alphabet is matched without regard to case and the padding bits of the last symbol are not
 * checked (the samples' last symbols carry non-zero padding bits). The algorithm behind the hash
 * is [UNCONFIRMED]; only the shape is checked.
 */
const CERTIFICATE_HASH = /^[A-Za-z0-9+/]{43}=$/;

export function isCertificateHash(value: unknown): value is string {
  return typeof value === 'string' && CERTIFICATE_HASH.test(value) && Buffer.from(value, 'base64').length === 32;
}

export interface CertificateHashIssue {
  /** Position in the given array; -1 when the value as a whole is wrong. */
  index: number;
  message: string;
}

export type CertificateHashCheck = { ok: true; hashes: string[] } | { ok: false; issues: CertificateHashIssue[] };

/** Checks operator input: an array of CertificateHash strings. Duplicates are dropped (first one kept, order kept). */
export function checkCertificateHashes(values: unknown): CertificateHashCheck {
  if (!Array.isArray(values)) return { ok: false, issues: [{ index: -1, message: 'expected an array of CertificateHash strings' }] };
  if (values.length > MAX_CERTIFICATE_HASHES) {
    return { ok: false, issues: [{ index: -1, message: `at most ${MAX_CERTIFICATE_HASHES} certificate hashes are allowed, got ${values.length}` }] };
  }
  const issues: CertificateHashIssue[] = [];
  const hashes = new Set<string>();
  values.forEach((value: unknown, index) => {
    const problem = hashProblem(value);
    if (problem) issues.push({ index, message: problem });
    else hashes.add(value as string);
  });
  return issues.length > 0 ? { ok: false, issues } : { ok: true, hashes: [...hashes] };
}

function hashProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `expected a string, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`;
  if (value.length !== 44) return `a CertificateHash is 44 base64 characters (32 bytes), got ${value.length} characters`;
  if (!value.endsWith('=') || value.endsWith('==')) return 'a CertificateHash of 32 bytes ends with exactly one "=" of base64 padding';
  if (!CERTIFICATE_HASH.test(value)) return 'a CertificateHash holds only base64 characters (A–Z, a–z, 0–9, "+", "/") before its "="';
  if (!isCertificateHash(value)) return 'a CertificateHash must decode to 32 bytes';
  return undefined;
}

/**
 * The RevAllowInfo file in the layout revocation.md prints (playready-revocation-xml.json), with one
 * correction: the sample's declaration spells `ENCODING="utf-8"`, which the XML 1.0 grammar
 * (production EncodingDecl) does not allow and a conforming parser rejects, so we write `encoding`.
 * Kept from the sample: its indentation (3 spaces for <RevAllowInfo>, then 3 more per level), LF line
 * endings and no newline after the closing tag.
 * Throws a TypeError for a value that is not a CertificateHash (check input with checkCertificateHashes).
 */
export function renderRevAllowInfo(hashes: readonly string[]): string {
  for (const hash of hashes) {
    if (!isCertificateHash(hash)) throw new TypeError(`not a CertificateHash: ${JSON.stringify(String(hash).slice(0, 60))}`);
  }
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '   <RevAllowInfo>',
    '      <AllowList>',
    ...hashes.map((hash) => `         <CertificateHash>${hash}</CertificateHash>`),
    '      </AllowList>',
    '   </RevAllowInfo>',
  ].join('\n');
}
