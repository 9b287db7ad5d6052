import test from 'ava';
import {
  LICENSE_CONTENT_TYPES,
  LicenseServiceError,
  createLicenseServiceClient,
  isRevokedDeviceError,
  type LicenseAnswer,
  type LicenseServiceClientDeps,
  type LicenseSystemName,
} from '../../src/drm/pallycon/license-client.js';
import { mintLicenseToken, type DrmType, type MintInput } from '../../src/drm/pallycon/token.js';
import { ManualClock } from '../../src/infra/clock.js';
import { UpstreamUnavailableError } from '../../src/infra/upstream-http.js';
import { DEMO_DRM_SITE, FAKE_FAIRPLAY_CERTIFICATE } from '../../src/sim/rules.js';
import { startSim } from '../../src/sim/server.js';
import { startLocalUpstream, testUpstreamClient } from '../helpers/local-upstream.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

const policy = '{"policy_version":2,"playback_policy":{"persistent":false,"license_duration":3600}}';
const CID = 'ref30-episode-1';
const HOUR = 3_600_000;

const drmTypes: Record<LicenseSystemName, DrmType> = { widevine: 'Widevine', playready: 'PlayReady', fairplay: 'FairPlay' };

function mint(f: Pick<SimFixture, 'clock'>, system: LicenseSystemName, changes: Partial<MintInput> = {}): string {
  return mintLicenseToken({
    siteId: DEMO_DRM_SITE.siteId,
    siteKey: DEMO_DRM_SITE.siteKey,
    accessKey: DEMO_DRM_SITE.accessKey,
    drmType: drmTypes[system],
    userId: 'viewer-1',
    cid: CID,
    policy,
    timestamp: f.clock.now(),
    ...changes,
  }).token;
}

/** Challenges as apps send them, naming their content with the simulator's `content_id=` marker. */
function challenge(system: LicenseSystemName, cid = CID): Buffer {
  switch (system) {
    case 'widevine':
      return Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x80]), Buffer.from(` content_id=${cid} `), Buffer.from([0, 1, 2, 255])]);
    case 'playready':
      return Buffer.from(
        `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` +
          `<AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge><Challenge><LA><ContentHeader>content_id=${cid}</ContentHeader>` +
          `</LA></Challenge></challenge></AcquireLicense></soap:Body></soap:Envelope>`,
      );
    case 'fairplay':
      return Buffer.from(`spc=${encodeURIComponent(Buffer.from(`fake SPC content_id=${cid} \u0000\u0001`).toString('base64'))}`);
  }
}

function client(t: Parameters<typeof testUpstreamClient>[0], baseUrl: string, deps: Partial<LicenseServiceClientDeps> = {}) {
  const upstream = testUpstreamClient(t, baseUrl, { name: 'drm', breaker: { consecutiveFailures: 50 } });
  const clock = new ManualClock();
  const license = createLicenseServiceClient({ http: upstream.client, siteId: DEMO_DRM_SITE.siteId, clock, logger: upstream.log.logger, ...deps });
  return { license, clock, upstream };
}

/** The banner line of the simulator's fake license (base64 text for PlayReady and FairPlay). */
function banner(system: LicenseSystemName, answer: LicenseAnswer): string | undefined {
  if (!answer.ok) return `error ${answer.errorCode}`;
  const bytes = system === 'widevine' ? answer.body : Buffer.from(answer.body.toString('utf8'), 'base64');
  return bytes.toString('utf8').split('\n')[0];
}

const failure = (answer: LicenseAnswer) => (answer.ok ? { ok: true } : { ok: false, errorCode: answer.errorCode });

async function certificateGets(f: SimFixture): Promise<number> {
  const log = (await (await f.call('/sim/log')).json()) as { method: string; path: string }[];
  return log.filter((entry) => entry.method === 'GET' && entry.path === '/ri/fpsKeyManager.do').length;
}

