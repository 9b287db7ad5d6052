import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { parse, stringify } from 'yaml';
import { ConfigError, describeConfig, loadConfig, type Env } from '../../src/config/load.js';
import { bundledConfigFile } from '../../src/config/package.js';
import { tempDir } from '../helpers/with-app.js';

type Yaml = Record<string, unknown> & { apps: Record<string, Record<string, unknown>> };

/** The bundled example as an object, to change one thing at a time. */
const example = (): Yaml => parse(readFileSync(bundledConfigFile, 'utf8')) as Yaml;
const demoStatement = example().apps.demo?.software_statement as string;
/** An obviously fake keyring: 32 bytes of 0x01. */
const testKeys = `test:${Buffer.alloc(32, 1).toString('base64')}`;

async function configFile(t: ExecutionContext, content: object | string): Promise<string> {
  const file = join(await tempDir(t), 'passgate.yaml');
  await writeFile(file, typeof content === 'string' ? content : stringify(content));
  return file;
}

/** The ConfigError loadConfig throws for `env`, or a test failure when it does not throw. */
function configError(t: ExecutionContext, env: Env): ConfigError {
  const error = t.throws(() => loadConfig(env), { instanceOf: ConfigError });
  return error as ConfigError;
}

test('the bundled example loads with the documented defaults', (t) => {
  const config = loadConfig({});
  t.is(config.serviceProvider, 'REF30');
  t.deepEqual(config.http, { host: '0.0.0.0', port: 8080, requestTimeoutMs: 30_000 });
  t.is(config.metrics.port, 9464);
  t.is(config.logLevel, 'info');
  t.regex(config.dataDir, /[/\\]data$/);
  t.is(config.redisUrl, undefined);
  for (const name of ['pass', 'drm', 'adapter'] as const) t.is(config.upstreams[name].baseUrl, 'http://127.0.0.1:8081');
  t.is(config.apps.demo?.platform, 'tvos');
  t.is(config.apps.demo?.appKey.reveal(), 'demo-app-key');
  t.is(config.apps.demo?.softwareStatement.reveal(), demoStatement);
});

