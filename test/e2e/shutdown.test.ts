import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { localInstanceEnv } from '../../src/config/load.js';
import { packageRoot } from '../../src/config/package.js';
import { buildSim } from '../../src/sim/server.js';
import { defaultRules, simRulesSchema } from '../../src/sim/rules.js';
import type { SimLogEntry } from '../../src/sim/state.js';
import { demoDrmFile } from '../helpers/drm-config.js';
import { hiddenSession } from '../helpers/mvpd-login.js';
import { unthrottled } from '../helpers/sim-profile.js';
import { tempDir } from '../helpers/with-app.js';
import { newDeviceId, sampleDeviceInfo } from '../helpers/with-passgate.js';
import { demoSoftwareStatement } from '../helpers/with-sim.js';

/**
 * SIGTERM against a real `passgate serve` process with clients waiting on it: 8 long-polls,
 * 2 event streams and 3 authorizes stuck on a slow upstream. Every client gets a complete answer
 * and the process exits 0. The simulator runs in this process, behind a counter of the upstream
 * calls in flight (so the test knows the authorizes have reached it).
 */

const APP_KEY = `shutdown-app-key-${Math.random().toString(36).slice(2)}`;
const LATENCY_MS = 2_500;

/** The real simulator on 127.0.0.1:0, counting `decisions/authorize` calls as they arrive. */
async function startCountingSim(t: ExecutionContext) {
  const sim = buildSim({ rules: simRulesSchema.parse({ ...defaultRules(), ...unthrottled }) });
  const handle = sim.app.callback();
  let authorizesArrived = 0;
  const server = createServer((req, res) => {
    if (req.url?.includes('/decisions/authorize/')) authorizesArrived++;
    void handle(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    authorizesArrived: () => authorizesArrived,
    log: async () => (await (await fetch(`${url}/sim/log`)).json()) as SimLogEntry[],
    configure: async (rules: unknown) => {
      const response = await fetch(`${url}/sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rules) });
      if (!response.ok) throw new Error(`POST /sim/config answered ${response.status}`);
    },
  };
}

/** `passgate serve` as a child process; its stdout (console lines and JSON log lines) is kept. */
async function startServe(t: ExecutionContext, simUrl: string) {
  const dataDir = await tempDir(t);
  const configDir = await tempDir(t);
  const configFile = join(configDir, 'passgate.yaml');
  await writeFile(
    configFile,
    JSON.stringify({
      service_provider: 'REF30',
      apps: { demo: { platform: 'tvos', app_key: APP_KEY, software_statement: demoSoftwareStatement } },
      devices: { registrations_per_minute: 6_000, registration_burst: 1_000 },
      throttle: { rate_per_second: 1000, burst: 100000, max_wait_ms: 0 },
      signin: { hidden_mvpds: ['AdobePass_TEST'], poll_interval_ms: 3_000 },
      ...demoDrmFile,
    }),
  );
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(PASSGATE_|REDIS_URL$|PASS_BASE_URL$|DRM_BASE_URL$|ADAPTER_BASE_URL$)/.test(name)),
  );
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'serve'], {
    cwd: packageRoot,
    env: { ...inherited, ...localInstanceEnv({ simUrl, dataDir, configFile }), PASSGATE_LOG_LEVEL: 'info' },
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as string | null }));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /passgate listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1]) {
        child.stdout.off('data', check);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', check);
    void exit.then(({ code }) => reject(new Error(`passgate exited with ${code} before listening:\n${out}\n${err}`)));
  });
  const logLines = () =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { child, url, exit, logLines, stderr: () => err };
}

/** Marks a client's promise as handled: a cut connection fails the test where it is awaited, not as an unhandled rejection. */
const handled = (promise: Promise<unknown>) => void promise.catch(() => undefined);

/** Waits (real time, bounded) until `check` holds; the bound only fails a test that would hang. */
async function until(check: () => boolean | Promise<boolean>, what: string, bound = 20_000): Promise<void> {
  const end = Date.now() + bound;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('SIGTERM: waiting long-polls answer 200 with their status, event streams end with a last event and a retry hint, slow authorizes finish; exit 0', async (t) => {
  t.timeout(90_000);
  const sim = await startCountingSim(t);
  const passgate = await startServe(t, sim.url);

  const api = (token: string, method: string, path: string, body?: unknown) =>
    fetch(`${passgate.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const register = async () => {
    const response = await fetch(`${passgate.url}/v1/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-app-key': APP_KEY },
      body: JSON.stringify({ deviceId: newDeviceId(), deviceInfo: sampleDeviceInfo }),
    });
    if (response.status !== 201) throw new Error(`register answered ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { deviceToken: string }).deviceToken;
  };
  const startSignin = async (token: string) => {
    const response = await api(token, 'POST', '/v1/authentication', { mvpd: 'Cablevision' });
    if (response.status !== 201) throw new Error(`POST /v1/authentication answered ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { code: string }).code;
  };

  // Three viewers signed in (MVPD login on the simulator, then passgate's polling finds the profile).
  const viewers = await Promise.all(
    Array.from({ length: 3 }, async () => {
      const token = await register();
      const code = await startSignin(token);
      const start = await fetch(`${sim.url}/api/v2/authenticate/REF30/${code}`, { redirect: 'manual' });
      const loginUrl = new URL(start.headers.get('location') ?? '', sim.url);
      const session = hiddenSession(await (await fetch(loginUrl)).text());
      loginUrl.search = '';
      const login = await fetch(loginUrl, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ session, username: 'viewer', password: 'pass' }).toString(),
      });
      if (login.status !== 302) throw new Error(`MVPD login answered ${login.status}`);
      const status = (await (await api(token, 'GET', `/v1/authentication/${code}?wait=20`)).json()) as { status: string };
      if (status.status !== 'authenticated') throw new Error(`sign-in ended ${status.status}`);
      return token;
    }),
  );

  // Ten apps waiting for a sign-in that will not come: 8 long-polls and 2 event streams.
  const waiting = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const token = await register();
      return { token, code: await startSignin(token) };
    }),
  );
  const longPolls = waiting.slice(0, 8).map(({ token, code }) =>
    api(token, 'GET', `/v1/authentication/${code}?wait=30`).then(async (response) => ({
      status: response.status,
      type: response.headers.get('content-type') ?? '',
      body: (await response.json()) as { status?: string },
    })),
  );
  longPolls.forEach(handled);
  const streams = waiting.slice(8).map(async ({ token, code }) => {
    const response = await api(token, 'GET', `/v1/authentication/${code}/events`);
    let text = '';
    let first!: () => void;
    const opened = new Promise<void>((resolve) => (first = resolve));
    const done = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        if (text.includes('\n\n')) first();
      }
      // Reaching here means the body ended cleanly (a cut connection rejects the iteration).
      return { status: response.status, type: response.headers.get('content-type') ?? '', text };
    })();
    handled(done);
    return { opened, done };
  });
  const opened = await Promise.all(streams);
  await Promise.all(opened.map((s) => s.opened));
  // Every code is waited on: passgate polls profiles/code upstream only while an app waits for it.
  await until(async () => {
    const polled = new Set((await sim.log()).filter((e) => e.operation === 'profiles.code').map((e) => e.path.split('/').pop()));
    return waiting.every(({ code }) => polled.has(code));
  }, 'a profiles/code poll for every waiting code');

  // Slow upstream: the authorizes are in flight at the simulator when SIGTERM arrives.
  await sim.configure({ faults: { latencyMs: LATENCY_MS, errorRate: 0, outage: false } });
  const authorizes = viewers.map((token) =>
    api(token, 'POST', '/v1/authorize', { resource: 'REF30' }).then(async (response) => ({ status: response.status, body: (await response.json()) as Record<string, unknown> })),
  );
  authorizes.forEach(handled);
  await until(() => sim.authorizesArrived() >= viewers.length, 'the authorizes to reach the upstream');

  const signalledAt = Date.now();
  passgate.child.kill('SIGTERM');

  const polls = await Promise.all(longPolls);
  for (const poll of polls) {
    t.is(poll.status, 200);
    t.regex(poll.type, /^application\/json/);
    t.deepEqual(poll.body, { status: 'pending' });
  }
  for (const stream of await Promise.all(opened.map((s) => s.done))) {
    t.is(stream.status, 200);
    t.regex(stream.type, /^text\/event-stream/);
    const events = stream.text.split('\n\n').filter((block) => block.trim() !== '' && !block.startsWith(':'));
    const last = events.at(-1) ?? '';
    t.regex(last, /^retry: \d+$/m, 'the last event tells EventSource when to reconnect');
    t.regex(last, /^event: status$/m);
    t.deepEqual(JSON.parse(/^data: (.*)$/m.exec(last)?.[1] ?? 'null'), { status: 'pending' });
    t.true(stream.text.endsWith('\n\n'), 'the stream ends on a complete event');
  }
  for (const authorize of await Promise.all(authorizes)) {
    t.is(authorize.status, 200, JSON.stringify(authorize.body));
    t.is(authorize.body.authorized, true);
  }

  const exit = await Promise.race([passgate.exit, sleep(30_000).then(() => ({ code: 'still running after 30 s', signal: null }))]);
  t.log(`exited ${Date.now() - signalledAt} ms after SIGTERM`);
  t.deepEqual(exit, { code: 0, signal: null }, passgate.stderr());

  // The access log says what was sent: every waited-on request completed with its status.
  const requests = passgate.logLines().filter((l) => l.msg === 'request');
  const waited = requests.filter((l) => l.route === '/v1/authentication/:code' || l.route === '/v1/authentication/:code/events' || l.route === '/v1/authorize');
  t.is(waited.length, 8 + 3 + 2 + 3, 'sign-ins, long-polls, streams and authorizes');
  for (const line of waited) t.like(line, { status: 200, completed: true });
  t.truthy(passgate.logLines().find((l) => l.msg === 'stopped'));
});