const postConfig = (f: SimFixture, body: object) =>
  f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('a valid token buys a license for each system, relayed with the service content type', async (t) => {
  const f = await withSim(t);
  const { license } = client(t, f.url);
  const expected: Record<LicenseSystemName, { banner: string; type: string }> = {
    widevine: { banner: 'PASSGATE-SIM FAKE WIDEVINE LICENSE', type: 'application/octet-stream' },
    playready: { banner: 'PASSGATE-SIM FAKE PLAYREADY LICENSE', type: 'text/plain; charset=utf-8' },
    fairplay: { banner: 'PASSGATE-SIM FAKE FAIRPLAY LICENSE', type: 'text/plain; charset=utf-8' },
  };
  for (const system of ['widevine', 'playready', 'fairplay'] as const) {
    const answer = await license.requestLicense({ system, challenge: challenge(system), token: mint(f, system) });
    t.is(banner(system, answer), expected[system].banner, system);
    t.is(answer.ok && answer.contentType, expected[system].type, system);
  }
  const log = (await (await f.call('/sim/log')).json()) as { method: string; path: string; status: number; headers: Record<string, string> }[];
  t.deepEqual(
    log.map((entry) => [entry.method, entry.path, entry.status, entry.headers['content-type']]),
    [
      ['POST', '/ri/licenseManager.do', 200, 'application/octet-stream'],
      ['POST', '/ri/licenseManager.do', 200, 'text/xml; charset=utf-8'],
      ['POST', '/ri/licenseManager.do', 200, 'application/x-www-form-urlencoded'],
    ],
  );
});

test('service refusals come back as ok:false with the documented code: other cid 7012, expired 7011', async (t) => {
  const f = await withSim(t);
  const { license } = client(t, f.url);
  const otherCid = await license.requestLicense({ system: 'widevine', challenge: challenge('widevine'), token: mint(f, 'widevine', { cid: 'ref30-episode-2' }) });
  t.deepEqual(otherCid, { ok: false, errorCode: '7012', message: "Does not match with token's CID." });

  const token = mint(f, 'playready');
  f.clock.advance(601_000); // past the 600 s window on the simulator clock
  const expired = await license.requestLicense({ system: 'playready', challenge: challenge('playready'), token });
  t.deepEqual(expired, { ok: false, errorCode: '7011', message: 'Token is expired.' });

  const past = await license.requestLicense({ system: 'fairplay', challenge: challenge('fairplay'), token: mint(f, 'fairplay', { timestamp: f.clock.now() - 700_000 }) });
  t.deepEqual(failure(past), { ok: false, errorCode: '7011' });
});

test('a revoked device answers 7110, which isRevokedDeviceError recognises', async (t) => {
  const f = await withSim(t);
  t.is((await postConfig(f, { drm: { revokedUserIds: ['viewer-revoked'] } })).status, 200);
  const { license, upstream } = client(t, f.url);
  const token = mint(f, 'widevine', { userId: 'viewer-revoked' });
  const answer = await license.requestLicense({ system: 'widevine', challenge: challenge('widevine'), token });
  t.deepEqual(failure(answer), { ok: false, errorCode: '7110' });
  t.like(upstream.log.lines.find((line) => line.msg === 'license service refused'), { system: 'widevine', errorCode: '7110', status: 200 });
  t.false(upstream.log.text().includes(token.slice(0, 24)), 'the log holds no token');
  t.true(!answer.ok && isRevokedDeviceError(answer.errorCode));
  const other = await license.requestLicense({ system: 'widevine', challenge: challenge('widevine'), token: mint(f, 'widevine') });
  t.true(other.ok, 'other users still get licenses');
});

test('isRevokedDeviceError: 7110 and PlayReady 0x8004C065 in its spellings, nothing else', (t) => {
  for (const code of ['7110', ' 7110 ', '0x8004C065', '0x8004c065', '8004C065', '8004c065', '-2147172251']) t.true(isRevokedDeviceError(code), code);
  for (const code of ['7011', '71100', '0x7110', '8004C066', '0x8004C0650', '', 'http_403']) t.false(isRevokedDeviceError(code), code);
});

