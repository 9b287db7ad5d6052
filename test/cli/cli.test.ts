import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { packageRoot } from '../../src/config/package.js';
import { envSchema } from '../../src/config/schema.js';
import { tempDir } from '../helpers/with-app.js';

// Serial: each case starts Node + tsx (~2 s of CPU); run together they starve each other.

/** The environment without any passgate setting of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(PASSGATE_|REDIS_URL$|PASS_BASE_URL$|DRM_BASE_URL$|ADAPTER_BASE_URL$)/.test(name)),
  );
  return { ...env, ...extra };
}

interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

function cli(t: ExecutionContext, args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', ...args], { cwd: packageRoot, env: cleanEnv(env) });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function finished(t: ExecutionContext, args: string[], env: Record<string, string> = {}) {
  const run = cli(t, args, env);
  const code = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Resolves with the first match of `pattern` on stdout; rejects if the process exits first. */
function waitForLine(run: Running, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = run.stdout().match(pattern);
      if (match) {
        run.child.stdout?.off('data', check);
        resolve(match);
      }
    };
    run.child.stdout?.on('data', check);
    void run.exit.then((code) => reject(new Error(`exited with ${code} before printing ${pattern}:\n${run.stdout()}\n${run.stderr()}`)));
    check();
  });
}

test.serial('--help lists the commands and every environment variable passgate reads (PASSGATE_PUBLIC_URL among them); exits 0', async (t) => {
  const { code, stdout } = await finished(t, ['--help']);
  t.is(code, 0);
  for (const command of ['serve', 'sim', 'config check']) t.true(stdout.includes(`passgate ${command}`), command);
  for (const name of Object.keys(envSchema.shape)) t.regex(stdout, new RegExp(`\\b${name}\\b`), name);
  t.regex(stdout, /PASSGATE_PUBLIC_URL +the URL viewers and apps reach passgate at/);
});

test.serial('clashing ports: config check and serve exit 2 naming both settings before anything listens', async (t) => {
  const same = { PASSGATE_PORT: '47311', PASSGATE_METRICS_PORT: '47311' };
  for (const args of [['config', 'check'], ['serve']]) {
    const { code, stderr } = await finished(t, args, same);
    t.is(code, 2, args.join(' '));
    t.regex(stderr, /PASSGATE_METRICS_PORT: 47311 is also PASSGATE_PORT \(the public API\)/);
    t.false(stderr.includes('    at '));
  }
  // npm start's simulator port taken by the API: refused before the simulator starts (no EADDRINUSE).
  const withSim = await finished(t, ['serve', '--with-sim', '--sim-port', '47312'], { PASSGATE_PORT: '47312', PASSGATE_METRICS_PORT: '0' });
  t.is(withSim.code, 2);
  t.regex(withSim.stderr, /--sim-port: 47312 is also PASSGATE_PORT \(the public API\); the simulator needs a port of its own/);
  t.false(withSim.stdout.includes('listening'));
  const byDefault = await finished(t, ['serve', '--with-sim'], { PASSGATE_PORT: '0', PASSGATE_METRICS_PORT: '8081' });
  t.is(byDefault.code, 2);
  t.regex(byDefault.stderr, /the simulator port \(--sim-port, default 8081\): 8081 is also PASSGATE_METRICS_PORT/);
});

test.serial('-h and --version work', async (t) => {
  t.is((await finished(t, ['-h'])).code, 0);
  const version = await finished(t, ['--version']);
  t.is(version.code, 0);
  t.regex(version.stdout.trim(), /^\d+\.\d+\.\d+/);
});

test.serial('an unknown command or flag prints usage on stderr and exits 2', async (t) => {
  const command = await finished(t, ['frobnicate']);
  t.is(command.code, 2);
  t.regex(command.stderr, /unknown command "frobnicate"/);
  t.regex(command.stderr, /Usage:/);
  const flag = await finished(t, ['serve', '--bogus']);
  t.is(flag.code, 2);
  t.regex(flag.stderr, /--bogus/);
});

test.serial('config check prints the resolved config with secrets masked', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'passgate.yaml');
  await writeFile(
    file,
    stringify({
      service_provider: 'REF30',
      upstreams: { pass: { base_url: 'http://127.0.0.1:8081' }, drm: { base_url: 'http://127.0.0.1:8081' }, adapter: { base_url: 'http://127.0.0.1:8081' } },
      apps: { web: { platform: 'web', app_key: { env: 'WEB_APP_KEY' }, software_statement: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ3ZWIifQ.sig-very-private' } },
    }),
  );
  const { code, stdout } = await finished(t, ['config', 'check'], { PASSGATE_CONFIG: file, WEB_APP_KEY: 'web-key-very-private' });
  t.is(code, 0);
  const described = JSON.parse(stdout) as { serviceProvider: string; apps: Record<string, { appKey: string }> };
  t.is(described.serviceProvider, 'REF30');
  t.is(described.apps.web?.appKey, 'web…(20 chars)');
  t.false(stdout.includes('web-key-very-private'));
  t.false(stdout.includes('sig-very-private'));
});

