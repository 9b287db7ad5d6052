/**
 * `npm run bench` (issue 10): passgate's cost per request measured from outside, beside two floors
 * in the same run — bare node:http and an empty Koa route. Every server in its own process, the
 * load from wrk (autocannon when wrk is missing) on another core, interleaved reps, medians and
 * per-rep ratios; then 100k registered devices with 10k live Permits: RSS, store size, and the
 * gate again on that store. Prints the tables and writes docs/performance.md.
 *
 * Environment: BENCH_QUICK=1 (1 rep of 1 s, 2k devices; prints, does not write the doc unless
 * BENCH_WRITE=1), BENCH_REPS, BENCH_DURATION (s), BENCH_WARMUP (s), BENCH_CONNECTIONS,
 * BENCH_DEVICES, BENCH_PERMITS, BENCH_SEED_CONCURRENCY, BENCH_MEMORY=0 (skip the memory row),
 * BENCH_MEMORY_REDIS=1 (the memory row on Redis too), BENCH_REDIS=0 (no Redis rows),
 * BENCH_LOAD=wrk|autocannon, BENCH_BUILD=0 (use dist/ as it is), BENCH_KEEP=1 (keep the logs).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DRM,
  RESOURCE,
  authorize,
  authorizeBody,
  directAuthorizeBody,
  directAuthorizePath,
  directClient,
  permittedDevice,
  pool,
  registerDevice,
  renewalBody,
  retried,
  signIn,
  APP_KEY,
  type Device,
} from './flows.js';
import { generatorVersion, pickGenerator, runLoad, type LoadRequest, type LoadResult, type LoadSpec } from './load.js';
import { CORES, foreignCores, foreignCpuSnapshot, hasTaskset, installExitHooks, memoryOf, pinSelf, stopAll, stopChild } from './processes.js';
import { machine, markdown, median, summary, type MemoryRow, type PassThrough, type Report, type Row } from './report.js';
import {
  ROOT,
  benchKeyring,
  buildDist,
  redisUsedMemory,
  startFloor,
  startLicenseStub,
  startPassgate,
  startRedis,
  startSim,
  writeBenchConfig,
  type Passgate,
  type RedisServer,
  type Server,
} from './stack.js';

const quick = process.env.BENCH_QUICK === '1';
const num = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`bench: ${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return value;
};
const settings = {
  reps: Math.max(1, num('BENCH_REPS', quick ? 1 : 3)),
  duration: Math.max(1, num('BENCH_DURATION', quick ? 1 : 5)),
  warmup: num('BENCH_WARMUP', quick ? 1 : 2),
  connections: Math.max(1, num('BENCH_CONNECTIONS', 50)),
  devices: num('BENCH_DEVICES', quick ? 2_000 : 100_000),
  permits: num('BENCH_PERMITS', quick ? 200 : 10_000),
  seedConcurrency: Math.max(1, num('BENCH_SEED_CONCURRENCY', 32)),
  memory: process.env.BENCH_MEMORY !== '0',
  memoryRedis: process.env.BENCH_MEMORY_REDIS === '1',
  redis: process.env.BENCH_REDIS !== '0' && spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0,
  build: process.env.BENCH_BUILD !== '0',
  write: !quick || process.env.BENCH_WRITE === '1',
  keep: process.env.BENCH_KEEP === '1',
};
/** Devices each rotating scenario cycles through: more than the connections, so no two in-flight requests share a device. */
const ROTATION = Math.max(32, settings.connections + 14);

const log = (message: string) => console.error(`bench: ${message}`);

/** A scenario: a target and what the generator sends; `expect` is the status the one-off check wants. */
interface Scenario {
  label: string;
  spec: Omit<LoadSpec, 'durationSeconds'>;
  expect: number;
}

installExitHooks();
pinSelf(CORES.helper);
const dir = mkdtempSync(join(tmpdir(), 'passgate-bench-'));
const generator = pickGenerator();
const notes: string[] = [];

/** One request sent once, before any load: a scenario that does not answer as expected stops the bench, naming it. */
async function check(scenario: Scenario): Promise<void> {
  const r = scenario.spec.requests[0] as LoadRequest;
  const response = await fetch(`${scenario.spec.url}${r.path}`, { method: r.method, headers: r.headers ?? {}, ...(r.body !== undefined ? { body: r.body } : {}) });
  const text = await response.text();
  if (response.status !== scenario.expect) throw new Error(`bench: ${scenario.label} answered ${response.status} (expected ${scenario.expect}) before the load: ${text.slice(0, 300)}`);
}

