import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { bundledConfigFile } from '../../src/config/package.js';
import { verifySignature } from '../../src/drm/widevine/index.js';
import { ManualClock } from '../../src/infra/clock.js';
import { DEMO_WIDEVINE_PROVIDER, defaultRules, simRulesSchema, type SimRulesInput } from '../../src/sim/rules.js';
import { startSim } from '../../src/sim/server.js';
import { demoEntitlements } from '../entitlement/fixture.js';
import { drmSection } from '../helpers/drm-config.js';
import { startLocalUpstream, type SeenRequest } from '../helpers/local-upstream.js';
import { tempDir } from '../helpers/with-app.js';
import { authorized, challengeFor, degradedPermit, fakeLicenseOf, postLicense, problemOf, sample, userIdOf, withDrm, type Device, type DrmFixture } from './drm-fixture.js';

/**
 * Widevine direct mode (drm.md §3): with drm.widevine.service widevine_cloud, POST
 * /v1/license/widevine goes through the gate and then straight to the (simulated) Widevine cloud
 * license service as a signed envelope, with the catalogue policy mapped to the license message.
 */

const LICENSE_PATH = `/cenc/getlicense/${DEMO_WIDEVINE_PROVIDER.provider}`;
const providerKey = Buffer.from(DEMO_WIDEVINE_PROVIDER.key, 'hex');
const providerIv = Buffer.from(DEMO_WIDEVINE_PROVIDER.iv, 'hex');

/** The widevine section of drm for direct mode; RevInfo is left out (no download at start-up). */
const directDrm = (widevine: Record<string, unknown> = {}) =>
  drmSection({
    widevine: { service: 'widevine_cloud', provider: DEMO_WIDEVINE_PROVIDER.provider, signing_key: DEMO_WIDEVINE_PROVIDER.key, signing_iv: DEMO_WIDEVINE_PROVIDER.iv, ...widevine },
    playready: {},
  });

interface DirectFixture extends DrmFixture {
  /** The envelopes passgate sent towards the Widevine cloud service, as seen on the wire. */
  envelopes(): SeenRequest[];
}

/**
 * passgate in Widevine direct mode. Its drm upstream is a recording hop in front of the
 * simulator (the sim log keeps no bodies), so the test can read the envelope passgate signed.
 */
async function withDirect(t: ExecutionContext, simRules: Partial<SimRulesInput> = {}, widevine: Record<string, unknown> = {}): Promise<DirectFixture> {
  const forward: { target?: string } = {};
  const hop = await startLocalUpstream(t, (req, res) => {
    const { target } = forward;
    if (!target) {
      res.writeHead(503).end();
      return;
    }
    void fetch(`${target}${req.url}`, { method: req.method, headers: { 'content-type': String(req.headers['content-type'] ?? '') }, body: req.body })
      .then(async (answer) => {
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' });
        res.end(Buffer.from(await answer.arrayBuffer()));
      })
      .catch(() => res.writeHead(502).end());
  });
  const f = await withDrm(t, simRules, { file: { drm: directDrm(widevine) }, env: { DRM_BASE_URL: hop.url } });
  forward.target = f.sim.url;
  return { ...f, envelopes: () => hop.seen.filter((r) => r.url === LICENSE_PATH) };
}

/** The decoded license message of an envelope, after checking its signature with the provider's key. */
function messageOf(t: ExecutionContext, seen: SeenRequest | undefined): Record<string, unknown> {
  const envelope = JSON.parse(seen?.body ?? '{}') as { request: string; signature: string; signer: string };
  t.deepEqual(Object.keys(envelope).sort(), ['request', 'signature', 'signer']);
  t.is(envelope.signer, DEMO_WIDEVINE_PROVIDER.provider);
  const request = Buffer.from(envelope.request, 'base64');
  t.true(verifySignature(request, envelope.signature, providerKey, providerIv), 'the envelope signature verifies under the provider key');
  return JSON.parse(request.toString('utf8')) as Record<string, unknown>;
}

const streamingOverrides = { can_play: true, can_persist: false, license_duration_seconds: 3600, rental_duration_seconds: 0, playback_duration_seconds: 0 };

