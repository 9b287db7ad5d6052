import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { constants, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { Secret } from '../../src/config/secret.js';
import type { SecretRef } from '../../src/config/secret-ref.js';
import { packageRoot } from '../../src/config/package.js';
import { resolveUserMetadataConfig, userMetadataPrivateKey, type UserMetadataFile } from '../../src/config/user-metadata.js';
import { ManualClock } from '../../src/infra/clock.js';
import { createLogger } from '../../src/infra/logger.js';
import { decryptRsaPkcs1v15 } from '../../src/infra/rsa-pkcs1.js';
import { createUserMetadata, createUserMetadataMetrics } from '../../src/signin/user-metadata.js';
import { demoZip } from '../../src/sim/pass/authenticate.js';
import { profileBody } from '../../src/sim/pass/profiles.js';
import { profileKey } from '../../src/sim/state.js';
import { memoryLogger, tempDir } from '../helpers/with-app.js';
import { hiddenSession } from '../helpers/mvpd-login.js';
import { sampleDeviceInfo, type PassgateFixture } from '../helpers/with-passgate.js';
import { getJson, registerDevice, signinFixture, signInAtSim, startAuthentication, step, until, type Device } from './_support.js';

/** The openssl CLI: the independent tool that makes the test vectors and the certificates. */
const openssl = (args: string[], input?: Buffer | string) => execFileSync('openssl', args, { ...(input === undefined ? {} : { input }), stdio: ['pipe', 'pipe', 'pipe'] });

interface KeyFiles {
  dir: string;
  key: string;
  cert: string;
  passphrase?: string;
}

/**
 * A programmer's key pair and self-signed certificate as user-metadata.md has them made (openssl;
 * a CA would sign the real one). With `passphrase` the private key is encrypted, as `genrsa -des3` does.
 */
async function programmerKeys(t: ExecutionContext, name: string, passphrase?: string): Promise<KeyFiles> {
  const dir = await tempDir(t);
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  const protect = passphrase === undefined ? ['-noenc'] : ['-passout', `pass:${passphrase}`];
  openssl(['req', '-x509', '-newkey', 'rsa:2048', ...protect, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=passgate test programmer ${name}`]);
  return { dir, key, cert, ...(passphrase === undefined ? {} : { passphrase }) };
}

/** `openssl pkeyutl -encrypt` for the certificate, PKCS#1 v1.5 padding (or `padding`), base64 — as Adobe delivers an `enc` value. */
function opensslEncrypt(keys: KeyFiles, plain: string, padding = 'pkcs1'): string {
  return openssl(['pkeyutl', '-encrypt', '-certin', '-inkey', keys.cert, '-pkeyopt', `rsa_padding_mode:${padding}`], plain).toString('base64');
}

/** The user_metadata section resolved as loadConfig does it (literal refs here), problems collected. */
function resolveSection(section: UserMetadataFile) {
  const problems: string[] = [];
  const resolve = (ref: SecretRef) => (typeof ref === 'string' ? new Secret(ref) : 'file' in ref ? new Secret(readFileSync(ref.file, 'utf8')) : undefined);
  return { config: resolveUserMetadataConfig(section, resolve, problems), problems };
}

const keyPair = (keys: KeyFiles) => ({ private_key: { file: keys.key }, certificate: { file: keys.cert }, ...(keys.passphrase ? { passphrase: keys.passphrase } : {}) });

test('an openssl pkeyutl vector (PKCS#1 v1.5, base64) opens with the encrypted PEM key and its passphrase; OAEP, tampered and truncated values do not', async (t) => {
  const keys = await programmerKeys(t, 'vector', `pw-${randomBytes(6).toString('hex')}`);
  const { config, problems } = resolveSection({ exposed: ['zip'], keys: { primary: keyPair(keys) } });
  t.deepEqual(problems, []);
  const key = config?.keys[0];
  if (!key) return t.fail('no key');
  t.is(key.modulusBits, 2048);
  t.regex(key.certificate?.subject ?? '', /passgate test programmer vector/);
  const privateKey = userMetadataPrivateKey(key);

  const vector = Buffer.from(opensslEncrypt(keys, '07030'), 'base64');
  t.is(decryptRsaPkcs1v15(privateKey, vector)?.toString('utf8'), '07030');
  t.is(decryptRsaPkcs1v15(privateKey, Buffer.from(opensslEncrypt(keys, ''), 'base64'))?.length, 0, 'an empty message');
  // An OAEP block unpads as PKCS#1 v1.5 about once in 400 tries, into noise: never the message.
  t.not(decryptRsaPkcs1v15(privateKey, Buffer.from(opensslEncrypt(keys, '07030', 'oaep'), 'base64'))?.toString('utf8'), '07030', 'OAEP is not the format');
  const tampered = Buffer.from(vector);
  tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 1;
  t.not(decryptRsaPkcs1v15(privateKey, tampered)?.toString('utf8'), '07030');
  t.is(decryptRsaPkcs1v15(privateKey, vector.subarray(1)), undefined, 'not k bytes');
  t.is(decryptRsaPkcs1v15(privateKey, Buffer.alloc(256, 0xff)), undefined, 'not below the modulus');
  // Random ciphertexts never throw; the few that unpad (~1 in 65,000) are not asserted on.
  for (let i = 0; i < 200; i++) decryptRsaPkcs1v15(privateKey, randomBytes(256));
  // Every message length PKCS#1 v1.5 allows for 2048 bits round-trips (Node encrypts with the padding; only private decryption is refused).
  const publicKey = createPublicKey(privateKey);
  for (const length of [1, 16, 100, 245]) {
    const message = randomBytes(length);
    t.deepEqual(decryptRsaPkcs1v15(privateKey, publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, message)), message);
  }
});

test('forApp: only exposed attributes; an enc list decrypted to its value, a bad one left out with a warn and a metric, no value in the log', async (t) => {
  const keys = await programmerKeys(t, 'view');
  const { config } = resolveSection({ exposed: ['userID', 'zip', 'maxRating', 'encryptedZip'], keys: { primary: keyPair(keys) } });
  const log = memoryLogger('info');
  const registry = new Registry();
  const view = createUserMetadata({ ...(config ? { config } : {}), logger: log.logger, metrics: createUserMetadataMetrics(registry) });
  const zip = opensslEncrypt(keys, '["77754","12345"]');
  const shown = view.forApp({
    userID: { value: 'u-1', state: 'plain' },
    householdID: { value: 'hh-1', state: 'plain' },
    zip: { value: zip, state: 'enc' },
    maxRating: { value: 'not base64!', state: 'enc' },
    encryptedZip: { value: opensslEncrypt(keys, '10001', 'oaep'), state: 'enc' },
  });
  t.deepEqual(shown, { userID: { value: 'u-1', state: 'plain' }, zip: { value: ['77754', '12345'], state: 'plain' } });
  // Line-wrapped base64 (a MIME encoder's) opens too; the second read of one ciphertext is remembered.
  t.deepEqual(view.forApp({ zip: { value: zip.replace(/(.{76})/g, '$1\r\n'), state: 'enc' } }), { zip: { value: ['77754', '12345'], state: 'plain' } });
  view.forApp({ zip: { value: zip, state: 'enc' } });
  const counts = Object.fromEntries((await registry.getSingleMetric('passgate_user_metadata_decryptions_total')?.get())?.values.map((v) => [v.labels.outcome, v.value]) ?? []);
  t.deepEqual(counts, { primary: 2, backup: 0, failed: 2, no_key: 0 });
  // Warn lines name the attribute only (the log sampler may fold the second identical line into a count).
  const warned = log.lines.filter((l) => l.level === 40);
  t.true(warned.length >= 1);
  for (const line of warned) t.true(['encryptedZip', 'maxRating'].includes(String(line.attribute)) && !('value' in line));
  t.false(log.text().includes('77754'));

  // Without a user_metadata section: every plain attribute, never an encrypted one (no ciphertext handed to apps).
  const none = createUserMetadata({ logger: createLogger({ level: 'silent' }), metrics: createUserMetadataMetrics(new Registry()) });
  t.deepEqual(none.forApp({ userID: { value: 'u-1', state: 'plain' }, zip: { value: zip, state: 'enc' } }), { userID: { value: 'u-1', state: 'plain' } });
});

test('config: a wrong passphrase, a certificate of another key, a short key and a backup equal to the primary are named problems', async (t) => {
  const a = await programmerKeys(t, 'a', 'right-passphrase');
  const b = await programmerKeys(t, 'b');
  const wrong = resolveSection({ exposed: ['zip'], keys: { primary: { ...keyPair(a), passphrase: 'wrong-passphrase' } } });
  t.deepEqual(wrong.problems, ['user_metadata.keys.primary.private_key: cannot open the key (not a PEM private key, or the passphrase is wrong)']);
  const missing = resolveSection({ exposed: ['zip'], keys: { primary: { private_key: { file: a.key } } } });
  t.deepEqual(missing.problems, ['user_metadata.keys.primary.private_key: cannot open the key (it is encrypted: set passphrase)']);
  const mismatch = resolveSection({ exposed: ['zip'], keys: { primary: { private_key: { file: b.key }, certificate: { file: a.cert } } } });
  t.deepEqual(mismatch.problems, ['user_metadata.keys.primary.certificate: does not belong to user_metadata.keys.primary.private_key (Adobe would encrypt for another key)']);
  const short = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t.deepEqual(resolveSection({ exposed: ['zip'], keys: { primary: { private_key: short } } }).problems, [
    'user_metadata.keys.primary.private_key: expected an RSA key of at least 2048 bits (got rsa 1024)',
  ]);
  t.deepEqual(resolveSection({ exposed: ['zip'], keys: { primary: keyPair(b), backup: keyPair(b) } }).problems, [
    'user_metadata.keys.backup: the same key as the primary (a backup is a second key pair)',
  ]);
  t.is(resolveSection(undefined).config, undefined);
});

test('config: a key made exactly as the docs say (openssl genrsa -des3, traditional PEM) opens with its passphrase and decrypts an openssl vector', async (t) => {
  const dir = await tempDir(t);
  const key = join(dir, 'mycompany-license.key');
  openssl(['genrsa', '-traditional', '-des3', '-passout', 'pass:docs-passphrase', '-out', key, '2048']);
  t.regex(readFileSync(key, 'utf8'), /Proc-Type: 4,ENCRYPTED/);
  const { config, problems } = resolveSection({ exposed: ['zip'], keys: { primary: { private_key: { file: key }, passphrase: 'docs-passphrase' } } });
  t.deepEqual(problems, []);
  const pub = join(dir, 'public.pem');
  openssl(['rsa', '-in', key, '-passin', 'pass:docs-passphrase', '-pubout', '-out', pub]);
  const vector = openssl(['pkeyutl', '-encrypt', '-pubin', '-inkey', pub, '-pkeyopt', 'rsa_padding_mode:pkcs1'], '["02134"]').toString('base64');
  const view = createUserMetadata({ ...(config ? { config } : {}), logger: createLogger({ level: 'silent' }), metrics: createUserMetadataMetrics(new Registry()) });
  t.deepEqual(view.forApp({ zip: { value: vector, state: 'enc' } }), { zip: { value: ['02134'], state: 'plain' } });
});

test('logger: profile attributes are redacted from log lines', (t) => {
  const log = memoryLogger('info');
  log.logger.info({ profile: { mvpd: 'Cablevision', attributes: { zip: { value: ['07030'], state: 'plain' } } }, attributes: { zip: '07030' } }, 'a line');
  t.false(log.text().includes('07030'));
  t.like(log.lines[0], { profile: { mvpd: 'Cablevision', attributes: '[Redacted]' }, attributes: '[Redacted]' });
});

/** Sign-in through the simulator's MVPD login (which keeps a zip list for the user), until the long-poll answers. */
async function signIn(t: ExecutionContext, f: PassgateFixture, clock: ManualClock, username: string): Promise<Device> {
  const device = await registerDevice(f);
  const started = await startAuthentication(f, device, { mvpd: 'Cablevision' });
  t.is(started.status, 201);
  const code = started.body.code as string;
  const waiting = getJson(f, device, `/v1/authentication/${code}?wait=30`);
  await until(() => f.passgate.services.signin.localWaiters() === 1, 'the long-poll');
  await signInAtSim(f, code, username);
  for (let i = 0; i < 10 && f.passgate.services.signin.localWaiters() > 0; i++) await step(clock, [f]);
  const answer = await waiting;
  t.is(answer.body.status, 'authenticated');
  t.deepEqual((answer.body.profile as { attributes: unknown }).attributes, { userID: { value: username, state: 'plain' }, zip: { value: [demoZip(username)], state: 'plain' } });
  return device;
}

const metricValue = async (f: PassgateFixture, line: string) => {
  const text = await (await fetch(f.passgate.metricsUrl)).text();
  return Number(text.split('\n').find((l) => l.startsWith(line))?.slice(line.length + 1) ?? NaN);
};

test('end to end: the simulator encrypts zip for the primary certificate, the app sees it decrypted; after a rotation the old key as backup still opens it; an unknown certificate leaves zip out', async (t) => {
  const clock = new ManualClock();
  const a = await programmerKeys(t, 'a');
  const b = await programmerKeys(t, 'b');
  const unknown = await programmerKeys(t, 'unknown');
  const exposed = ['userID', 'zip'];
  const f = await signinFixture(t, clock, {
    simRules: { userMetadata: { certificate: readFileSync(a.cert, 'utf8') } },
    file: { user_metadata: { exposed, keys: { primary: keyPair(a) } } },
  });
  const username = 'zip-viewer';
  const device = await signIn(t, f, clock, username);
  const profile = await getJson(f, device, '/v1/profile');
  t.deepEqual((profile.body.profile as { attributes: unknown }).attributes, { userID: { value: username, state: 'plain' }, zip: { value: [demoZip(username)], state: 'plain' } });
  // What went over the wire upstream: base64 ciphertext, state enc, no zip in it.
  const stored = f.sim.state.profiles.get(profileKey((await f.passgate.services.pass.registry.get('demo', device.binding))?.clientId ?? '', device.fingerprint, 'REF30', 'Cablevision'));
  if (!stored) return t.fail('no simulator profile');
  const wire = profileBody(stored, f.sim.state.rules.userMetadata).attributes.zip;
  t.is(wire?.state, 'enc');
  t.regex(String(wire?.value), /^[A-Za-z0-9+/]{342}==$/);
  // Two upstream answers (the poll's and the profile read) with one ciphertext: decrypted once, then remembered.
  t.is(await metricValue(f, 'passgate_user_metadata_decryptions_total{outcome="primary"}'), 1);
  t.true((await metricValue(f, 'passgate_user_metadata_certificate_expiry_timestamp_seconds{slot="primary"}')) > Date.now() / 1000);

  // Rotation, step 1: a new key pair B becomes passgate's primary, A its backup (restart with the new config).
  await f.passgate.close();
  const rotated = await signinFixture(t, clock, {
    sim: f.sim,
    dataDir: f.dataDir,
    appKeys: { demo: f.apps.demo.key, roku: f.apps.roku.key },
    file: { user_metadata: { exposed, keys: { primary: keyPair(b), backup: keyPair(a) } } },
  });
  await rotated.passgate.services.signin.refreshProfiles('demo', device.binding);
  const viaBackup = await getJson(rotated, device, '/v1/profile');
  t.is(viaBackup.status, 200);
  t.deepEqual((viaBackup.body.profile as { attributes: { zip: unknown } }).attributes.zip, { value: [demoZip(username)], state: 'plain' });
  t.is(await metricValue(rotated, 'passgate_user_metadata_decryptions_total{outcome="backup"}'), 1);

  // Step 2: the programmer switches Adobe to certificate B: the primary opens the new answers.
  await rotated.simConfig({ userMetadata: { certificate: readFileSync(b.cert, 'utf8') } });
  await rotated.passgate.services.signin.refreshProfiles('demo', device.binding);
  const viaPrimary = await getJson(rotated, device, '/v1/profile');
  t.deepEqual((viaPrimary.body.profile as { attributes: { zip: unknown } }).attributes.zip, { value: [demoZip(username)], state: 'plain' });
  t.is(await metricValue(rotated, 'passgate_user_metadata_decryptions_total{outcome="primary"}'), 1);

  // A certificate passgate has no key for: 200, zip left out, counted and logged without any value.
  await rotated.simConfig({ userMetadata: { certificate: createPublicKey(readFileSync(unknown.key)).export({ type: 'spki', format: 'pem' }).toString() } });
  await rotated.passgate.services.signin.refreshProfiles('demo', device.binding);
  const left = await getJson(rotated, device, '/v1/profile');
  t.is(left.status, 200);
  t.deepEqual((left.body.profile as { attributes: unknown }).attributes, { userID: { value: username, state: 'plain' } });
  t.is(await metricValue(rotated, 'passgate_user_metadata_decryptions_total{outcome="failed"}'), 1);
  t.true(rotated.log.lines.some((l) => l.level === 40 && l.attribute === 'zip'));
  for (const text of [f.log.text(), rotated.log.text()]) t.false(text.includes(demoZip(username)), 'no zip in any log line');
});

test('the simulator: with no certificate given, enc attributes still go out encrypted (for a key passgate lacks: left out); a certificate that is not RSA PEM is refused by /sim/config', async (t) => {
  const clock = new ManualClock();
  const keys = await programmerKeys(t, 'sim');
  const f = await signinFixture(t, clock, { file: { user_metadata: { exposed: ['userID', 'zip'], keys: { primary: keyPair(keys) } } } });
  const device = await registerDevice(f);
  const started = await startAuthentication(f, device, { mvpd: 'Cablevision' });
  await signInAtSim(f, started.body.code as string, 'no-cert-viewer');
  const record = await f.passgate.services.pass.registry.get('demo', device.binding);
  const stored = f.sim.state.profiles.get(profileKey(record?.clientId ?? '', device.fingerprint, 'REF30', 'Cablevision'));
  if (!stored) return t.fail('no simulator profile');
  t.deepEqual(stored.attributes.zip, { value: [demoZip('no-cert-viewer')], state: 'enc' }, 'kept as the MVPD gave it');
  t.regex(String(profileBody(stored, f.sim.state.rules.userMetadata).attributes.zip?.value), /^[A-Za-z0-9+/]{342}==$/);
  const profile = await getJson(f, device, '/v1/profile');
  t.deepEqual((profile.body.profile as { attributes: unknown }).attributes, { userID: { value: 'no-cert-viewer', state: 'plain' } });

  const refused = await fetch(`${f.sim.url}/sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userMetadata: { certificate: 'not a pem' } }) });
  t.is(refused.status, 400);
  t.like(await refused.json(), { error: 'invalid_config', issues: [{ path: 'userMetadata.certificate' }] });
  // The docs' PEM certificate given to the simulator: the next read opens.
  await f.simConfig({ userMetadata: { certificate: readFileSync(keys.cert, 'utf8') } });
  await f.passgate.services.signin.refreshProfiles('demo', device.binding);
  const opened = await getJson(f, device, '/v1/profile');
  t.deepEqual((opened.body.profile as { attributes: { zip: unknown } }).attributes.zip, { value: [demoZip('no-cert-viewer')], state: 'plain' });
});

