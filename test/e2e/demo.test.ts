import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { packageRoot } from '../../src/config/package.js';
import { DEMO_DRM_SITE, DEMO_WIDEVINE_PROVIDER } from '../../src/sim/rules.js';

/** The environment without any passgate setting of the machine running the tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(PASSGATE_|REDIS_URL$|PASS_BASE_URL$|DRM_BASE_URL$|ADAPTER_BASE_URL$)/.test(name)));
}

async function demo(args: string[] = []) {
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'demo', ...args], { cwd: packageRoot, env: cleanEnv() });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  return { code, stdout, stderr };
}

const steps = [
  'Register the device',
  'List the TV providers',
  'Start sign-in with Cablevision',
  'Open the activation link on the phone',
  'Confirm the code',
  'Reach the Optimum sign-in page',
  'Sign in at Optimum',
  'Long-poll the sign-in',
  'Read the profile',
  'Preauthorize the catalogue',
  'Play REF30',
  'Get a Widevine license token for ref30-movie',
  'Fetch the Widevine license as the player does',
  'Ask for a license outside REF30',
  'Play PREMIUM',
  'Sign out',
  'Ask for a license after signing out',
  'Read the profile again',
  'Protect a document for the partner agent',
  'Authenticate alice@corp.example for the document',
  'Decrypt the document',
  'Decrypt as mallory@partner.example, who lacks the label',
];

/** The text of step `n` (from its numbered head to the next one). */
function stepText(stdout: string, n: number): string {
  const start = stdout.indexOf(`\n${String(n).padStart(2)}. `);
  const end = stdout.indexOf(`\n${String(n + 1).padStart(2)}. `, start + 1);
  return stdout.slice(start, end === -1 ? undefined : end);
}

test.serial('passgate demo: every step, in order, exit 0, no credential in the output', async (t) => {
  t.timeout(60_000);
  const { code, stdout, stderr } = await demo();
  t.log(stdout);
  t.is(code, 0, stderr);
  let at = -1;
  for (const [i, title] of steps.entries()) {
    const found = stdout.indexOf(`${String(i + 1).padStart(2)}. `, at + 1);
    t.true(found > at, `step ${i + 1} numbered in order`);
    t.true(stdout.includes(title), `names step ${i + 1}: ${title}`);
    at = found;
  }
  for (const request of ['POST /v1/devices', 'GET /v1/mvpds', 'POST /v1/authentication', 'GET /activate?code=', 'POST /activate', '/sim/mvpd/Cablevision/login', 'GET /activate/done', '?wait=10', 'GET /v1/profile', 'POST /v1/preauthorize', 'POST /v1/authorize', 'POST /v1/logout', 'POST /v1/license-token', 'POST /ri/licenseManager.do']) {
    t.true(stdout.includes(request), `shows ${request}`);
  }
  t.regex(stdout, /status\s+authenticated/);
  t.regex(stdout, /decision\s+Permit/);
  t.regex(stdout, /mediaToken\s+\S+… \(\d+ chars\)/);
  t.regex(stdout, /upstream\.code\s+authorization_denied_by_mvpd/);
  t.regex(stdout, /upstream\.message\s+\S/);
  t.regex(stdout, /profile\s+null/);

  const token = stepText(stdout, 12);
  t.true(token.includes("POST /v1/authorize {resource: 'REF30', drm: {system: 'widevine', contentId: 'ref30-movie'}} → 200"));
  t.regex(token, /header\s+pallycon-customdata-v2\n/);
  t.regex(token, /token\s+base64 JSON, \d+ chars \(kept by the app, not shown\)/);
  t.regex(token, /token\.drm_type\s+Widevine\n/);
  t.regex(token, /token\.site_id\s+DEMO\n/);
  t.regex(token, /token\.user_id\s+[0-9a-f]{32} /);
  t.regex(token, /token\.cid\s+ref30-movie\n/);
  t.regex(token, /token\.timestamp\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n/);
  t.regex(token, /token\.policy\s+AES-256 encrypted .*\(not shown\)/);
  const player = stepText(stdout, 13);
  t.regex(player, /POST \/ri\/licenseManager\.do .*a Widevine challenge for ref30-movie\) → 200/);
  t.regex(player, /license\s+received, application\/octet-stream, \d+ bytes/);
  t.regex(player, /says\s+PASSGATE-SIM FAKE WIDEVINE LICENSE/);
  const outside = stepText(stdout, 14);
  t.true(outside.includes("POST /v1/license-token {resource: 'REF30', drm: {system: 'widevine', contentId: 'premium-film'}} → 403"));
  t.regex(outside, /code\s+content_not_in_resource\n/);
  const afterLogout = stepText(stdout, 17);
  t.true(afterLogout.includes("POST /v1/license-token {resource: 'REF30', drm: {system: 'widevine', contentId: 'ref30-movie'}} → 403"));
  t.regex(afterLogout, /code\s+logged_out\n/);
  const decrypted = stepText(stdout, 21);
  t.regex(decrypted, /uploadResult\s+success\n/);
  t.regex(decrypted, /uploadDecrypted\s+262144 bytes, sha256 [0-9a-f]{16}… = the original's/);
  t.regex(stepText(stdout, 22), /uploadResult\s+denied\n/);
  t.regex(stdout, /All 22 steps behaved as expected/);
  assertNoCredentials(t, stdout + stderr);
});

test.serial('passgate demo --json: one report, ok, every step ok, no credential', async (t) => {
  t.timeout(60_000);
  const { code, stdout, stderr } = await demo(['--json']);
  t.is(code, 0, stderr);
  const report = JSON.parse(stdout) as { ok: boolean; steps: Array<{ n: number; title: string; ok: boolean; details: Array<[string, string]> }> };
  t.true(report.ok);
  t.deepEqual(
    report.steps.map((s) => [s.n, s.title, s.ok]),
    steps.map((title, i) => [i + 1, title, true]),
  );
  assertNoCredentials(t, stdout + stderr);
});

function assertNoCredentials(t: ExecutionContext, output: string): void {
  // DCR client credentials and access tokens never appear, by name or by shape.
  t.notRegex(output, /client_secret|clientSecret|access_token|accessToken/i);
  // No JWT/JWS (the device token, the software statement, a DCR access token).
  t.notRegex(output, /eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*/);
  t.notRegex(output, /Bearer [\w.-]{10,}/);
  // The media token and the license token appear only shortened or described: no long base64 run.
  t.notRegex(output, /[A-Za-z0-9+/=]{120,}/);
  // Nor the license token's JSON (its encrypted policy, its hash) ...
  t.notRegex(output, /"(policy|hash)"\s*:/);
  // ... nor the keys it is made with (the site's, and the Widevine provider's).
  for (const secret of [DEMO_DRM_SITE.siteKey, DEMO_DRM_SITE.accessKey, DEMO_WIDEVINE_PROVIDER.key, DEMO_WIDEVINE_PROVIDER.iv]) t.false(output.includes(secret));
  // ... nor the partner agent's secret, its envelope key or the session keys (dsid-…).
  for (const secret of ['demo-partner-secret', '70617373676174652d64656d6f2d6167656e742d6b65792d6e6f742d7265616c', 'passgate-demo-agent-key-not-real']) t.false(output.includes(secret));
  t.notRegex(output, /dsid-[\w-]{8,}/);
}