test('widevine direct: a Permit gets the cloud license; the signed envelope carries the streaming policy; one grant audit line', async (t) => {
  const f = await withDirect(t);
  const device = await f.signedIn();
  await authorized(f, device, 'REF30');
  const sent = challengeFor('widevine', 'ref30-movie');

  const response = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie', sent);
  const body = Buffer.from(await response.arrayBuffer());
  t.is(response.status, 200, body.toString('utf8').slice(0, 300));
  t.is(response.headers.get('content-type'), 'application/octet-stream');
  t.is(response.headers.get('cache-control'), 'no-store');
  const license = fakeLicenseOf(body);
  t.is(license.header, 'PASSGATE-SIM FAKE WIDEVINE CLOUD LICENSE');
  t.deepEqual(license.summary, {
    system: 'Widevine',
    provider: DEMO_WIDEVINE_PROVIDER.provider,
    content_id: 'ref30-movie',
    issued_at: new Date(f.clock.now()).toISOString(),
    policy_overrides: streamingOverrides,
    session_init: {},
  });

  const calls = await f.calls('drm.widevine.license');
  t.is(calls.length, 1);
  t.like(calls[0], { method: 'POST', path: LICENSE_PATH, status: 200 });
  t.is((await f.calls('drm.license')).length, 0, 'the PallyCon service is not asked');
  const envelopes = f.envelopes();
  t.is(envelopes.length, 1);
  t.deepEqual(messageOf(t, envelopes[0]), {
    payload: Buffer.from(sent.body).toString('base64'),
    content_id: Buffer.from('ref30-movie').toString('base64'),
    provider: DEMO_WIDEVINE_PROVIDER.provider,
    policy_overrides: streamingOverrides,
    session_init: {},
  });

  const audit = f.audit();
  t.is(audit.length, 1, JSON.stringify(audit));
  t.like(audit[0], { outcome: 'grant', reason: 'granted', mode: 'widevine_direct', system: 'widevine', via: 'license', app: 'demo', resource: 'REF30', contentId: 'ref30-movie', source: 'mvpd' });
  t.is(audit[0]?.userId, userIdOf(f, device));
  t.false(f.log.text().includes(DEMO_WIDEVINE_PROVIDER.key), 'the signing key is never logged');
  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_license_decisions_total', 'system="widevine",mode="widevine_direct",outcome="grant",reason="granted"'), 1);
});

test("widevine direct: on a degraded Permit license_duration_seconds is the time left to the Permit's notAfter, not the policy's 3600 (README \"Degraded access\")", async (t) => {
  const f = await withDirect(t);
  const device = await f.device();
  const notAfter = Date.parse((await degradedPermit(f, device)).notAfter);
  f.clock.advance(60_000);
  const response = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  const body = Buffer.from(await response.arrayBuffer());
  t.is(response.status, 200, body.toString('utf8').slice(0, 300));
  const overrides = fakeLicenseOf(body).summary.policy_overrides as typeof streamingOverrides;
  const left = (notAfter - f.clock.now()) / 1000;
  t.true(overrides.license_duration_seconds <= left && overrides.license_duration_seconds > left - 2, `license_duration_seconds ${overrides.license_duration_seconds}, ${left} s left`);
  t.like(overrides, { can_play: true, rental_duration_seconds: 0, playback_duration_seconds: 0 });
});

test('widevine direct: the premium policy becomes content_key_specs (security level 3, HDCP_V2) for every allowed track; an MVPD Permit keeps its duration', async (t) => {
  const f = await withDirect(t, { entitlements: [{ mvpd: 'Cablevision', resource: '*', decision: 'permit' }] });
  const device = await f.signedIn();
  await authorized(f, device, 'PREMIUM');

  const response = await postLicense(f, device, 'widevine', 'PREMIUM', 'premium-film');
  const body = Buffer.from(await response.arrayBuffer());
  t.is(response.status, 200, body.toString('utf8').slice(0, 300));

  const spec = (track_type: string) => ({ track_type, security_level: 3, required_output_protection: { hdcp: 'HDCP_V2' } });
  // allowed_track_types SD_HD: SD, HD and AUDIO, and no allowed_track_types beside content_key_specs.
  const specs = [spec('SD'), spec('HD'), spec('AUDIO')];
  const message = messageOf(t, f.envelopes()[0]);
  t.deepEqual(message.content_key_specs, specs);
  t.false('allowed_track_types' in message);
  // premium's 7200 s outlasts the 1 h Permit, and stays: an MVPD Permit gates the start of playback, a
  // running stream continues past it (checklist, authorization M). TempPass and degraded Permits are bounded.
  t.deepEqual(message.policy_overrides, { ...streamingOverrides, license_duration_seconds: 7200 });
  t.like(fakeLicenseOf(body).summary, { content_id: 'premium-film', content_key_specs: specs, policy_overrides: { license_duration_seconds: 7200 } });

  t.is((await f.calls('drm.widevine.license')).length, 1);
  const audit = f.audit();
  t.is(audit.length, 1);
  t.like(audit[0], { outcome: 'grant', mode: 'widevine_direct', resource: 'PREMIUM', contentId: 'premium-film' });
});

