import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { RevInfoService, revInfoRoutes, type RevInfoServiceDeps } from '../../src/drm/playready/index.js';
import { ManualClock } from '../../src/infra/clock.js';
import { createStore, type Store } from '../../src/infra/store.js';
import { REVINFO_PATH, fakeRevInfo, revInfoPublishedAt } from '../../src/sim/drm/revinfo.js';
import type { SimLogEntry } from '../../src/sim/state.js';
import { memoryLogger, tempDir, withBareApp, type MemoryLogger } from '../helpers/with-app.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

const SAMPLE_IDS = ['ioydTlK2p0WXkWklprR5Hw==', 'gC4IKKPHsUCCVhnlttibJw==', 'Ef/RUojT3U6Ct2jqTCChbA==', 'BOZ1zT1UnEqfCf5tJOi/kA=='];
const HOUR = 3600_000;
const WEEK = 7 * 24 * HOUR;

interface Fixture {
  sim: SimFixture;
  store: Store;
  clock: ManualClock;
  registry: Registry;
  log: MemoryLogger;
  service: RevInfoService;
  /** Another replica: same store, its own registry. */
  replica(changes?: Partial<RevInfoServiceDeps>): RevInfoService;
  simConfig(playready: Record<string, unknown>): Promise<void>;
  revinfoRequests(): Promise<SimLogEntry[]>;
  fetches(): Promise<Record<string, number>>;
  age(): Promise<number | undefined>;
}

async function setup(t: ExecutionContext, changes: Partial<RevInfoServiceDeps> = {}): Promise<Fixture> {
  const sim = await withSim(t);
  const store = await createStore({ dataDir: await tempDir(t), logger: memoryLogger('silent').logger });
  t.teardown(() => store.disconnect());
  const clock = new ManualClock(Date.UTC(2026, 10, 24, 12, 0, 0));
  const log = memoryLogger('debug');
  const build = (registry: Registry, more: Partial<RevInfoServiceDeps> = {}) => {
    const service = new RevInfoService({ store, url: `${sim.url}${REVINFO_PATH}`, clock, logger: log.logger, metricsRegistry: registry, ...changes, ...more });
    t.teardown(() => service.stop());
    return service;
  };
  const registry = new Registry();
  return {
    sim,
    store,
    clock,
    registry,
    log,
    service: build(registry),
    replica: (more) => build(new Registry(), more),
    async simConfig(playready) {
      const response = await sim.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ drm: { playready } }) });
      if (response.status !== 200) throw new Error(`sim config answered ${response.status}`);
    },
    async revinfoRequests() {
      const entries = (await (await sim.call('/sim/log')).json()) as SimLogEntry[];
      return entries.filter((e) => e.path === REVINFO_PATH);
    },
    async fetches() {
      const metric = await registry.getSingleMetric('passgate_drm_playready_revinfo_fetches_total')!.get();
      return Object.fromEntries(metric.values.map((v) => [String(v.labels.result), v.value]));
    },
    async age() {
      const metric = await registry.getSingleMetric('passgate_drm_playready_revinfo_age_seconds')!.get();
      return metric.values[0]?.value;
    },
  };
}

test('conditional GETs: updated, then not_modified with If-None-Match, then updated after a new version', async (t) => {
  const f = await setup(t);
  t.is(await f.service.current(), undefined);

  t.is(await f.service.refresh(), 'updated');
  const first = await f.service.current();
  t.truthy(first);
  t.is(first!.xml, fakeRevInfo(1));
  t.deepEqual(first!.listIds, SAMPLE_IDS);
  t.is(first!.fetchedAt, f.clock.now());
  t.is(first!.checkedAt, f.clock.now());
  t.is(first!.lastModified, new Date(revInfoPublishedAt(1)).toUTCString());
  t.regex(first!.etag ?? '', /^"[0-9a-f]{24}"$/);

  f.clock.advance(HOUR);
  t.is(await f.service.refresh(), 'not_modified');
  const second = await f.service.current();
  t.is(second!.xml, first!.xml);
  t.is(second!.fetchedAt, first!.fetchedAt);
  t.is(second!.checkedAt, first!.fetchedAt + HOUR);

  await f.simConfig({ revinfoVersion: 2 });
  f.clock.advance(HOUR);
  t.is(await f.service.refresh(), 'updated');
  const third = await f.service.current();
  t.is(third!.xml, fakeRevInfo(2));
  t.not(third!.etag, first!.etag);
  t.is(third!.fetchedAt, first!.fetchedAt + 2 * HOUR);

  const requests = await f.revinfoRequests();
  t.deepEqual(
    requests.map((r) => [r.status, r.headers['if-none-match'], r.headers['if-modified-since']]),
    [
      [200, undefined, undefined],
      [304, first!.etag, first!.lastModified],
      [200, first!.etag, first!.lastModified],
    ],
  );
  t.is(requests[0]!.operation, 'playready.revinfo');
  t.deepEqual(await f.fetches(), { updated: 2, not_modified: 1, failed: 0 });
});

