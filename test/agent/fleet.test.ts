import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { localInstanceEnv } from '../../src/config/load.js';
import { generateKeyringText } from '../../src/infra/keyring.js';
import { packageRoot } from '../../src/config/package.js';
import { startSim } from '../../src/sim/server.js';
import { defaultRules, simRulesSchema } from '../../src/sim/rules.js';
import { demoDrmFile } from '../helpers/drm-config.js';
import { tempDir } from '../helpers/with-app.js';
import { withPassgate } from '../helpers/with-passgate.js';
import { withRedis } from '../helpers/with-redis.js';
import { demoSoftwareStatement } from '../helpers/with-sim.js';
import { KEYS, agentClient, agentFile, delivered, newSession, protectFile, randomFile, received, sha256 } from './agent-fixture.js';

/** Peak resident memory of a running process (VmHWM), in MiB; undefined once it is gone. */
async function peakRssMiB(pid: number | undefined): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kb = status && /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : undefined;
}

/** Samples a process's peak RSS until it exits: the last value read. */
function watchPeak(child: { pid?: number | undefined; exitCode: number | null }): () => number {
  let peak = 0;
  const timer = setInterval(() => {
    void peakRssMiB(child.pid).then((value) => {
      if (value !== undefined) peak = Math.max(peak, value);
    });
  }, 20);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

/** `passgate <args>` as a child process (the CLI a new user runs); its exit code and output, and its peak RSS. */
async function cli(t: ExecutionContext, args: string[], env: Record<string, string | undefined>) {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(PASSGATE_|REDIS_URL$|PASS_BASE_URL$|DRM_BASE_URL$|ADAPTER_BASE_URL$)/.test(name)));
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', ...args], { cwd: packageRoot, env: { ...inherited, ...env } });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const peak = watchPeak(child);
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output, peakMiB: peak() };
}

/** The big-file size: 50 MB in CI; PASSGATE_TEST_AGENT_MB=1024 for the 1 GB run (issue 11). */
const BIG_MB = Number(process.env.PASSGATE_TEST_AGENT_MB ?? 50);

const redisUrl = withRedis(test);

/** `passgate serve` as a child process on `dataDir` (restartable on the same one). */
async function serve(t: ExecutionContext, simUrl: string, dataDir: string, configFile: string) {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(PASSGATE_|REDIS_URL$|PASS_BASE_URL$|DRM_BASE_URL$|ADAPTER_BASE_URL$)/.test(name)));
  const child = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'serve'], {
    cwd: packageRoot,
    env: { ...inherited, ...localInstanceEnv({ simUrl, dataDir, configFile }), PASSGATE_LOG_LEVEL: 'info' },
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.resume();
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = once(child, 'exit');
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /passgate listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1]) resolve(match[1]);
    };
    child.stdout.on('data', check);
    void exited.then(() => reject(new Error(`passgate exited before listening:\n${out}`)));
  });
  return { child, url, exited, log: () => out };
}

/** A config file for `serve` and the CLI: the test app, the DRM demo, the agent. */
async function agentConfigFile(t: ExecutionContext, jobs: Record<string, unknown> = {}): Promise<string> {
  const configFile = join(await tempDir(t), 'passgate.yaml');
  await writeFile(
    configFile,
    JSON.stringify({
      service_provider: 'REF30',
      apps: { demo: { platform: 'tvos', app_key: `k-${randomBytes(6).toString('hex')}`, software_statement: demoSoftwareStatement } },
      ...demoDrmFile,
      agent: agentFile({ max_upload_bytes: 2 * 1024 ** 3 }, jobs),
    }),
  );
  return configFile;
}

