import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { parse, stringify } from 'yaml';
import { ConfigError, describeConfig, loadConfig, type Env } from '../../src/config/load.js';
import { bundledConfigFile, packageRoot } from '../../src/config/package.js';
import { DEMO_DRM_SITE, DEMO_WIDEVINE_PROVIDER } from '../../src/sim/rules.js';
import { tempDir } from '../helpers/with-app.js';

/** config/example.yaml as an object, to change one thing at a time. */
type Example = Record<string, unknown> & {
  upstreams: Record<string, unknown>;
  catalogue: Record<string, { content_ids: unknown; policy: unknown }>;
  policies: Record<string, Record<string, unknown> & { playback_policy: Record<string, unknown>; security_policy?: Array<Record<string, Record<string, unknown>>> }>;
  drm?: Record<string, unknown> & { widevine: Record<string, unknown>; playready: Record<string, unknown> };
};
const example = (): Example => parse(readFileSync(bundledConfigFile, 'utf8')) as Example;

/** Secret values that would have to leak for a test below to catch it. */
const siteKeyFromEnv = 'env-site-key-0123456789abcdef-32';
const accessKeyFromFile = 'file-access-key-very-private-000';
const signingKeyFromFile = 'ab'.repeat(32);
const signingIvFromEnv = 'cd'.repeat(16);

async function configFile(t: ExecutionContext, content: object): Promise<string> {
  const file = join(await tempDir(t), 'passgate.yaml');
  await writeFile(file, stringify(content));
  return file;
}

/** The problem lines of the ConfigError loading `config` throws (without the "  - " bullet). */
async function problems(t: ExecutionContext, config: object, env: Env = {}): Promise<string[]> {
  const file = await configFile(t, config);
  const error = t.throws(() => loadConfig({ PASSGATE_CONFIG: file, ...env }), { instanceOf: ConfigError }) as ConfigError;
  t.false(error.message.includes('    at '), 'no stack trace');
  t.deepEqual(
    error.message.split('\n').slice(1),
    error.problems.map((p) => `  - ${p}`),
    'one line per problem',
  );
  return [...error.problems];
}

/** The example with the drm secrets read from the environment and from files. */
async function withSecretRefs(t: ExecutionContext): Promise<{ config: Example; env: Env }> {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'access_key'), `${accessKeyFromFile}\n`);
  await writeFile(join(dir, 'signing_key'), signingKeyFromFile);
  const config = example();
  Object.assign(config.drm ?? {}, { site_key: { env: 'DRM_SITE_KEY' }, access_key: { file: join(dir, 'access_key') } });
  Object.assign(config.drm?.widevine ?? {}, { signing_key: { file: join(dir, 'signing_key') }, signing_iv: { env: 'WIDEVINE_IV' } });
  return { config, env: { DRM_SITE_KEY: siteKeyFromEnv, WIDEVINE_IV: signingIvFromEnv } };
}

test('the bundled example loads with the DEMO site, the catalogue and both policies', (t) => {
  const drm = loadConfig({}).drm;
  if (!drm) return t.fail('no drm config');
  t.is(drm.mode, 'token');
  t.is(drm.siteId, 'DEMO');
  t.is(drm.siteKey.reveal(), DEMO_DRM_SITE.siteKey);
  t.is(drm.accessKey.reveal(), DEMO_DRM_SITE.accessKey);
  t.is(drm.licenseUrl, 'http://127.0.0.1:8081/ri/licenseManager.do');
  t.is(drm.tokenValiditySeconds, 600);
  t.is(drm.permitL1Ms, 1000);
  t.deepEqual(drm.catalogue, {
    REF30: { resource: 'REF30', exact: [], prefixes: ['ref30-'], policy: 'streaming' },
    PREMIUM: { resource: 'PREMIUM', exact: [], prefixes: ['premium-'], policy: 'premium' },
  });
  t.deepEqual(Object.keys(drm.policies), ['streaming', 'premium']);
  t.deepEqual(JSON.parse(drm.policies.streaming?.text ?? ''), { policy_version: 2, playback_policy: { persistent: false, license_duration: 3600 } });
  t.like(drm.policies.premium?.policy, { policy_version: 2, playback_policy: { allowed_track_types: 'SD_HD', license_duration: 7200 } });
  t.is(drm.widevine.service, 'pallycon');
  t.is(drm.widevine.provider, DEMO_WIDEVINE_PROVIDER.provider);
  t.is(drm.widevine.signingKey?.reveal(), DEMO_WIDEVINE_PROVIDER.key);
  t.is(drm.widevine.signingIv?.reveal(), DEMO_WIDEVINE_PROVIDER.iv);
  t.is(drm.widevine.licensePath, '/cenc/getlicense/{provider}');
  t.deepEqual(drm.playready, { revinfoUrl: 'http://127.0.0.1:8081/playready/revinfo.xml', revinfoRefreshMs: 168 * 3_600_000 });
});