test('npm start (serve --with-sim, config/example.yaml): a demo key pair made at start, its public key on file at the simulator; the walk ends with the zip decrypted', async (t) => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(PASSGATE_|REDIS_URL$|PASS_BASE_URL$|DRM_BASE_URL$|ADAPTER_BASE_URL$)/.test(name)));
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'serve', '--with-sim', '--sim-port', '0'], {
    cwd: packageRoot,
    env: { ...env, PASSGATE_PORT: '0', PASSGATE_METRICS_PORT: '0', PASSGATE_DATA_DIR: await tempDir(t), PASSGATE_LOG_LEVEL: 'warn' },
  });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const urls = async () => {
    for (let i = 0; i < 600; i++) {
      const sim = /^passgate-sim listening on (\S+)$/m.exec(out)?.[1];
      const pg = /^passgate listening on (\S+)$/m.exec(out)?.[1];
      if (sim && pg) return { sim, pg };
      await sleep(50);
    }
    throw new Error(`no listening lines: ${out}`);
  };
  const { sim, pg } = await urls();
  const rules = (await (await fetch(`${sim}/sim/config`)).json()) as { userMetadata: { certificate: string | null } };
  t.regex(rules.userMetadata.certificate ?? '', /^-----BEGIN PUBLIC KEY-----/);

  const registered = await fetch(`${pg}/v1/devices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-app-key': 'demo-app-key' },
    body: JSON.stringify({ deviceId: 'user-metadata-demo', deviceInfo: sampleDeviceInfo }),
  });
  const auth = { authorization: `Bearer ${((await registered.json()) as { deviceToken: string }).deviceToken}` };
  const started = await fetch(`${pg}/v1/authentication`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ mvpd: 'Cablevision' }) });
  t.is(started.status, 201);
  const { code } = (await started.json()) as { code: string };
  // The viewer's browser at the simulator: authenticate → MVPD login page → the form (password `pass`).
  const login = new URL((await fetch(`${sim}/api/v2/authenticate/REF30/${code}`, { redirect: 'manual' })).headers.get('location') ?? '', sim);
  const session = hiddenSession(await (await fetch(login)).text());
  login.search = '';
  const submitted = await fetch(login, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ session, username: 'demo-viewer', password: 'pass' }).toString() });
  t.is(submitted.status, 302);
  const answer = (await (await fetch(`${pg}/v1/authentication/${code}?wait=30`, { headers: auth })).json()) as { status: string; profile?: { attributes: unknown } };
  t.is(answer.status, 'authenticated');
  t.deepEqual(answer.profile?.attributes, {
    userID: { value: 'demo-viewer', state: 'plain' },
    householdID: { value: Buffer.from('hh-demo-viewer').toString('base64'), state: 'plain' },
    zip: { value: [demoZip('demo-viewer')], state: 'plain' },
  });
});