test('the demo software statement carries the software id the simulator approves', (t) => {
  const payload = JSON.parse(Buffer.from(demoStatement.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  t.like(payload, { software_id: 'passgate-demo-restv2', iss: 'passgate-sim', scopes: ['api:client:v2'] });
  t.is(demoStatement.split('.')[2], 'demo-signature-not-secret');
});

test('environment variables override ports, host, log level and every upstream', (t) => {
  const config = loadConfig({
    PASSGATE_PORT: '0',
    PASSGATE_METRICS_PORT: '65535',
    PASSGATE_HOST: '127.0.0.1',
    PASSGATE_LOG_LEVEL: 'debug',
    PASS_BASE_URL: 'https://pass.example.test/',
    DRM_BASE_URL: 'http://drm.example.test:9000',
    ADAPTER_BASE_URL: 'http://adapter.example.test',
    REDIS_URL: 'redis://redis.example.test:6379',
    PASSGATE_KEYS: testKeys,
  });
  t.deepEqual(config.http, { host: '127.0.0.1', port: 0, requestTimeoutMs: 30_000 });
  t.is(config.metrics.port, 65535);
  t.is(config.logLevel, 'debug');
  t.is(config.upstreams.pass.baseUrl, 'https://pass.example.test');
  t.is(config.upstreams.drm.baseUrl, 'http://drm.example.test:9000');
  t.is(config.upstreams.adapter.baseUrl, 'http://adapter.example.test');
  t.is(config.redisUrl?.reveal(), 'redis://redis.example.test:6379');
});

test('an empty variable counts as unset', (t) => {
  t.is(loadConfig({ PASSGATE_PORT: '' }).http.port, 8080);
});

test('a non-numeric port names the variable and what is expected', (t) => {
  const error = configError(t, { PASSGATE_PORT: 'eighty' });
  t.regex(error.message, /PASSGATE_PORT: expected a port number from 0 to 65535 \(got "eighty"\)/);
});

test('PASSGATE_REQUEST_TIMEOUT_MS sets the request deadline (default 30 s) and is checked', (t) => {
  t.is(loadConfig({ PASSGATE_REQUEST_TIMEOUT_MS: '1500' }).http.requestTimeoutMs, 1500);
  t.like(describeConfig(loadConfig({})), { http: { requestTimeoutMs: 30_000 } });
  t.regex(configError(t, { PASSGATE_REQUEST_TIMEOUT_MS: '10' }).message, /PASSGATE_REQUEST_TIMEOUT_MS: expected milliseconds from 500 to 600000 \(got "10"\)/);
  t.regex(configError(t, { PASSGATE_REQUEST_TIMEOUT_MS: '30s' }).message, /PASSGATE_REQUEST_TIMEOUT_MS: expected milliseconds/);
});

test('a port out of range names the variable', (t) => {
  const error = configError(t, { PASSGATE_METRICS_PORT: '70000' });
  t.regex(error.message, /PASSGATE_METRICS_PORT: expected a port number/);
});

test('a bad upstream URL in the environment names the variable', (t) => {
  t.regex(configError(t, { DRM_BASE_URL: 'not a url' }).message, /DRM_BASE_URL: expected an http:\/\/ or https:\/\/ URL/);
});

test('a bad upstream URL in the file names its YAML path', async (t) => {
  const file = await configFile(t, { ...example(), upstreams: { pass: { base_url: 'ftp://pass.example.test' } } });
  const error = configError(t, { PASSGATE_CONFIG: file, DRM_BASE_URL: 'http://x.test', ADAPTER_BASE_URL: 'http://x.test' });
  t.regex(error.message, /upstreams\.pass\.base_url: expected an http:\/\/ or https:\/\/ URL/);
});

test('a missing upstream asks for the YAML key or its variable', async (t) => {
  const { upstreams: _, ...rest } = example();
  const file = await configFile(t, rest);
  const error = configError(t, { PASSGATE_CONFIG: file, DRM_BASE_URL: 'http://x.test', ADAPTER_BASE_URL: 'http://x.test' });
  t.regex(error.message, /upstreams\.pass\.base_url: required \(or set PASS_BASE_URL\)/);
  t.notRegex(error.message, /upstreams\.drm/);
});

test('a bad REDIS_URL is named without echoing it (it may hold a password)', (t) => {
  const error = configError(t, { REDIS_URL: 'http://user:hunter2@redis.test' });
  t.regex(error.message, /REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/);
  t.false(error.message.includes('hunter2'));
});

test('a missing app_key names its YAML path', async (t) => {
  const config = example();
  delete config.apps.demo?.app_key;
  const error = configError(t, { PASSGATE_CONFIG: await configFile(t, config) });
  t.regex(error.message, /apps\.demo\.app_key: required/);
});

test('an unknown key is an error naming it, top level and nested', async (t) => {
  const config = { ...example(), catalog: {} };
  (config.apps.demo as Record<string, unknown>).appkey = 'typo';
  const error = configError(t, { PASSGATE_CONFIG: await configFile(t, config) });
  t.regex(error.message, /^ {2}- catalog: unknown key/m);
  t.regex(error.message, /apps\.demo\.appkey: unknown key/);
});

test('two apps with the same key are refused', async (t) => {
  const config = example();
  config.apps.roku = { ...config.apps.demo, platform: 'roku' };
  const error = configError(t, { PASSGATE_CONFIG: await configFile(t, config) });
  t.regex(error.message, /apps\.roku\.app_key: the same key as apps\.demo\.app_key/);
  t.false(error.message.includes('demo-app-key'));
});

test('{ env: NAME } with NAME unset names both the YAML path and the variable', async (t) => {
  const config = example();
  (config.apps.demo as Record<string, unknown>).app_key = { env: 'DEMO_APP_KEY' };
  const error = configError(t, { PASSGATE_CONFIG: await configFile(t, config) });
  t.regex(error.message, /apps\.demo\.app_key: environment variable DEMO_APP_KEY is not set/);
});

test('secrets resolve from { env } and from a mounted { file }, trimmed', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'statement'), `${demoStatement}\n`);
  const config = example();
  Object.assign(config.apps.demo ?? {}, { app_key: { env: 'DEMO_APP_KEY' }, software_statement: { file: join(dir, 'statement') } });
  const loaded = loadConfig({ PASSGATE_CONFIG: await configFile(t, config), DEMO_APP_KEY: 'key-from-the-environment' });
  t.is(loaded.apps.demo?.appKey.reveal(), 'key-from-the-environment');
  t.is(loaded.apps.demo?.softwareStatement.reveal(), demoStatement);
});