test('the license URL and a RevInfo path resolve against DRM_BASE_URL', (t) => {
  const drm = loadConfig({ DRM_BASE_URL: 'http://drm.example.test:9000/' }).drm;
  t.is(drm?.licenseUrl, 'http://drm.example.test:9000/ri/licenseManager.do');
  t.is(drm?.playready.revinfoUrl, 'http://drm.example.test:9000/playready/revinfo.xml');
});

test('an absolute RevInfo URL and license_url are kept as given', async (t) => {
  const config = example();
  Object.assign(config.drm ?? {}, { license_url: 'https://license.example.test/ri/licenseManager.do', playready: { revinfo_url: 'https://revinfo.example.test/revinfo2.xml' } });
  const drm = loadConfig({ PASSGATE_CONFIG: await configFile(t, config) }).drm;
  t.is(drm?.licenseUrl, 'https://license.example.test/ri/licenseManager.do');
  t.is(drm?.playready.revinfoUrl, 'https://revinfo.example.test/revinfo2.xml');
});

test('no catalogue and no drm section: licenses are off, the config still loads', async (t) => {
  const { catalogue: _c, policies: _p, drm: _d, ...rest } = example();
  t.is(loadConfig({ PASSGATE_CONFIG: await configFile(t, rest) }).drm, undefined);
});

test('unknown policy enum values are each named at their path', async (t) => {
  const config = example();
  const premium = config.policies.premium;
  if (!premium?.security_policy?.[0]) return t.fail('the example lost its premium security policy');
  premium.playback_policy.allowed_track_types = 'HD_ONLY';
  Object.assign(premium.security_policy[0].widevine ?? {}, { security_level: 7 });
  Object.assign(premium.security_policy[0].playready ?? {}, { security_level: 100 });
  t.deepEqual(await problems(t, config), [
    'policies.premium.playback_policy.allowed_track_types: Invalid option: expected one of "ALL"|"SD_ONLY"|"SD_HD"|"SD_UHD1"|"SD_UHD2"',
    'policies.premium.security_policy[0].widevine.security_level: Too big: expected number to be <=5',
    'policies.premium.security_policy[0].playready.security_level: Invalid option: expected one of 150|2000|3000',
  ]);
});

test('a bad expire_date names the license token error 1011', async (t) => {
  const config = example();
  Object.assign(config.policies.streaming?.playback_policy ?? {}, { expire_date: '2026-01-01 00:00:00' });
  t.deepEqual(await problems(t, config), [
    "policies.streaming.playback_policy.expire_date: should be formatted 'YYYY-MM-DD'T'HH:mm:ss'Z' (license token error 1011)",
  ]);
});

test('external-key hex lengths carry the token errors 1040–1047', async (t) => {
  const config = example();
  const short = 'ab'.repeat(15);
  Object.assign(config.policies.streaming ?? {}, {
    external_key: {
      mpeg_cenc: [{ track_type: 'ALL', key_id: short, key: `${short}abcd`, iv: 'xy'.repeat(16) }],
      hls_aes: [{ key: short, iv: short }],
      ncg: { cek: 'ab'.repeat(16) },
    },
  });
  t.deepEqual(await problems(t, config), [
    'policies.streaming.external_key.mpeg_cenc[0].key_id: should be a 16-byte hex string (license token error 1040)',
    'policies.streaming.external_key.mpeg_cenc[0].key: should be a 16-byte hex string (license token error 1041)',
    'policies.streaming.external_key.mpeg_cenc[0].iv: should be a 16-byte hex string (license token error 1042)',
    'policies.streaming.external_key.hls_aes[0].key: should be a 16-byte hex string (license token error 1044)',
    'policies.streaming.external_key.hls_aes[0].iv: should be a 16-byte hex string (license token error 1045)',
    'policies.streaming.external_key.ncg.cek: should be a 32-byte hex string (license token error 1047)',
  ]);
});

test('well-formed external keys load', async (t) => {
  const config = example();
  const key = 'ab'.repeat(16);
  Object.assign(config.policies.streaming ?? {}, { external_key: { mpeg_cenc: [{ track_type: 'ALL', key_id: key, key, iv: key }], ncg: { cek: 'ab'.repeat(32) } } });
  const drm = loadConfig({ PASSGATE_CONFIG: await configFile(t, config) }).drm;
  t.is(drm?.policies.streaming?.policy.external_key?.mpeg_cenc?.[0]?.key_id, key);
});