test(`the CLI protects and registers a ${BIG_MB} MB file; authenticate, decrypt, the adapter gets the exact plaintext; memory stays bounded`, async (t) => {
  t.timeout(Math.max(120_000, BIG_MB * 1_000));
  const sim = await startSim({ port: 0, rules: simRulesSchema.parse(defaultRules()) });
  t.teardown(() => sim.close());
  const dataDir = await tempDir(t);
  const configFile = await agentConfigFile(t);
  const running = await serve(t, sim.url, dataDir, configFile);
  const serveStarted = (await peakRssMiB(running.child.pid)) ?? 0;
  const servePeak = watchPeak(running.child);

  const plain = await randomFile(t, BIG_MB * 1024 * 1024);
  const out = join(await tempDir(t), 'big.pgdrm');
  const env = { ...localInstanceEnv({ simUrl: sim.url, dataDir, configFile }) };
  // The same CLI on a file id it does not know: what the process needs before any file streams.
  const idle = await cli(t, ['files', 'show', '--file-id', 'nothing'], env);
  const protectRun = await cli(t, ['protect', '--in', plain.path, '--out', out, '--file-id', 'big-1', '--label', 'internal', '--register'], env);
  t.is(protectRun.code, 0, protectRun.output);
  t.like(JSON.parse(protectRun.output.trim().split('\n').at(-1) as string), { fileId: 'big-1', label: 'internal', keyId: KEYS.new.id });

  const client = agentClient(running.url);
  const dsid = newSession();
  const auth = await client.authenticate(dsid, { fileId: 'big-1', userPrincipal: 'alice@corp.example' });
  t.deepEqual(await auth.json(), { result: 'allow', fileType: 'drm', fileId: 'big-1' });
  const accepted = await client.decrypt(dsid, { fileId: 'big-1', file: out });
  t.is(accepted.status, 202);
  const { jobId } = (await accepted.json()) as { jobId: string };
  const records = await delivered(sim.url, jobId, Math.max(60_000, BIG_MB * 500));
  t.like(records.find((r) => r.kind === 'result'), { result: 'success', deliveries: 1 });
  t.like(records.find((r) => r.kind === 'decrypted'), { sha256: plain.sha256, size: BIG_MB * 1024 * 1024, deliveries: 1 });
  const serveMiB = servePeak();
  const [protectGrowth, serveGrowth] = [protectRun.peakMiB - idle.peakMiB, serveMiB - serveStarted];
  t.log(
    `${BIG_MB} MB file: peak RSS of passgate protect ${protectRun.peakMiB.toFixed(0)} MiB (a CLI run that streams nothing: ${idle.peakMiB.toFixed(0)} MiB), ` +
      `of passgate serve ${serveMiB.toFixed(0)} MiB (${serveStarted.toFixed(0)} MiB once started) through the upload, the decrypt and the callbacks`,
  );
  // Streaming holds a few chunks and socket buffers, whatever the size: far below the file itself.
  // Measured: Node 20 ≈ 34 MiB, Node 24 66-82 MiB for 50 MB and for 300 MB alike (collected later; pinning
  // its young generation did not lower it); what matters is that it does not grow with the file. A peak
  // RSS can only be a loose check: the strict one is test/agent/envelope.test.ts (200 MB through
  // protect → unprotect, memory still reachable after a full collection under 16 MiB).
  t.true(protectGrowth < 128, `protect grew ${protectGrowth.toFixed(0)} MiB past an idle CLI run`);
  t.true(serveGrowth < 128, `serve grew ${serveGrowth.toFixed(0)} MiB past its start`);
  running.child.kill('SIGTERM');
  await running.exited;
});

