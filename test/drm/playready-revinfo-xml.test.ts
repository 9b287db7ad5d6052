import test from 'ava';
import { readFileSync } from 'node:fs';
import { MAX_REVINFO_BYTES, checkRevInfo } from '../../src/drm/playready/index.js';
import { fakeRevInfo } from '../../src/sim/drm/revinfo.js';

interface RevocationFixtures {
  fixtures: { name: string; xml: string }[];
}

const vectors = JSON.parse(readFileSync(new URL('../fixtures/playready-revocation-xml.json', import.meta.url), 'utf8')) as RevocationFixtures;
const responseSample = vectors.fixtures.find((f) => f.name === 'response_RevInfo')!.xml;
const SAMPLE_IDS = ['ioydTlK2p0WXkWklprR5Hw==', 'gC4IKKPHsUCCVhnlttibJw==', 'Ef/RUojT3U6Ct2jqTCChbA==', 'BOZ1zT1UnEqfCf5tJOi/kA=='];
const RLV = Buffer.from('RLV some list bytes').toString('base64');

const doc = (body: string, prolog = '<?xml version="1.0" encoding="utf-8"?>') => `${prolog}<RevInfo>\n${body}</RevInfo>\n`;
const revocation = (id: string, data = RLV) => `<Revocation>\n<ListID>${id}</ListID>\n<ListData>${data}</ListData>\n</Revocation>\n`;

test("accepts the simulator's fake document and returns its ListIDs", (t) => {
  t.deepEqual(checkRevInfo(fakeRevInfo(1)), { ok: true, listIds: SAMPLE_IDS });
  t.deepEqual(checkRevInfo(fakeRevInfo(7)), { ok: true, listIds: SAMPLE_IDS });
});

test("the documented response sample's shape is accepted once its placeholder ListData is base64", (t) => {
  // The sample's ListData is a 41-character placeholder: not base64 (length not a multiple of 4).
  t.deepEqual(checkRevInfo(responseSample), { ok: false, reason: 'Revocation 1: ListData is not base64' });
  const filled = responseSample.replaceAll('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA<', `${RLV}<`);
  t.deepEqual(checkRevInfo(filled), { ok: true, listIds: SAMPLE_IDS });
});

test('tolerates a BOM, no declaration, a namespace, comments, element order and wrapped base64', (t) => {
  const wrapped = `${RLV.slice(0, 8)}\n  ${RLV.slice(8)}`;
  const xml =
    '\uFEFF<!-- fetched -->\n<RevInfo xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols/">' +
    `<Revocation><ListData>${wrapped}</ListData><ListID>${SAMPLE_IDS[2]}</ListID></Revocation>` +
    `<!-- between -->${revocation(SAMPLE_IDS[0]!)}</RevInfo>`;
  t.deepEqual(checkRevInfo(xml), { ok: true, listIds: [SAMPLE_IDS[2], SAMPLE_IDS[0]] });
});

test('rejects garbage with a reason', (t) => {
  const reasons: Record<string, unknown> = {};
  const cases: Record<string, string> = {
    empty: '',
    html: '<!DOCTYPE html><html><body>Sign in</body></html>',
    json: '{"RevInfo":[]}',
    otherRoot: doc('').replace(/RevInfo/g, 'RevAllowInfo'),
    noRevocation: doc(''),
    unclosed: doc(revocation(SAMPLE_IDS[0]!)).replace('</RevInfo>\n', ''),
    truncated: fakeRevInfo(1).slice(0, 200),
    trailing: `${doc(revocation(SAMPLE_IDS[0]!))}<RevInfo></RevInfo>`,
    strayElement: doc(`<Version>3</Version>${revocation(SAMPLE_IDS[0]!)}`),
    missingData: doc(`<Revocation><ListID>${SAMPLE_IDS[0]}</ListID></Revocation>`),
    missingId: doc(`<Revocation><ListData>${RLV}</ListData></Revocation>`),
    twoIds: doc(`<Revocation><ListID>${SAMPLE_IDS[0]}</ListID><ListID>${SAMPLE_IDS[1]}</ListID><ListData>${RLV}</ListData></Revocation>`),
    shortId: doc(revocation('QUJDRA==')),
    badData: doc(revocation(SAMPLE_IDS[0]!, 'not base64!')),
    emptyData: doc(revocation(SAMPLE_IDS[0]!, '')),
    duplicateId: doc(revocation(SAMPLE_IDS[0]!) + revocation(SAMPLE_IDS[0]!)),
    entityInData: doc(revocation(SAMPLE_IDS[0]!, 'QUJD&amp;')),
  };
  for (const [name, xml] of Object.entries(cases)) {
    const result = checkRevInfo(xml);
    reasons[name] = result.ok ? 'ACCEPTED' : result.reason;
  }
  t.deepEqual(reasons, {
    empty: 'expected the root element <RevInfo> at the end of the document',
    html: 'expected the root element <RevInfo> at "<!DOCTYPE html><html><body>Sign in</body"',
    json: 'expected the root element <RevInfo> at "{\\"RevInfo\\":[]}"',
    otherRoot: 'expected the root element <RevInfo> at "<RevAllowInfo>\\n</RevAllowInfo>\\n"',
    noRevocation: 'no <Revocation> element',
    unclosed: 'expected <Revocation> or </RevInfo> at the end of the document',
    truncated: 'expected <ListID>, <ListData> or </Revocation> in Revocation 1 at "<ListData>Uk"',
    trailing: 'unexpected content after </RevInfo> at "<RevInfo></RevInfo>"',
    strayElement: 'expected <Revocation> or </RevInfo> at "<Version>3</Version><Revocation>\\n<ListID"',
    missingData: 'Revocation 1 has no <ListData>',
    missingId: 'Revocation 1 has no <ListID>',
    twoIds: 'Revocation 1 has more than one <ListID>',
    shortId: 'Revocation 1: ListID "QUJDRA==" is not base64 of 16 bytes',
    badData: 'Revocation 1: ListData is not base64',
    emptyData: 'Revocation 1: ListData is not base64',
    duplicateId: `ListID ${SAMPLE_IDS[0]} appears twice`,
    entityInData: 'Revocation 1: ListData is not base64',
  });
});

test('refuses a document above 2 MB, accepts one just below', (t) => {
  const head = doc(revocation(SAMPLE_IDS[0]!, '')).split('<ListData>')[0]!;
  const tail = '</ListData>\n</Revocation>\n</RevInfo>\n';
  const fill = (bytes: number) => 'A'.repeat(Math.floor((bytes - head.length - tail.length - '<ListData>'.length) / 4) * 4);
  const below = `${head}<ListData>${fill(MAX_REVINFO_BYTES)}${tail}`;
  t.true(Buffer.byteLength(below) <= MAX_REVINFO_BYTES);
  t.deepEqual(checkRevInfo(below), { ok: true, listIds: [SAMPLE_IDS[0]] });
  const above = `${head}<ListData>${fill(MAX_REVINFO_BYTES)}AAAA${tail}`;
  t.true(Buffer.byteLength(above) > MAX_REVINFO_BYTES);
  t.deepEqual(checkRevInfo(above), { ok: false, reason: `larger than ${MAX_REVINFO_BYTES} bytes` });
});

test('a non-string is refused, not thrown on', (t) => {
  t.deepEqual(checkRevInfo(undefined as unknown as string), { ok: false, reason: 'not a string' });
});
