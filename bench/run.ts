/**
 * `npm run bench`: throughput and latency of the foundation on this machine — passgate's
 * probes, the simulator's hot endpoints, and the store on both backends. Loopback only,
 * bounded request counts; prints a table. Numbers, not pass/fail: they go in closing notes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/infra/logger.js';
import { createStore, type Store } from '../src/infra/store.js';
import { startPassgate } from '../src/main.js';
import { defaultRules } from '../src/sim/rules.js';
import { startSim } from '../src/sim/server.js';
import got from 'got';
import { Keyring, generateKeyringText } from '../src/infra/keyring.js';
import { createPassServices } from '../src/pass/index.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

interface Row {
  name: string;
  ops: number;
  perSecond: number;
  p50: number;
  p99: number;
}
const rows: Row[] = [];

/** Runs `op` REQUESTS times with CONCURRENCY workers; records per-op latency. */
async function measure(name: string, op: (i: number) => Promise<void>, count = REQUESTS, concurrency = CONCURRENCY): Promise<void> {
  for (let i = 0; i < Math.min(50, count); i++) await op(-1 - i); // warm-up
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await op(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  rows.push({ name, ops: count, perSecond: count / seconds, p50: at(0.5), p99: at(0.99) });
}

async function expectStatus(response: Promise<Response>, status: number): Promise<void> {
  const r = await response;
  await r.arrayBuffer();
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}`);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function benchStore(label: string, store: Store): Promise<void> {
  const ns = store.namespace<{ n: number; at: string }>('bench');
  await measure(`store ${label} set`, (i) => ns.set(`k${i}`, { n: i, at: 'x'.repeat(64) }, 60_000).then(() => undefined));
  await measure(`store ${label} get`, (i) => ns.get(`k${Math.abs(i)}`).then(() => undefined));
}

const silent = createLogger({ level: 'silent' });

/** A Cablevision profile at the simulator for (DCR client, device), as an MVPD login would leave. */
function signInAtSim(clientId: string, deviceId: string): void {
  sim.state.saveProfile({
    clientId,
    deviceId,
    serviceProvider: 'REF30',
    mvpd: 'Cablevision',
    notBefore: Date.now(),
    notAfter: Date.now() + 3600_000,
    issuer: 'Cablevision',
    type: 'regular',
    attributes: { userID: { value: 'bench', state: 'plain' } },
    userId: 'bench',
  });
}
const dir = mkdtempSync(join(tmpdir(), 'passgate-bench-'));
const sim = await startSim({ port: 0, rules: { ...defaultRules(), throttle: { enabled: false, ratePerSecond: 1, burst: 10 } }, logger: silent });
const passgate = await startPassgate(
  loadConfig({ PASSGATE_PORT: '0', PASSGATE_METRICS_PORT: '0', PASSGATE_HOST: '127.0.0.1', PASSGATE_DATA_DIR: dir, PASS_BASE_URL: sim.url }),
  { logger: silent },
);

/**
 * Issue 5: the license gate + token mint with a cached Permit (POST /v1/license-token: device
 * token check, Permit from the L1, catalogue, revocation status, AES + SHA-256 token), against a
 * bare node:http server answering a fixed body of the same size, in the same run.
 */
async function benchLicenseGate(): Promise<void> {
  const registered = (await (
    await fetch(`${passgate.url}/v1/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-app-key': 'demo-app-key' },
      body: JSON.stringify({ deviceId: 'bench-drm-device', deviceInfo: { model: 'bench', version: '1', osName: 'tvOS', osVersion: '17', connectionType: 'LAN' } }),
    })
  ).json()) as { deviceToken: string; device: { app: string; fingerprint: string } };
  const record = await passgate.services.pass.registry.get(registered.device.app, registered.device.fingerprint);
  if (!record) throw new Error('bench: the device has no DCR record');
  signInAtSim(record.clientId, registered.device.fingerprint);
  const auth = { authorization: `Bearer ${registered.deviceToken}`, 'content-type': 'application/json' };
  const authorized = await fetch(`${passgate.url}/v1/authorize`, { method: 'POST', headers: auth, body: JSON.stringify({ resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } }) });
  if (authorized.status !== 200) throw new Error(`bench: authorize answered ${authorized.status}: ${await authorized.text()}`);
  const body = JSON.stringify({ resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } });
  const sample = await fetch(`${passgate.url}/v1/license-token`, { method: 'POST', headers: auth, body });
  const fixed = Buffer.from(await sample.arrayBuffer());

  const bare = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': fixed.length });
      res.end(fixed);
    });
  });
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  const bareUrl = `http://127.0.0.1:${(bare.address() as { port: number }).port}/`;
  try {
    for (const concurrency of [1, CONCURRENCY]) {
      await measure(`bare node:http fixed ${fixed.length} B body (c=${concurrency})`, () => expectStatus(fetch(bareUrl, { method: 'POST', headers: auth, body }), 200), REQUESTS, concurrency);
      await measure(`passgate POST /v1/license-token, cached Permit (c=${concurrency})`, () =>
        expectStatus(fetch(`${passgate.url}/v1/license-token`, { method: 'POST', headers: auth, body }), 200), REQUESTS, concurrency);
    }
    const drm = passgate.services.drm.drm;
    const device = await passgate.services.devices.authenticate(registered.deviceToken);
    if (drm) await measure('in-process gate + mint (DrmService.licenseToken)', () => drm.licenseToken(device, 'REF30', { system: 'widevine', contentId: 'ref30-movie' }).then(() => undefined));
  } finally {
    await new Promise<void>((resolve) => bare.close(() => resolve()));
  }
}