test('the FairPlay certificate is fetched once, shared by concurrent callers, and refetched after the TTL', async (t) => {
  const f = await withSim(t);
  const { license, clock } = client(t, f.url, { certificateTtlMs: HOUR });
  const first = await Promise.all([license.fairplayCertificate(), license.fairplayCertificate(), license.fairplayCertificate()]);
  t.deepEqual(first, [FAKE_FAIRPLAY_CERTIFICATE, FAKE_FAIRPLAY_CERTIFICATE, FAKE_FAIRPLAY_CERTIFICATE]);
  t.is(await certificateGets(f), 1, 'concurrent misses make one GET');
  clock.advance(HOUR - 1);
  t.is(await license.fairplayCertificate(), FAKE_FAIRPLAY_CERTIFICATE);
  t.is(await certificateGets(f), 1, 'served from the cache within the TTL');
  clock.advance(1);
  t.is(await license.fairplayCertificate(), FAKE_FAIRPLAY_CERTIFICATE);
  t.is(await certificateGets(f), 2, 'refetched once the TTL is over');
  const log = (await (await f.call('/sim/log')).json()) as { query: Record<string, string> }[];
  t.deepEqual(log[0]?.query, { siteId: 'DEMO' });
});

test('a certificate error answer throws LicenseServiceError and is not cached', async (t) => {
  const f = await withSim(t);
  const unknown = client(t, f.url, { siteId: 'NOPE' }).license;
  for (let i = 0; i < 2; i++) {
    const error = await t.throwsAsync(unknown.fairplayCertificate(), { instanceOf: LicenseServiceError });
    t.is(error?.errorCode, '1003');
    t.is(error?.message, 'Cannot find the Site ID.');
  }
  t.is(await certificateGets(f), 2, 'the error was not cached');

  // The site loses its certificate, then gets it back: the error in between is not remembered.
  const { license } = client(t, f.url);
  const site = { siteKey: DEMO_DRM_SITE.siteKey, accessKey: DEMO_DRM_SITE.accessKey };
  t.is((await postConfig(f, { drm: { sites: { DEMO: { ...site, fairplayCertificate: null } } } })).status, 200);
  t.is((await t.throwsAsync(license.fairplayCertificate(), { instanceOf: LicenseServiceError }))?.errorCode, '7301');
  t.is((await postConfig(f, { drm: { sites: { DEMO: site } } })).status, 200);
  t.is(await license.fairplayCertificate(), FAKE_FAIRPLAY_CERTIFICATE);
});

test('a stopped license service is UpstreamUnavailableError for licenses and certificates', async (t) => {
  // Its own simulator: withSim's teardown would close it a second time.
  const clock = new ManualClock(Date.UTC(2026, 10, 24, 12, 0, 0));
  const sim = await startSim({ port: 0, clock });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : sim.close()));
  const { license } = client(t, sim.url);
  const token = mint({ clock }, 'widevine');
  t.true((await license.requestLicense({ system: 'widevine', challenge: challenge('widevine'), token })).ok, 'served while up');
  await sim.close();
  stopped = true;
  const error = await t.throwsAsync(license.requestLicense({ system: 'widevine', challenge: challenge('widevine'), token }), { instanceOf: UpstreamUnavailableError });
  t.is(error?.reason, 'network');
  t.is((await t.throwsAsync(license.fairplayCertificate(), { instanceOf: UpstreamUnavailableError }))?.reason, 'network');
});