test('an HTML page, a cut-off document or an error status fails and the stored copy stays', async (t) => {
  const f = await setup(t);
  t.is(await f.service.refresh(), 'updated');
  const good = await f.service.current();

  for (const revinfoFault of ['html', 'truncated']) {
    await f.simConfig({ revinfoVersion: 3, revinfoFault });
    f.clock.advance(HOUR);
    t.is(await f.service.refresh(), 'failed', revinfoFault);
  }
  const elsewhere = f.replica({ url: `${f.sim.url}/playready/nothing-here.xml` });
  t.is(await elsewhere.refresh(), 'failed');

  t.deepEqual(await f.service.current(), good);
  t.deepEqual(await f.fetches(), { updated: 1, not_modified: 0, failed: 2 });
  const warnings = f.log.lines.filter((l) => l.msg === 'playready: RevInfo refresh failed; the stored copy stays').map((l) => (l.err as { message: string }).message);
  t.deepEqual(warnings, [
    'not a RevInfo document: expected the root element <RevInfo> at "<!DOCTYPE html><html><head><title>Sign i"',
    warnings[1]!,
    'HTTP 404',
  ]);
  t.regex(warnings[1]!, /^not a RevInfo document: /);
});

test('garbage before any good copy stores nothing; an unreachable upstream fails', async (t) => {
  const f = await setup(t);
  await f.simConfig({ revinfoFault: 'html' });
  t.is(await f.service.refresh(), 'failed');
  t.is(await f.service.current(), undefined);
  const closed = f.replica({ url: 'http://127.0.0.1:9/revinfo.xml' });
  t.is(await closed.refresh(), 'failed');
  t.is(await f.service.current(), undefined);
});