test('an unreadable secret file is named', async (t) => {
  const config = example();
  (config.apps.demo as Record<string, unknown>).software_statement = { file: '/nonexistent/passgate/statement' };
  const error = configError(t, { PASSGATE_CONFIG: await configFile(t, config) });
  t.regex(error.message, /apps\.demo\.software_statement: cannot read secret file \/nonexistent\/passgate\/statement/);
});

test('a software statement that is not a JWT is refused', async (t) => {
  const config = example();
  (config.apps.demo as Record<string, unknown>).software_statement = 'not a jwt';
  t.regex(configError(t, { PASSGATE_CONFIG: await configFile(t, config) }).message, /apps\.demo\.software_statement: expected a JWT/);
});

test('a missing or broken config file names PASSGATE_CONFIG or the file', async (t) => {
  t.regex(configError(t, { PASSGATE_CONFIG: '/nonexistent/passgate.yaml' }).message, /PASSGATE_CONFIG: cannot read \/nonexistent\/passgate\.yaml/);
  const broken = await configFile(t, 'apps: [unclosed\n');
  t.regex(configError(t, { PASSGATE_CONFIG: broken }).message, /not valid YAML/);
});

test('every problem is reported at once, one line each, without a stack trace', async (t) => {
  const config = example();
  delete config.apps.demo?.app_key;
  const error = configError(t, { PASSGATE_CONFIG: await configFile(t, config), PASSGATE_PORT: 'x', PASSGATE_LOG_LEVEL: 'loud' });
  const lines = error.message.split('\n');
  t.regex(lines[0] ?? '', /^Invalid configuration/);
  t.true(lines.some((l) => l.includes('PASSGATE_PORT')));
  t.true(lines.some((l) => l.includes('PASSGATE_LOG_LEVEL')));
  t.false(error.message.includes('    at '));
});

test('describeConfig masks every secret and the Redis password', (t) => {
  const config = loadConfig({ REDIS_URL: 'redis://passgate:hunter2@redis.test:6379/0', PASSGATE_KEYS: testKeys });
  const described = JSON.stringify(describeConfig(config));
  t.false(described.includes('demo-app-key'));
  for (const part of demoStatement.split('.')) t.false(described.includes(part));
  t.false(described.includes('hunter2'));
  t.true(described.includes('dem…(12 chars)'));
  t.true(described.includes('redis://passgate:***@redis.test:6379/0'));
  t.like(describeConfig(config), { serviceProvider: 'REF30', http: { port: 8080 } });
});

test('a secret never prints itself by accident', (t) => {
  const key = loadConfig({}).apps.demo?.appKey;
  t.false(`${key}`.includes('demo-app-key'));
  t.false(inspect({ key }).includes('demo-app-key'));
  t.false(JSON.stringify({ key }).includes('demo-app-key'));
  t.true(key?.equals('demo-app-key'));
  t.false(key?.equals('demo-app-kez'));
});

