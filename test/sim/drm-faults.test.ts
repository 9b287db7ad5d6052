import test from 'ava';
import { mintLicenseToken } from '../../src/drm/pallycon/index.js';
import { DEMO_DRM_SITE } from '../../src/sim/rules.js';
import type { SimLogEntry } from '../../src/sim/state.js';
import { hangUpUrl } from '../helpers/local-upstream.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

/** The fault knobs apply to every upstream the simulator plays, the DRM services included. */

const CID = 'ref30-episode-1';

function postConfig(f: SimFixture, body: object) {
  return f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** One call to each DRM upstream (license service, FairPlay certificate, Widevine cloud, RevInfo download) and its status without faults. */
function drmCalls(f: SimFixture): { name: string; healthy: number; call(): Promise<Response> }[] {
  const token = mintLicenseToken({
    siteId: DEMO_DRM_SITE.siteId,
    siteKey: DEMO_DRM_SITE.siteKey,
    accessKey: DEMO_DRM_SITE.accessKey,
    drmType: 'Widevine',
    userId: 'viewer-1',
    cid: CID,
    policy: '{"policy_version":2}',
    timestamp: f.clock.now(),
  }).token;
  return [
    {
      name: 'license',
      healthy: 200,
      call: () =>
        f.call('/ri/licenseManager.do', {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', 'pallycon-customdata-v2': token },
          body: Buffer.from(`fake widevine challenge content_id=${CID} `),
        }),
    },
    { name: 'fps certificate', healthy: 200, call: () => f.call(`/ri/fpsKeyManager.do?siteId=${DEMO_DRM_SITE.siteId}`) },
    { name: 'widevine cloud', healthy: 400, call: () => f.call('/cenc/getlicense/passgate_demo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }) },
    { name: 'revinfo', healthy: 200, call: () => f.call('/playready/revinfo.xml') },
  ];
}

test('outage: every DRM upstream answers the 503 HTML page; the callback caller (control plane) still works and is not logged', async (t) => {
  const f = await withSim(t);
  t.is((await postConfig(f, { faults: { outage: true } })).status, 200);
  for (const { name, call } of drmCalls(f)) {
    const response = await call();
    t.is(response.status, 503, name);
    t.regex(response.headers.get('content-type') ?? '', /^text\/html/, name);
    t.regex(await response.text(), /503 Service Temporarily Unavailable/, name);
  }

  const caller = await f.call('/sim/drm/callback', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: await hangUpUrl(t, '/usage'), userId: 'viewer-1', cid: CID, drmType: 'Widevine' }),
  });
  t.is(caller.status, 200);
  t.like(await caller.json(), { status: 'failed', errorCode: '8701' });

  const log = (await (await f.call('/sim/log')).json()) as SimLogEntry[];
  t.deepEqual(
    log.map((e) => [e.path, e.status]),
    [
      ['/ri/licenseManager.do', 503],
      ['/ri/fpsKeyManager.do', 503],
      ['/cenc/getlicense/passgate_demo', 503],
      ['/playready/revinfo.xml', 503],
    ],
  );

  await postConfig(f, { faults: { outage: false } });
  for (const { name, healthy, call } of drmCalls(f)) t.is((await call()).status, healthy, name);
});

test('errorRate 1: every DRM upstream answers HTTP 500 (an HTML page: the services document no 5xx body)', async (t) => {
  const f = await withSim(t);
  await postConfig(f, { faults: { errorRate: 1 } });
  for (const { name, call } of drmCalls(f)) {
    const response = await call();
    t.is(response.status, 500, name);
    t.regex(response.headers.get('content-type') ?? '', /^text\/html/, name);
  }
  await postConfig(f, { faults: { errorRate: 0 } });
  for (const { name, healthy, call } of drmCalls(f)) t.is((await call()).status, healthy, name);
});

test("the Pass throttle does not apply to the DRM upstreams", async (t) => {
  const f = await withSim(t, { throttle: { enabled: true, ratePerSecond: 1, burst: 1 } });
  for (let round = 0; round < 3; round++) {
    for (const { name, healthy, call } of drmCalls(f)) t.is((await call()).status, healthy, `${name}, round ${round}`);
  }
});