let runs = 0;
/** Cores that processes other than the bench's kept busy during each measured run. */
const foreign: number[] = [];
/** A warm-up run (not recorded), then the measured run. */
async function measure(scenario: Scenario, connections = scenario.spec.connections): Promise<LoadResult> {
  const spec = { ...scenario.spec, connections };
  if (settings.warmup > 0) await runLoad(generator, { ...spec, durationSeconds: settings.warmup }, dir);
  const before = foreignCpuSnapshot();
  // autocannon needs a few seconds to settle its 50 connections; shorter runs can count nothing.
  const seconds = generator === 'autocannon' ? Math.max(3, settings.duration) : settings.duration;
  const result = await runLoad(generator, { ...spec, durationSeconds: seconds }, dir);
  const others = foreignCores(before, foreignCpuSnapshot());
  if (others !== undefined) foreign.push(others);
  runs++;
  log(`  ${scenario.label}${connections !== scenario.spec.connections ? ` (c=${connections})` : ''}: ${Math.round(result.perSecond)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${result.failed ? `, ${result.failed} FAILED` : ''}`);
  return result;
}

const json = { 'content-type': 'application/json' };
const bearer = (device: Device) => ({ authorization: `Bearer ${device.deviceToken}` });
const licenseTokenRequest = (device: Device): LoadRequest => ({ method: 'POST', path: '/v1/license-token', headers: { ...bearer(device), ...json }, body: JSON.stringify({ resource: RESOURCE, drm: DRM }) });
/** A Widevine challenge as the simulator's license service reads one (the stub reads nothing). */
const CHALLENGE = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x20]), Buffer.from(`passgate bench widevine challenge content_id=${DRM.contentId} `)]);

function scenario(label: string, url: string, requests: LoadRequest[], expect = 200): Scenario {
  return { label, spec: { url, requests, connections: settings.connections }, expect };
}

/** Runs `scenarios` after the two floors, `reps` times interleaved; the per-rep ratios. */
async function interleaved(floors: { bare: Scenario; koa: Scenario }, scenarios: Scenario[], reps: number): Promise<Row[]> {
  const all = [floors.bare, floors.koa, ...scenarios];
  const rows: Row[] = all.map((s) => ({ label: s.label, samples: [], ratioBare: [], ratioKoa: [] }));
  for (let rep = 1; rep <= reps; rep++) {
    log(`rep ${rep}/${reps}`);
    for (const [i, s] of all.entries()) (rows[i] as Row).samples.push(await measure(s));
    const [bare, koa] = [rows[0]?.samples.at(-1)?.perSecond ?? NaN, rows[1]?.samples.at(-1)?.perSecond ?? NaN];
    for (const row of rows) {
      const own = row.samples.at(-1)?.perSecond ?? NaN;
      row.ratioBare.push(own / bare);
      row.ratioKoa.push(own / koa);
    }
  }
  return rows;
}

/** Bytes of every file under `path`, and their names. */
function diskUsage(path: string): { bytes: number; files: string[] } {
  let bytes = 0;
  const files: string[] = [];
  for (const entry of readdirSync(path, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    bytes += statSync(full).size;
    files.push(full.slice(path.length + 1));
  }
  return { bytes, files };
}

/** nodejs_heap_size_used_bytes from passgate's ops /metrics. */
async function heapUsed(passgate: Passgate): Promise<number | undefined> {
  const text = await (await fetch(`${passgate.opsUrl}/metrics`)).text();
  const value = /^(?:passgate_)?nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1];
  return value === undefined ? undefined : Number(value);
}

function rss(passgate: Passgate): { rss: number; peak: number } {
  const memory = memoryOf(passgate.child.pid);
  if (!memory) throw new Error('bench: cannot read /proc/<pid>/status for the RSS');
  return memory;
}

/**
 * The memory row: a fresh simulator and passgate; `devices` registrations, the first `permits` of
 * them signed in with a Permit cached; RSS and store size before and after; the gate again.
 */