test('the keyring is required with Redis, validated, and never printed', async (t) => {
  t.regex(configError(t, { REDIS_URL: 'redis://r.test:6379' }).message, /PASSGATE_KEYS: required with REDIS_URL/);
  const bad = configError(t, { PASSGATE_KEYS: 'k1:c2hvcnQ=' });
  t.regex(bad.message, /PASSGATE_KEYS: entry 1 \(kid k1\) decodes to 5 bytes; expected 32/);
  t.regex(configError(t, { PASSGATE_KEYS: testKeys, PASSGATE_KEYS_FILE: '/x' }).message, /either PASSGATE_KEYS or PASSGATE_KEYS_FILE/);
  // Rotation step 1 (README "Keys"): a verify-only key beside the signing one is fine; a ring of only verify keys is not.
  const verifyOnly = `k2:${Buffer.alloc(32, 2).toString('base64')}:verify`;
  t.is(loadConfig({ PASSGATE_KEYS: `${testKeys},${verifyOnly}` }).keys?.reveal(), `${testKeys},${verifyOnly}`);
  t.regex(configError(t, { PASSGATE_KEYS: verifyOnly }).message, /PASSGATE_KEYS: every key is :verify/);
  const file = join(await tempDir(t), 'keys');
  await writeFile(file, `${testKeys}\n`);
  const config = loadConfig({ REDIS_URL: 'redis://r.test:6379', PASSGATE_KEYS_FILE: file });
  t.is(config.keys?.reveal(), testKeys);
  t.false(JSON.stringify(describeConfig(config)).includes(Buffer.alloc(32, 1).toString('base64')));
  t.is(loadConfig({}).keys, undefined, 'the embedded store may run without: it generates its own');
});

test('trusted proxies and the client port header are validated', (t) => {
  const config = loadConfig({ PASSGATE_TRUSTED_PROXIES: '10.0.0.0/8, loopback', PASSGATE_CLIENT_PORT_HEADER: 'X-Client-Port' });
  t.deepEqual(config.trustedProxies, ['10.0.0.0/8', 'loopback']);
  t.is(config.clientPortHeader, 'x-client-port');
  t.deepEqual(loadConfig({}).trustedProxies, [], 'no proxy is trusted by default');
  t.regex(configError(t, { PASSGATE_TRUSTED_PROXIES: 'not-an-ip' }).message, /PASSGATE_TRUSTED_PROXIES: .*expected IPs or CIDRs/);
  t.regex(configError(t, { PASSGATE_CLIENT_PORT_HEADER: 'x client' }).message, /PASSGATE_CLIENT_PORT_HEADER: expected a header name/);
});

test('upstream client, throttle, dcr and devices settings have defaults and limits', async (t) => {
  const config = loadConfig({});
  t.deepEqual(config.upstreamClient, {
    dnsMaxTtlSeconds: 30,
    connectTimeoutMs: 2000,
    requestTimeoutMs: 8000,
    callDeadlineMs: 10000,
    maxRetries: 2,
    breaker: { consecutiveFailures: 5, halfOpenAfterMs: 10000 },
  });
  t.deepEqual(config.throttle, { ratePerSecond: 1, burst: 10, maxWaitMs: 1000 });
  const tooLong = { ...example(), upstream_client: { dns_max_ttl_seconds: 60, max_retries: 3 } };
  const error = configError(t, { PASSGATE_CONFIG: await configFile(t, tooLong) });
  t.regex(error.message, /upstream_client\.dns_max_ttl_seconds: expected at most 30/);
  t.regex(error.message, /upstream_client\.max_retries: expected at most 2 retries/);
});

test('PASSGATE_STORE_TIMEOUT_MS: 2000 ms by default, configurable, shown by config check; out of range names the variable', (t) => {
  t.deepEqual(loadConfig({}).store, { timeoutMs: 2000 });
  const config = loadConfig({ PASSGATE_STORE_TIMEOUT_MS: '750' });
  t.deepEqual(config.store, { timeoutMs: 750 });
  t.deepEqual(describeConfig(config).store, { timeoutMs: 750 });
  for (const bad of ['50', '60000', 'soon']) {
    t.regex(configError(t, { PASSGATE_STORE_TIMEOUT_MS: bad }).message, /PASSGATE_STORE_TIMEOUT_MS: expected milliseconds from 100 to 30000/);
  }
});