test.serial('a bad environment variable exits 2 naming it, without a stack trace', async (t) => {
  for (const args of [['config', 'check'], ['serve']]) {
    const { code, stderr } = await finished(t, args, { PASSGATE_PORT: 'not-a-port' });
    t.is(code, 2, args.join(' '));
    t.regex(stderr, /PASSGATE_PORT: expected a port number/);
    t.false(stderr.includes('    at '));
  }
});

test.serial('serve listens, answers /livez, prints where the admin API is, and exits 0 on SIGTERM', async (t) => {
  const adminKey = 'cli-test-admin-key-0123456789abcdef-0123456789';
  const run = cli(t, ['serve'], { PASSGATE_PORT: '0', PASSGATE_METRICS_PORT: '0', PASSGATE_DATA_DIR: await tempDir(t), PASSGATE_ADMIN_KEY: adminKey });
  const [, url] = await waitForLine(run, /^passgate listening on (http:\/\/127\.0\.0\.1:\d+)$/m);
  const [, metricsUrl] = await waitForLine(run, /^passgate metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m);
  const [, adminUrl] = await waitForLine(run, /^passgate admin API on (http:\/\/127\.0\.0\.1:\d+\/admin)$/m);
  const live = await fetch(`${url}/livez`);
  t.is(live.status, 200);
  t.deepEqual(await live.json(), { status: 'ok' });
  t.is((await fetch(metricsUrl ?? '')).status, 200);
  t.is((await fetch(`${adminUrl}/drm/revocations`, { headers: { authorization: `Bearer ${adminKey}` } })).status, 200);
  t.is((await fetch(`${url}/admin/drm/revocations`, { headers: { authorization: `Bearer ${adminKey}` } })).status, 404);
  t.false(run.stdout().includes(adminKey), 'the key is never printed');
  run.child.kill('SIGTERM');
  t.is(await run.exit, 0);
  t.regex(run.stdout(), /"msg":"stopped"/);
});

test.serial('serve --with-sim starts the simulator first, points the upstreams at it (a sign-in through passgate is in its /sim/log) and prints hints', async (t) => {
  const run = cli(t, ['serve', '--with-sim', '--sim-port', '0'], { PASSGATE_PORT: '0', PASSGATE_METRICS_PORT: '0', PASSGATE_DATA_DIR: await tempDir(t) });
  const [, simUrl] = await waitForLine(run, /^passgate-sim listening on (http:\/\/127\.0\.0\.1:\d+)$/m);
  const [, url] = await waitForLine(run, /^passgate listening on (http:\/\/127\.0\.0\.1:\d+)$/m);
  await waitForLine(run, /sim\/log/);
  t.is((await fetch(`${url}/readyz`)).status, 200);
  const simLog = async () => (await (await fetch(`${simUrl}/sim/log`)).json()) as Array<{ operation: string; method: string; path: string }>;
  const before = await simLog();
  t.false(before.some((e) => e.operation === 'sessions.create'), 'no sign-in upstream yet');

  // npm start's walk (README "First steps"), steps 1 and 2: the demo app's device starts a sign-in.
  const deviceInfo = { model: 'Demo TV', version: '1.0', osName: 'tvOS', osVersion: '17.0', connectionType: 'WiFi' };
  const registered = await fetch(`${url}/v1/devices`, {
    method: 'POST',
    headers: { 'x-app-key': 'demo-app-key', 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId: 'with-sim-tv', deviceInfo }),
  });
  t.is(registered.status, 201);
  const { deviceToken } = (await registered.json()) as { deviceToken: string };
  const started = await fetch(`${url}/v1/authentication`, {
    method: 'POST',
    headers: { authorization: `Bearer ${deviceToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ mvpd: 'Cablevision' }),
  });
  t.is(started.status, 201);
  const { code } = (await started.json()) as { code: string };

  // Those calls reached the simulator this command started: its log has passgate's client
  // registration and the session passgate created there…
  const after = await simLog();
  for (const operation of ['dcr.register', 'sessions.create']) t.true(after.some((e) => e.operation === operation), `${operation} in /sim/log`);
  t.true(after.length > before.length);
  // …and the simulator holds the session behind the code passgate handed out (an unknown code is a 400 page there).
  const serviceProvider = /^\/api\/v2\/([^/]+)\/sessions$/.exec(after.find((e) => e.operation === 'sessions.create')?.path ?? '')?.[1];
  t.truthy(serviceProvider);
  const authenticatePage = (c: string) => fetch(`${simUrl}/api/v2/authenticate/${serviceProvider}/${c}`, { redirect: 'manual' });
  t.is((await authenticatePage(code)).status, 302, 'on to the MVPD login');
  t.is((await authenticatePage(code.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')))).status, 400);
  run.child.kill('SIGINT');
  t.is(await run.exit, 0);
});

test.serial('sim --port 0 prints its listening line', async (t) => {
  const run = cli(t, ['sim', '--port', '0']);
  const [, url] = await waitForLine(run, /^passgate-sim listening on (http:\/\/127\.0\.0\.1:\d+)$/m);
  t.is((await fetch(`${url}/sim/log`)).status, 200);
  run.child.kill('SIGTERM');
  t.is(await run.exit, 0);
});