test('a body above 2 MB is refused, with or without Content-Length', async (t) => {
  const head = '<?xml version="1.0" encoding="utf-8"?><RevInfo><Revocation><ListID>ioydTlK2p0WXkWklprR5Hw==</ListID><ListData>';
  const server = createServer((req, res: ServerResponse) => {
    const chunk = 'A'.repeat(64 * 1024);
    const chunks = Math.ceil((2 * 1024 * 1024) / chunk.length) + 1;
    if (req.url === '/declared') res.setHeader('content-length', String(head.length + chunks * chunk.length));
    res.setHeader('content-type', 'application/xml');
    res.write(head);
    for (let i = 0; i < chunks; i++) res.write(chunk);
    res.end();
  }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const f = await setup(t);
  for (const path of ['/declared', '/chunked']) {
    const service = f.replica({ url: `${base}${path}` });
    t.is(await service.refresh(), 'failed', path);
  }
  t.is(await f.service.current(), undefined);
  const reasons = f.log.lines.filter((l) => l.msg === 'playready: RevInfo refresh failed; the stored copy stays').map((l) => (l.err as { message: string }).message);
  t.deepEqual(reasons, [`Content-Length ${head.length + 33 * 64 * 1024} exceeds ${2 * 1024 * 1024} bytes`, `body exceeds ${2 * 1024 * 1024} bytes`]);
});

test('an upstream without validators: the same content again is not_modified and keeps fetchedAt', async (t) => {
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res: ServerResponse) => {
    seen.push(req.headers['if-none-match'] ?? req.headers['if-modified-since']);
    res.setHeader('content-type', 'text/xml');
    res.end(fakeRevInfo(4));
  }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const f = await setup(t, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/RevInfo2.xml` });
  t.is(await f.service.refresh(), 'updated');
  const first = await f.service.current();
  t.is(first!.etag, undefined);
  t.is(first!.lastModified, undefined);
  f.clock.advance(HOUR);
  t.is(await f.service.refresh(), 'not_modified');
  t.like(await f.service.current(), { fetchedAt: first!.fetchedAt, checkedAt: first!.fetchedAt + HOUR, xml: fakeRevInfo(4) });
  t.deepEqual(seen, [undefined, undefined]);
});

test('concurrent refreshes in one process share one download', async (t) => {
  const f = await setup(t);
  t.deepEqual(await Promise.all([f.service.refresh(), f.service.refresh(), f.service.refresh()]), ['updated', 'updated', 'updated']);
  t.is((await f.revinfoRequests()).length, 1);
});

test('age metric: -1 before any copy, then seconds since the last confirmation (injected clock)', async (t) => {
  const f = await setup(t);
  t.is(await f.age(), -1);
  await f.service.refresh();
  t.is(await f.age(), 0);
  f.clock.advance(90 * 60_000);
  t.is(await f.age(), 5400);
  // A 304 confirms the copy current: the age starts again.
  t.is(await f.service.refresh(), 'not_modified');
  t.is(await f.age(), 0);
  f.clock.advance(8 * 24 * HOUR);
  t.is(await f.age(), 8 * 24 * 3600);
  // A failed refresh does not make the copy younger.
  await f.simConfig({ revinfoFault: 'html' });
  t.is(await f.service.refresh(), 'failed');
  t.is(await f.age(), 8 * 24 * 3600);
});

test('schedule: refreshes at start-up when absent or a week old; one replica per retry period fleet-wide', async (t) => {
  const f = await setup(t);
  t.is(await f.service.start(), 'updated');
  t.is(await f.service.refreshIfDue(), 'fresh');

  const other = f.replica();
  t.is(await other.start(), 'fresh');
  f.clock.advance(WEEK - 1);
  t.is(await other.refreshIfDue(), 'fresh');
  t.is((await f.revinfoRequests()).length, 1);

  // Due, and the upstream answers garbage: the first replica takes the lease and fails ...
  f.clock.advance(1);
  await f.simConfig({ revinfoFault: 'html' });
  t.is(await f.service.refreshIfDue(), 'failed');
  // ... and nobody tries again until the retry period has passed.
  t.is(await other.refreshIfDue(), 'busy');
  t.is(await f.service.refreshIfDue(), 'busy');
  f.clock.advance(HOUR);
  await f.simConfig({ revinfoFault: 'none' });
  t.is(await other.refreshIfDue(), 'not_modified');
  t.is(await f.service.refreshIfDue(), 'fresh');
  t.is((await f.revinfoRequests()).length, 3);
});

test('routes: 503 before the first download, then the stored XML with ETag, 304 on If-None-Match', async (t) => {
  const f = await setup(t);
  const vectors = JSON.parse(readFileSync(new URL('../fixtures/playready-revocation-xml.json', import.meta.url), 'utf8')) as { fixtures: { name: string; xml: string }[] };
  let allowList = ['2C4OCYBGE3XZ3ODIUVUWD0SVLWH4W1NX9EA5DMJZ/PK=', '9OHU9A1KAJYI9BUWQWAVXBOO7R4XS+GG8HV0ESDBTNW='];
  const app = await withBareApp(t, [revInfoRoutes(f.service, async () => allowList)]);

  const before = await app.call('/drm/playready/revinfo');
  t.is(before.status, 503);
  t.is(before.headers.get('content-type'), 'application/problem+json');
  t.is(before.headers.get('retry-after'), '60');
  t.like(await before.json(), { code: 'not_ready', status: 503 });

  await f.service.refresh();
  const ok = await app.call('/drm/playready/revinfo');
  t.is(ok.status, 200);
  t.is(ok.headers.get('content-type'), 'application/xml; charset=utf-8');
  t.is(ok.headers.get('last-modified'), new Date(revInfoPublishedAt(1)).toUTCString());
  t.is(ok.headers.get('cache-control'), 'no-cache');
  const etag = ok.headers.get('etag')!;
  t.regex(etag, /^"[0-9a-f]{32}"$/);
  t.is(await ok.text(), fakeRevInfo(1));

  const same = await app.call('/drm/playready/revinfo', { headers: { 'if-none-match': etag } });
  t.is(same.status, 304);
  t.is(same.headers.get('etag'), etag);
  t.is(await same.text(), '');
  const stale = await app.call('/drm/playready/revinfo', { headers: { 'if-none-match': '"0000"' } });
  t.is(stale.status, 200);
  t.is((await stale.text()).length, fakeRevInfo(1).length);

  const allow = await app.call('/drm/playready/revallowinfo');
  t.is(allow.status, 200);
  t.is(allow.headers.get('content-type'), 'application/xml; charset=utf-8');
  // The documented sample, its upper-case ENCODING corrected (XML 1.0 spells it `encoding`).
  t.is(await allow.text(), vectors.fixtures.find((x) => x.name === 'RevAllowInfo_allow_list')!.xml.replace('ENCODING="utf-8"', 'encoding="utf-8"'));
  const allowEtag = allow.headers.get('etag')!;
  t.is((await app.call('/drm/playready/revallowinfo', { headers: { 'if-none-match': allowEtag } })).status, 304);
  allowList = [allowList[0]!];
  const changed = await app.call('/drm/playready/revallowinfo', { headers: { 'if-none-match': allowEtag } });
  t.is(changed.status, 200);
  t.not(changed.headers.get('etag'), allowEtag);
  t.is((await changed.text()).split('<CertificateHash>').length, 2);

  allowList = ['not a hash'];
  const corrupt = await app.call('/drm/playready/revallowinfo');
  t.is(corrupt.status, 500);
  t.like(await corrupt.json(), { code: 'internal_error' });

  const post = await app.call('/drm/playready/revinfo', { method: 'POST' });
  t.is(post.status, 405);
});

test('routes: a store that cannot be read answers 503 store_unavailable', async (t) => {
  const f = await setup(t);
  await f.service.refresh();
  const app = await withBareApp(t, [
    revInfoRoutes(f.service, async () => {
      throw new Error('store down');
    }),
  ]);
  await f.store.disconnect();
  const revinfo = await app.call('/drm/playready/revinfo');
  t.is(revinfo.status, 503);
  t.like(await revinfo.json(), { code: 'store_unavailable' });
  const allow = await app.call('/drm/playready/revallowinfo');
  t.is(allow.status, 503);
  t.like(await allow.json(), { code: 'store_unavailable' });
  // The scheduled path survives it too.
  t.is(await f.service.refreshIfDue(), 'failed');
});