async function memoryRow(store: 'embedded' | 'redis', floors: { bare: Scenario; koa: Scenario }, configFile: string, stub: Server): Promise<MemoryRow> {
  log(`memory row on the ${store} store: ${settings.devices} devices, ${settings.permits} with a live Permit (progress every 5%)`);
  const sim = await startSim(`sim-memory-${store}`, dir);
  const redis: RedisServer | undefined = store === 'redis' ? await startRedis(join(dir)) : undefined;
  const passgate = await startPassgate(`passgate-memory-${store}`, dir, { configFile, simUrl: sim.url, drmUrl: stub.url, keys: benchKeyring(), ...(redis ? { redisUrl: redis.url } : {}) });
  try {
    await sleep(1_000);
    const before = rss(passgate);
    const heapBefore = await heapUsed(passgate);
    const started = Date.now();
    const permitted: Device[] = [];
    const step = Math.max(1, Math.floor(settings.devices / 20));
    const progress = (what: string, total: number) => (done: number) => {
      if (done % step === 0 || done === total) log(`  ${what}: ${done}/${total} (${Math.round((Date.now() - started) / 1000)} s, RSS ${Math.round(rss(passgate).rss / 1048576)} MiB)`);
    };
    const devices: Device[] = new Array<Device>(settings.devices);
    await pool(
      settings.devices,
      settings.seedConcurrency,
      async (i) => {
        devices[i] = await registerDevice(passgate.url, `bench-${store}-${i}`);
      },
      progress('registered', settings.devices),
    );
    const permits = Math.min(settings.permits, settings.devices);
    await pool(
      permits,
      settings.seedConcurrency,
      async (i) => {
        const device = devices[i] as Device;
        await signIn(passgate.url, sim.url, device);
        await authorize(passgate.url, device);
        permitted[i] = device;
      },
      progress('signed in with a Permit', permits),
    );
    const seedSeconds = (Date.now() - started) / 1000;
    await sleep(1_000);
    const after = rss(passgate);
    const heapAfter = await heapUsed(passgate);
    const disk = diskUsage(passgate.dataDir);
    const usedMemory = redis ? await redisUsedMemory(redis.port) : undefined;
    log(`  seeded in ${Math.round(seedSeconds)} s; RSS ${Math.round(before.rss / 1048576)} → ${Math.round(after.rss / 1048576)} MiB; store ${Math.round(disk.bytes / 1048576)} MiB`);

    const first = permitted[0] as Device;
    const gate = [
      scenario(`license-token on the loaded ${store} store, one device`, passgate.url, [licenseTokenRequest(first)]),
      scenario(`license-token on the loaded ${store} store, rotating over ${permitted.length} devices`, passgate.url, permitted.map(licenseTokenRequest)),
    ];
    for (const s of gate) await check(s);
    const rows = await interleaved(floors, gate, settings.reps);
    return {
      store,
      devices: settings.devices,
      permits,
      seedSeconds,
      rssBefore: before.rss,
      rssAfter: after.rss,
      peakRss: rss(passgate).peak,
      ...(heapBefore !== undefined ? { heapBefore } : {}),
      ...(heapAfter !== undefined ? { heapAfter } : {}),
      storeBytes: disk.bytes,
      storeFiles: disk.files.join(', ') || 'none',
      ...(usedMemory !== undefined ? { redisUsedMemory: usedMemory } : {}),
      gate: rows,
    };
  } finally {
    await stopChild(passgate.child);
    await stopChild(sim.child);
    if (redis) await stopChild(redis.child);
  }
}