test('requests carry the token, client meta and content type; 5xx is unavailable and never retried', async (t) => {
  const local = await startLocalUpstream(t, (req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.from('LICENSE'));
    } else {
      res.writeHead(503, { 'retry-after': '7' });
      res.end('down');
    }
  });
  const { license } = client(t, local.url, { licensePath: '/custom/license' });
  const meta = Buffer.from(JSON.stringify({ device_info: { device_model: 'TV', os_version: '17' } })).toString('base64');
  const answer = await license.requestLicense({ system: 'playready', challenge: Buffer.from('<AcquireLicense/>'), token: 'dG9rZW4=', clientMeta: meta });
  t.deepEqual(answer, { ok: true, body: Buffer.from('LICENSE'), contentType: 'application/octet-stream' });
  t.like(local.seen[0], { method: 'POST', url: '/custom/license', body: '<AcquireLicense/>' });
  t.like(local.seen[0]?.headers, { 'content-type': LICENSE_CONTENT_TYPES.playready, 'pallycon-customdata-v2': 'dG9rZW4=', 'pallycon-client-meta': meta });

  const error = await t.throwsAsync(license.requestLicense({ system: 'widevine', challenge: Buffer.from([1]), token: 'dG9rZW4=' }), {
    instanceOf: UpstreamUnavailableError,
  });
  t.is(error?.reason, 'server_error');
  t.is(error?.retryAfterMs, 7_000);
  t.is(local.seen.length, 2, 'a license POST is not retried');
  t.false('pallycon-client-meta' in (local.seen[1]?.headers ?? {}));
});

test('odd answers: error JSON with a numeric code, 4xx, oversized and empty bodies, bad client meta', async (t) => {
  const answers: Array<[number, string, string | Buffer]> = [
    [200, 'text/plain', ' {"errorCode": 7011, "message": "Token is expired."}'],
    [200, 'application/json', '{"license":"00ff","device_info":{"device_id":"abc"}}'],
    [403, 'text/html', '<h1>Forbidden</h1>'],
    [413, 'application/json', '{"errorCode":"7107","message":"Invalid Widevine license challenge data."}'],
    [200, 'application/octet-stream', Buffer.alloc(2048, 7)],
    [200, 'application/octet-stream', ''],
  ];
  const local = await startLocalUpstream(t, (req, res, n) => {
    const [status, type, body] = answers[n - 1] ?? [500, 'text/plain', 'unexpected'];
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  });
  const { license } = client(t, local.url, { maxLicenseBytes: 1024 });
  const ask = (clientMeta?: string) =>
    license.requestLicense({ system: 'widevine', challenge: Buffer.from([1, 2]), token: 'dG9rZW4=', ...(clientMeta !== undefined ? { clientMeta } : {}) });

  t.deepEqual(await ask(), { ok: false, errorCode: '7011', message: 'Token is expired.' });
  t.deepEqual(await ask(), { ok: true, body: Buffer.from(answers[1]?.[2] ?? ''), contentType: 'application/json' }, 'a JSON envelope without errorCode is a license');
  t.deepEqual(failure(await ask()), { ok: false, errorCode: 'http_403' });
  t.deepEqual(failure(await ask()), { ok: false, errorCode: '7107' });
  t.deepEqual(failure(await ask()), { ok: false, errorCode: 'oversized' });
  t.deepEqual(failure(await ask()), { ok: false, errorCode: 'empty_license' });
  t.deepEqual(failure(await ask('not base64\r\nx-evil: 1')), { ok: false, errorCode: 'invalid_client_meta' });
  t.is(local.seen.length, 6, 'bad client meta never leaves passgate');
});

test('a certificate answer that is not base64 is refused and not cached', async (t) => {
  const local = await startLocalUpstream(t, (req, res, n) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(n === 1 ? '<html>maintenance</html>' : `${FAKE_FAIRPLAY_CERTIFICATE}\n`);
  });
  const { license } = client(t, local.url);
  t.is((await t.throwsAsync(license.fairplayCertificate(), { instanceOf: LicenseServiceError }))?.errorCode, 'invalid_certificate');
  t.is(await license.fairplayCertificate(), FAKE_FAIRPLAY_CERTIFICATE);
  t.is(await license.fairplayCertificate(), FAKE_FAIRPLAY_CERTIFICATE);
  t.is(local.seen.length, 2);
});