try {
  await measure('passgate GET /livez', () => expectStatus(fetch(`${passgate.url}/livez`), 200));
  await measure('passgate GET /readyz (store ping)', () => expectStatus(fetch(`${passgate.url}/readyz`), 200));
  await measure('passgate GET /metrics', () => expectStatus(fetch(passgate.metricsUrl), 200), 300);

  const xdi = Buffer.from(JSON.stringify({ model: 'bench', version: '1', osName: 'tvOS', osVersion: '17', connectionType: 'LAN' })).toString('base64');
  const statement = [
    Buffer.from('{"alg":"none"}').toString('base64url'),
    Buffer.from('{"software_id":"passgate-demo-restv2"}').toString('base64url'),
    'x',
  ].join('.');
  const reg = (await (
    await fetch(`${sim.url}/o/client/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-device-info': xdi },
      body: JSON.stringify({ software_statement: statement }),
    })
  ).json()) as { client_id: string; client_secret: string };
  const form = new URLSearchParams({ client_id: reg.client_id, client_secret: reg.client_secret, grant_type: 'client_credentials' }).toString();
  const tokenCall = () =>
    fetch(`${sim.url}/o/client/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-device-info': xdi }, body: form });
  await measure('sim POST /o/client/token', () => expectStatus(tokenCall(), 201));
  const { access_token } = (await (await tokenCall()).json()) as { access_token: string };
  const deviceId = Buffer.from('bench-device').toString('base64');
  const headers = { authorization: `Bearer ${access_token}`, 'ap-device-identifier': `fingerprint ${deviceId}`, 'x-device-info': xdi };
  signInAtSim(reg.client_id, deviceId);
  await measure('sim GET configuration', () => expectStatus(fetch(`${sim.url}/api/v2/REF30/configuration`, { headers }), 200));
  await measure('sim POST decisions/authorize', () =>
    expectStatus(
      fetch(`${sim.url}/api/v2/REF30/decisions/authorize/Cablevision`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ resources: ['REF30'] }),
      }),
      200,
    ),
  );

  // Issue 3: what the Pass client adds over a bare got call to the same endpoint — token cache,
  // required headers, throttle-mirror bucket in the store, breaker/retry, response parsing.
  const bare = got.extend({ prefixUrl: sim.url, retry: { limit: 0 }, throwHttpErrors: false });
  await measure('bare got GET configuration', () =>
    bare('api/v2/REF30/configuration', { headers }).then((r) => {
      if (r.statusCode !== 200) throw new Error(`bare got: ${r.statusCode}`);
    }),
  );
  const passStore = await createStore({ dataDir: join(dir, 'pass-store'), logger: silent });
  const config = loadConfig({ PASSGATE_DATA_DIR: dir, PASS_BASE_URL: sim.url });
  const services = createPassServices({
    config,
    store: passStore,
    keyring: Keyring.parse(generateKeyringText()),
    metricsRegistry: new (await import('prom-client')).Registry(),
    logger: silent,
    clock: { now: () => Date.now() },
  });
  const app = Object.values(config.apps)[0];
  if (!app) throw new Error('no app in the bench config');
  const device = await services.registry.register({ appId: app.id, deviceId: 'bench-pass-client', deviceInfo: { model: 'bench', version: '1', osName: 'tvOS', osVersion: '17', connectionType: 'LAN' }, client: { ip: '10.9.0.1' } });
  // A different device IP per call, so the 1 req/s mirror bucket never makes the bench wait.
  await measure('PassClient GET configuration (embedded store)', (i) =>
    services.pass.configuration({ device, client: { ip: `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`, port: 40000 } }).then(() => undefined),
  );
  await services.close();
  await passStore.disconnect();

  await benchLicenseGate();

  const embedded = await createStore({ dataDir: join(dir, 'store'), logger: silent });
  await benchStore('embedded (SQLite)', embedded);
  await embedded.disconnect();

  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  try {
    let store: Store | undefined;
    for (let i = 0; i < 50 && !store; i++) {
      store = await createStore({ redisUrl: `redis://127.0.0.1:${port}`, dataDir: dir, logger: silent }).catch(() => undefined);
      if (!store) await sleep(100);
    }
    if (store) {
      await benchStore('redis', store);
      await store.disconnect();
    } else console.error('redis-server did not start; Redis rows skipped');
  } finally {
    redis.kill();
  }
} finally {
  await passgate.close();
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\nconcurrency ${CONCURRENCY}, ${REQUESTS} ops per row (Node ${process.version})\n`);
console.log('| operation | ops | ops/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.name} | ${r.ops} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
const ratio = (c: number) => {
  const bare = rows.find((r) => r.name.startsWith('bare node:http') && r.name.endsWith(`(c=${c})`));
  const gate = rows.find((r) => r.name.startsWith('passgate POST /v1/license-token') && r.name.endsWith(`(c=${c})`));
  return bare && gate ? `c=${c}: license gate + mint = ${((gate.perSecond / bare.perSecond) * 100).toFixed(0)}% of bare node:http throughput (${gate.perSecond.toFixed(0)} vs ${bare.perSecond.toFixed(0)} req/s)` : undefined;
};
for (const line of [ratio(1), ratio(CONCURRENCY)]) if (line) console.log(`\n${line}`);
