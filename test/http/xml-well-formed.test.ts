import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { checkRevInfo } from '../../src/drm/playready/index.js';
import { fakeRevInfo } from '../../src/sim/drm/revinfo.js';
import { adminRequest, withAdmin } from '../drm/drm-fixture.js';
import { drmSection, simRevInfo } from '../helpers/drm-config.js';
import { withBrowser } from '../helpers/with-browser.js';

/**
 * Every XML document passgate serves (RevInfo, RevAllowInfo, the sign-in QR code's SVG) goes
 * through a conforming XML parser: Chromium's DOMParser, which reports a <parsererror> for
 * anything XML 1.0 does not call well-formed (unlike lenient validators, it refuses `ENCODING=`).
 */

interface RevocationFixtures {
  fixtures: { name: string; xml: string }[];
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/playready-revocation-xml.json', import.meta.url), 'utf8')) as RevocationFixtures;
const DOCUMENTED_REVALLOWINFO = vectors.fixtures.find((f) => f.name === 'RevAllowInfo_allow_list')!.xml;
const SAMPLE_HASHES = [...DOCUMENTED_REVALLOWINFO.matchAll(/<CertificateHash>([^<]+)<\/CertificateHash>/g)].map((m) => m[1] as string);

type XmlParser = (text: string, type?: string) => Promise<string | undefined>;

/** The page-side parse: the script runs in Chromium, where DOMParser exists (the test tsconfig has no DOM types). */
const PARSE_IN_PAGE = `([xml, type]) => {
  const error = new DOMParser().parseFromString(xml, type).getElementsByTagName('parsererror')[0];
  return error ? error.textContent : undefined;
}`;

/** The parser's error message for `text`, or undefined when it is well-formed. */
async function chromiumXmlParser(t: ExecutionContext): Promise<XmlParser> {
  const page: Page = await (await withBrowser(t)).newPage();
  const parse = await page.evaluateHandle(PARSE_IN_PAGE);
  return async (text, type = 'application/xml') => ((await parse.evaluate((fn, args) => (fn as unknown as (a: string[]) => string | undefined)(args), [text, type])) ?? undefined);
}

test('the parser can fail: revocation.md’s RevAllowInfo sample (upper-case ENCODING) and a declaration after white space are refused', async (t) => {
  const parse = await chromiumXmlParser(t);
  t.regex((await parse(DOCUMENTED_REVALLOWINFO)) ?? 'accepted', /error on line 1/);
  t.truthy(await parse(` ${fakeRevInfo(1)}`));
  t.is(await parse(fakeRevInfo(1)), undefined);
});

test('every XML passgate serves over HTTP parses: RevAllowInfo (empty and with hashes), RevInfo, the sign-in QR code SVG', async (t) => {
  const parse = await chromiumXmlParser(t);
  const f = await withAdmin(t, { file: { drm: drmSection({ playready: simRevInfo }) } });
  const served = async (path: string, init?: RequestInit) => {
    const response = await f.call(path, init);
    t.is(response.status, 200, path);
    return { type: response.headers.get('content-type') ?? '', text: await response.text() };
  };

  const empty = await served('/drm/playready/revallowinfo');
  t.is(empty.type, 'application/xml; charset=utf-8');
  t.is(await parse(empty.text), undefined, empty.text);

  t.is((await adminRequest(f, 'PUT', '/admin/drm/playready/revallowinfo', { hashes: SAMPLE_HASHES })).status, 200);
  const allowList = await served('/drm/playready/revallowinfo');
  t.true(allowList.text.includes(`<CertificateHash>${SAMPLE_HASHES[1]}</CertificateHash>`));
  t.is(await parse(allowList.text), undefined, allowList.text);

  t.is((await adminRequest(f, 'POST', '/admin/drm/playready/revinfo/refresh')).status, 200);
  const revInfo = await served('/drm/playready/revinfo');
  t.is(revInfo.type, 'application/xml; charset=utf-8');
  t.true(revInfo.text.includes('<RevInfo>'));
  t.is(await parse(revInfo.text), undefined, revInfo.text.slice(0, 200));

  const device = await f.device();
  const started = await f.post(device, '/v1/authentication', {});
  t.is(started.status, 201);
  const { code } = (await started.json()) as { code: string };
  const qr = await served(`/v1/authentication/${code}/qr.svg`, { headers: { authorization: `Bearer ${device.token}` } });
  t.regex(qr.type, /^image\/svg\+xml/);
  t.is(await parse(qr.text, 'image/svg+xml'), undefined, qr.text.slice(0, 200));
});

test('RevInfo is served as downloaded, so checkRevInfo accepts a document only if the XML parser does', async (t) => {
  const parse = await chromiumXmlParser(t);
  const good = fakeRevInfo(1);
  const body = good.slice(good.indexOf('<RevInfo>') + '<RevInfo>'.length);
  const variants: Record<string, string> = {
    simulator: good,
    noDeclaration: `<RevInfo>${body}`,
    bom: `\uFEFF${good}`,
    singleQuotes: `<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n<RevInfo>${body}`,
    namespace: `<?xml version="1.0"?><RevInfo xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols/">${body}`,
    commentFirst: `<!-- fetched --><RevInfo>${body}`,
    upperCaseEncoding: `<?xml version="1.0" ENCODING="utf-8"?><RevInfo>${body}`,
    spaceBeforeDeclaration: ` ${good}`,
    encodingBeforeVersion: `<?xml encoding="utf-8" version="1.0"?><RevInfo>${body}`,
    booleanAttribute: `<RevInfo signed>${body}`,
    unquotedAttribute: `<RevInfo v=1>${body}`,
    repeatedAttribute: `<RevInfo a="1" a="2">${body}`,
    entityInAttribute: `<RevInfo a="&nbsp;">${body}`,
    controlCharacter: `<!-- \u0001 --><RevInfo>${body}`,
    doubleHyphenInComment: `<!-- a -- b --><RevInfo>${body}`,
  };
  const verdicts: Record<string, [boolean, boolean]> = {};
  for (const [name, xml] of Object.entries(variants)) verdicts[name] = [checkRevInfo(xml).ok, (await parse(xml)) === undefined];
  for (const [name, [checked, parsed]] of Object.entries(verdicts)) t.is(checked, parsed, `${name}: checkRevInfo ${checked ? 'accepts' : 'refuses'} it, the parser ${parsed ? 'accepts' : 'refuses'} it`);
  // Both sides of the line are exercised.
  t.true(Object.values(verdicts).some(([ok]) => ok));
  t.true(Object.values(verdicts).some(([ok]) => !ok));
  t.deepEqual(checkRevInfo(variants.upperCaseEncoding!), { ok: false, reason: 'not a well-formed XML declaration at "<?xml version=\\"1.0\\" ENCODING=\\"utf-8\\"?><R"' });
});