test('PASSGATE_ADMIN_KEY: at least 32 characters other than whitespace, none around it; never echoed', (t) => {
  const key = 'admin-key-0123456789abcdef-0123456789';
  t.is(loadConfig({ PASSGATE_ADMIN_KEY: key }).adminKey?.reveal(), key);
  t.is(loadConfig({}).adminKey, undefined);
  const cases: [string, RegExp][] = [
    [' '.repeat(38), /PASSGATE_ADMIN_KEY: expected at least 32 characters other than whitespace/],
    ['\t \n'.repeat(20), /PASSGATE_ADMIN_KEY: expected at least 32 characters other than whitespace/],
    [`a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5`, /PASSGATE_ADMIN_KEY: expected at least 32 characters other than whitespace/],
    ['short-key', /PASSGATE_ADMIN_KEY: expected at least 32 characters other than whitespace/],
    [` ${key}`, /PASSGATE_ADMIN_KEY: expected no whitespace at the start or end/],
    [`${key}\n`, /PASSGATE_ADMIN_KEY: expected no whitespace at the start or end/],
  ];
  for (const [bad, message] of cases) {
    const error = configError(t, { PASSGATE_ADMIN_KEY: bad });
    t.regex(error.message, message, JSON.stringify(bad));
    if (bad.trim()) t.false(error.message.includes(bad.trim()), 'the key is not echoed');
  }
});

test('activation.brand: plain defaults; name, logo URL and accent colour from the file; an accent too light for white text is refused', async (t) => {
  t.deepEqual(loadConfig({}).activation.brand, { name: 'passgate', accentColor: '#0b57d0' });
  const branded = { ...example(), activation: { brand: { name: 'Acme TV', logo_url: 'https://cdn.acme.example/logo.svg', accent_color: '#6A1B9A' } } };
  t.deepEqual(loadConfig({ PASSGATE_CONFIG: await configFile(t, branded) }).activation.brand, {
    name: 'Acme TV',
    logoUrl: 'https://cdn.acme.example/logo.svg',
    accentColor: '#6a1b9a',
  });
  const bad = { ...example(), activation: { brand: { name: '', logo_url: 'javascript:alert(1)', accent_color: '#ffcc00', colour: 'red' } } };
  const error = configError(t, { PASSGATE_CONFIG: await configFile(t, bad) });
  t.regex(error.message, /activation\.brand\.name/);
  t.regex(error.message, /activation\.brand\.logo_url: expected an http:\/\/ or https:\/\/ image URL/);
  t.regex(error.message, /activation\.brand\.accent_color: expected a colour dark enough for white text \(contrast with white at least 4\.5:1\)/);
  t.regex(error.message, /colour/);
  t.regex(configError(t, { PASSGATE_CONFIG: await configFile(t, { ...example(), activation: { brand: { accent_color: 'purple' } } }) }).message, /accent_color: expected a colour as #rrggbb/);
});

test('clashing ports are refused naming both variables; 0 (any free port) never clashes', (t) => {
  t.regex(
    configError(t, { PASSGATE_PORT: '9100', PASSGATE_METRICS_PORT: '9100' }).message,
    /PASSGATE_METRICS_PORT: 9100 is also PASSGATE_PORT \(the public API\); the ops listener \(\/metrics, admin API\) needs a port of its own/,
  );
  // The default metrics port chosen for the API.
  t.regex(configError(t, { PASSGATE_PORT: '9464' }).message, /PASSGATE_METRICS_PORT: 9464 is also PASSGATE_PORT/);
  t.like(loadConfig({ PASSGATE_PORT: '0', PASSGATE_METRICS_PORT: '0' }), { http: { port: 0 }, metrics: { port: 0 } });
  t.like(loadConfig({ PASSGATE_PORT: '9100', PASSGATE_METRICS_PORT: '9101' }), { http: { port: 9100 }, metrics: { port: 9101 } });
});

test('a listener the caller adds (serve --with-sim: the simulator) is checked against both ports', (t) => {
  const sim = { name: '--sim-port', what: 'the simulator', port: 8080 };
  const error = t.throws(() => loadConfig({}, { listeners: [sim] }), { instanceOf: ConfigError });
  t.deepEqual(error?.problems, ['--sim-port: 8080 is also PASSGATE_PORT (the public API); the simulator needs a port of its own']);
  t.notThrows(() => loadConfig({}, { listeners: [{ ...sim, port: 8081 }] }));
  t.notThrows(() => loadConfig({ PASSGATE_PORT: '0' }, { listeners: [{ ...sim, port: 0 }] }));
});