async function main(): Promise<void> {
  const { cpu, cores } = machine();
  log(`${generator}, ${settings.reps} rep(s) of ${settings.duration} s (+${settings.warmup} s warm-up), ${settings.connections} connections; logs in ${dir}`);
  if (!hasTaskset) notes.push('taskset is missing: nothing was pinned, servers and the generator shared every core.');
  if (cores < 2) notes.push(`only ${cores} core: the servers and the generator shared it.`);
  if (!settings.redis) notes.push('redis-server is missing (or BENCH_REDIS=0): no Redis rows.');
  if (settings.build) buildDist();

  const configFile = writeBenchConfig(dir);
  const keys = benchKeyring();
  log('starting the servers');
  const [bareServer, koaServer] = [await startFloor('bare node:http', 'bare.ts', dir), await startFloor('Koa floor', 'koa-floor.ts', dir)];
  const observedServer = await startFloor('observed Koa floor', 'koa-observed.ts', dir);
  const sim = await startSim('sim', dir);
  const stub = await startLicenseStub(dir);
  const redis = settings.redis ? await startRedis(dir) : undefined;
  const embedded = await startPassgate('passgate-embedded', dir, { configFile, simUrl: sim.url, drmUrl: stub.url, keys });
  const onRedis = redis ? await startPassgate('passgate-redis', dir, { configFile, simUrl: sim.url, drmUrl: stub.url, keys, redisUrl: redis.url }) : undefined;

  log('setting up devices over HTTP (register, sign in, authorize)');
  const gateDevice = await permittedDevice(embedded.url, sim.url, 'bench-gate-device');
  const redisDevice = onRedis ? await permittedDevice(onRedis.url, sim.url, 'bench-gate-device-redis') : undefined;
  const renewing: Device[] = [];
  await pool(ROTATION, 8, async (i) => {
    renewing[i] = await registerDevice(embedded.url, `bench-renewal-${i}`);
  });
  const authorizing: Device[] = [];
  const authorizingRedis: Device[] = [];
  const direct: Array<Record<string, string>> = [];
  await pool(ROTATION, 8, async (i) => {
    const device = await registerDevice(embedded.url, `bench-authorize-${i}`);
    await signIn(embedded.url, sim.url, device);
    authorizing[i] = device;
    if (onRedis) {
      const other = await registerDevice(onRedis.url, `bench-authorize-redis-${i}`);
      await signIn(onRedis.url, sim.url, other);
      authorizingRedis[i] = other;
    }
    direct[i] = await directClient(sim.url, `bench-direct-${i}`, `198.51.100.${(i % 250) + 1}`);
  });

  const floorRequest = licenseTokenRequest(gateDevice);
  const floors = { bare: scenario('bare node:http, fixed 60-byte JSON', bareServer.url, [floorRequest]), koa: scenario('Koa floor: koa + @koa/router + @koa/bodyparser, one POST route', koaServer.url, [floorRequest]) };
  const scenarios: Scenario[] = [
    // What the gate cannot shed: passgate's request id, RED metrics, access line and audit line on the empty route.
    scenario("Koa floor + passgate's observability (request id, RED metrics, access line, audit line)", observedServer.url, [floorRequest]),
    scenario('passgate GET /livez', embedded.url, [{ method: 'GET', path: '/livez' }]),
    scenario('passgate POST /v1/license-token, cached Permit, embedded store', embedded.url, [licenseTokenRequest(gateDevice)]),
    ...(onRedis && redisDevice ? [scenario('passgate POST /v1/license-token, cached Permit, Redis', onRedis.url, [licenseTokenRequest(redisDevice)])] : []),
    scenario('passgate POST /v1/license/widevine (token proxy, license stub answers at once)', embedded.url, [
      { method: 'POST', path: `/v1/license/widevine?resource=${RESOURCE}&contentId=${DRM.contentId}`, headers: { ...bearer(gateDevice), 'content-type': 'application/octet-stream' }, body: CHALLENGE },
    ]),
    scenario('passgate GET /activate', embedded.url, [{ method: 'GET', path: '/activate' }]),
    scenario('passgate GET /metrics (ops port)', embedded.opsUrl, [{ method: 'GET', path: '/metrics' }]),
    scenario(`passgate POST /v1/devices renewal with deviceSecret (${ROTATION} devices)`, embedded.url, renewing.map((d) => ({ method: 'POST', path: '/v1/devices', headers: { ...json, 'x-app-key': APP_KEY }, body: renewalBody(d) }))),
  ];
  const authorizeRequests = (devices: Device[]): LoadRequest[] => devices.map((d) => ({ method: 'POST', path: '/v1/authorize', headers: { ...bearer(d), ...json }, body: authorizeBody(false) }));
  const viaPassgate = [
    { store: 'embedded', scenario: scenario('passgate POST /v1/authorize (embedded)', embedded.url, authorizeRequests(authorizing)) },
    ...(onRedis ? [{ store: 'Redis', scenario: scenario('passgate POST /v1/authorize (Redis)', onRedis.url, authorizeRequests(authorizingRedis)) }] : []),
  ];
  const directAuthorize = scenario('sim decisions/authorize (direct)', sim.url, direct.map((headers) => ({ method: 'POST', path: directAuthorizePath, headers, body: directAuthorizeBody })));
  for (const s of [floors.bare, floors.koa, ...scenarios, ...viaPassgate.map((v) => v.scenario), directAuthorize]) await check(s);

  log('measuring');
  const rows = await interleaved(floors, scenarios, settings.reps);
  const passThrough: PassThrough[] = [1, 16].flatMap((connections) => viaPassgate.map(({ store }) => ({ store, connections, direct: [], viaPassgate: [], addedP50: [] })));
  for (let rep = 1; rep <= settings.reps; rep++) {
    log(`authorize pass-through, rep ${rep}/${settings.reps}`);
    for (const connections of [1, 16]) {
      // One direct run per rep and concurrency, the baseline of every passgate beside it.
      const d = await measure(directAuthorize, connections);
      for (const { store, scenario: via } of viaPassgate) {
        const v = await measure(via, connections);
        const p = passThrough.find((x) => x.store === store && x.connections === connections) as PassThrough;
        p.direct.push(d);
        p.viaPassgate.push(v);
        p.addedP50.push(v.p50Ms - d.p50Ms);
      }
    }
  }
  // The main stack is done: its processes would only sit beside the memory row.
  await stopChild(embedded.child);
  if (onRedis) await stopChild(onRedis.child);
  if (redis) await stopChild(redis.child);
  await stopChild(sim.child);

  let memory: MemoryRow | undefined;
  if (settings.memory && settings.devices > 0) {
    memory = await memoryRow('embedded', floors, configFile, stub);
    if (settings.memoryRedis && settings.redis) {
      const onRedisMemory = await memoryRow('redis', floors, configFile, stub);
      notes.push(
        `the same memory row on Redis: passgate RSS ${Math.round(onRedisMemory.rssBefore / 1048576)} → ${Math.round(onRedisMemory.rssAfter / 1048576)} MiB, Redis used_memory ${Math.round((onRedisMemory.redisUsedMemory ?? NaN) / 1048576)} MiB; the gate on it: ${Math.round(median(onRedisMemory.gate[2]?.samples.map((s) => s.perSecond) ?? []))} req/s (one device), ${Math.round(median(onRedisMemory.gate[3]?.samples.map((s) => s.perSecond) ?? []))} req/s (rotating).`,
      );
    }
  }

  const retries = Object.entries(retried).map(([status, count]) => `${status} ×${count}`);
  if (retries.length > 0) notes.push(`while the bench set devices up (the memory row's seeding included), passgate answered ${retries.join(', ')}; the bench retried after Retry-After, as an app would.`);
  if (foreign.length > 0) {
    const sorted = [...foreign].sort((a, b) => a - b);
    const share = (cores: number) => `${Math.round((cores / Math.max(1, machine().cores)) * 100)}%`;
    notes.push(
      `other processes on this machine (not the bench's) kept ${median(foreign).toFixed(2)} cores busy during the median measured run (${share(median(foreign))} of the machine; the busiest run ${(sorted.at(-1) ?? 0).toFixed(2)} cores): ${median(foreign) > 0.1 ? 'the figures are disturbed by them, the per-rep ratios less than the absolute numbers' : 'a quiet machine'}.`,
    );
  }
  const version = generatorVersion(generator);
  const report: Report = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    node: process.version,
    cpu,
    cores,
    generator: version,
    settings: `1 thread, ${settings.connections} connections (the pass-through: 1 and 16), ${settings.duration} s per run after a ${settings.warmup} s warm-up run`,
    pinning: hasTaskset
      ? `taskset: the server under test on core ${CORES.server}; the generator, the simulator, the license stub, redis-server and the bench itself on core ${CORES.generator}`
      : 'none (taskset missing)',
    reps: settings.reps,
    rows,
    passThrough,
    ...(memory ? { memory } : {}),
    notes,
  };
  console.log(summary(report));
  if (settings.write) {
    const file = join(ROOT, 'docs', 'performance.md');
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    writeFileSync(file, markdown(report));
    log(`wrote ${file}`);
  } else log('quick run: docs/performance.md left as it is (BENCH_WRITE=1 writes it)');
  log(`${runs} measured runs`);
}

try {
  await main();
} catch (error) {
  console.error((error as Error).message ?? error);
  process.exitCode = 1;
} finally {
  await stopAll();
  if (settings.keep || process.exitCode === 1) log(`logs kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