interface RefusalCase {
  name: string;
  code: string;
  resource: string;
  contentId: string;
  /** What happens before the license request (a Permit, a Deny, …). */
  arrange(f: DrmFixture, device: Device): Promise<unknown>;
}

const refusals: RefusalCase[] = [
  { name: 'a content id outside the resource', code: 'content_not_in_resource', resource: 'REF30', contentId: 'premium-film', arrange: (f, d) => authorized(f, d, 'REF30') },
  {
    name: 'the Permit expired',
    code: 'permit_expired',
    resource: 'REF30',
    contentId: 'ref30-movie',
    arrange: async (f, d) => {
      await authorized(f, d, 'REF30');
      f.clock.advance(3600_000 + 1000);
    },
  },
  {
    name: 'after logout',
    code: 'logged_out',
    resource: 'REF30',
    contentId: 'ref30-movie',
    arrange: async (f, d) => {
      await authorized(f, d, 'REF30');
      const logout = await f.post(d, '/v1/logout', {});
      if (logout.status !== 200) throw new Error(`logout: ${logout.status}`);
    },
  },
  { name: 'the latest decision is a Deny', code: 'permit_denied', resource: 'PREMIUM', contentId: 'premium-film', arrange: (f, d) => authorized(f, d, 'PREMIUM', { status: 403 }) },
];

for (const c of refusals) {
  test(`widevine direct refusal: ${c.name} → 403 ${c.code}, one refusal audit line, no cloud call`, async (t) => {
    const f = await withDirect(t);
    const device = await f.signedIn();
    await c.arrange(f, device);

    const response = await postLicense(f, device, 'widevine', c.resource, c.contentId);
    t.is(response.status, 403);
    t.is((await problemOf(response)).code, c.code);
    t.is((await f.calls('drm.widevine.license')).length, 0);
    t.is(f.envelopes().length, 0);
    const audit = f.audit();
    t.is(audit.length, 1, JSON.stringify(audit));
    t.like(audit[0], { outcome: 'refuse', reason: c.code, mode: 'widevine_direct', system: 'widevine', via: 'license', app: 'demo', resource: c.resource, contentId: c.contentId });
  });
}

test('widevine direct: a device the cloud reports revoked is refused, recorded (license_service) and refused afterwards without a cloud call', async (t) => {
  const f = await withDirect(t);
  const device = await f.signedIn();
  await authorized(f, device, 'REF30');
  await f.simConfig({ drm: { ...f.sim.state.rules.drm, widevine: { ...f.sim.state.rules.drm.widevine, revokedDevices: ['wv-revoked-7'] } } });

  const revoked = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie', challengeFor('widevine', 'ref30-movie', { device: 'wv-revoked-7' }));
  t.is(revoked.status, 403);
  t.is((await problemOf(revoked)).code, 'device_revoked');
  t.is((await f.calls('drm.widevine.license')).length, 1);

  const userId = userIdOf(f, device);
  const record = await f.passgate.services.drm.revocations?.revocation({ appId: device.appId, binding: device.binding });
  t.like(record, { appId: device.appId, binding: device.binding, userId, source: 'license_service', at: f.clock.now() });
  t.regex(record?.reason ?? '', /DRM_DEVICE_CERTIFICATE_REVOKED/);

  // Another challenge without the marker: passgate refuses by itself.
  const again = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  t.is(again.status, 403);
  t.is((await problemOf(again)).code, 'device_revoked');
  t.is((await f.calls('drm.widevine.license')).length, 1, 'no second cloud call for a revoked device');

  const audit = f.audit();
  t.is(audit.length, 2, JSON.stringify(audit));
  t.like(audit[0], { outcome: 'refuse', reason: 'device_revoked', mode: 'widevine_direct', userId, licenseServiceCode: '127', source: 'mvpd' });
  t.like(audit[1], { outcome: 'refuse', reason: 'device_revoked', mode: 'widevine_direct' });
  t.is(audit[1]?.licenseServiceCode, undefined);
  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_license_service_errors_total', 'code="127"'), 1);
});

