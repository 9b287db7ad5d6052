import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { localInstanceEnv } from '../../src/config/load.js';
import { packageRoot } from '../../src/config/package.js';
import { startSim } from '../../src/sim/server.js';
import { defaultRules, simRulesSchema } from '../../src/sim/rules.js';
import { demoDrmFile } from '../helpers/drm-config.js';
import { tempDir } from '../helpers/with-app.js';
import { withPassgate } from '../helpers/with-passgate.js';
import { withRedis } from '../helpers/with-redis.js';
import { demoSoftwareStatement } from '../helpers/with-sim.js';
import { agentClient, agentFile, delivered, newSession, protectFile, received, sha256 } from './agent-fixture.js';

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

test('SIGKILL mid-job, restart on the same data dir: every job completes exactly once', async (t) => {
  const sim = await startSim({ port: 0, rules: simRulesSchema.parse(defaultRules()) });
  t.teardown(() => sim.close());
  const dataDir = await tempDir(t);
  const configFile = join(await tempDir(t), 'passgate.yaml');
  await writeFile(
    configFile,
    JSON.stringify({
      service_provider: 'REF30',
      apps: { demo: { platform: 'tvos', app_key: `k-${randomBytes(6).toString('hex')}`, software_statement: demoSoftwareStatement } },
      ...demoDrmFile,
      agent: agentFile({}, { lease_ms: 1_500 }),
    }),
  );
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
  const a = await withPassgate(t, { redisUrl: redisUrl(), file: { agent: agentFile({ spool_dir: spool }, { concurrency: 3 }) } });
  const b = await withPassgate(t, { redisUrl: redisUrl(), keyPrefix: a.keyPrefix as string, sim: a.sim, file: { agent: agentFile({ spool_dir: spool }, { concurrency: 3 }) } });
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
});
