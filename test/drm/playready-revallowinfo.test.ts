import test from 'ava';
import { readFileSync } from 'node:fs';
import { MAX_CERTIFICATE_HASHES, checkCertificateHashes, isCertificateHash, renderRevAllowInfo } from '../../src/drm/playready/index.js';

interface RevocationFixtures {
  fixtures: { name: string; xml: string }[];
}

const vectors = JSON.parse(readFileSync(new URL('../fixtures/playready-revocation-xml.json', import.meta.url), 'utf8')) as RevocationFixtures;
const documented = vectors.fixtures.find((f) => f.name === 'RevAllowInfo_allow_list')!.xml;
/** revocation.md's sample with its one typo corrected: XML 1.0 spells the pseudo-attribute `encoding`. */
const corrected = documented.replace('ENCODING="utf-8"', 'encoding="utf-8"');
const SAMPLE_HASHES = ['2C4OCYBGE3XZ3ODIUVUWD0SVLWH4W1NX9EA5DMJZ/PK=', '9OHU9A1KAJYI9BUWQWAVXBOO7R4XS+GG8HV0ESDBTNW='];
/** A canonical lower/mixed-case base64 hash: 32 bytes 0x00..0x1f. */
const MIXED_CASE = Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64');

test('renders the documented RevAllowInfo (revocation.md) byte for byte for the documented hashes, its ENCODING typo corrected', (t) => {
  const xml = renderRevAllowInfo(SAMPLE_HASHES);
  t.not(corrected, documented);
  t.is(xml, corrected);
  t.true(Buffer.from(xml, 'utf8').equals(Buffer.from(corrected, 'utf8')));
  // The sample's layout we keep: LF only, no trailing newline; its upper-case ENCODING we do not.
  t.true(xml.startsWith('<?xml version="1.0" encoding="utf-8"?>\n   <RevAllowInfo>\n'));
  t.false(xml.includes('ENCODING'));
  t.false(xml.includes('\r'));
  t.true(xml.endsWith('</RevAllowInfo>'));
});

test('an empty allow-list keeps the layout', (t) => {
  t.is(
    renderRevAllowInfo([]),
    '<?xml version="1.0" encoding="utf-8"?>\n   <RevAllowInfo>\n      <AllowList>\n      </AllowList>\n   </RevAllowInfo>',
  );
});

test('render refuses a value that is not a CertificateHash (no markup can be injected)', (t) => {
  t.throws(() => renderRevAllowInfo(['</CertificateHash><x/>']), { instanceOf: TypeError });
  t.throws(() => renderRevAllowInfo([SAMPLE_HASHES[0]!, 'short=']), { instanceOf: TypeError });
});

test('the documented samples and a mixed-case hash are CertificateHashes; order kept, duplicates dropped', (t) => {
  t.true(isCertificateHash(SAMPLE_HASHES[0]));
  t.true(isCertificateHash(MIXED_CASE));
  t.deepEqual(checkCertificateHashes([SAMPLE_HASHES[1], MIXED_CASE, SAMPLE_HASHES[1], SAMPLE_HASHES[0]]), {
    ok: true,
    hashes: [SAMPLE_HASHES[1], MIXED_CASE, SAMPLE_HASHES[0]],
  });
  t.deepEqual(checkCertificateHashes([]), { ok: true, hashes: [] });
});

test('each bad hash is reported with its index and a clear message', (t) => {
  const result = checkCertificateHashes([
    SAMPLE_HASHES[0],
    42,
    null,
    'QUJD',
    `${SAMPLE_HASHES[0]!.slice(0, 43)}A`,
    `${SAMPLE_HASHES[0]!.slice(0, 42)}-=`,
    `${SAMPLE_HASHES[0]!.slice(0, 42)}==`,
    ` ${SAMPLE_HASHES[0]!.slice(1)}`,
    ['nested'],
  ]);
  t.false(result.ok);
  if (result.ok) return;
  t.deepEqual(result.issues, [
    { index: 1, message: 'expected a string, got number' },
    { index: 2, message: 'expected a string, got null' },
    { index: 3, message: 'a CertificateHash is 44 base64 characters (32 bytes), got 4 characters' },
    { index: 4, message: 'a CertificateHash of 32 bytes ends with exactly one "=" of base64 padding' },
    { index: 5, message: 'a CertificateHash holds only base64 characters (A–Z, a–z, 0–9, "+", "/") before its "="' },
    { index: 6, message: 'a CertificateHash of 32 bytes ends with exactly one "=" of base64 padding' },
    { index: 7, message: 'a CertificateHash holds only base64 characters (A–Z, a–z, 0–9, "+", "/") before its "="' },
    { index: 8, message: 'expected a string, got an array' },
  ]);
});

test('the input must be a bounded array', (t) => {
  t.deepEqual(checkCertificateHashes('2C4OCYBGE3XZ3ODIUVUWD0SVLWH4W1NX9EA5DMJZ/PK='), {
    ok: false,
    issues: [{ index: -1, message: 'expected an array of CertificateHash strings' }],
  });
  t.deepEqual(checkCertificateHashes({ 0: SAMPLE_HASHES[0] }), {
    ok: false,
    issues: [{ index: -1, message: 'expected an array of CertificateHash strings' }],
  });
  const tooMany = Array.from({ length: MAX_CERTIFICATE_HASHES + 1 }, () => SAMPLE_HASHES[0]);
  t.deepEqual(checkCertificateHashes(tooMany), {
    ok: false,
    issues: [{ index: -1, message: `at most ${MAX_CERTIFICATE_HASHES} certificate hashes are allowed, got ${MAX_CERTIFICATE_HASHES + 1}` }],
  });
  t.is(renderRevAllowInfo(Array.from({ length: 3 }, () => MIXED_CASE)).split('<CertificateHash>').length - 1, 3);
});