test('a v1 field (limit) or policy_version 1 is refused, naming the field', async (t) => {
  const config = example();
  const streaming = config.policies.streaming;
  if (!streaming) return t.fail('no streaming policy');
  streaming.limit = true;
  streaming.playback_policy.limit = 3;
  config.policies.premium = { ...config.policies.premium, policy_version: 1 } as Example['policies'][string];
  t.deepEqual(await problems(t, config), [
    'policies.streaming.playback_policy.limit: unknown field in a license policy v2 (v1 fields such as limit are refused rather than ignored)',
    'policies.streaming.limit: unknown field in a license policy v2 (v1 fields such as limit are refused rather than ignored)',
    'policies.premium.policy_version: expected 2 (only license policy v2 is supported)',
  ]);
});

test('a catalogue entry naming an unknown policy lists the defined ones', async (t) => {
  const config = example();
  Object.assign(config.catalogue.REF30 ?? {}, { policy: 'gold' });
  t.deepEqual(await problems(t, config), ['catalogue.REF30.policy: unknown policy "gold" (expected one of: streaming, premium)']);
});

test('content ids: bad characters, too long, a bare * (every content id), an empty list', async (t) => {
  const config = example();
  config.catalogue.REF30 = { content_ids: ['ref30/movie', 'x'.repeat(201), 'ref 30-*', '*'], policy: 'streaming' };
  config.catalogue.PREMIUM = { content_ids: [], policy: 'premium' };
  const expected = "expected a content id (letters, digits, '.', '_', '-'; at most 200) or a non-empty prefix ending in '*'";
  t.deepEqual(await problems(t, config), [
    `catalogue.REF30.content_ids[0]: ${expected}`,
    `catalogue.REF30.content_ids[1]: ${expected}`,
    `catalogue.REF30.content_ids[2]: ${expected}`,
    `catalogue.REF30.content_ids[3]: ${expected}`,
    'catalogue.PREMIUM.content_ids: expected at least one content id or prefix',
  ]);
});

test('drm section problems are reported at once: site_id, access_key, mode, permit_l1_ms, unknown key', async (t) => {
  const config = example();
  const drm = config.drm;
  if (!drm) return t.fail('no drm section');
  delete drm.access_key;
  Object.assign(drm, { site_id: 'DEMO1', mode: 'tokens', permit_l1_ms: 5001, site_secret: 'typo' });
  t.deepEqual(await problems(t, config), [
    'drm.mode: Invalid option: expected one of "token"|"proxy"|"callback"',
    'drm.site_id: expected the 4-character site id (uppercase letters and digits) from the license service console (error 1002)',
    'drm.access_key: required, expected a non-empty string, { env: NAME } or { file: /path/to/secret }',
    'drm.permit_l1_ms: expected at most 5000 (the staleness bound after a logout)',
    'drm.site_secret: unknown key (check the spelling; keys are snake_case)',
  ]);
  // Lower case is not a console site id either.
  Object.assign(drm, { site_id: 'demo', access_key: DEMO_DRM_SITE.accessKey, mode: 'token', permit_l1_ms: 5000 });
  delete drm.site_secret;
  t.deepEqual(await problems(t, config), ['drm.site_id: expected the 4-character site id (uppercase letters and digits) from the license service console (error 1002)']);
});

test('cross-field drm problems are reported at once: site key length, widevine_cloud, signing key and IV, catalogue policy', async (t) => {
  const config = example();
  Object.assign(config.drm ?? {}, { site_key: 'thirty-one-bytes-site-key-demo!' });
  Object.assign(config.catalogue.PREMIUM ?? {}, { policy: 'gold' });
  config.drm!.widevine = { service: 'widevine_cloud', signing_key: 'abcd', signing_iv: 'xyz' };
  t.deepEqual(await problems(t, config), [
    'catalogue.PREMIUM.policy: unknown policy "gold" (expected one of: streaming, premium)',
    'drm.site_key: expected 32 bytes (the console site key; error 1004)',
    'drm.widevine.signing_key: expected 64 hex characters (the 32-byte provider key)',
    'drm.widevine.signing_iv: expected 32 hex characters (the 16-byte provider IV)',
    'drm.widevine.provider: required when drm.widevine.service is widevine_cloud',
  ]);
  config.drm!.widevine = { service: 'widevine_cloud' };
  Object.assign(config.drm ?? {}, { site_key: DEMO_DRM_SITE.siteKey });
  Object.assign(config.catalogue.PREMIUM ?? {}, { policy: 'premium' });
  t.deepEqual(await problems(t, config), [
    'drm.widevine.provider: required when drm.widevine.service is widevine_cloud',
    'drm.widevine.signing_key: required when drm.widevine.service is widevine_cloud',
    'drm.widevine.signing_iv: required when drm.widevine.service is widevine_cloud',
  ]);
});