test('SIGKILL mid-job, restart on the same data dir: every job completes exactly once', async (t) => {
  const sim = await startSim({ port: 0, rules: simRulesSchema.parse(defaultRules()) });
  t.teardown(() => sim.close());
  const dataDir = await tempDir(t);
  const configFile = await agentConfigFile(t, { lease_ms: 1_500 });
  const first = await serve(t, sim.url, dataDir, configFile);
  const client = agentClient(first.url);
  const dsid = newSession();
  t.is((await client.authenticate(dsid, { fileId: 'doc', userPrincipal: 'a@corp.example' })).status, 200);
  // The adapter is down: the jobs are decided and waiting to call back when the process dies.
  await fetch(`${sim.url}/sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ adapter: { failing: true } }) });
  const plains = [randomBytes(3 * 1024 * 1024), randomBytes(1000), randomBytes(64 * 1024)];
  const jobs: string[] = [];
  for (const [i, plain] of plains.entries()) {
    const envelope = await protectFile(t, plain, 'doc', 'internal');
    const answer = await client.decrypt(dsid, { fileId: 'doc', file: envelope });
    t.is(answer.status, 202, `upload ${i}`);
    jobs.push(((await answer.json()) as { jobId: string }).jobId);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  first.child.kill('SIGKILL');
  await first.exited;

  await fetch(`${sim.url}/sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ adapter: { failing: false } }) });
  const second = await serve(t, sim.url, dataDir, configFile);
  for (const [i, jobId] of jobs.entries()) {
    const records = await delivered(sim.url, jobId);
    t.deepEqual(records.map((r) => r.kind).sort(), ['decrypted', 'result'], `job ${i} delivered once`);
    t.like(records.find((r) => r.kind === 'decrypted'), { sha256: sha256(plains[i] as Buffer), size: (plains[i] as Buffer).length });
  }
  const state = (await (await agentClient(second.url).job(jobs[0] as string)).json()) as { state: string };
  t.is(state.state, 'done');
  second.child.kill('SIGTERM');
  await second.exited;
});

test('two replicas on one Redis sharing a spool: each job runs on exactly one of them', async (t) => {
  const spool = await tempDir(t);
  // One fleet: one keyring (loadConfig requires PASSGATE_KEYS with REDIS_URL), so either replica opens the other's jobs.
  const env = { PASSGATE_KEYS: generateKeyringText() };
  const a = await withPassgate(t, { env, redisUrl: redisUrl(), file: { agent: agentFile({ spool_dir: spool }, { concurrency: 3 }) } });
  const b = await withPassgate(t, { env, redisUrl: redisUrl(), keyPrefix: a.keyPrefix as string, sim: a.sim, file: { agent: agentFile({ spool_dir: spool }, { concurrency: 3 }) } });
  const client = agentClient(a.url);
  const dsid = newSession();
  t.is((await client.authenticate(dsid, { fileId: 'doc', userPrincipal: 'a@corp.example' })).status, 200);
  const plains = Array.from({ length: 12 }, () => randomBytes(200_000 + Math.floor(Math.random() * 100_000)));
  const jobs = await Promise.all(
    plains.map(async (plain, i) => {
      const envelope = await protectFile(t, plain, 'doc', 'internal');
      // Half through each replica: the session is fleet-wide.
      const answer = await agentClient(i % 2 === 0 ? a.url : b.url).decrypt(dsid, { fileId: 'doc', file: envelope });
      t.is(answer.status, 202);
      return ((await answer.json()) as { jobId: string }).jobId;
    }),
  );
  for (const [i, jobId] of jobs.entries()) {
    const records = await delivered(a.sim.url, jobId);
    t.deepEqual(records.map((r) => [r.kind, r.deliveries]).sort(), [['decrypted', 1], ['result', 1]], `job ${i}`);
    t.like(records.find((r) => r.kind === 'decrypted'), { sha256: sha256(plains[i] as Buffer) });
  }
  const ranOn = (f: typeof a) => new Set(f.log.lines.filter((line) => line.msg === 'agent job result').map((line) => line.jobId as string));
  const [onA, onB] = [ranOn(a), ranOn(b)];
  t.is(onA.size + onB.size, jobs.length, 'every job finished once, on one replica');
  t.deepEqual([...onA].filter((id) => onB.has(id)), []);
  t.is((await received(a.sim.url)).length, jobs.length * 2);
  t.false([...a.log.lines, ...b.log.lines].some((line) => (line.level as number) >= 50), 'no error lines');
});