test('widevine direct: a challenge for another content id than the query is 400 invalid_challenge naming INVALID_CONTENT_INFO; nothing is revoked', async (t) => {
  const f = await withDirect(t);
  const device = await f.signedIn();
  await authorized(f, device, 'REF30');

  // Same resource and a query content id inside it: only the challenge's own content id differs.
  const response = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie', challengeFor('widevine', 'ref30-other'));
  t.is(response.status, 400);
  const problem = await problemOf(response);
  t.is(problem.code, 'invalid_challenge');
  t.is(problem.upstream?.code, 'INVALID_CONTENT_INFO');
  t.is((await f.calls('drm.widevine.license')).length, 1);
  // passgate signed the query's content id; the cloud found the challenge names another.
  t.like(messageOf(t, f.envelopes()[0]), { content_id: Buffer.from('ref30-movie').toString('base64') });

  const audit = f.audit();
  t.is(audit.length, 1, JSON.stringify(audit));
  t.like(audit[0], { outcome: 'refuse', reason: 'invalid_challenge', mode: 'widevine_direct', system: 'widevine', via: 'license', resource: 'REF30', contentId: 'ref30-movie', licenseServiceCode: 'INVALID_CONTENT_INFO', source: 'mvpd' });
  t.is(sample(await f.metrics(), 'passgate_drm_license_decisions_total', 'system="widevine",mode="widevine_direct",outcome="refuse",reason="invalid_challenge"'), 1);
  t.is(await f.passgate.services.drm.revocations?.revocation({ appId: device.appId, binding: device.binding }), undefined, 'a wrong challenge revokes nothing');

  t.is((await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie')).status, 200, 'the right challenge is licensed');
});

test('widevine direct: a signing key the cloud does not know is 502 license_refused naming SIGNATURE_FAILED', async (t) => {
  const f = await withDirect(t, {}, { signing_key: '0f'.repeat(32) });
  const device = await f.signedIn();
  await authorized(f, device, 'REF30');

  const response = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  t.is(response.status, 502);
  const problem = await problemOf(response);
  t.is(problem.code, 'license_refused');
  t.is(problem.upstream?.code, 'SIGNATURE_FAILED');
  const calls = await f.calls('drm.widevine.license');
  t.is(calls.length, 1);
  t.is(calls[0]?.status, 200, 'the cloud refuses in a 200 answer');
  // The envelope is well formed but signed with the other key.
  const envelope = JSON.parse(f.envelopes()[0]?.body ?? '{}') as { request: string; signature: string };
  t.false(verifySignature(Buffer.from(envelope.request, 'base64'), envelope.signature, providerKey, providerIv));
  t.true(verifySignature(Buffer.from(envelope.request, 'base64'), envelope.signature, Buffer.from('0f'.repeat(32), 'hex'), providerIv));

  const audit = f.audit();
  t.is(audit.length, 1);
  t.like(audit[0], { outcome: 'refuse', reason: 'license_refused', mode: 'widevine_direct', licenseServiceCode: 'SIGNATURE_FAILED', source: 'mvpd' });
  t.is(await f.passgate.services.drm.revocations?.revocation({ appId: device.appId, binding: device.binding }), undefined, 'a signature failure revokes nothing');
});

test('widevine direct: with the simulator closed the answer is 503 license_service_unavailable with Retry-After', async (t) => {
  const clock = new ManualClock(Date.now());
  const sim = await startSim({
    port: 0,
    clock,
    rules: simRulesSchema.parse({ ...defaultRules(), throttle: { enabled: false, ratePerSecond: 1, burst: 10 }, entitlements: demoEntitlements }),
  });
  let open = true;
  t.teardown(async () => {
    if (open) await sim.close();
  });
  const f = await withDrm(t, {}, { sim, clock, file: { drm: directDrm() } });
  const device = await f.signedIn();
  await authorized(f, device, 'REF30');
  open = false;
  await sim.close();

  const response = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  t.is(response.status, 503);
  t.is((await problemOf(response)).code, 'license_service_unavailable');
  t.regex(response.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
  const audit = f.audit();
  t.is(audit.length, 1);
  t.like(audit[0], { outcome: 'refuse', reason: 'license_service_unavailable', mode: 'widevine_direct', system: 'widevine', source: 'mvpd' });
});

test('config: widevine_cloud without a provider is a ConfigError naming drm.widevine.provider', async (t) => {
  const file = parse(readFileSync(bundledConfigFile, 'utf8')) as Record<string, unknown>;
  const drm = directDrm();
  const { provider: _, ...widevine } = drm.widevine as Record<string, unknown>;
  const path = join(await tempDir(t), 'passgate.yaml');
  await writeFile(path, JSON.stringify({ ...file, drm: { ...drm, widevine } }));

  const error = t.throws(() => loadConfig({ PASSGATE_CONFIG: path }), { instanceOf: ConfigError }) as ConfigError;
  t.deepEqual(
    error.problems.filter((p) => p.startsWith('drm.')),
    ['drm.widevine.provider: required when drm.widevine.service is widevine_cloud'],
  );
  t.false(error.message.includes(DEMO_WIDEVINE_PROVIDER.key), 'the signing key is not echoed');

  // The same file with the provider loads.
  await writeFile(path, JSON.stringify({ ...file, drm }));
  t.like(loadConfig({ PASSGATE_CONFIG: path }).drm?.widevine, { service: 'widevine_cloud', provider: DEMO_WIDEVINE_PROVIDER.provider });
});
