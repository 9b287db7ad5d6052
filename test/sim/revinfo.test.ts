import test from 'ava';
import { REVINFO_PATH, fakeRevInfo, revInfoPublishedAt } from '../../src/sim/drm/revinfo.js';
import type { SimLogEntry } from '../../src/sim/state.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

const setPlayready = async (f: SimFixture, playready: Record<string, unknown>) =>
  f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ drm: { playready } }) });

test('serves an obviously fake RevInfo with ETag and Last-Modified', async (t) => {
  const f = await withSim(t);
  const response = await f.call(REVINFO_PATH);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'application/xml; charset=utf-8');
  t.regex(response.headers.get('etag') ?? '', /^"[0-9a-f]{24}"$/);
  t.is(response.headers.get('last-modified'), 'Fri, 02 Jan 2026 00:00:00 GMT');
  const xml = await response.text();
  t.is(xml, fakeRevInfo(1));
  t.true(xml.startsWith('<?xml version="1.0" encoding="utf-8"?><RevInfo>\n'));
  const listData = [...xml.matchAll(/<ListData>([^<]+)<\/ListData>/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('latin1'));
  t.is(listData.length, 4);
  for (const text of listData) {
    t.true(text.startsWith('RLV passgate-sim fake revocation list '), text);
    t.true(text.includes('not issued by Microsoft'));
  }
  t.deepEqual(
    [...xml.matchAll(/<ListID>([^<]+)<\/ListID>/g)].map((m) => m[1]),
    ['ioydTlK2p0WXkWklprR5Hw==', 'gC4IKKPHsUCCVhnlttibJw==', 'Ef/RUojT3U6Ct2jqTCChbA==', 'BOZ1zT1UnEqfCf5tJOi/kA=='],
  );
});

test('answers 304 to matching conditional requests, even under Cache-Control: no-cache', async (t) => {
  const f = await withSim(t);
  const first = await f.call(REVINFO_PATH);
  const etag = first.headers.get('etag')!;
  const lastModified = first.headers.get('last-modified')!;

  const cases: [Record<string, string>, number][] = [
    [{ 'if-none-match': etag }, 304],
    [{ 'if-none-match': `W/${etag}` }, 304],
    [{ 'if-none-match': `"other", ${etag}` }, 304],
    [{ 'if-none-match': '*' }, 304],
    [{ 'if-none-match': etag, 'cache-control': 'no-cache' }, 304],
    [{ 'if-none-match': '"other"' }, 200],
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    [{ 'if-none-match': '"other"', 'if-modified-since': lastModified }, 200],
    [{ 'if-modified-since': lastModified }, 304],
    [{ 'if-modified-since': new Date(revInfoPublishedAt(1) - 1000).toUTCString() }, 200],
    [{ 'if-modified-since': 'not a date' }, 200],
  ];
  const statuses = [];
  for (const [headers] of cases) {
    const response = await f.call(REVINFO_PATH, { headers });
    const body = await response.text();
    statuses.push(response.status);
    if (response.status === 304) {
      t.is(body, '');
      t.is(response.headers.get('etag'), etag);
    }
  }
  t.deepEqual(statuses, cases.map(([, status]) => status));
});

test('bumping revinfoVersion changes the document, its ETag and Last-Modified; requests are logged', async (t) => {
  const f = await withSim(t);
  const first = await f.call(REVINFO_PATH);
  const etag = first.headers.get('etag')!;
  await first.text();
  t.is((await setPlayready(f, { revinfoVersion: 2 })).status, 200);

  const second = await f.call(REVINFO_PATH, { headers: { 'if-none-match': etag } });
  t.is(second.status, 200);
  t.not(second.headers.get('etag'), etag);
  t.is(second.headers.get('last-modified'), 'Sat, 03 Jan 2026 00:00:00 GMT');
  t.is(await second.text(), fakeRevInfo(2));

  const log = ((await (await f.call('/sim/log')).json()) as SimLogEntry[]).filter((e) => e.path === REVINFO_PATH);
  t.deepEqual(
    log.map((e) => [e.method, e.operation, e.status, e.headers['if-none-match']]),
    [
      ['GET', 'playready.revinfo', 200, undefined],
      ['GET', 'playready.revinfo', 200, etag],
    ],
  );
});

test('fault knobs: an HTML page or a cut-off document, both with status 200', async (t) => {
  const f = await withSim(t);
  await setPlayready(f, { revinfoFault: 'html' });
  const html = await f.call(REVINFO_PATH);
  t.is(html.status, 200);
  t.is(html.headers.get('content-type'), 'text/html; charset=utf-8');
  t.true((await html.text()).startsWith('<!DOCTYPE html>'));

  await setPlayready(f, { revinfoFault: 'truncated' });
  const cut = await f.call(REVINFO_PATH);
  t.is(cut.status, 200);
  const text = await cut.text();
  t.true(fakeRevInfo(1).startsWith(text));
  t.true(text.length < fakeRevInfo(1).length);
});

test('bad input: other methods answer 405, bad rules 400', async (t) => {
  const f = await withSim(t);
  const post = await f.call(REVINFO_PATH, { method: 'POST', body: 'x' });
  t.is(post.status, 405);
  t.regex(post.headers.get('allow') ?? '', /GET/);
  t.is(await post.text(), '', 'a bare 405: no Pass enhanced error on a download');
  for (const playready of [{ revinfoVersion: -1 }, { revinfoVersion: 1.5 }, { revinfoFault: 'boom' }, { other: 1 }]) {
    const response = await setPlayready(f, playready);
    t.is(response.status, 400, JSON.stringify(playready));
    t.like(await response.json(), { error: 'invalid_config' });
  }
  const head = await f.call(REVINFO_PATH, { method: 'HEAD' });
  t.is(head.status, 200);
  t.truthy(head.headers.get('etag'));
});
