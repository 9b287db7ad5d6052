import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { packageRoot } from '../../src/config/package.js';

// Serial: each case starts Node + tsx (~2 s of CPU); run together they starve each other.

const vector = JSON.parse(readFileSync(new URL('../fixtures/pallycon-tutorial-token.json', import.meta.url), 'utf8')) as {
  inputs: Record<string, string>;
  expected: Record<string, string>;
};
const { inputs, expected } = vector;

async function token(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'token', ...args], { cwd: packageRoot });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

const tutorialFlags = (changes: Record<string, string> = {}): string[] =>
  Object.entries({
    '--site-id': inputs.site_id ?? '',
    '--site-key': inputs.site_key ?? '',
    '--access-key': inputs.access_key ?? '',
    '--drm-type': inputs.drm_type ?? '',
    '--user-id': inputs.user_id ?? '',
    '--cid': inputs.cid ?? '',
    '--policy': inputs.license_rule_json ?? '',
    '--timestamp': inputs.timestamp ?? '',
    ...changes,
  }).flat();

const verifyFlags = ['--site-key', inputs.site_key ?? '', '--access-key', inputs.access_key ?? ''];

test.serial('token mint prints only the token, equal to the tutorial vector for its inputs and timestamp', async (t) => {
  const { code, stdout, stderr } = await token(['mint', ...tutorialFlags()]);
  t.is(code, 0, stderr);
  t.is(stdout, `${expected.token_base64}\n`);
  t.is(stderr, '');
});

test.serial('token verify prints the decoded token with its decrypted policy and valid: true, exit 0', async (t) => {
  const { code, stdout } = await token(['verify', ...verifyFlags, '--now', '2019-07-17T09:05:00Z', expected.token_base64 ?? '']);
  t.is(code, 0);
  const report = JSON.parse(stdout) as Record<string, unknown>;
  t.like(report, { valid: true, drm_type: 'Widevine', site_id: 'TUTO', user_id: 'test-user', cid: 'bigbuckbunny', timestamp: inputs.timestamp });
  t.deepEqual(report.policy, JSON.parse(inputs.license_rule_json ?? ''));
  t.false('errorCode' in report);
});

test.serial('a v2 token minted with --response-format and --key-rotation verifies against the expected cid and DRM type', async (t) => {
  const policy = '{"policy_version":2,"playback_policy":{"persistent":false,"license_duration":600}}';
  const minted = await token(['mint', ...tutorialFlags({ '--policy': policy, '--drm-type': 'FairPlay' }), '--response-format', 'json', '--key-rotation']);
  t.is(minted.code, 0, minted.stderr);
  const json = JSON.parse(Buffer.from(minted.stdout.trim(), 'base64').toString('utf8')) as Record<string, unknown>;
  t.like(json, { drm_type: 'FairPlay', response_format: 'json', key_rotation: true });
  t.is(typeof json.policy, 'string');
  const verified = await token(['verify', ...verifyFlags, '--now', inputs.timestamp ?? '', '--cid', 'bigbuckbunny', '--drm-type', 'FairPlay', minted.stdout.trim()]);
  t.is(verified.code, 0, verified.stdout);
  t.deepEqual((JSON.parse(verified.stdout) as Record<string, unknown>).policy, JSON.parse(policy));
});

test.serial('a tampered or expired token: valid false with the license server errorCode and a reason, exit 1', async (t) => {
  const fields = JSON.parse(expected.token_json ?? '') as Record<string, string>;
  const tampered = Buffer.from(JSON.stringify({ ...fields, cid: 'sintel' })).toString('base64');
  const bad = await token(['verify', ...verifyFlags, '--now', '2019-07-17T09:00:00Z', tampered]);
  t.is(bad.code, 1);
  t.like(JSON.parse(bad.stdout), { valid: false, errorCode: '7019', cid: 'sintel' });
  t.regex((JSON.parse(bad.stdout) as { reason: string }).reason, /hash/i);

  const expired = await token(['verify', ...verifyFlags, '--now', '2019-07-17T09:07:05Z', expected.token_base64 ?? '']);
  t.is(expired.code, 1);
  t.like(JSON.parse(expired.stdout), { valid: false, errorCode: '7011' });
});

async function usageErrors(t: ExecutionContext, cases: [string[], RegExp][]): Promise<void> {
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await token(args);
    t.is(code, 2, args.join(' '));
    t.regex(stderr, message, args.join(' '));
    t.is(stdout, '');
  }
}

test.serial('bad mint arguments are usage errors (exit 2) naming the flag', (t) =>
  usageErrors(t, [
    [['mint', ...tutorialFlags({ '--site-key': 'too-short' })], /--site-key.*32 bytes/],
    [['mint', ...tutorialFlags({ '--drm-type': 'widevine' })], /--drm-type/],
    [['mint', ...tutorialFlags({ '--policy': '{"playback_policy":' })], /--policy.*JSON/],
    [['mint', ...tutorialFlags({ '--timestamp': '2019-07-17 08:57:04' })], /--timestamp/],
    [['mint', ...tutorialFlags().slice(2)], /--site-id/],
  ]),
);

test.serial('bad verify arguments are usage errors (exit 2) naming the flag', (t) =>
  usageErrors(t, [
    [['verify', '--site-key', 'x'.repeat(31), '--access-key', 'a', expected.token_base64 ?? ''], /--site-key/],
    [['verify', ...verifyFlags, '--now', 'yesterday', expected.token_base64 ?? ''], /--now/],
    [['verify', ...verifyFlags], /exactly one token/],
    [['frobnicate'], /token mint/],
  ]),
);