test('a site key is counted in UTF-8 bytes, not characters', async (t) => {
  const config = example();
  // 31 characters, 32 bytes: 'é' is two bytes.
  Object.assign(config.drm ?? {}, { site_key: `é${'k'.repeat(30)}` });
  t.is(loadConfig({ PASSGATE_CONFIG: await configFile(t, config) }).drm?.siteKey.reveal().length, 31);
  Object.assign(config.drm ?? {}, { site_key: 'é'.repeat(16) + 'k' });
  t.deepEqual(await problems(t, config), ['drm.site_key: expected 32 bytes (the console site key; error 1004)']);
});

test('a RevInfo path without a drm upstream says what is missing', async (t) => {
  const config = example();
  delete config.upstreams.drm;
  t.deepEqual(await problems(t, config), [
    'upstreams.drm.base_url: required (or set DRM_BASE_URL)',
    'drm.license_url: required (or set upstreams.drm.base_url / DRM_BASE_URL)',
    'drm.playready.revinfo_url: a path needs upstreams.drm.base_url (or DRM_BASE_URL)',
  ]);
  Object.assign(config.drm?.playready ?? {}, { revinfo_url: 'revinfo.xml', revinfo_refresh_hours: 169 });
  t.deepEqual(await problems(t, config, { DRM_BASE_URL: 'http://drm.example.test' }), [
    'drm.playready.revinfo_url: expected an http(s) URL or a path starting with /',
    'drm.playready.revinfo_refresh_hours: expected at most 168 (PlayReady requires weekly updates)',
  ]);
});

test('a catalogue without a drm section is refused', async (t) => {
  const { drm: _, ...config } = example();
  t.deepEqual(await problems(t, config), ['drm: required when a catalogue is configured (site_id, site_key, access_key)']);
});

test('drm secrets resolve from { env } and { file }; describeConfig never shows them', async (t) => {
  const { config, env } = await withSecretRefs(t);
  const loaded = loadConfig({ PASSGATE_CONFIG: await configFile(t, config), ...env });
  t.is(loaded.drm?.siteKey.reveal(), siteKeyFromEnv);
  t.is(loaded.drm?.accessKey.reveal(), accessKeyFromFile, 'the trailing newline of a mounted secret is trimmed');
  t.is(loaded.drm?.widevine.signingKey?.reveal(), signingKeyFromFile);
  t.is(loaded.drm?.widevine.signingIv?.reveal(), signingIvFromEnv);

  const described = describeConfig(loaded);
  const text = JSON.stringify(described);
  for (const secret of [siteKeyFromEnv, accessKeyFromFile, signingKeyFromFile, signingIvFromEnv]) {
    t.false(text.includes(secret));
    t.false(inspect(loaded, { depth: 10 }).includes(secret));
  }
  t.like(described.drm, { siteId: 'DEMO', siteKey: 'env…(32 chars)', accessKey: 'fil…(32 chars)', widevine: { signingKey: 'aba…(64 chars)', signingIv: 'cdc…(32 chars)' } });
});

test('the bundled demo keys are masked too', (t) => {
  const text = JSON.stringify(describeConfig(loadConfig({})));
  for (const secret of [DEMO_DRM_SITE.siteKey, DEMO_DRM_SITE.accessKey, DEMO_WIDEVINE_PROVIDER.key, DEMO_WIDEVINE_PROVIDER.iv]) t.false(text.includes(secret), secret);
});

test('a drm secret reference that cannot be resolved names its path, not a value', async (t) => {
  const { config } = await withSecretRefs(t);
  Object.assign(config.drm ?? {}, { access_key: { file: '/nonexistent/passgate/access_key' } });
  t.deepEqual(await problems(t, config, { WIDEVINE_IV: signingIvFromEnv }), [
    'drm.site_key: environment variable DRM_SITE_KEY is not set',
    'drm.access_key: cannot read secret file /nonexistent/passgate/access_key (ENOENT)',
  ]);
});

test.serial('passgate config check prints the drm section with every secret masked', async (t) => {
  t.timeout(30_000);
  const { config, env } = await withSecretRefs(t);
  const file = await configFile(t, config);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(PASSGATE_|REDIS_URL$|PASS_BASE_URL$|DRM_BASE_URL$|ADAPTER_BASE_URL$)/.test(name)));
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'config', 'check'], { cwd: packageRoot, env: { ...clean, ...env, PASSGATE_CONFIG: file } });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  t.is(code, 0, stderr);
  const described = JSON.parse(stdout) as { drm: { siteId: string; siteKey: string; catalogue: Record<string, unknown> } };
  t.is(described.drm.siteId, 'DEMO');
  t.is(described.drm.siteKey, 'env…(32 chars)');
  t.deepEqual(Object.keys(described.drm.catalogue), ['REF30', 'PREMIUM']);
  for (const secret of [siteKeyFromEnv, accessKeyFromFile, signingKeyFromFile, signingIvFromEnv]) t.false((stdout + stderr).includes(secret));
});
